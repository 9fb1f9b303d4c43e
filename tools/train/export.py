#!/usr/bin/python3
"""Exports the trained demo model as a diffusers folder (fp16 safetensors written by
safetensors_io.py, config.json files, the project's own tokenizer) and writes reference
tensors for tests/demo-model: PyTorch outputs of the exported (fp16-rounded) weights, computed
in float32, that Gesso's C engine must reproduce.

usage: export.py --work /var/tmp/gesso-train --out data/models/gesso-emoji-64
                 --refs tests/demo-model/reference.safetensors [--weights ema|raw] [--ckpt unet.pt]
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe               # noqa: E402
import configs           # noqa: E402
import models            # noqa: E402
import safetensors_io    # noqa: E402
from train import text_config   # noqa: E402

REF_PROMPTS = ["red apple", "smiling face with sunglasses"]


def build(work, ckpt_name="unet.pt", weights="ema"):
    """The three networks with a checkpoint's weights, rounded to fp16 and back."""
    tok = bpe.Tokenizer(os.path.join(work, "tokenizer"))
    vae = models.AutoencoderKL(configs.VAE)
    dec = os.path.join(work, "ckpt", "vae-decoder.pt")       # fine-tuned decoder, same encoder
    vae.load_state_dict(torch.load(dec if os.path.exists(dec) else
                                   os.path.join(work, "ckpt", "vae.pt"))["model"])
    unet = models.UNet2DConditionModel(configs.UNET)
    text = models.CLIPTextModel(text_config(tok))
    s = torch.load(os.path.join(work, "ckpt", ckpt_name))
    unet.load_state_dict(s["unet"])
    text.load_state_dict(s["text"])
    if weights == "ema":
        params = list(unet.parameters()) + list(text.parameters())
        with torch.no_grad():
            for p, e in zip(params, s["ema"]):
                p.copy_(e)
    with torch.no_grad():
        for m in (vae, unet, text):
            for p in m.parameters():
                p.copy_(p.half().float())
    for m in (vae, unet, text):
        m.eval()
    scale = torch.load(os.path.join(work, "latents.pt"))["scaling_factor"]
    return tok, vae, unet, text, s["step"], scale


def fp16_state(module):
    return {k: v.detach().half().numpy() for k, v in module.state_dict().items()}


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/var/tmp/gesso-train")
    p.add_argument("--out", required=True)
    p.add_argument("--refs", default=None)
    p.add_argument("--ckpt", default="unet.pt")
    p.add_argument("--weights", default="ema", choices=["ema", "raw"])
    a = p.parse_args()
    torch.set_flush_denormal(True)
    tok, vae, unet, text, step, scale = build(a.work, a.ckpt, a.weights)
    out = a.out
    meta = {"format": "pt"}
    write_json(os.path.join(out, "model_index.json"), configs.MODEL_INDEX)
    write_json(os.path.join(out, "scheduler", "scheduler_config.json"), configs.SCHEDULER)
    tdir = os.path.join(out, "tokenizer")
    os.makedirs(tdir, exist_ok=True)
    for f in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(a.work, "tokenizer", f), os.path.join(tdir, f))
    write_json(os.path.join(out, "text_encoder", "config.json"), text_config(tok))
    safetensors_io.save(os.path.join(out, "text_encoder", "model.safetensors"), fp16_state(text), meta)
    write_json(os.path.join(out, "unet", "config.json"), configs.UNET)
    safetensors_io.save(os.path.join(out, "unet", "diffusion_pytorch_model.safetensors"),
                        fp16_state(unet), meta)
    write_json(os.path.join(out, "vae", "config.json"), dict(configs.VAE, scaling_factor=round(scale, 5)))
    safetensors_io.save(os.path.join(out, "vae", "diffusion_pytorch_model.safetensors"),
                        fp16_state(vae), meta)
    print(f"exported step {step} ({a.weights} weights) to {out}; scaling_factor {scale:.5f}")
    if not a.refs:
        return
    # reference tensors: tokenizer -> text encoder -> UNet at a few timesteps, VAE decode
    g = torch.Generator().manual_seed(99)
    with torch.no_grad():
        ids = torch.tensor([tok.encode(t) for t in REF_PROMPTS])
        ctx = text(ids)
        sample = torch.randn(2, 4, 16, 16, generator=g)
        refs = {"input_ids": ids.numpy().astype(np.int64), "last_hidden_state": ctx.numpy(),
                "sample": sample.numpy()}
        for k, t in enumerate((999.0, 500.0, 37.5)):
            ts = torch.tensor([t, t])
            refs[f"timestep_{k}"] = ts.numpy()
            refs[f"noise_pred_{k}"] = unet(sample, ts, ctx).numpy()
        lat = torch.randn(1, 4, 16, 16, generator=g)
        refs["decode_input"] = lat.numpy()
        refs["decoded"] = vae.decode(lat).numpy()
    refs = {k: (v.astype(np.float32) if v.dtype != np.int64 else v) for k, v in refs.items()}
    # tokenizer check over many captions: every 8th caption variant of the training data
    data = np.load(os.path.join(a.work, "data.npz"))
    caps = [c for cs in json.loads(str(data["captions"])) for c in cs][::8]
    caps += ["Grinning FACE,  with big eyes!", "piñata 🎉 crème brûlée", "it's a cat's toy", ""]
    refs["caption_ids"] = np.array([tok.encode(c) for c in caps], dtype=np.int32)
    os.makedirs(os.path.dirname(a.refs), exist_ok=True)
    safetensors_io.save(a.refs, refs, {"prompts": json.dumps(REF_PROMPTS),
                                       "captions": json.dumps(caps, ensure_ascii=False),
                                       "model_step": str(step), "weights": a.weights,
                                       "generator": f"torch {torch.__version__}, float32, CPU"})
    print(f"reference tensors -> {a.refs}")


if __name__ == "__main__":
    main()
