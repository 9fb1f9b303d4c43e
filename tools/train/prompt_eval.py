#!/usr/bin/python3
"""The demo model's prompt-following and object-removal checks, run through Gesso's own CLI.

prompts: for each of 50 captions from the training set (every ~8th emoji of the scope, its
first, CLDR caption) generate 4 images at 64x64 with seeds 1-4 and everything else as the
dialogs default (gesso_edit_params_init: 25 steps, guidance 7.5, the engine's default
sampler); find the nearest emoji of the whole scope by mean squared distance on lightly
blurred (Gaussian, radius 1 px) 64x64 RGB; top-1 = the nearest is the captioned emoji, top-5 =
it is among the 5 nearest.

inpaint: 20 compositions made here with PIL (a star, disc, square or triangle in a strong
colour, 18-34 px, pasted on white or on a plain light colour), the object grown by 10 px as
the selection (mask; the dialogs' 8 px feather lies inside it), `gesso inpaint --prompt ""`
with the dialog defaults (RePaint, 20 steps, mask grow 0, feather 8); the figure is the mean
absolute difference, in 8-bit levels over R, G and B, between the repaired area (where the
object was: its pixels grown by 2 px) and the clean background; the same over the whole
selection is recorded too.

Results: OUT/results.json, the generated images (OUT/prompts/*.png, OUT/inpaint/*.png) and a
sheet of them; --export DIR writes what the test tests/demo-model/test-samples.py checks.

usage: prompt_eval.py --gesso build/cli/gesso --model data/models/gesso-emoji-64
                      --data WORK/data.npz --out WORK/eval-new [--threads 1] [--export DIR]
"""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

N_CAPTIONS = 50
SEEDS = (1, 2, 3, 4)
N_INPAINT = 20


def blur(a):
    return np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(1)), dtype=np.float32)


def eval_captions(n):
    idx = np.linspace(0, n - 1, N_CAPTIONS).round().astype(int)
    return sorted(set(idx.tolist()))


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")


def slug(text):
    return "".join(c if c.isalnum() else "-" for c in text)


def prompts(a, images, captions):
    refs = np.stack([blur(im) for im in images]).reshape(len(images), -1)
    out = os.path.join(a.out, "prompts")
    os.makedirs(out, exist_ok=True)
    rows = []
    for i in eval_captions(len(images)):
        cap = captions[i][0]
        for s in SEEDS:
            path = os.path.join(out, f"{i:03d}-{slug(cap)}-s{s}.png")
            if not os.path.exists(path):
                run([a.gesso, "generate", "--model", a.model, "--prompt", cap, "--width", "64",
                     "--height", "64", "--seed", str(s), "--threads", str(a.threads),
                     "--out", path])
            g = blur(np.asarray(Image.open(path).convert("RGB")))
            d = ((refs - g.reshape(1, -1)) ** 2).mean(axis=1)
            order = np.argsort(d, kind="stable")
            rank = int(np.nonzero(order == i)[0][0])
            rows.append({"emoji": i, "caption": cap, "seed": s, "file": os.path.basename(path),
                         "rank": rank, "nearest": [captions[j][0] for j in order[:5]],
                         "distance": float(d[i])})
        print(f"{cap!r}: ranks {[r['rank'] for r in rows[-len(SEEDS):]]}, nearest "
              f"{rows[-1]['nearest'][0]!r}", flush=True)
    top1 = float(np.mean([r["rank"] == 0 for r in rows]))
    top5 = float(np.mean([r["rank"] < 5 for r in rows]))
    return {"top1": top1, "top5": top5, "images": len(rows), "captions": len(rows) // len(SEEDS),
            "scope": len(images), "chance_top1": 1.0 / len(images),
            "chance_top5": 5.0 / len(images), "samples": rows}


def star(cx, cy, r):
    pts = []
    for k in range(10):
        ang = -math.pi / 2 + k * math.pi / 5
        rr = r if k % 2 == 0 else r * 0.45
        pts.append((cx + rr * math.cos(ang), cy + rr * math.sin(ang)))
    return pts


