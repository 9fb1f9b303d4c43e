#!/usr/bin/python3
"""Builds the demo model's training set from the npm package emoji-datasource-google.

Images: Google Noto Color Emoji (Apache License 2.0), as the package ships them at 64x64 px
(img/google/64/*.png), alpha-flattened onto white.  Captions: the Unicode name and the short
names from the package's emoji.json (emoji-data, MIT).  Output: one .npz with uint8 images
[N, 64, 64, 3], the caption variants per image (JSON) and a fixed held-out split.

usage: prepare_data.py PACKAGE_DIR OUT.npz
"""
import json
import os
import sys

import numpy as np
from PIL import Image

HELD_OUT_EVERY = 20          # every 20th emoji in sort order is held out (about 5 %)


def captions_for(entry):
    out = []
    name = (entry.get("name") or "").strip().lower()
    if name:
        out.append(name)
    for short in entry.get("short_names") or []:
        text = short.replace("_", " ").replace("-", " ").strip().lower()
        if text and text not in out:
            out.append(text)
    return out


def main():
    pkg, out_path = sys.argv[1], sys.argv[2]
    with open(os.path.join(pkg, "emoji.json"), encoding="utf-8") as f:
        entries = json.load(f)
    entries = [e for e in entries if e.get("has_img_google")]
    entries.sort(key=lambda e: e["sort_order"])
    images, captions, names, held_out = [], [], [], []
    for i, e in enumerate(entries):
        path = os.path.join(pkg, "img", "google", "64", e["image"])
        if not os.path.exists(path):
            continue
        caps = captions_for(e)
        if not caps:
            continue
        im = Image.open(path).convert("RGBA")
        if im.size != (64, 64):
            im = im.resize((64, 64), Image.LANCZOS)
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        bg.alpha_composite(im)
        images.append(np.asarray(bg.convert("RGB"), dtype=np.uint8))
        captions.append(caps)
        names.append(e["image"])
        held_out.append(len(images) % HELD_OUT_EVERY == 0)
    images = np.stack(images)
    np.savez_compressed(out_path, images=images,
                        captions=np.array(json.dumps(captions)),
                        files=np.array(json.dumps(names)),
                        held_out=np.array(held_out, dtype=bool))
    print(f"{len(images)} images ({sum(held_out)} held out) -> {out_path}")


if __name__ == "__main__":
    main()
