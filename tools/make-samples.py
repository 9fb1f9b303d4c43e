#!/usr/bin/python3
"""Draws the sample images in data/samples/ procedurally (no third-party pictures), at the demo
model's native 64x64 px, in its world: flat emoji-like shapes on white.

  remove-object.png (+ remove-object-mask.png, white = repaint): a smiling face with a blue
      star beside it; inpaint the star away.
  sketch.png: a few coloured strokes of a face, for sketch-to-image (img2img), e.g.
      "grinning face" at strength 0.6-0.8.
  restyle.png: a red apple with a leaf, to restyle ("green apple", "tomato", "orange").

usage: tools/make-samples.py [OUT_DIR]      (default data/samples; needs python3-pil)
"""
import math
import os
import sys

from PIL import Image, ImageDraw

S = 256          # drawn at 4x, then reduced to 64 px with a Lanczos filter
OUT = 64


def canvas():
    return Image.new("RGB", (S, S), (255, 255, 255))


def finish(im):
    return im.resize((OUT, OUT), Image.LANCZOS)


def face(d, cx, cy, r):
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(252, 194, 0), outline=(235, 140, 0), width=6)
    for ex in (-0.35, 0.35):
        d.ellipse([cx + ex * r - 0.09 * r, cy - 0.35 * r, cx + ex * r + 0.09 * r, cy - 0.05 * r],
                  fill=(64, 40, 20))
    d.chord([cx - 0.55 * r, cy - 0.2 * r, cx + 0.55 * r, cy + 0.6 * r], 0, 180, fill=(64, 40, 20))
    d.chord([cx - 0.42 * r, cy + 0.1 * r, cx + 0.42 * r, cy + 0.5 * r], 0, 180, fill=(255, 255, 255))


def star(d, cx, cy, r, fill):
    pts = []
    for k in range(10):
        a = -math.pi / 2 + k * math.pi / 5
        rr = r if k % 2 == 0 else 0.45 * r
        pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    d.polygon(pts, fill=fill)


def remove_object(out):
    im = canvas()
    d = ImageDraw.Draw(im)
    face(d, 100, 140, 78)
    star(d, 206, 56, 40, (40, 110, 230))
    finish(im).save(os.path.join(out, "remove-object.png"))
    mask = Image.new("L", (S, S), 0)
    ImageDraw.Draw(mask).ellipse([206 - 50, 56 - 50, 206 + 50, 56 + 50], fill=255)
    mask = mask.resize((OUT, OUT), Image.BILINEAR).point(lambda v: 255 if v >= 64 else 0)
    mask.save(os.path.join(out, "remove-object-mask.png"))


def sketch(out):
    im = canvas()
    d = ImageDraw.Draw(im)
    # loose strokes: an outline that does not quite close, a yellow scribble, eyes and a smile
    pts = [(128 + 92 * math.cos(a / 20), 132 + 88 * math.sin(a / 20)) for a in range(0, 118)]
    d.line(pts, fill=(30, 30, 30), width=9, joint="curve")
    for k in range(9):
        y = 70 + 14 * k
        half = math.sqrt(max(0.0, 80 ** 2 - (y - 132) ** 2))
        d.line([(128 - half + 8, y), (128 + half - 8, y + 6)], fill=(250, 200, 20), width=10)
    d.line([(96, 100), (96, 124)], fill=(30, 30, 30), width=12)
    d.line([(160, 100), (160, 124)], fill=(30, 30, 30), width=12)
    d.arc([78, 110, 178, 190], 20, 160, fill=(30, 30, 30), width=9)
    finish(im).save(os.path.join(out, "sketch.png"))


def restyle(out):
    im = canvas()
    d = ImageDraw.Draw(im)
    d.ellipse([44, 70, 136, 222], fill=(214, 30, 38))
    d.ellipse([120, 70, 212, 222], fill=(214, 30, 38))
    d.ellipse([70, 86, 110, 126], fill=(240, 110, 110))          # highlight
    d.line([(128, 84), (120, 40)], fill=(110, 70, 30), width=10)  # stem
    d.polygon([(128, 60), (170, 34), (196, 52), (156, 74)], fill=(70, 170, 50))
    finish(im).save(os.path.join(out, "restyle.png"))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "data", "samples")
    os.makedirs(out, exist_ok=True)
    remove_object(out)
    sketch(out)
    restyle(out)
    print("samples written to", os.path.normpath(out))


if __name__ == "__main__":
    main()