def composition(k):
    """The k-th object-removal case: (image, mask, clean background), uint8 arrays."""
    rng = np.random.default_rng(1000 + k)
    bgs = [(255, 255, 255), (236, 236, 236), (214, 232, 250), (250, 240, 200), (222, 245, 222),
           (250, 224, 230)]
    bg = bgs[0] if k % 2 == 0 else bgs[1 + (k // 2) % (len(bgs) - 1)]
    fg = [(220, 40, 40), (40, 90, 210), (250, 190, 20), (30, 150, 60), (150, 60, 180),
          (240, 120, 20)][k % 6]
    size = int(rng.integers(18, 35))
    cx = int(rng.integers(size // 2 + 4, 64 - size // 2 - 4))
    cy = int(rng.integers(size // 2 + 4, 64 - size // 2 - 4))
    clean = Image.new("RGB", (64, 64), bg)
    img = clean.copy()
    obj = Image.new("L", (64, 64), 0)
    d, m = ImageDraw.Draw(img), ImageDraw.Draw(obj)
    h = size / 2
    shape = ["star", "disc", "square", "triangle"][(k // 2) % 4]
    if shape == "star":
        pts = star(cx, cy, h)
        d.polygon(pts, fill=fg, outline=(40, 40, 40)); m.polygon(pts, fill=255, outline=255)
    elif shape == "disc":
        box = [cx - h, cy - h, cx + h, cy + h]
        d.ellipse(box, fill=fg, outline=(40, 40, 40)); m.ellipse(box, fill=255, outline=255)
    elif shape == "square":
        box = [cx - h * 0.8, cy - h * 0.8, cx + h * 0.8, cy + h * 0.8]
        d.rectangle(box, fill=fg, outline=(40, 40, 40)); m.rectangle(box, fill=255, outline=255)
    else:
        pts = [(cx, cy - h), (cx + h, cy + h * 0.8), (cx - h, cy + h * 0.8)]
        d.polygon(pts, fill=fg, outline=(40, 40, 40)); m.polygon(pts, fill=255, outline=255)
    area = obj.filter(ImageFilter.MaxFilter(5))          # the object grown by 2 px
    # the selection a user draws around it: 10 px of margin, more than the dialogs' 8 px
    # feather, which lies inside the selection (core/edit: mask grow 0, feather inside)
    mask = obj.filter(ImageFilter.MaxFilter(21))
    return (np.asarray(img), np.asarray(mask), np.asarray(clean), np.asarray(area)), shape, bg


def inpaint(a):
    out = os.path.join(a.out, "inpaint")
    os.makedirs(out, exist_ok=True)
    rows = []
    for k in range(N_INPAINT):
        (img, mask, clean, area), shape, bg = composition(k)
        ip, mp, rp = (os.path.join(out, f"{k:02d}-{n}.png") for n in ("in", "mask", "out"))
        Image.fromarray(img).save(ip)
        Image.fromarray(mask).save(mp)
        if not os.path.exists(rp):
            run([a.gesso, "inpaint", "--model", a.model, "--image", ip, "--mask", mp,
                 "--prompt", "", "--seed", "1", "--threads", str(a.threads), "--out", rp])
        res = np.asarray(Image.open(rp).convert("RGB"), dtype=np.float32)
        sel = area > 127
        diff = float(np.abs(res[sel] - clean[sel].astype(np.float32)).mean())
        whole = mask > 127
        rows.append({"case": k, "shape": shape, "background": list(bg), "mean_abs_diff": diff,
                     "area_pixels": int(sel.sum()), "selection_pixels": int(whole.sum()),
                     "selection_mean_abs_diff":
                         float(np.abs(res[whole] - clean[whole].astype(np.float32)).mean())})
        print(f"inpaint {k:2d} {shape:8s} on {bg}: repaired area {diff:.1f} levels from the "
              f"background", flush=True)
    return {"mean_abs_diff": float(np.mean([r["mean_abs_diff"] for r in rows])), "cases": rows}


def file_hashes(model):
    import hashlib
    out = {}
    for sub, name in (("text_encoder", "model.safetensors"),
                      ("unet", "diffusion_pytorch_model.safetensors"),
                      ("vae", "diffusion_pytorch_model.safetensors")):
        with open(os.path.join(model, sub, name), "rb") as f:
            out[f"{sub}/{name}"] = hashlib.sha256(f.read()).hexdigest()
    return out


def export(a, res, out):
    """What tests/demo-model/test-samples.py checks: results.json (figures, every sample's
    rank, the sha256 of the model's weight files) and the samples as two PNG grids:
    prompt-samples.png (one row per caption, one column per seed) and inpaint-samples.png
    (one row per case: input, mask, result)."""
    os.makedirs(out, exist_ok=True)
    ps = res["prompts"]["samples"]
    caps = len(ps) // len(SEEDS)
    grid = Image.new("RGB", (64 * len(SEEDS), 64 * caps), "white")
    for n, r in enumerate(ps):
        c, s = divmod(n, len(SEEDS))
        grid.paste(Image.open(os.path.join(a.out, "prompts", r["file"])).convert("RGB"),
                   (64 * s, 64 * c))
    grid.save(os.path.join(out, "prompt-samples.png"), optimize=True)
    if "inpaint" in res:
        grid = Image.new("RGB", (64 * 3, 64 * N_INPAINT), "white")
        for k in range(N_INPAINT):
            for j, n in enumerate(("in", "mask", "out")):
                grid.paste(Image.open(os.path.join(a.out, "inpaint", f"{k:02d}-{n}.png"))
                           .convert("RGB"), (64 * j, 64 * k))
        grid.save(os.path.join(out, "inpaint-samples.png"), optimize=True)
    slim = dict(res)
    slim["prompts"] = {k: v for k, v in res["prompts"].items() if k != "samples"}
    slim["prompts"]["samples"] = [{k: r[k] for k in ("caption", "seed", "rank", "nearest")}
                                  for r in ps]
    slim["model_files_sha256"] = file_hashes(a.model)
    slim["model"] = "data/models/gesso-emoji-64"
    if a.baseline:
        with open(a.baseline) as f:
            b = json.load(f)
        slim["baseline"] = {"what": "the previous demo model (issue 18's 'today'), same captions, "
                            "seeds, settings and emoji scope",
                            "top1": b["prompts"]["top1"], "top5": b["prompts"]["top5"],
                            "inpaint_mean_abs_diff": b["inpaint"]["mean_abs_diff"]}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(slim, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--gesso", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-inpaint", action="store_true")
    p.add_argument("--export", default=None, help="a folder for the test's copy")
    p.add_argument("--baseline", default=None,
                   help="results.json of the previous model, recorded beside the figures")
    a = p.parse_args()
    d = np.load(a.data)
    images, captions = d["images"], json.loads(str(d["captions"]))
    os.makedirs(a.out, exist_ok=True)
    res = {"model": a.model, "settings": "gesso CLI defaults = dialog defaults: 64x64, 25 steps, "
           "guidance 7.5, default sampler; seeds 1-4; inpaint: prompt \"\", RePaint 20 steps, "
           "seed 1", "prompts": prompts(a, images, captions)}
    print(f"top-1 {res['prompts']['top1']:.3f}  top-5 {res['prompts']['top5']:.3f} "
          f"({res['prompts']['images']} images, {len(images)} emoji)", flush=True)
    if not a.skip_inpaint:
        res["inpaint"] = inpaint(a)
        print(f"inpaint: mean {res['inpaint']['mean_abs_diff']:.2f} levels", flush=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    if a.export:
        export(a, res, a.export)


if __name__ == "__main__":
    main()
