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


def psnr(rec, x):
    """PSNR in dB of images in [-1, 1], as 8-bit pictures (peak 255), mean over images."""
    r = ((rec.clamp(-1, 1) + 1) * 127.5).round()
    t = ((x + 1) * 127.5).round()
    mse = ((r - t) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-3)
    return (10 * torch.log10(255.0 ** 2 / mse)).mean().item()


@torch.no_grad()
def stage_vae_import(a):
    """Starts from an exported diffusers VAE (fp16 safetensors) instead of training one: writes
    ckpt/vae.pt from FOLDER/vae/diffusion_pytorch_model.safetensors."""
    import safetensors_io
    sd = safetensors_io.load(os.path.join(a.vae_from, "vae", "diffusion_pytorch_model.safetensors"))
    vae = models.AutoencoderKL(configs.VAE)
    vae.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in sd.items()})
    save(os.path.join(a.work, "ckpt", "vae.pt"), {"model": vae.state_dict(), "step": 0,
                                                  "from": a.vae_from})
    print(f"imported VAE from {a.vae_from}")


@torch.no_grad()
def stage_latents(a):
    d = np.load(os.path.join(a.work, "data.npz"))
    aug = d["aug"]                                     # [N, K, 64, 64, 3], variant 0 as shipped
    n, k = aug.shape[:2]
    vae = models.AutoencoderKL(configs.VAE)
    dec = os.path.join(a.work, "ckpt", "vae-decoder.pt")
    vae.load_state_dict(torch.load(os.path.join(a.work, "ckpt", "vae.pt"))["model"])
    vae.eval()
    vdec = models.AutoencoderKL(configs.VAE)          # the decoder export.py will ship
    vdec.load_state_dict(torch.load(dec if os.path.exists(dec) else
                                    os.path.join(a.work, "ckpt", "vae.pt"))["model"])
    vdec.eval()
    x = to_tensor(aug.reshape(n * k, 64, 64, 3))
    means, logvars = [], []
    for i in range(0, len(x), 64):
        m, lv = vae.encode(x[i:i + 64])
        means.append(m); logvars.append(lv)
    mean, logvar = torch.cat(means), torch.cat(logvars)
    x0 = x.reshape(n, k, 3, 64, 64)[:, 0]
    m0 = mean.reshape(n, k, 4, 16, 16)[:, 0]
    rec = torch.cat([vdec.decode(m0[i:i + 64]) for i in range(0, n, 64)])
    g = torch.Generator().manual_seed(a.seed + 2)
    z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=g)
    scale = 1.0 / z.std().item()
    mse = F.mse_loss(rec, x0).item()
    p = psnr(rec, x0)
    torch.save({"mean": mean.reshape(n, k, 4, 16, 16), "logvar": logvar.reshape(n, k, 4, 16, 16),
                "scaling_factor": scale, "rec_mse": mse, "rec_psnr": p},
               os.path.join(a.work, "latents.pt"))
    print(f"latents {n} x {k} variants, scaling_factor {scale:.5f}, reconstruction of the "
          f"{n} emoji (posterior mean): MSE {mse:.5f} (images in [-1, 1]), PSNR {p:.2f} dB")


def betas():
    return torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2


def alphas_cumprod():
    return torch.cumprod(1.0 - betas(), dim=0).float()


def encode_captions(work, captions):
    tok = bpe.Tokenizer(os.path.join(work, "tokenizer"))
    ids = [[tok.encode(c) for c in caps] for caps in captions]
    return tok, ids, tok.encode("")


