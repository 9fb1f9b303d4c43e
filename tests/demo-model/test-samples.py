#!/usr/bin/python3
"""Checks the demo model's exported prompt-following and object-removal samples
(tests/demo-model/samples/, written by tools/train/prompt_eval.py --export):

1. the figures in results.json are the ones its per-sample ranks give and beat the previous
   demo model's (recorded beside them); issue 18's bar (top-5 >= 60 %, top-1 >= 35 % over 50
   captions x 4 seeds; object removal within 15 levels of the clean background on average)
   is reported, as a TAP TODO where the model misses it;
2. they were measured on the shipped weights (sha256 of data/models/gesso-emoji-64's
   safetensors files);
3. Gesso still produces those samples: a few of them are regenerated with the built `gesso`
   and compared with the exported PNGs.

TAP output; a skip ("1..0 # SKIP") without numpy/PIL, the model or the samples.  Env: GESSO_EXE,
GESSO_SOURCE_DIR (set by tests/meson.build).
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from PIL import Image
except ImportError:
    print("1..0 # SKIP needs python3-numpy and python3-pil")
    sys.exit(0)

ROOT = os.environ.get("GESSO_SOURCE_DIR",
                      os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
EXE = os.environ.get("GESSO_EXE", os.path.join(ROOT, "build", "cli", "gesso"))
MODEL = os.path.join(ROOT, "data", "models", "gesso-emoji-64")
SAMPLES = os.path.join(ROOT, "tests", "demo-model", "samples")
SEEDS_PER_CAPTION = 4
REGENERATE = [(0, 1), (17, 2), (33, 3)]          # (caption row, seed)
TOLERANCE = 3.0                                   # mean abs difference, 8-bit levels

n = 0
failed = 0


def check(ok, what):
    global n, failed
    n += 1
    print(f"{'ok' if ok else 'not ok'} {n} - {what}", flush=True)
    if not ok:
        failed += 1


def todo(ok, what):
    """Issue 18's bar: reported, and a TAP TODO (not a failure) while the model misses it."""
    global n
    n += 1
    print(f"{'ok' if ok else 'not ok'} {n} - {what}{'' if ok else ' # TODO issue 18 bar not met'}",
          flush=True)


def tile(path, row, col):
    im = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    return im[64 * row:64 * row + 64, 64 * col:64 * col + 64]


def main():
    res_path = os.path.join(SAMPLES, "results.json")
    if not os.path.exists(res_path) or not os.path.isdir(MODEL):
        print("1..0 # SKIP no exported samples or no demo model")
        return 0
    with open(res_path, encoding="utf-8") as f:
        res = json.load(f)
    p = res["prompts"]
    ranks = [s["rank"] for s in p["samples"]]
    top1 = sum(r == 0 for r in ranks) / len(ranks)
    top5 = sum(r < 5 for r in ranks) / len(ranks)
    check(len(ranks) == 200 and len({s["caption"] for s in p["samples"]}) == 50,
          f"50 captions x 4 seeds ({len(ranks)} samples)")
    check(abs(top1 - p["top1"]) < 1e-9 and abs(top5 - p["top5"]) < 1e-9,
          f"figures match the per-sample ranks (top-1 {top1:.3f}, top-5 {top5:.3f})")
    base = res.get("baseline")
    if base:
        check(top5 > base["top5"] and top1 >= base["top1"],
              f"prompt-following beats the previous demo model (top-1 {base['top1']:.3f}, "
              f"top-5 {base['top5']:.3f})")
    todo(top5 >= 0.60, f"top-5 prompt-following {top5:.3f} >= 0.60")
    todo(top1 >= 0.35, f"top-1 prompt-following {top1:.3f} >= 0.35")
    cases = res["inpaint"]["cases"]
    mad = sum(c["mean_abs_diff"] for c in cases) / len(cases)
    check(len(cases) == 20 and abs(mad - res["inpaint"]["mean_abs_diff"]) < 1e-6,
          f"20 object-removal cases, mean {mad:.2f} levels")
    if base:
        check(mad < base["inpaint_mean_abs_diff"],
              f"object removal beats the previous demo model "
              f"({base['inpaint_mean_abs_diff']:.2f} levels)")
    todo(mad <= 15.0, f"object removal within 15 levels of the background ({mad:.2f})")
    for name, digest in res["model_files_sha256"].items():
        with open(os.path.join(MODEL, name), "rb") as f:
            check(hashlib.sha256(f.read()).hexdigest() == digest,
                  f"measured on the shipped {name}")
    if not os.access(EXE, os.X_OK):
        print(f"# no gesso executable at {EXE}: not regenerating")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for row, seed in REGENERATE:
                s = p["samples"][row * SEEDS_PER_CAPTION + seed - 1]
                out = os.path.join(tmp, f"{row}-{seed}.png")
                subprocess.run([EXE, "generate", "--model", MODEL, "--prompt", s["caption"],
                                "--width", "64", "--height", "64", "--seed", str(seed),
                                "--threads", "2", "--out", out], check=True,
                               stdout=subprocess.DEVNULL)
                got = np.asarray(Image.open(out).convert("RGB"), dtype=np.float32)
                want = tile(os.path.join(SAMPLES, "prompt-samples.png"), row, seed - 1)
                d = float(np.abs(got - want).mean())
                check(d <= TOLERANCE, f"gesso regenerates {s['caption']!r} seed {seed} "
                      f"(mean difference {d:.2f} levels)")
            k = 0
            grid = os.path.join(SAMPLES, "inpaint-samples.png")
            for j, name in ((0, "in"), (1, "mask")):
                Image.fromarray(tile(grid, k, j).astype(np.uint8)).save(
                    os.path.join(tmp, f"{name}.png"))
            out = os.path.join(tmp, "inpaint.png")
            subprocess.run([EXE, "inpaint", "--model", MODEL, "--image",
                            os.path.join(tmp, "in.png"), "--mask", os.path.join(tmp, "mask.png"),
                            "--prompt", "", "--seed", "1", "--threads", "2", "--out", out],
                           check=True, stdout=subprocess.DEVNULL)
            got = np.asarray(Image.open(out).convert("RGB"), dtype=np.float32)
            d = float(np.abs(got - tile(grid, k, 2)).mean())
            check(d <= TOLERANCE, f"gesso regenerates object removal case 0 ({d:.2f} levels)")
    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
