#!/usr/bin/env python3
"""Judges the evidence tests/gimp/e2e.scm left behind, one PASS/FAIL/SKIP line per check.

    check.py CASE DIR        CASE: inpaint, generate, strokes, restyle, last-vals, batch,
                             labels (then: check.py labels DIR REPO), install (DIR holds
                             what `meson install --destdir` wrote, see case_install)
    check.py dump PNG        prints a PNG's size, channels and pixels (debugging)

DIR holds facts.txt (key=value lines written by the Scheme side) and PNG exports. Pixels are
compared exactly (8-bit images exported losslessly), so "identical" means byte-identical.
Only the Python standard library is used: PNGs are decoded here (8/16-bit, no interlace).
"""
import json
import os
import struct
import sys
import zlib

results = []


def report(status, name, why=""):
    line = f"{status} {name}" + (f": {why}" if why else "")
    print(line, flush=True)
    results.append(status)


def check(name, ok, why):
    report("PASS" if ok else "FAIL", name, "" if ok else why)
    return ok


# --- PNG --------------------------------------------------------------------------------------

class Png:
    def __init__(self, path):
        data = open(path, "rb").read()
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            raise ValueError(f"{path}: not a PNG")
        pos, idat, plte = 8, [], None
        while pos < len(data):
            (length,) = struct.unpack(">I", data[pos:pos + 4])
            kind = data[pos + 4:pos + 8]
            body = data[pos + 8:pos + 8 + length]
            pos += 12 + length
            if kind == b"IHDR":
                (self.width, self.height, depth, ctype, _, _, interlace) = struct.unpack(
                    ">IIBBBBB", body)
            elif kind == b"PLTE":
                plte = body
            elif kind == b"IDAT":
                idat.append(body)
            elif kind == b"IEND":
                break
        if interlace != 0:
            raise ValueError(f"{path}: interlaced PNGs are not supported here")
        if ctype == 3:
            raise ValueError(f"{path}: indexed PNG, expected RGB or gray")
        self.channels = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
        self.depth = depth
        bpp = self.channels * depth // 8
        stride = self.width * bpp
        raw = zlib.decompress(b"".join(idat))
        rows, prev, i = [], bytearray(stride), 0
        for _ in range(self.height):
            f = raw[i]
            line = bytearray(raw[i + 1:i + 1 + stride])
            i += 1 + stride
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                if f == 1:
                    line[x] = (line[x] + a) & 255
                elif f == 2:
                    line[x] = (line[x] + b) & 255
                elif f == 3:
                    line[x] = (line[x] + (a + b) // 2) & 255
                elif f == 4:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    line[x] = (line[x] + pred) & 255
            rows.append(bytes(line))
            prev = line
        self.rows = rows
        self.bpp = bpp

    def pixel(self, x, y):
        row = self.rows[y]
        step = self.depth // 8
        return tuple(int.from_bytes(row[(x * self.channels + c) * step:
                                        (x * self.channels + c + 1) * step], "big")
                     for c in range(self.channels))

    def alpha(self, x, y):
        if self.channels in (2, 4):
            return self.pixel(x, y)[-1]
        return (1 << self.depth) - 1


def load_png(path):
    try:
        return Png(path)
    except (OSError, ValueError, KeyError) as e:
        return e


def read_facts(d):
    facts = {}
    path = os.path.join(d, "facts.txt")
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                facts[k] = v
    return facts


def fact_int(facts, key):
    try:
        return int(facts[key])
    except (KeyError, ValueError):
        return None


def read_recipe(path):
    keys = {}
    if not os.path.exists(path):
        return None
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if "=" in line and not line.startswith(("#", "[")):
            k, v = line.split("=", 1)
            keys[k.strip()] = v.strip()
    return keys


# --- shared checks --------------------------------------------------------------------------

def pngs(case, d, *names):
    out = []
    for n in names:
        p = load_png(os.path.join(d, n))
        if isinstance(p, Exception):
            report("FAIL", f"{case}/evidence", f"cannot read {n}: {p}")
            return None
        out.append(p)
    return out


def identical(case, name, d, a, b, why):
    got = pngs(case, d, a, b)
    if got is None:
        return False
    pa, pb = got
    same = (pa.width, pa.height, pa.channels) == (pb.width, pb.height, pb.channels) \
        and pa.rows == pb.rows
    return check(f"{case}/{name}", same, why)


def outside_unchanged(case, d, box, before="flat-before.png", after="flat-after.png",
                      name="outside-unchanged"):
    """Every pixel of the flattened image outside BOX (x0, y0, x1, y1, exclusive) is
    identical before and after the run."""
    got = pngs(case, d, before, after)
    if got is None:
        return False
    pa, pb = got
    if (pa.width, pa.height) != (pb.width, pb.height):
        return check(f"{case}/{name}", False, "image size changed")
    x0, y0, x1, y1 = box
    bad = [(x, y) for y in range(pa.height) for x in range(pa.width)
           if not (x0 <= x < x1 and y0 <= y < y1) and pa.pixel(x, y) != pb.pixel(x, y)]
    return check(f"{case}/{name}", not bad,
                 f"{len(bad)} pixel(s) outside {box} changed, first at {bad[:3]}")


def inside_changed(case, d, box, before="flat-before.png", after="flat-after.png"):
    got = pngs(case, d, before, after)
    if got is None:
        return False
    pa, pb = got
    x0, y0, x1, y1 = box
    changed = sum(1 for y in range(y0, y1) for x in range(x0, x1)
                  if pa.pixel(x, y) != pb.pixel(x, y))
    return check(f"{case}/inside-changed", changed > 0,
                 f"no pixel inside {box} differs: the result layer shows nothing")


def layer_basics(case, facts, name, x, y, w, h):
    check(f"{case}/new-layer", fact_int(facts, "layers-after") ==
          (fact_int(facts, "layers-before") or 0) + 1,
          f"layers before {facts.get('layers-before')}, after {facts.get('layers-after')}")
    check(f"{case}/name", facts.get("name") == name,
          f"layer is named {facts.get('name')!r}, expected {name!r}")
    got = tuple(fact_int(facts, k) for k in ("offset-x", "offset-y", "width", "height"))
    check(f"{case}/geometry", got == (x, y, w, h),
          f"layer at {got[:2]} size {got[2]}x{got[3]}, expected ({x}, {y}) size {w}x{h}")
    check(f"{case}/above-drawable", facts.get("position") == "0",
          f"new layer at position {facts.get('position')}, expected 0 (top, above the drawable)")


def recipe_checks(case, d, facts, method, prompt, seed):
    recipe = read_recipe(os.path.join(d, f"{case}-recipe.txt"))
    if recipe is None:
        return check(f"{case}/recipe", False, "the new layer carries no gesso-recipe parasite")
    flags = fact_int(facts, "recipe-flags")
    check(f"{case}/recipe-persistent", flags is not None and flags & 1,
          f"parasite flags {facts.get('recipe-flags')}: not persistent (XCF would drop it)")
    want = {"method": method, "prompt": prompt, "seed": str(seed)}
    wrong = {k: (recipe.get(k), v) for k, v in want.items() if recipe.get(k) != v}
    missing = [k for k in ("model-file", "model-sha256", "model-size", "gesso-version",
                           "steps", "guidance", "sampler") if not recipe.get(k)]
    sha = recipe.get("model-sha256", "")
    ok = not wrong and not missing and len(sha) == 64
    return check(f"{case}/recipe", ok,
                 f"wrong {wrong}, missing {missing}, sha256 {sha!r}")


# --- the cases --------------------------------------------------------------------------------

def case_inpaint(d):
    facts = read_facts(d)
    # crisp rectangle 16,20 24x16, mask grow and feather 0: exactly that rectangle
    layer_basics("inpaint", facts, "Inpaint: a stone wall", 16, 20, 24, 16)
    identical("inpaint", "original-layer-identical", d, "orig-before.png", "orig-after.png",
              "the Background layer's pixels changed")
    outside_unchanged("inpaint", d, (16, 20, 40, 36))
    inside_changed("inpaint", d, (16, 20, 40, 36))
    identical("inpaint", "undo-restores", d, "flat-before.png", "flat-removed.png",
              "without the new layer the image differs from the original")
    check("inpaint/undo-group", facts.get("dirty") == "1",
          f"image not dirty after the run (dirty={facts.get('dirty')})")
    recipe_checks("inpaint", d, facts, "inpaint", "a stone wall", 42)
    check("inpaint/recipe-survives-xcf", facts.get("xcf-recipe") == "yes",
          "the recipe parasite is gone after saving and loading XCF")
    # the new layer is transparent outside the selection: check its own alpha
    got = pngs("inpaint", d, "new.png")
    if got:
        (p,) = got
        opaque = all(p.alpha(x, y) == 255 for y in range(p.height) for x in range(p.width))
        check("inpaint/new-layer-alpha", p.channels == 4 and opaque,
              f"{p.channels} channels; inside a crisp selection every pixel should be opaque")

    # feathered ellipse on a 40x40 layer at (10, 12), default grow 0 / feather 8 (inside): the
    # new layer lies within the selection's bounds, nothing outside them changes
    sx1, sy1, sx2, sy2 = (fact_int(facts, k) for k in
                          ("soft-sel-x1", "soft-sel-y1", "soft-sel-x2", "soft-sel-y2"))
    lx, ly, lw, lh = (fact_int(facts, k) for k in
                      ("soft-offset-x", "soft-offset-y", "soft-width", "soft-height"))
    if None in (sx1, sy1, sx2, sy2, lx, ly, lw, lh):
        report("FAIL", "inpaint/soft-geometry", f"facts missing: {facts}")
        return
    box = (max(sx1, 10), max(sy1, 12), min(sx2, 50), min(sy2, 52))
    inside = box[0] <= lx and box[1] <= ly and lx + lw <= box[2] and ly + lh <= box[3]
    check("inpaint/soft-geometry", inside and lw > 0 and lh > 0,
          f"layer ({lx}, {ly}) {lw}x{lh} is not inside the selection's box, clipped to the "
          f"layer: {box}")
    check("inpaint/soft-above-drawable",
          facts.get("soft-position") == "0" and facts.get("soft-photo-position") == "1",
          f"new layer at {facts.get('soft-position')}, photo at "
          f"{facts.get('soft-photo-position')}")
    identical("inpaint", "soft-original-layer-identical", d, "soft-orig-before.png",
              "soft-orig-after.png", "the offset layer's pixels changed")
    outside_unchanged("inpaint", d, (lx, ly, lx + lw, ly + lh), "soft-flat-before.png",
                      "soft-flat-after.png", "soft-outside-unchanged")


def case_generate(d):
    facts = read_facts(d)
    layer_basics("generate", facts, "Generate: a red apple on a table", 8, 8, 32, 24)
    identical("generate", "original-layer-identical", d, "orig-before.png", "orig-after.png",
              "the Background layer's pixels changed")
    outside_unchanged("generate", d, (8, 8, 40, 32))
    identical("generate", "undo-restores", d, "flat-before.png", "flat-removed.png",
              "without the new layer the image differs from the original")
    recipe_checks("generate", d, facts, "generate", "a red apple on a table", 1)


def case_models(d):
    """The chooser's list under a HOME with A1111's and ComfyUI's folders, and a run by the
    names the chooser shows: its recipe names the files and carries A1111's model hash, the
    first 10 hex digits of the file's SHA-256 (hashlib here, independently of Gesso)."""
    import hashlib

    def lines(name):
        path = os.path.join(d, name)
        return open(path).read().split() if os.path.exists(path) else []

    def autov2(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()[:10]

    home = os.path.join(d, "home")
    paths = lines("checkpoint-paths.txt")
    want = {
        "stable-diffusion-webui/models/Stable-diffusion/a.safetensors",
        "ComfyUI/models/checkpoints/c.safetensors",
        "elsewhere/ckpt/e.safetensors",
    }
    found = {os.path.relpath(p, home) for p in paths}
    check("models/checkpoints", want <= found and
          "stable-diffusion-webui/models/Lora/b.safetensors" not in found,
          f"the chooser lists {sorted(found)}; expected {sorted(want)} and no LoRA")
    check("models/names", "a" in lines("checkpoint-names.txt"),
          f"names {lines('checkpoint-names.txt')}")
    vaes = {os.path.relpath(p, home) for p in lines("vae-paths.txt")}
    check("models/vaes", vaes == {"ComfyUI/models/vae/d.safetensors"}, f"VAEs {sorted(vaes)}")
    recipe = read_recipe(os.path.join(d, "models-recipe.txt")) or {}
    a = os.path.join(home, "stable-diffusion-webui/models/Stable-diffusion/a.safetensors")
    v = os.path.join(home, "ComfyUI/models/vae/d.safetensors")
    got = {k: recipe.get(k) for k in ("model-file", "model-hash-autov2", "vae-file",
                                      "vae-hash-autov2")}
    expected = {"model-file": "a.safetensors", "model-hash-autov2": autov2(a),
                "vae-file": "d.safetensors", "vae-hash-autov2": autov2(v)}
    check("models/recipe-hash", got == expected, f"recipe has {got}, expected {expected}")


def case_strokes(d):
    facts = read_facts(d)
    layer_basics("strokes", facts, "Realize: a green bush", 20, 24, 16, 12)
    identical("strokes", "original-layer-identical", d, "orig-before.png", "orig-after.png",
              "the Background layer's pixels changed")
    identical("strokes", "stroke-layer-identical", d, "strokes-before.png",
              "strokes-after.png", "the stroke layer's pixels changed")
    check("strokes/hidden", facts.get("strokes-visible") == "0",
          "hide-strokes is TRUE but the stroke layer is still visible")
    outside_unchanged("strokes", d, (20, 24, 36, 36))
    identical("strokes", "undo-restores", d, "flat-before.png", "flat-removed.png",
              "without the new layer (strokes shown again) the image differs")
    recipe_checks("strokes", d, facts, "strokes", "a green bush", 3)


def case_strokes_control(d):
    facts = read_facts(d)
    # the strokes' box: x 12..40, y 16..46
    layer_basics("strokes-control", facts, "Realize: a black fence", 12, 16, 28, 30)
    identical("strokes-control", "original-layer-identical", d, "orig-before.png",
              "orig-after.png", "the Background layer's pixels changed")
    identical("strokes-control", "stroke-layer-identical", d, "strokes-before.png",
              "strokes-after.png", "the stroke layer's pixels changed")
    identical("strokes-control", "undo-restores", d, "flat-before.png", "flat-hidden.png",
              "with the new layer hidden the image differs")
    outside_unchanged("strokes-control", d, (12, 16, 40, 46))
    recipe_checks("strokes-control", d, facts, "strokes", "a black fence", 5)
    recipe = read_recipe(os.path.join(d, "strokes-control-recipe.txt")) or {}
    def same(got, want):
        if isinstance(want, float):
            try:
                return abs(float(got) - want) < 1e-9
            except (TypeError, ValueError):
                return False
        return (got or "").lower() == want
    want = {"follow-strokes": "true", "control-scale": 0.9, "control-end": 0.75}
    wrong = {k: (recipe.get(k), v) for k, v in want.items() if not same(recipe.get(k), v)}
    check("strokes-control/recipe-control",
          not wrong and recipe.get("control-model", "").endswith(".safetensors"),
          f"recipe lacks the ControlNet settings: wrong {wrong}, control-model "
          f"{recipe.get('control-model')!r}")


def case_lora(d):
    facts = read_facts(d)
    layer_basics("lora", facts, "Generate: a red apple on a table", 8, 8, 32, 24)
    got = pngs("lora", d, "plain.png", "styled.png")
    if got is not None:
        plain, styled = got
        diffs = [abs(a - b) for ra, rb in zip(plain.rows, styled.rows) for a, b in zip(ra, rb)]
        mean = sum(diffs) / max(len(diffs), 1)
        check("lora/changes-the-picture", mean > 2.0,
              f"the picture with <lora:e2e-style:1> differs from the one without by {mean:.2f} "
              "levels on average (the LoRA was not applied)")
    recipe_checks("lora", d, facts, "generate", "<lora:e2e-style:1> a red apple on a table", 1)
    check("lora/missing-refused", facts.get("missing-refused") == "1",
          "a prompt naming a LoRA that is nowhere was not refused")
    check("lora/missing-adds-nothing",
          facts.get("layers-before-missing") == facts.get("layers-after-missing"),
          f"layers {facts.get('layers-before-missing')} -> {facts.get('layers-after-missing')} "
          "after the refused run")


def case_restyle(d):
    facts = read_facts(d)
    layer_basics("restyle", facts, "Restyle: a watercolor painting", 0, 0, 48, 40)
    check("restyle/gray-layer", facts.get("is-gray") == "1" and facts.get("has-alpha") == "1",
          f"is-gray={facts.get('is-gray')} has-alpha={facts.get('has-alpha')}: a grayscale "
          "image must get a gray layer with alpha")
    identical("restyle", "original-layer-identical", d, "orig-before.png", "orig-after.png",
              "the Background layer's pixels changed")
    inside_changed("restyle", d, (0, 0, 48, 40))
    identical("restyle", "undo-restores", d, "flat-before.png", "flat-removed.png",
              "without the new layer the image differs from the original")
    recipe_checks("restyle", d, facts, "restyle", "a watercolor painting", 5)


def case_last_vals(d):
    facts = read_facts(d)
    check("restyle/with-last-vals", facts.get("last-vals-name", "").startswith("Restyle"),
          f"RUN-WITH-LAST-VALS made {facts.get('last-vals-name')!r}, expected a Restyle layer")


def case_batch(d):
    ins = sorted(f for f in os.listdir(os.path.join(d, "in")) if f.endswith(".png"))
    outs = sorted(f for f in os.listdir(os.path.join(d, "out")) if f.endswith(".png"))
    if not check("batch/outputs", ins and ins == outs, f"inputs {ins}, outputs {outs}"):
        return
    ok, why = True, ""
    for f in ins:
        a, b = load_png(os.path.join(d, "in", f)), load_png(os.path.join(d, "out", f))
        if isinstance(a, Exception) or isinstance(b, Exception):
            ok, why = False, f"{f}: {a if isinstance(a, Exception) else b}"
            break
        if (a.width, a.height) != (b.width, b.height):
            ok, why = False, f"{f}: {a.width}x{a.height} became {b.width}x{b.height}"
            break
        # rectangle 8,8 16x16 with the default grow (0) and feather (inside): every pixel
        # outside the rectangle unchanged, as GIMP's filters leave them
        bad = [(x, y) for y in range(a.height) for x in range(a.width)
               if not (8 <= x < 24 and 8 <= y < 24)
               and a.pixel(x, y)[:3] != b.pixel(x, y)[:3]]
        if bad:
            ok, why = False, f"{f}: {len(bad)} pixel(s) changed far from the rectangle"
            break
    check("batch/outside-unchanged", ok, why)


def po_translation(repo, lang, msgid):
    """msgstr for MSGID in po/LANG.po (single-line entries), or None."""
    path = os.path.join(repo, "po", f"{lang}.po")
    if not os.path.exists(path):
        return None
    lines = open(path, encoding="utf-8").read().splitlines()
    want = 'msgid "' + msgid.replace("\\", "\\\\").replace('"', '\\"') + '"'
    for i, line in enumerate(lines):
        if line == want and i + 1 < len(lines) and lines[i + 1].startswith('msgstr "'):
            text = lines[i + 1][len('msgstr "'):-1]
            j = i + 2
            while j < len(lines) and lines[j].startswith('"'):
                text += lines[j][1:-1]
                j += 1
            return text.replace('\\"', '"').replace("\\\\", "\\") or None
    return None


PROCS = {
    "plug-in-gesso-generate": "Generate from _Prompt…",
    "plug-in-gesso-inpaint": "_Inpaint Selection…",
    "plug-in-gesso-realize-strokes": "_Realize Strokes…",
    "plug-in-gesso-restyle": "Re_style…",
}
ARGS = {
    "plug-in-gesso-generate": ["prompt", "negative-prompt", "model", "steps", "guidance",
                               "seed", "random-seed", "sampler", "clip-skip"],
    "plug-in-gesso-inpaint": ["prompt", "negative-prompt", "model", "steps", "guidance",
                              "strength", "seed", "random-seed", "sampler", "jump-length",
                              "resample-count", "mask-grow", "mask-feather",
                              "context-margin", "clip-skip"],
    "plug-in-gesso-realize-strokes": ["prompt", "strength", "mask-grow", "mask-feather",
                                      "hide-strokes", "context-margin"],
    "plug-in-gesso-restyle": ["prompt", "source-prompt", "strength", "sampler"],
}


# The labels the dialogs (ui/) add to the generated ones, as msgids; "Stop" has no mnemonic.
OWN_LABELS = ["_Prompt", "Negative prompt", "Pre_view", "Stop", "Browse…", "VAE", "Advanced",
              "ControlNet", "Use recipe of this la_yer"]
RESTYLE_OWN_LABELS = ["Source prompt (what the _image shows)",
                      "Target _prompt (what it should become)"] + OWN_LABELS[1:]
# Arguments whose labels no dialog shows: the dialogs give the prompts, the model, the VAE and
# the ControlNet settings widgets of their own (listed above, the model, the VAE and the
# ControlNet without a mnemonic; the ControlNet's settings are labelled by their nicks).
NOT_SHOWN = {"run-mode", "image", "drawables", "prompt", "negative-prompt", "source-prompt",
             "model", "vae", "control-model", "follow-strokes", "control-drawable",
             "control-preprocess", "control-scale", "control-start", "control-end"}


def mnemonic(label):
    """The key of LABEL's mnemonic, lower-cased as GTK matches it ("__" is an underscore)."""
    i = 0
    while i < len(label) - 1:
        if label[i] == "_":
            if label[i + 1] != "_":
                return label[i + 1].lower()
            i += 1
        i += 1
    return None


def check_mnemonics(name, listing, proc, repo, lang):
    """Every label of PROC's dialog in LANG has a mnemonic of its own: the generated ones must
    (GIMP warns otherwise), and none may clash with another or with a dialog button."""
    info = listing[proc]
    own = RESTYLE_OWN_LABELS if proc == "plug-in-gesso-restyle" else OWN_LABELS
    labels = [(b, "button") for b in listing.get("buttons", [])]
    labels += [(nick, "argument " + arg) for arg, nick in info.get("nicks", {}).items()
               if arg not in NOT_SHOWN]
    problems = []
    for msgid in own:
        text = msgid if lang == "C" else po_translation(repo, lang, msgid)
        if text is None:
            problems.append(f"po/{lang}.po has no translation of {msgid!r}")
            continue
        labels.append((text, "dialog"))
    keys = {}
    for label, what in labels:
        key = mnemonic(label)
        if key is None:
            if what.startswith("argument"):
                problems.append(f"{label!r} ({what}) has no mnemonic")
            continue
        keys.setdefault(key, []).append(f"{label!r} ({what})")
    problems += [f"'{k}' is the mnemonic of " + " and ".join(v)
                 for k, v in sorted(keys.items()) if len(v) > 1]
    check(name, not problems and "buttons" in listing, "; ".join(problems) or "no button labels")


def case_labels(d, repo):
    try:
        en = json.load(open(os.path.join(d, "labels-C.json"), encoding="utf-8"))
    except (OSError, ValueError) as e:
        report("FAIL", "labels/registered", f"no procedure listing from GIMP: {e}")
        return
    for proc, label in PROCS.items():
        info = en.get(proc)
        if not check(f"labels/{proc}/registered", info is not None,
                     "GIMP does not know the procedure"):
            continue
        check(f"labels/{proc}/menu", info["label"] == label and
              "<Image>/Filters/Generative" in info["paths"],
              f"label {info['label']!r} paths {info['paths']}, expected {label!r} under "
              "<Image>/Filters/Generative")
        check(f"labels/{proc}/image-types", info["types"] == "RGB*, GRAY*",
              f"image types {info['types']!r}")
        missing = [a for a in ARGS[proc] if a not in info["args"]]
        check(f"labels/{proc}/arguments", not missing and
              info["args"][:3] == ["run-mode", "image", "drawables"],
              f"missing {missing}; arguments are {info['args']}")
        check_mnemonics(f"labels/{proc}/mnemonics", en, proc, repo, "C")
    for lang, locale in (("de", "de_DE"), ("fr", "fr_FR")):
        if po_translation(repo, lang, PROCS["plug-in-gesso-inpaint"]) is None:
            report("SKIP", f"labels/{lang}",
                   f"po/{lang}.po has no translation of the Inpaint menu label")
            continue
        try:
            listing = json.load(open(os.path.join(d, f"labels-{lang}.json"), encoding="utf-8"))
        except (OSError, ValueError) as e:
            report("FAIL", f"labels/{lang}",
                   f"no procedure listing from GIMP under LANG={locale}.UTF-8: {e}")
            continue
        for proc in PROCS:
            expected = po_translation(repo, lang, PROCS[proc])
            got = (listing.get(proc) or {}).get("label")
            check(f"labels/{lang}/{proc}", got == expected,
                  f"under LANG={locale}.UTF-8 the menu label is {got!r}, expected {expected!r}")
            if listing.get(proc) is not None:
                check_mnemonics(f"labels/{lang}/{proc}/mnemonics", listing, proc, repo, lang)


def case_install(d):
    """D: destdir/ (what `meson install --destdir` wrote), installed.json and options.json
    (`meson introspect --installed`, `--buildoptions`), plugin-dir.txt (GIMP's plug-in folder
    the build was configured for) and config.h (the build's gesso-config.h). GIMP 3 loads
    <plug-ins>/gesso/gesso; the plug-in looks for its catalogs in locale/ beside itself and for
    the bundled models in the GESSO_DATADIR it was compiled with."""
    installed = json.load(open(os.path.join(d, "installed.json"), encoding="utf-8"))
    opts = {o["name"]: o["value"]
            for o in json.load(open(os.path.join(d, "options.json"), encoding="utf-8"))}
    plugin_dir = open(os.path.join(d, "plugin-dir.txt"), encoding="utf-8").read().strip()
    config = open(os.path.join(d, "config.h"), encoding="utf-8").read()
    dest = os.path.join(d, "destdir")

    def at(path):
        return os.path.join(dest, path.lstrip("/"))

    prefix = opts["prefix"]
    localedir = os.path.join(prefix, opts["localedir"])
    datadir = os.path.join(prefix, opts["datadir"], "gesso")
    exe = os.path.join(plugin_dir, "gesso", "gesso")
    check("install/plug-in", os.access(at(exe), os.X_OK) and
          any(k.endswith("/plugin/gesso") and v == exe for k, v in installed.items()),
          f"expected the plug-in at {exe}; installed: {installed}")
    link = at(os.path.join(plugin_dir, "gesso", "locale"))
    check("install/locale-link", os.path.islink(link) and os.readlink(link) == localedir,
          f"{link} should link to {localedir}")
    mos = [v for k, v in installed.items() if k.endswith("/gesso.mo")]
    check("install/catalogs", mos and all(
        os.path.isfile(at(m)) and os.path.dirname(os.path.dirname(os.path.dirname(m)))
        == localedir for m in mos), f"catalogs {mos}, expected under {localedir}")
    model = os.path.join(datadir, "models", "gesso-emoji-64", "model_index.json")
    check("install/demo-model", os.path.isfile(at(model)), f"no {model} in the install")
    # the CLIP vocabulary is compiled in; its MIT licence must travel with the binaries
    clip = [os.path.join(datadir, "clip", f) for f in ("LICENSE", "bpe_simple_vocab_16e6.txt.gz")]
    check("install/clip-licence", all(os.path.isfile(at(f)) for f in clip),
          f"expected {clip} in the install")
    check("install/compiled-paths",
          f'#define GESSO_DATADIR "{datadir}"' in config and
          f'#define GESSO_LOCALEDIR "{localedir}"' in config,
          f"gesso-config.h does not name {datadir} and {localedir}")


def main(argv):
    if len(argv) == 3 and argv[1] == "dump":
        p = Png(argv[2])
        print(f"{p.width}x{p.height} channels={p.channels} depth={p.depth}")
        for y in range(p.height):
            print(" ".join("/".join(str(v) for v in p.pixel(x, y)) for x in range(p.width)))
        return 0
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    case, d = argv[1], argv[2]
    if case == "labels":
        case_labels(d, argv[3] if len(argv) > 3 else ".")
    else:
        {"inpaint": case_inpaint, "generate": case_generate, "strokes": case_strokes,
         "strokes-control": case_strokes_control,
         "restyle": case_restyle, "last-vals": case_last_vals, "batch": case_batch,
         "install": case_install, "models": case_models, "lora": case_lora}[case](d)
    return 1 if "FAIL" in results else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
