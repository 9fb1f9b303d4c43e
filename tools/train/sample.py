#!/usr/bin/python3
"""Text-to-image samples from a demo-model checkpoint in PyTorch (DDIM, "leading" spacing,
classifier-free guidance; epsilon or v prediction as configs.SCHEDULER says), for the model card: a grid of prompts x seeds.

usage: sample.py --work /var/tmp/gesso-train --out grid.png [--ckpt unet.pt] [--weights ema]
"""
import argparse
import os
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import build                  # noqa: E402
from train import alphas_cumprod          # noqa: E402
import configs                            # noqa: E402

PROMPTS = ["grinning face", "red apple", "cat face", "red heart", "sun", "pizza",
           "christmas tree", "rocket"]


@torch.no_grad()
def ddim(unet, text, tok, prompts, seeds, steps=25, guidance=4.0):
    ac = alphas_cumprod()
    cond = text(torch.tensor([tok.encode(p) for p in prompts]))
    uncond = text(torch.tensor([tok.encode("")] * len(prompts)))
    z = torch.stack([torch.randn(4, 16, 16, generator=torch.Generator().manual_seed(s))
                     for s in seeds])
    ts = list(range(0, 1000, 1000 // steps))[::-1]
    ts = [t + 1 for t in ts]                               # steps_offset 1
    for i, t in enumerate(ts):
        tt = torch.full((2 * len(prompts),), float(t))
        e = unet(torch.cat([z, z]), tt, torch.cat([uncond, cond]))
        eu, ec = e.chunk(2)
        out = eu + guidance * (ec - eu)
        a = ac[t]
        a_prev = ac[ts[i + 1]] if i + 1 < len(ts) else ac[0]
        if configs.SCHEDULER["prediction_type"] == "v_prediction":
            x0 = a.sqrt() * z - (1 - a).sqrt() * out
            eps = (1 - a).sqrt() * z + a.sqrt() * out
        else:
            eps = out
            x0 = (z - (1 - a).sqrt() * eps) / a.sqrt()
        z = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return z


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/var/tmp/gesso-train")
    p.add_argument("--out", required=True)
    p.add_argument("--ckpt", default="unet.pt")
    p.add_argument("--weights", default="ema")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--guidance", type=float, default=4.0)
    p.add_argument("--steps", type=int, default=25)
    a = p.parse_args()
    torch.set_num_threads(2)
    torch.set_flush_denormal(True)
    tok, vae, unet, text, step, scale = build(a.work, a.ckpt, a.weights)
    rows = []
    for s in range(a.seeds):
        z = ddim(unet, text, tok, PROMPTS, [1000 * s + k for k in range(len(PROMPTS))],
                 steps=a.steps, guidance=a.guidance)
        img = vae.decode(z / scale).clamp(-1, 1)
        rows.append(((img + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy())
    cell, pad = 64, 4
    W = len(PROMPTS) * (cell * 2 + pad) + pad
    H = 16 + a.seeds * (cell * 2 + pad) + pad
    grid = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for c, prompt in enumerate(PROMPTS):
        d.text((pad + c * (cell * 2 + pad), 2), prompt[:21], fill=(0, 0, 0), font=font)
        for r in range(a.seeds):
            im = Image.fromarray(rows[r][c]).resize((cell * 2, cell * 2), Image.NEAREST)
            grid.paste(im, (pad + c * (cell * 2 + pad), 16 + pad + r * (cell * 2 + pad)))
    grid.save(a.out)
    print(f"samples of step {step} ({a.weights}) -> {a.out}")


if __name__ == "__main__":
    main()