@torch.no_grad()
def plain_latents(work, seed, n=48):
    """Latents of plain backgrounds (white first, then light and mid colours) for the object
    removal use: "" with the emoji's surroundings should be able to mean "nothing here"."""
    g = np.random.default_rng(seed + 5)
    cols = [(255, 255, 255)] + [tuple(int(v) for v in g.integers(150, 256, 3)) for _ in range(n * 3 // 4 - 1)]
    cols += [tuple(int(v) for v in g.integers(40, 256, 3)) for _ in range(n - len(cols))]
    x = to_tensor(np.stack([np.full((64, 64, 3), c, dtype=np.uint8) for c in cols]))
    vae = models.AutoencoderKL(configs.VAE)
    vae.load_state_dict(torch.load(os.path.join(work, "ckpt", "vae.pt"))["model"])
    vae.eval()
    m, lv = vae.encode(x)
    # white counts as much as all the colours together
    w = torch.tensor([n - 1] + [1] * (n - 1), dtype=torch.float64)
    idx = torch.multinomial(w, 4 * n, replacement=True, generator=torch.Generator().manual_seed(seed))
    return m[idx], lv[idx], idx == 0


def stage_unet(a):
    """UNet + text encoder, trained together from scratch.  The prediction target follows
    configs.SCHEDULER["prediction_type"] (epsilon or v_prediction); the loss is weighted by
    min-SNR-gamma (--min-snr; 0 = plain MSE); AdamW with a linear warm-up and a cosine decay to
    --lr-min over --steps; EMA of the weights.  Each sample: variant 0 (as shipped) with
    probability 1 - --aug, else a random augmented variant; the first (CLDR) caption with
    probability --main-caption, else a random short name; "" with probability 0.1.  A share
    --plain of the samples are plain backgrounds (white or one colour; captioned "" 8 times in
    10, else "white background" or "plain background", or "empty"), for object removal."""
    _, captions, _ = load_data(a.work)
    lat = torch.load(os.path.join(a.work, "latents.pt"))
    mean, logvar, scale = lat["mean"], lat["logvar"], lat["scaling_factor"]
    n, k = mean.shape[:2]
    tok, ids, empty = encode_captions(a.work, captions)
    plain_mean, plain_logvar, plain_white = plain_latents(a.work, a.seed)
    plain_ids = [tok.encode(c) for c in ("white background", "plain background", "empty")]
    torch.manual_seed(a.seed)
    unet = models.UNet2DConditionModel(configs.UNET)
    text = models.CLIPTextModel(text_config(tok))
    params = list(unet.parameters()) + list(text.parameters())
    lr_max = a.lr or 1e-3
    opt = torch.optim.AdamW(params, lr=lr_max, weight_decay=0.01)
    ema = [p.detach().clone() for p in params]
    gen = torch.Generator().manual_seed(a.seed + 3)
    ac = alphas_cumprod()
    snr = ac / (1 - ac)
    vpred = configs.SCHEDULER["prediction_type"] == "v_prediction"
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
    nparam = sum(p.numel() for p in params)
    print(f"unet+text {nparam} parameters, {n} emoji x {k} variants, "
          f"{'v' if vpred else 'epsilon'}-prediction, min-SNR {a.min_snr}, lr {lr_max} cosine "
          f"to {a.lr_min} over {a.steps}, batch {a.batch}, EMA {a.ema}", flush=True)
    prog = Progress("unet", step, a.steps, os.path.join(a.work, "unet-loss.csv"))
    warmup = a.warmup
    while step < a.steps:
        if step < warmup:
            lr = lr_max * (step + 1) / warmup
        else:
            q = (step - warmup) / max(1, a.steps - warmup)
            lr = a.lr_min + 0.5 * (lr_max - a.lr_min) * (1 + math.cos(math.pi * q))
        for grp in opt.param_groups:
            grp["lr"] = lr
        idx = torch.randint(0, n, (a.batch,), generator=gen)
        var = torch.where(torch.rand(a.batch, generator=gen) < a.aug,
                          torch.randint(1, k, (a.batch,), generator=gen), torch.zeros(a.batch, dtype=torch.long))
        noise_z = torch.randn(a.batch, 4, 16, 16, generator=gen)
        z0 = (mean[idx, var] + (0.5 * logvar[idx, var]).exp() * noise_z) * scale
        plain = torch.rand(a.batch, generator=gen) < a.plain
        pj = torch.randint(0, len(plain_mean), (a.batch,), generator=gen)
        z0p = (plain_mean[pj] + (0.5 * plain_logvar[pj]).exp() * noise_z) * scale
        z0 = torch.where(plain[:, None, None, None], z0p, z0)
        drop = torch.rand(a.batch, generator=gen) < 0.1
        main = torch.rand(a.batch, generator=gen) < a.main_caption
        pick = torch.randint(0, 1 << 30, (a.batch,), generator=gen)
        batch_ids = []
        for j, i in enumerate(idx.tolist()):
            if plain[j]:        # a plain background: mostly unconditional, else its words
                pc = int(pick[j]) % 10
                batch_ids.append(empty if pc < 8 else plain_ids[2] if pc == 9 else
                                 plain_ids[0] if plain_white[pj[j]] else plain_ids[1])
            elif drop[j]:
                batch_ids.append(empty)
            elif main[j] or len(ids[i]) == 1:
                batch_ids.append(ids[i][0])
            else:
                batch_ids.append(ids[i][1 + int(pick[j]) % (len(ids[i]) - 1)])
        batch_ids = torch.tensor(batch_ids)
        t = torch.randint(0, 1000, (a.batch,), generator=gen)
        eps = torch.randn(z0.shape, generator=gen)
        acb = ac[t][:, None, None, None]
        zt = acb.sqrt() * z0 + (1 - acb).sqrt() * eps
        target = acb.sqrt() * eps - (1 - acb).sqrt() * z0 if vpred else eps
        pred = unet(zt, t.float(), text(batch_ids))
        per = ((pred - target) ** 2).mean(dim=(1, 2, 3))
        if a.min_snr > 0:
            st = snr[t]
            w = torch.clamp(st, max=a.min_snr) / ((st + 1) if vpred else st)
        else:
            w = torch.ones_like(per)
        loss = (w * per).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(a.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema, params):
                e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        prog.step(step, per.mean().item())
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
    p.add_argument("stage", choices=["vae", "vae-import", "decoder", "latents", "unet"])
    p.add_argument("--vae-from", default=None, help="vae-import: a diffusers folder")
    p.add_argument("--lr-min", type=float, default=1e-5)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--min-snr", type=float, default=5.0)
    p.add_argument("--aug", type=float, default=0.5, help="share of augmented samples")
    p.add_argument("--main-caption", type=float, default=0.75)
    p.add_argument("--plain", type=float, default=0.12, help="share of plain backgrounds")
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
    {"vae": stage_vae, "vae-import": stage_vae_import, "decoder": stage_decoder,
     "latents": stage_latents,
     "unet": stage_unet}[a.stage](a)


if __name__ == "__main__":
    main()
