#!/usr/bin/python3
"""Builds the demo model's training set from the npm package emoji-datasource-google.

Scope: a few hundred distinctive emoji that a tiny model can learn (issue 18): every face,
cat and monkey face, heart, fruit, vegetable, sweet, plant and weather symbol, plus a picked
list of animals, prepared food, drinks, festive things and objects (SELECTION below).  Left
out: flags, people and body parts, keycaps, letters, arrows and other symbols, clocks,
vehicles and buildings, the six moon-phase symbols (near-duplicates of new/full/crescent
moon), and everything not in the lists.

Images: Google Noto Color Emoji (Apache License 2.0), as the package ships them at 64x64 px
(img/google/64/*.png), alpha-flattened onto white.  Captions: first the emoji's CLDR name from
Unicode's emoji-test.txt (Debian package unicode-data; e.g. "red heart", "sun", "grinning
face"), then the package's short names (emoji-data, MIT), lower-cased, `_`/`-` as spaces.
Augmentation (caption-true): AUG_VARIANTS copies of every emoji, copy 0 as shipped, the others
scaled by 0.84-1.0 and shifted by up to 3 px on white; no flips (the artwork is asymmetric,
lit from the top left, and some emoji point left or right).
Output: one .npz with uint8 images [N, 64, 64, 3] (as shipped), uint8 aug [N, K, 64, 64, 3],
the caption variants per image (JSON), file names, categories, and held_out (all False: the
whole scope is trained on; the model is meant to reproduce these emoji from their names).

usage: prepare_data.py PACKAGE_DIR OUT.npz [--emoji-test /usr/share/unicode/emoji/emoji-test.txt]
"""
import argparse
import json
import os

import numpy as np
from PIL import Image

AUG_VARIANTS = 6
SEED = 1234

FULL = {"face-smiling", "face-affection", "face-tongue", "face-hand", "face-neutral-skeptical",
        "face-sleepy", "face-unwell", "face-hat", "face-glasses", "face-concerned",
        "face-negative", "face-costume", "cat-face", "monkey-face", "heart", "food-fruit",
        "food-vegetable", "food-sweet", "plant-flower", "plant-other", "sky & weather",
        "animal-amphibian"}
MOON_PHASES = {"waxing crescent moon", "first quarter moon", "waxing gibbous moon",
               "waning gibbous moon", "last quarter moon", "waning crescent moon"}
# picked by CLDR name from the other subcategories
SELECTION = {
    "animal-mammal": "monkey face, dog face, wolf, fox, raccoon, cat face, lion, tiger face, "
                     "horse face, unicorn, zebra, cow face, pig face, mouse face, hamster, "
                     "rabbit face, bear, polar bear, koala, panda, giraffe, elephant, hedgehog, "
                     "sloth, kangaroo, paw prints",
    "animal-bird": "chicken, baby chick, hatching chick, bird, penguin, duck, owl, flamingo, "
                   "peacock, parrot",
    "animal-marine": "spouting whale, dolphin, fish, tropical fish, blowfish, shark, octopus, "
                     "spiral shell, crab, shrimp",
    "animal-bug": "snail, butterfly, bug, honeybee, lady beetle, spider",
    "animal-reptile": "crocodile, turtle, snake, dragon face, t-rex",
    "food-prepared": "bread, croissant, pretzel, pancakes, cheese wedge, meat on bone, "
                     "poultry leg, bacon, hamburger, french fries, pizza, hot dog, sandwich, "
                     "taco, cooking, green salad, popcorn",
    "food-asian": "rice ball, steaming bowl, spaghetti, sushi, dumpling",
    "drink": "baby bottle, hot beverage, wine glass, tropical drink, beer mug",
    "event": "jack-o-lantern, christmas tree, fireworks, sparkles, balloon, party popper, "
             "wrapped present",
    "sport": "soccer ball, basketball, baseball, american football",
    "clothing": "crown, gem stone, lipstick",
    "sound": "bell",
    "lock": "key",
    "light & video": "light bulb, candle",
    "game": "teddy bear, crystal ball",
    "award-medal": "trophy",
    "transport-air": "rocket",
    "other-object": "money bag",
}


