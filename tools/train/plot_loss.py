#!/usr/bin/python3
"""Draws the demo model's training curves (WORK/unet-loss.csv, WORK/vae-loss.csv; lines of
step,loss,unix_time) as a PNG with PIL alone: raw loss in light colour, a moving average in
dark, log-scale y axis; held-out evaluation points from WORK/eval.json when present.

usage: plot_loss.py WORK OUT.png [LAST_UNET_STEP]
"""
import json
import math
import os
import sys

from PIL import Image, ImageDraw, ImageFont


def read(path):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                p = line.strip().split(",")
                if len(p) >= 2:
                    rows.append((int(p[0]), float(p[1])))
    rows.sort()
    out, seen = [], set()
    for s, l in rows:          # a resumed run may repeat steps: keep the last value
        if s in seen:
            out[-1] = (s, l)
        else:
            out.append((s, l))
            seen.add(s)
    return out


def smooth(vals):
    k = min(0.98, max(0.8, 1 - 30 / max(len(vals), 1)))
    out, m = [], None
    for v in vals:
        m = v if m is None else k * m + (1 - k) * v
        out.append(m)
    return out


def panel(img, box, title, rows, points=()):
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    x0, y0, x1, y1 = box
    d.rectangle(box, outline=(0, 0, 0))
    d.text((x0 + 6, y0 - 14), title, fill=(0, 0, 0), font=font)
    if not rows:
        return
    steps = [s for s, _ in rows]
    losses = [l for _, l in rows]
    lo = min(min(losses), min((p[1] for p in points), default=1e9)) * 0.9
    hi = max(losses) * 1.1
    smax = max(steps)
    lmin, lmax = math.log10(lo), math.log10(hi)

    def xy(s, l):
        return (x0 + (x1 - x0) * s / smax, y1 - (y1 - y0) * (math.log10(l) - lmin) / (lmax - lmin))

    for e in range(math.floor(lmin), math.ceil(lmax) + 1):
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo <= v <= hi:
                _, y = xy(0, v)
                d.line([(x0, y), (x1, y)], fill=(225, 225, 225))
                d.text((x0 - 40, y - 6), f"{v:g}", fill=(0, 0, 0), font=font)
    for k in range(5):
        s = smax * k / 4
        x, _ = xy(s, lo)
        d.text((x - 10, y1 + 4), f"{int(s)}", fill=(0, 0, 0), font=font)
    d.line([xy(s, l) for s, l in rows], fill=(170, 200, 235))
    d.line([xy(s, l) for s, l in zip(steps, smooth(losses))], fill=(20, 60, 160), width=2)
    for s, l, label in points:
        x, y = xy(s, l)
        d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=(200, 40, 40))
        tx = x + 6 if x < x1 - 110 else x - 110
        d.text((tx, y - 14), label, fill=(200, 40, 40), font=font)


def main():
    work, out = sys.argv[1], sys.argv[2]
    last = int(sys.argv[3]) if len(sys.argv) > 3 else 1 << 30
    img = Image.new("RGB", (900, 620), (255, 255, 255))
    points = []
    ev = os.path.join(work, "eval.json")
    if os.path.exists(ev):
        for r in json.load(open(ev)):
            if r["weights"] == "ema" and 0 < r["step"] <= last:
                points.append((r["step"], r["loss"], f"{r.get('subset', 'held-out')} {r['loss']:.4f}"))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import configs
    target = "v" if configs.SCHEDULER["prediction_type"] == "v_prediction" else "epsilon"
    panel(img, (60, 30, 880, 380),
          f"UNet + text encoder: {target} MSE per step (batch 64, unweighted), moving average; "
          "red = fixed-draw eval (EMA)",
          [r for r in read(os.path.join(work, "unet-loss.csv")) if r[0] <= last], points)
    vae = read(os.path.join(work, "vae-loss.csv"))
    dec = read(os.path.join(work, "decoder-loss.csv"))
    n = vae[-1][0] if vae else 0
    if not vae and not dec:
        img = img.crop((0, 0, 900, 400))
    else:
        panel(img, (60, 420, 880, 590),
              f"VAE: L1 + MSE (+1e-6 KL) per step (batch 16); after step {n}: decoder-only "
              "fine-tune", vae + [(n + s, l) for s, l in dec])
    img.save(out)
    print("loss curves ->", out)


if __name__ == "__main__":
    main()
