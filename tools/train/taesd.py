#!/usr/bin/python3
"""A TAESD for the demo model, distilled from its own VAE, and TAESD's error against that VAE.

    /usr/bin/python3 tools/train/taesd.py WORK_DIR OUT_DIR [--steps N] [--batch B]

WORK_DIR holds data.npz (prepare_data.py); the VAE is the committed one
(data/models/gesso-emoji-64/vae). The network is madebyollin's TAESD (nn.Sequential layers, so
the files have its key names) at width 32 with one level fewer, since the demo VAE's latent
is 4x (not 8x) smaller than the image: encoder blocks (1, 3, 3), decoder blocks (3, 3, 1).
Latents are the VAE's posterior means times its scaling factor, the scale the UNet works in
(TAESD's convention). Trained (seeded, Adam) on two augmented variants of 7 in 8 emoji, then measured on the
other eighth:

  KL          the VAE's own round trip (encode, decode) against the image
  TAESD dec   TAESD's decode of the VAE's latents against the VAE's decode of them: what
              `--vae taesd` or a TAESD preview changes in a picture the UNet made
  TAESD rt    TAESD's own round trip against the image

as PSNR (8-bit pictures) and the largest difference of one channel in 8-bit levels. Writes
OUT_DIR/taesd_encoder.safetensors and taesd_decoder.safetensors (float16).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402
import safetensors_io  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
VAE_DIR = os.path.join(ROOT, "data", "models", "gesso-emoji-64", "vae")
WIDTH = 32


def conv(n_in, n_out, **kw):
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kw)


class Clamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Sequential(conv(c, c), nn.ReLU(), conv(c, c), nn.ReLU(), conv(c, c))

    def forward(self, x):
        return F.relu(self.conv(x) + x)


def encoder(c=WIDTH):
    return nn.Sequential(conv(3, c), Block(c),
                         conv(c, c, stride=2, bias=False), Block(c), Block(c), Block(c),
                         conv(c, c, stride=2, bias=False), Block(c), Block(c), Block(c),
                         conv(c, 4))


def decoder(c=WIDTH):
    return nn.Sequential(Clamp(), conv(4, c), nn.ReLU(), Block(c), Block(c), Block(c),
                         nn.Upsample(scale_factor=2), conv(c, c, bias=False),
                         Block(c), Block(c), Block(c),
                         nn.Upsample(scale_factor=2), conv(c, c, bias=False), Block(c),
                         conv(c, 3))


def load_vae():
    cfg = json.load(open(os.path.join(VAE_DIR, "config.json")))
    vae = models.AutoencoderKL(cfg)
    sd = safetensors_io.load(os.path.join(VAE_DIR, "diffusion_pytorch_model.safetensors"))
    vae.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in sd.items()})
    return vae.eval(), cfg["scaling_factor"]


def to_tensor(images):
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@torch.no_grad()
def targets(vae, scale, x):
    """Scaled latents and the VAE's decodes of them, in batches."""
    lat, dec = [], []
    for i in range(0, len(x), 64):
        mean, _ = vae.encode(x[i:i + 64])
        lat.append(mean * scale)
        dec.append(vae.decode(mean))
    return torch.cat(lat), torch.cat(dec)


def to_8bit(x):
    """[-1, 1] images as 8-bit levels."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round()


def psnr_and_max(a, b):
    a, b = to_8bit(a), to_8bit(b)
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-3)
    return (10 * torch.log10(255.0 ** 2 / mse)).mean().item(), (a - b).abs().max().item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("work")
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch", type=int, default=16)
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)

    d = np.load(os.path.join(a.work, "data.npz"))
    # every 8th emoji is held out; the others train with two of their variants each
    held = np.arange(len(d["images"])) % 8 == 0
    train = to_tensor(d["aug"][~held, :2].reshape(-1, 64, 64, 3))
    test = to_tensor(d["images"][held])
    vae, scale = load_vae()
    z_train, dec_train = targets(vae, scale, train)
    z_test, dec_test = targets(vae, scale, test)

    enc, dec = encoder(), decoder()
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-3)
    start = time.time()
    for step in range(1, a.steps + 1):
        i = torch.randint(0, len(train), (a.batch,))
        # decoder: from the VAE's latents to its pictures; encoder: from pictures to latents
        loss_d = F.mse_loss(dec(z_train[i]) * 2 - 1, dec_train[i])
        loss_e = F.mse_loss(enc(train[i] / 2 + 0.5), z_train[i])
        opt.zero_grad()
        (loss_d + loss_e).backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step} decoder {loss_d.item():.5f} encoder {loss_e.item():.5f} "
                  f"({time.time() - start:.0f} s)", flush=True)

    with torch.no_grad():
        kl = psnr_and_max(dec_test, test)
        taesd_dec = psnr_and_max(dec(z_test) * 2 - 1, dec_test)
        taesd_rt = psnr_and_max(dec(enc(test / 2 + 0.5)) * 2 - 1, test)
    print(f"{a.steps} steps, {len(test)} held-out emoji (PSNR dB, max 8-bit level difference):")
    print(f"  KL round trip vs image:           {kl[0]:.2f} dB, max {kl[1]:.0f}")
    print(f"  TAESD decode vs KL decode:        {taesd_dec[0]:.2f} dB, max {taesd_dec[1]:.0f}")
    print(f"  TAESD round trip vs image:        {taesd_rt[0]:.2f} dB, max {taesd_rt[1]:.0f}")

    os.makedirs(a.out, exist_ok=True)
    for name, net in (("taesd_encoder", enc), ("taesd_decoder", dec)):
        safetensors_io.save(os.path.join(a.out, name + ".safetensors"),
                            {k: v.numpy().astype(np.float16) for k, v in net.state_dict().items()})


if __name__ == "__main__":
    main()
