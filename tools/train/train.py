#!/usr/bin/python3
"""Trains Gesso's demo model: stage `vae` (the autoencoder), `latents` (encodes the training set
and sets the latent scaling factor), `unet` (UNet and text encoder together, epsilon
prediction, SD's scaled-linear schedule).  Seeded, resumable (a checkpoint every
--ckpt-every steps under WORK/ckpt; rerunning the same command continues from it), with a
progress line and a CSV loss log per stage.

usage: train.py STAGE --work /var/tmp/gesso-train [--steps N] ...
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe          # noqa: E402
import configs      # noqa: E402
import models       # noqa: E402


def text_config(tok):
    return dict(configs.TEXT, vocab_size=len(tok.vocab), bos_token_id=tok.bos,
                eos_token_id=tok.eos)


def load_data(work):
    d = np.load(os.path.join(work, "data.npz"))
    return d["images"], json.loads(str(d["captions"])), d["held_out"]


def to_tensor(images):
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def save(path, state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


class Progress:
    def __init__(self, name, start, total, log_path):
        self.name, self.total, self.start = name, total, start
        self.t0 = time.time()
        self.log = open(log_path, "a")
        self.avg = None

    def step(self, step, loss):
        self.avg = loss if self.avg is None else 0.98 * self.avg + 0.02 * loss
        self.log.write(f"{step},{loss:.6f},{time.time():.1f}\n")
        if step % 10 == 0 or step == self.total:
            self.log.flush()
            rate = (step - self.start) / max(time.time() - self.t0, 1e-6)
            eta = (self.total - step) / max(rate, 1e-9)
            n = int(30 * step / self.total)
            print(f"{self.name} [{'#' * n}{'.' * (30 - n)}] {step}/{self.total} loss {loss:.4f} "
                  f"avg {self.avg:.4f} {rate:.2f} it/s eta {eta / 60:.1f} min", flush=True)


def gaussian_kl(mean, logvar):
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=(1, 2, 3)).mean()


def stage_vae(a):
    images, _, held = load_data(a.work)
    x_all = to_tensor(images[~held])
    torch.manual_seed(a.seed)
    vae = models.AutoencoderKL(configs.VAE)
    opt = torch.optim.Adam(vae.parameters(), lr=a.lr or 4e-4)
    gen = torch.Generator().manual_seed(a.seed + 1)
    ckpt = os.path.join(a.work, "ckpt", "vae.pt")
    step = 0
    if os.path.exists(ckpt):
        s = torch.load(ckpt)
        vae.load_state_dict(s["model"]); opt.load_state_dict(s["opt"])
        gen.set_state(s["gen"]); step = s["step"]
        print(f"resuming vae at step {step}")
    prog = Progress("vae", step, a.steps, os.path.join(a.work, "vae-loss.csv"))
    while step < a.steps:
        idx = torch.randint(0, len(x_all), (a.batch,), generator=gen)
        x = x_all[idx]
        eps = torch.randn(x.shape[0], configs.VAE["latent_channels"], 16, 16, generator=gen)
        mean, logvar = vae.encode(x)
        z = mean + (0.5 * logvar).exp() * eps
        rec = vae.decode(z)
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + 1e-6 * gaussian_kl(mean, logvar)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        prog.step(step, loss.item())
        if step % a.ckpt_every == 0 or step == a.steps:
            save(ckpt, {"model": vae.state_dict(), "opt": opt.state_dict(),
                        "gen": gen.get_state(), "step": step})


def stage_decoder(a):
    """Fine-tunes the decoder (post_quant_conv + decoder) with the encoder frozen: the latent
    space the UNet learns stays exactly as it is, only the pictures decoded from it sharpen.
    Starts from ckpt/vae.pt, writes ckpt/vae-decoder.pt (which export.py prefers)."""
    images, _, held = load_data(a.work)
    x_all = to_tensor(images[~held])
    torch.manual_seed(a.seed)
    vae = models.AutoencoderKL(configs.VAE)
    vae.load_state_dict(torch.load(os.path.join(a.work, "ckpt", "vae.pt"))["model"])
    params = list(vae.post_quant_conv.parameters()) + list(vae.decoder.parameters())
    for p in vae.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=a.lr or 2e-4)
    gen = torch.Generator().manual_seed(a.seed + 4)
    ckpt = os.path.join(a.work, "ckpt", "vae-decoder.pt")
    step = 0
    if os.path.exists(ckpt):
        s = torch.load(ckpt)
        vae.load_state_dict(s["model"]); opt.load_state_dict(s["opt"])
        gen.set_state(s["gen"]); step = s["step"]
        print(f"resuming decoder at step {step}")
    prog = Progress("decoder", step, a.steps, os.path.join(a.work, "decoder-loss.csv"))
    while step < a.steps:
        idx = torch.randint(0, len(x_all), (a.batch,), generator=gen)
        x = x_all[idx]
        eps = torch.randn(x.shape[0], configs.VAE["latent_channels"], 16, 16, generator=gen)
        with torch.no_grad():
            mean, logvar = vae.encode(x)
            z = mean + (0.5 * logvar).exp() * eps
        rec = vae.decode(z)
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        prog.step(step, loss.item())
        if step % a.ckpt_every == 0 or step == a.steps:
            save(ckpt, {"model": vae.state_dict(), "opt": opt.state_dict(),
                        "gen": gen.get_state(), "step": step})


@torch.no_grad()
def stage_latents(a):
    images, _, held = load_data(a.work)
    vae = models.AutoencoderKL(configs.VAE)
    vae.load_state_dict(torch.load(os.path.join(a.work, "ckpt", "vae.pt"))["model"])
    vae.eval()
    x = to_tensor(images)
    means, logvars, recs = [], [], []
    for i in range(0, len(x), 64):
        m, lv = vae.encode(x[i:i + 64])
        means.append(m); logvars.append(lv)
        recs.append(vae.decode(m))
    mean, logvar, rec = torch.cat(means), torch.cat(logvars), torch.cat(recs)
    g = torch.Generator().manual_seed(a.seed + 2)
    z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=g)
    scale = 1.0 / z[torch.from_numpy(~held)].std().item()
    mse_train = F.mse_loss(rec[~torch.from_numpy(held)], x[~torch.from_numpy(held)]).item()
    mse_held = F.mse_loss(rec[torch.from_numpy(held)], x[torch.from_numpy(held)]).item()
    torch.save({"mean": mean, "logvar": logvar, "scaling_factor": scale,
                "rec_mse_train": mse_train, "rec_mse_held_out": mse_held},
               os.path.join(a.work, "latents.pt"))
    print(f"latents {tuple(mean.shape)}, scaling_factor {scale:.5f}, reconstruction MSE "
          f"train {mse_train:.5f} held-out {mse_held:.5f} (images in [-1, 1])")


def betas():
    return torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2


def alphas_cumprod():
    return torch.cumprod(1.0 - betas(), dim=0).float()


def encode_captions(work, captions):
    tok = bpe.Tokenizer(os.path.join(work, "tokenizer"))
    ids = [[tok.encode(c) for c in caps] for caps in captions]
    return tok, ids, tok.encode("")


def stage_unet(a):
    images, captions, held = load_data(a.work)
    lat = torch.load(os.path.join(a.work, "latents.pt"))
    train_idx = np.nonzero(~held)[0]
    mean, logvar, scale = lat["mean"][train_idx], lat["logvar"][train_idx], lat["scaling_factor"]
    tok, ids, empty = encode_captions(a.work, captions)
    ids = [ids[i] for i in train_idx]
    torch.manual_seed(a.seed)
    unet = models.UNet2DConditionModel(configs.UNET)
    text = models.CLIPTextModel(text_config(tok))
    params = list(unet.parameters()) + list(text.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr or 3e-4, weight_decay=0.01)
    ema = [p.detach().clone() for p in params]
    gen = torch.Generator().manual_seed(a.seed + 3)
    ac = alphas_cumprod()
    ckdir = os.path.join(a.work, "ckpt")
    ckpt = os.path.join(ckdir, "unet.pt")
    step = 0
    if os.path.exists(ckpt):
        s = torch.load(ckpt)
        unet.load_state_dict(s["unet"]); text.load_state_dict(s["text"])
        opt.load_state_dict(s["opt"]); gen.set_state(s["gen"]); step = s["step"]
        for e, v in zip(ema, s["ema"]):
            e.copy_(v)
        print(f"resuming unet at step {step}")
    else:
        save(os.path.join(ckdir, "unet-0.pt"), {"unet": unet.state_dict(), "text": text.state_dict(),
                                              "ema": [e.clone() for e in ema], "step": 0})
    prog = Progress("unet", step, a.steps, os.path.join(a.work, "unet-loss.csv"))
    warmup = 100
    while step < a.steps:
        lr = (a.lr or 3e-4) * min(1.0, (step + 1) / warmup)
        for grp in opt.param_groups:
            grp["lr"] = lr
        idx = torch.randint(0, len(train_idx), (a.batch,), generator=gen)
        noise_z = torch.randn(a.batch, 4, 16, 16, generator=gen)
        z0 = (mean[idx] + (0.5 * logvar[idx]).exp() * noise_z) * scale
        drop = torch.rand(a.batch, generator=gen) < 0.1
        pick = torch.randint(0, 1 << 30, (a.batch,), generator=gen)
        batch_ids = torch.tensor([empty if drop[k] else ids[i][int(pick[k]) % len(ids[i])]
                                  for k, i in enumerate(idx.tolist())])
        t = torch.randint(0, 1000, (a.batch,), generator=gen)
        eps = torch.randn(z0.shape, generator=gen)
        acb = ac[t][:, None, None, None]
        zt = acb.sqrt() * z0 + (1 - acb).sqrt() * eps
        pred = unet(zt, t.float(), text(batch_ids))
        loss = F.mse_loss(pred, eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(a.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema, params):
                e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        prog.step(step, loss.item())
        keep = step in a.keep
        if step % a.ckpt_every == 0 or step == a.steps or keep:
            state = {"unet": unet.state_dict(), "text": text.state_dict(), "opt": opt.state_dict(),
                     "gen": gen.get_state(), "step": step, "ema": [e.clone() for e in ema]}
            save(ckpt, state)
            if keep:
                state.pop("opt")
                save(os.path.join(ckdir, f"unet-{step}.pt"), state)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("stage", choices=["vae", "decoder", "latents", "unet"])
    p.add_argument("--work", default="/var/tmp/gesso-train")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--ckpt-every", type=int, default=50)
    p.add_argument("--keep", type=int, nargs="*", default=[], help="steps whose checkpoint is kept")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    os.makedirs(os.path.join(a.work, "ckpt"), exist_ok=True)
    {"vae": stage_vae, "decoder": stage_decoder, "latents": stage_latents,
     "unet": stage_unet}[a.stage](a)


if __name__ == "__main__":
    main()