def cldr_names(path):
    """emoji-test.txt: code points (without FE0F) -> CLDR short name."""
    names = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if "; fully-qualified" not in line and "; component" not in line:
                continue
            codes, rest = line.split(";", 1)
            key = "-".join(c for c in codes.split() if c.upper() != "FE0F").upper()
            name = rest.split("#", 1)[1].strip().split(" ", 2)[2]   # "😀 E1.0 grinning face"
            names.setdefault(key, name.lower())
    return names


def key_of(entry):
    return "-".join(c for c in entry["unified"].split("-") if c.upper() != "FE0F").upper()


def captions_for(entry, cldr):
    out = []
    name = cldr.get(key_of(entry)) or (entry.get("name") or "").strip().lower()
    if name:
        out.append(name)
    for short in entry.get("short_names") or []:
        text = short.replace("_", " ").replace("-", " ").strip().lower()
        if text and text not in out:
            out.append(text)
    return out


def selected(entry, cldr):
    sub = entry.get("subcategory")
    name = cldr.get(key_of(entry), "")
    if sub in FULL:
        return name not in MOON_PHASES
    picks = [p.strip() for p in SELECTION.get(sub, "").split(",") if p.strip()]
    return name in picks


def augment(im, rng):
    """im: RGBA 64x64 -> RGB 64x64 scaled by s in [0.84, 1] and shifted on white."""
    s = rng.uniform(0.84, 1.0)
    size = max(8, int(round(64 * s)))
    small = im.resize((size, size), Image.LANCZOS)
    room = 64 - size
    dx = int(np.clip(room // 2 + rng.integers(-3, 4), 0, room)) if room else int(rng.integers(-3, 4))
    dy = int(np.clip(room // 2 + rng.integers(-3, 4), 0, room)) if room else int(rng.integers(-3, 4))
    bg = Image.new("RGBA", (64, 64), (255, 255, 255, 255))
    bg.alpha_composite(small, (max(dx, 0), max(dy, 0)),
                       (max(-dx, 0), max(-dy, 0)))
    return np.asarray(bg.convert("RGB"), dtype=np.uint8)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("package")
    p.add_argument("out")
    p.add_argument("--emoji-test", default="/usr/share/unicode/emoji/emoji-test.txt")
    a = p.parse_args()
    cldr = cldr_names(a.emoji_test)
    with open(os.path.join(a.package, "emoji.json"), encoding="utf-8") as f:
        entries = json.load(f)
    entries = [e for e in entries if e.get("has_img_google") and selected(e, cldr)]
    entries.sort(key=lambda e: e["sort_order"])
    rng = np.random.default_rng(SEED)
    images, augs, captions, names, cats = [], [], [], [], []
    for e in entries:
        path = os.path.join(a.package, "img", "google", "64", e["image"])
        if not os.path.exists(path):
            continue
        caps = captions_for(e, cldr)
        if not caps or caps[0] in (c[0] for c in captions):
            continue
        im = Image.open(path).convert("RGBA")
        if im.size != (64, 64):
            im = im.resize((64, 64), Image.LANCZOS)
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        bg.alpha_composite(im)
        base = np.asarray(bg.convert("RGB"), dtype=np.uint8)
        images.append(base)
        augs.append(np.stack([base] + [augment(im, rng) for _ in range(AUG_VARIANTS - 1)]))
        captions.append(caps)
        names.append(e["image"])
        cats.append(e["subcategory"])
    images = np.stack(images)
    np.savez_compressed(a.out, images=images, aug=np.stack(augs),
                        captions=np.array(json.dumps(captions)),
                        files=np.array(json.dumps(names)),
                        subcategories=np.array(json.dumps(cats)),
                        held_out=np.zeros(len(images), dtype=bool))
    print(f"{len(images)} emoji x {AUG_VARIANTS} variants -> {a.out}")


if __name__ == "__main__":
    main()
