#!/usr/bin/env python3
"""Writes a kohya LoRA for the UNet of a diffusers MODEL folder: rank 4 on every attention
projection, factors from a fixed pseudo-random sequence, large enough to change the picture.
The e2e suite calls it up by name in a prompt (<lora:e2e-style:1>).

    make-lora.py MODEL_FOLDER OUT.safetensors
"""
import json
import os
import random
import re
import struct
import sys

RANK = 4


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


def main(argv):
    model, out = argv[1], argv[2]
    unet = os.path.join(model, "unet", "diffusion_pytorch_model.safetensors")
    rng = random.Random(7)
    tensors = []
    for key, entry in sorted(header(unet).items()):
        m = re.fullmatch(r"(.*\.attn[12]\.to_(?:q|k|v|out\.0))\.weight", key)
        if not m or len(entry["shape"]) != 2:
            continue
        rows, cols = entry["shape"]
        stem = "lora_unet_" + m.group(1).replace(".", "_")
        down = [rng.uniform(-0.5, 0.5) for _ in range(RANK * cols)]
        up = [rng.uniform(-0.5, 0.5) for _ in range(rows * RANK)]
        tensors += [(stem + ".lora_down.weight", [RANK, cols], down),
                    (stem + ".lora_up.weight", [rows, RANK], up),
                    (stem + ".alpha", [], [float(RANK)])]
    if not tensors:
        print("make-lora: no attention projections in %s" % unet, file=sys.stderr)
        return 1
    meta, data, offset = {}, b"", 0
    for name, shape, values in tensors:
        blob = struct.pack("<%df" % len(values), *values)
        meta[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        data += blob
        offset += len(blob)
    text = json.dumps(meta).encode()
    text += b" " * (-len(text) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
