#!/usr/bin/python3
"""Denoising loss of demo-model checkpoints: the prediction MSE (epsilon or v, as
configs.SCHEDULER says) on 95 training emoji (--subset train, the default since issue 18's
model trains on its whole scope) or on held-out emoji where the data has some, each at 10
fixed (timestep, noise) draws with timesteps stratified over [0, 1000), first caption,
fp16-rounded weights as exported.  The same draws for every
checkpoint, so the numbers compare directly.

usage: evaluate.py --work /var/tmp/gesso-train CKPT[:ema|raw] ... [--json out.json]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import build                          # noqa: E402
from train import alphas_cumprod, load_data       # noqa: E402
import configs                                     # noqa: E402

DRAWS = 10


@torch.no_grad()
def loss_of(work, ckpt, weights, subset):
    tok, vae, unet, text, step, scale = build(work, ckpt, weights)
    images, captions, held = load_data(work)
    lat = torch.load(os.path.join(work, "latents.pt"))
    idx = np.nonzero(held if subset == "held-out" else ~held)[0]
    if subset == "train":
        idx = idx[:: max(1, len(idx) // 95)][:95]
    g = torch.Generator().manual_seed(4321)
    ac = alphas_cumprod()
    total, n = 0.0, 0
    per_t = np.zeros(DRAWS)
    for k in range(DRAWS):
        m, lv = lat["mean"][idx], lat["logvar"][idx]
        if m.dim() == 5:                       # [N, variants, ...]: variant 0, as shipped
            m, lv = m[:, 0], lv[:, 0]
        z0 = (m + (0.5 * lv).exp() * torch.randn(m.shape, generator=g)) * scale
        t = ((k + torch.rand(len(idx), generator=g)) * (1000 / DRAWS)).long().clamp(0, 999)
        eps = torch.randn(z0.shape, generator=g)
        a = ac[t][:, None, None, None]
        zt = a.sqrt() * z0 + (1 - a).sqrt() * eps
        ids = torch.tensor([tok.encode(captions[i][0]) for i in idx])
        pred = unet(zt, t.float(), text(ids))
        target = (a.sqrt() * eps - (1 - a).sqrt() * z0
                  if configs.SCHEDULER["prediction_type"] == "v_prediction" else eps)
        l = F.mse_loss(pred, target).item()
        per_t[k] = l
        total += l * len(idx)
        n += len(idx)
    return step, total / n, per_t.tolist()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/var/tmp/gesso-train")
    p.add_argument("--subset", default="train", choices=["held-out", "train"])
    p.add_argument("--json", default=None)
    p.add_argument("ckpts", nargs="+")
    a = p.parse_args()
    torch.set_num_threads(2)
    torch.set_flush_denormal(True)
    rows = []
    for spec in a.ckpts:
        ckpt, _, weights = spec.partition(":")
        step, loss, per_t = loss_of(a.work, ckpt, weights or "ema", a.subset)
        rows.append({"checkpoint": ckpt, "weights": weights or "ema", "step": step,
                     "subset": a.subset, "loss": loss, "loss_per_timestep_decile": per_t})
        print(f"{ckpt:>14} {weights or 'ema':>4} step {step:>5}: {a.subset} loss {loss:.5f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
