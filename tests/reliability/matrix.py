#!/usr/bin/env python3
"""The bad-input matrix (issue 11): `gesso` given every kind of wrong input a user can give.

Each row is one input (a broken model, config, image or mask, a parameter out of range, an
output it cannot write, a signal, a second process) and what must happen:
  fail: exit 1 (2 for a wrong command line), never a signal, one line on stderr (warnings
        aside), within the row's time, the user's files byte-identical, no output file made
        or changed, nothing left behind in the output folder;
  ok:   a valid edge case that must work: exit 0 and a complete PNG.
The rows are grouped by category; the summary at the end counts the rows that pass in each
(tests/reliability/README.md keeps the table). Output is TAP.
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as c  # noqa: E402

M = c.MODEL
FAST = ["--steps", "2", "--seed", "3"]


class Ctx:
    def __init__(self):
        self.dir = c.tmpdir("matrix")
        self.out_dir = os.path.join(self.dir, "out")
        os.mkdir(self.out_dir)
        self.out = os.path.join(self.out_dir, "out.png")
        self.img = self.write("in.png", c.png_bytes(64, 64))
        self.mask = self.write("mask.png", c.png_bytes(64, 64, lambda x, y: (255,) * 3
                                                        if 16 <= x < 48 and 16 <= y < 48
                                                        else (0, 0, 0)))
        r = c.run(["generate", "--model", M, "--prompt", "x", "--width", "128", "--height",
                   "128", "--out", os.path.join(self.dir, "whole.jpg")] + FAST)
        assert r.rc == 0, r.describe()
        self.jpg = os.path.join(self.dir, "whole.jpg")
        self.models = {}

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").write(data if isinstance(data, bytes) else data.encode())
        return path

    def fifo(self, name):
        path = os.path.join(self.dir, name)
        if not os.path.exists(path):
            os.mkfifo(path)
        return path

    def model(self, name, build):
        """A copy of the demo model changed by BUILD(folder), made once."""
        if name not in self.models:
            folder = os.path.join(self.dir, "models", name)
            c.copy_model(folder)
            build(folder)
            self.models[name] = folder
        return self.models[name]


# --- model and config builders ---------------------------------------------------------------

UNET = c.COMPONENT_FILES["unet"]


def unet_bytes(folder):
    return open(os.path.join(folder, UNET), "rb").read()


def replace_unet(data_fn):
    def build(folder):
        path = os.path.join(folder, UNET)
        data = open(path, "rb").read()
        open(path, "wb").write(data_fn(data))
    return build


def raw_header(header_text, data=b""):
    text = header_text.encode()
    return struct.pack("<Q", len(text)) + text + data


def edit_header(fn):
    """Rewrites the UNet file's JSON header with FN(header dict) -> text or dict."""
    def data_fn(data):
        n = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + n])
        new = fn(header)
        text = new if isinstance(new, str) else json.dumps(new)
        text += " " * (-len(text) % 8)
        return struct.pack("<Q", len(text)) + text.encode() + data[8 + n:]
    return replace_unet(data_fn)


def first_tensor(header):
    return min((k for k in header if k != "__metadata__"),
               key=lambda k: header[k]["data_offsets"][0])


def set_entry(key, value):
    def fn(header):
        header[first_tensor(header)][key] = value
        return header
    return fn


def edit_json(rel, fn):
    def build(folder):
        path = os.path.join(folder, rel)
        conf = json.load(open(path))
        new = fn(conf)
        open(path, "w").write(new if isinstance(new, str) else json.dumps(new))
    return build


def set_key(rel, key, value):
    def fn(conf):
        conf[key] = value
        return conf
    return edit_json(rel, fn)


def write_text(rel, text):
    def build(folder):
        open(os.path.join(folder, rel), "w").write(text)
    return build


def remove(rel):
    def build(folder):
        path = os.path.join(folder, rel)
        shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    return build


def make_fifo(rel):
    def build(folder):
        path = os.path.join(folder, rel)
        os.unlink(path)
        os.mkfifo(path)
    return build


def tensor_values(component, name, fn):
    def build(folder):
        path = os.path.join(folder, c.COMPONENT_FILES[component])
        tensors, metadata = c.tensors_of(path)
        for t in tensors:
            if t[0] == name:
                t[1], t[3] = fn(t[1], t[3])
        c.write_safetensors(path, [tuple(t) for t in tensors], metadata)
    return build


def rename_tensor(component, old, new):
    def build(folder):
        path = os.path.join(folder, c.COMPONENT_FILES[component])
        tensors, metadata = c.tensors_of(path)
        for t in tensors:
            if t[0] == old:
                t[0] = new
        c.write_safetensors(path, [tuple(t) for t in tensors], metadata)
    return build


# --- the rows ---------------------------------------------------------------------------------

ROWS = []


def row(category, name, args, expect="fail", codes=(1, 2), timeout=30, words=(), sig=None,
        existing_out=False):
    ROWS.append(dict(category=category, name=name, args=args, expect=expect, codes=codes,
                     timeout=timeout, words=words, sig=sig, existing_out=existing_out))


def gen(ctx, model=M, *extra):
    return ["generate", "--model", model, "--prompt", "a red apple", "--out", ctx.out] + FAST \
        + list(extra)


def sdedit(ctx, image=None, *extra):
    return ["sdedit", "--model", M, "--image", image or ctx.img, "--prompt", "x",
            "--out", ctx.out] + FAST + list(extra)


def inpaint(ctx, mask=None, image=None, *extra):
    return ["inpaint", "--model", M, "--image", image or ctx.img, "--mask", mask or ctx.mask,
            "--prompt", "x", "--out", ctx.out] + FAST + list(extra)


def single_file(name, data):
    return lambda ctx: gen(ctx, ctx.write(name, data))


def variant(name, build):
    return lambda ctx: gen(ctx, ctx.model(name, build))


# models: single files
header_ok = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})
for name, data in [
        ("empty-file", b""),
        ("seven-bytes", b"\x01\x02\x03\x04\x05\x06\x07"),
        ("pickle-protocol-2", b"\x80\x02}q\x00."),
        ("zip-torch-save", b"PK\x03\x04" + b"\0" * 60),
        ("header-length-2^63", struct.pack("<Q", 1 << 63) + b"{}"),
        ("header-length-past-end", struct.pack("<Q", 4096) + b"{}"),
        ("header-not-json", raw_header("{not json", b"")),
        ("header-json-array", raw_header("[1, 2, 3]")),
        ("header-nested-10000-deep", raw_header("[" * 10000 + "]" * 10000)),
        ("header-empty-object", raw_header("{}")),
        ("only-metadata", raw_header('{"__metadata__": {"format": "pt"}}')),
        ("random-bytes", bytes((i * 7919 + 13) % 256 for i in range(4096))),
        ("text-file", b"this is not a model\n" * 20),
        ("valid-but-one-tensor", raw_header(header_ok, b"\0\0\x80?")),
]:
    row("models", "single-file/" + name, single_file(name + ".safetensors", data))
row("models", "single-file/pickle-extension", single_file("model.ckpt", b"\x80\x02}q\x00."))
row("models", "single-file/bin-extension", single_file("model.bin", raw_header(header_ok, b"\0" * 4)))
row("models", "path-does-not-exist", lambda ctx: gen(ctx, ctx.dir + "/nothing.safetensors"))
row("models", "path-is-fifo", lambda ctx: gen(ctx, ctx.fifo("m.safetensors")))
row("models", "path-is-char-device", lambda ctx: gen(ctx, "/dev/zero"))
row("models", "folder-without-model-index", lambda ctx: gen(ctx, ctx.out_dir))
row("models", "path-with-newline",
    lambda ctx: gen(ctx, ctx.write("bad\nname.safetensors", b"junk")))
row("models", "symlink-loop", lambda ctx: (os.path.lexists(ctx.dir + "/loop")
                                           or os.symlink(ctx.dir + "/loop", ctx.dir + "/loop"),
                                           gen(ctx, ctx.dir + "/loop"))[1])
for name, build in [
        ("unet-file-missing", remove(UNET)),
        ("unet-folder-missing", remove("unet")),
        ("vae-file-missing", remove(c.COMPONENT_FILES["vae"])),
        ("text-encoder-missing", remove("text_encoder")),
        ("unet-truncated-half", replace_unet(lambda d: d[:len(d) // 2])),
        ("unet-truncated-in-header", replace_unet(lambda d: d[:100])),
        ("unet-empty", replace_unet(lambda d: b"")),
        ("unet-unknown-dtype", edit_header(set_entry("dtype", "F4"))),
        ("unet-shape-mismatch", edit_header(set_entry("shape", [3, 3, 3, 3, 3]))),
        ("unet-negative-offset", edit_header(set_entry("data_offsets", [-4, 0]))),
        ("unet-offsets-reversed", edit_header(set_entry("data_offsets", [8, 0]))),
        ("unet-offsets-past-end", edit_header(set_entry("data_offsets", [1 << 40, (1 << 40) + 4]))),
        ("unet-duplicate-name", edit_header(
            lambda h: json.dumps(h)[:-1] + ', "%s": %s}' % (first_tensor(h),
                                                            json.dumps(h[first_tensor(h)])))),
        ("unet-overlapping-tensors", edit_header(
            lambda h: (h.__setitem__("zz.extra", dict(h[first_tensor(h)])), h)[1])),
        ("unet-metadata-not-strings", edit_header(
            lambda h: (h.__setitem__("__metadata__", {"a": 1}), h)[1])),
        ("unet-weight-renamed", rename_tensor("unet", "conv_in.weight", "conv_in.weights")),
        ("unet-weight-int32", tensor_values("unet", "conv_in.bias",
                                            lambda dt, b: ("I32", b"\0" * (len(b) // 2 * 4 if dt == "F16" else len(b))))),
        ("unet-weight-f64", tensor_values("unet", "conv_in.bias",
                                          lambda dt, b: ("F64", b"\0" * (len(b) * 4)))),
        ("unet-weight-nan", tensor_values("unet", "conv_out.weight",
                                          lambda dt, b: (dt, b"\x00\x7e" * (len(b) // 2)))),
        ("text-encoder-weight-inf", tensor_values(
            "text_encoder", "text_model.embeddings.token_embedding.weight",
            lambda dt, b: (dt, b"\x00\x7c" * (len(b) // 2)))),
        ("vae-weight-nan", tensor_values("vae", "decoder.conv_in.weight",
                                         lambda dt, b: (dt, b"\x00\x7e" * (len(b) // 2)))),
        ("sdxl-key", rename_tensor("unet", "conv_in.bias", "add_embedding.linear_1.bias")),
        ("tokenizer-vocab-missing", remove("tokenizer/vocab.json")),
        ("tokenizer-merges-missing", remove("tokenizer/merges.txt")),
        ("tokenizer-vocab-not-json", write_text("tokenizer/vocab.json", "{broken")),
        ("tokenizer-vocab-fifo", make_fifo("tokenizer/vocab.json")),
        ("tokenizer-merges-garbage", write_text("tokenizer/merges.txt", "\x00\x01 \n" * 50)),
        ("unet-is-fifo", make_fifo(UNET)),
]:
    row("models", "diffusers/" + name, variant(name, build))

# configs
for name, build in [
        ("model-index-not-json", write_text("model_index.json", "{")),
        ("model-index-array", write_text("model_index.json", "[]")),
        ("model-index-fifo", make_fifo("model_index.json")),
        ("unet-config-not-json", write_text("unet/config.json", "{'single': quotes}")),
        ("unet-config-empty", write_text("unet/config.json", "")),
        ("unet-config-fifo", make_fifo("unet/config.json")),
        ("unet-config-missing", remove("unet/config.json")),
        ("unet-sample-size-4096", set_key("unet/config.json", "sample_size", 4096)),
        ("unet-sample-size-negative", set_key("unet/config.json", "sample_size", -64)),
        ("unet-sample-size-string", set_key("unet/config.json", "sample_size", "64")),
        ("unet-block-out-channels-empty", set_key("unet/config.json", "block_out_channels", [])),
        ("unet-block-out-channels-huge", set_key("unet/config.json", "block_out_channels",
                                                 [1 << 40, 64])),
        ("unet-layers-per-block-1000", set_key("unet/config.json", "layers_per_block", 1000)),
        ("unet-cross-attention-dim-wrong", set_key("unet/config.json", "cross_attention_dim", 77)),
        ("unet-in-channels-3", set_key("unet/config.json", "in_channels", 3)),
        ("unet-norm-groups-0", set_key("unet/config.json", "norm_num_groups", 0)),
        ("unet-head-dim-0", set_key("unet/config.json", "attention_head_dim", 0)),
        ("unet-config-nan-literal", write_text("unet/config.json", '{"sample_size": NaN}')),
        ("unet-config-deep", write_text("unet/config.json", '{"a":' + "[" * 5000 + "]" * 5000 + "}")),
        ("vae-latent-channels-0", set_key("vae/config.json", "latent_channels", 0)),
        ("vae-scaling-factor-nan", write_text("vae/config.json", '{"scaling_factor": NaN}')),
        ("scheduler-beta-schedule-bogus", set_key("scheduler/scheduler_config.json",
                                                  "beta_schedule", "cubic")),
        ("scheduler-train-steps-0", set_key("scheduler/scheduler_config.json",
                                            "num_train_timesteps", 0)),
        ("scheduler-prediction-bogus", set_key("scheduler/scheduler_config.json",
                                               "prediction_type", "noise")),
        ("scheduler-beta-end-negative", set_key("scheduler/scheduler_config.json", "beta_end", -1)),
        ("text-encoder-hidden-size-wrong", set_key("text_encoder/config.json", "hidden_size", 65)),
        ("text-encoder-layers-0", set_key("text_encoder/config.json", "num_hidden_layers", 0)),
        ("tokenizer-config-not-json", write_text("tokenizer/tokenizer_config.json", "nope")),
]:
    row("configs", name, variant("cfg-" + name, build))


# images
def img_row(name, data, word=None, expect="fail"):
    row("images", name, lambda ctx: sdedit(ctx, ctx.write("img-" + name, data)), expect=expect,
        words=(word,) if word else ())


png = c.png_bytes(64, 64)
img_row("empty.png", b"")
img_row("random-bytes.png", bytes((i * 31 + 7) % 256 for i in range(2000)))
img_row("text-named-png.png", b"hello world\n" * 10)
img_row("bomb-60000x60000.png", c.png_bytes(1, 1, claim=(60000, 60000)), "60000 x 60000")
img_row("bomb-65536x1.png", c.png_bytes(1, 1, claim=(65536, 1)))
img_row("bomb-1x2000000000.png", c.png_bytes(1, 1, claim=(1, 2000000000)))
img_row("ihdr-zero-width.png", c.png_bytes(1, 1, claim=(0, 64)))
for pct in (10, 50, 90, 99):
    img_row("png-cut-%d%%.png" % pct, png[:len(png) * pct // 100])
img_row("png-bad-crc.png", png[:40] + bytes([png[40] ^ 0xff]) + png[41:])
img_row("png-no-iend-but-all-data.png", png[:-12], expect="ok")   # libpng needs no IEND
img_row("png-only-signature.png", png[:8])
img_row("gif-header-only.gif", b"GIF89a\x40\x00\x40\x00")
img_row("bmp-header-only.bmp", b"BM" + b"\0" * 30)
img_row("jpeg-only-soi.jpg", b"\xff\xd8\xff")
img_row("png-1x1-valid.png", c.png_bytes(1, 1), expect="ok")
img_row("png-7x5-valid.png", c.png_bytes(7, 5), expect="ok")
for pct in (30, 60, 90):
    row("images", "jpeg-cut-%d%%.jpg" % pct,
        lambda ctx, pct=pct: sdedit(ctx, ctx.write("cut%d.jpg" % pct,
                                                   open(ctx.jpg, "rb").read()[:os.path.getsize(ctx.jpg) * pct // 100])),
        words=("incomplete",))
row("images", "jpeg-without-end-marker.jpg",
    lambda ctx: sdedit(ctx, ctx.write("noeoi.jpg", open(ctx.jpg, "rb").read()[:-2])),
    words=("incomplete",))
row("images", "progressive-jpeg-cut.jpg",
    lambda ctx: sdedit(ctx, ctx.write("pcut.jpg", open(os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "data", "progressive.jpg"), "rb").read()[:5000])),
    words=("incomplete",))
row("images", "jpeg-whole-valid.jpg", lambda ctx: sdedit(ctx, ctx.jpg), expect="ok")
row("images", "image-missing", lambda ctx: sdedit(ctx, ctx.dir + "/absent.png"))
row("images", "image-is-fifo", lambda ctx: sdedit(ctx, ctx.fifo("img-fifo.png")),
    words=("regular file",))
row("images", "image-is-folder", lambda ctx: sdedit(ctx, ctx.out_dir))
row("images", "image-is-dev-zero", lambda ctx: sdedit(ctx, "/dev/zero"))
row("images", "image-is-dev-urandom", lambda ctx: sdedit(ctx, "/dev/urandom"))

# masks
mask_rows = [
    ("size-mismatch", lambda ctx: ctx.write("m-small.png", c.png_bytes(32, 64)), "fail"),
    ("empty", lambda ctx: ctx.write("m-empty.png", b""), "fail"),
    ("png-cut", lambda ctx: ctx.write("m-cut.png", png[:len(png) // 2]), "fail"),
    ("jpeg-cut", lambda ctx: ctx.write("m-cut.jpg", open(ctx.jpg, "rb").read()[:900]), "fail"),
    ("bomb", lambda ctx: ctx.write("m-bomb.png", c.png_bytes(1, 1, claim=(60000, 60000))), "fail"),
    ("fifo", lambda ctx: ctx.fifo("m-fifo.png"), "fail"),
    ("missing", lambda ctx: ctx.dir + "/m-absent.png", "fail"),
    ("random-bytes", lambda ctx: ctx.write("m-rand.png", bytes(range(256)) * 4), "fail"),
    ("dev-zero", lambda ctx: "/dev/zero", "fail"),
    ("all-black-nothing-to-edit", lambda ctx: ctx.write("m-black.png", c.png_bytes(
        64, 64, lambda x, y: (0, 0, 0))), "fail"),
    ("all-white", lambda ctx: ctx.write("m-white.png", c.png_bytes(
        64, 64, lambda x, y: (255, 255, 255))), "ok"),
    ("one-pixel", lambda ctx: ctx.write("m-one.png", c.png_bytes(
        64, 64, lambda x, y: (255,) * 3 if (x, y) == (5, 5) else (0, 0, 0))), "ok"),
]
for name, make, expect in mask_rows:
    row("masks", name, lambda ctx, make=make: inpaint(ctx, make(ctx)), expect=expect)
row("masks", "sdedit-mask-size-mismatch",
    lambda ctx: sdedit(ctx, None, "--mask", ctx.write("m2.png", c.png_bytes(64, 32))))
row("masks", "inpaint-without-mask", lambda ctx: ["inpaint", "--model", M, "--image", ctx.img,
                                                  "--prompt", "x", "--out", ctx.out])

# parameters
for opt, values in [
        ("--steps", ["0", "-1", "1001", "abc", "99999999999"]),
        ("--guidance", ["nan", "inf", "-1", "101", "1e400", "x"]),
        ("--guidance-rescale", ["2", "-0.5", "nan"]),
        ("--seed", ["-1", "18446744073709551616", "abc", ""]),
        ("--sampler", ["bogus", "repaint", "ddim_inverse", "dpmpp_2m_karras_karras"]),
        ("--eta", ["2", "-1", "nan"]),
        ("--width", ["-5", "70000", "abc"]),
        ("--height", ["-1", "65537"]),
        ("--threads", ["-1", "99999999999"]),
        ("--pixel-budget", ["-1", "2000000000"]),
        ("--clip-skip", ["-1", "1000"]),
        ("--prediction", ["noise", ""]),
        ("--config-dir", ["/nonexistent"]),
]:
    for v in values:
        row("parameters", "generate %s=%r" % (opt, v), lambda ctx, o=opt, v=v: gen(ctx, M, o, v))
for opt, values in [
        ("--strength", ["1.5", "-0.1", "nan"]),
        ("--mask-grow", ["-1", "nan", "5000"]),
        ("--mask-feather", ["-3", "inf"]),
        ("--context-margin", ["-1", "70000"]),
        ("--jump-length", ["0", "1001"]),
        ("--resample", ["0", "101"]),
]:
    for v in values:
        row("parameters", "inpaint %s=%r" % (opt, v),
            lambda ctx, o=opt, v=v: inpaint(ctx, None, None, o, v))
row("parameters", "unknown-option", lambda ctx: gen(ctx, M, "--frobnicate", "1"))
row("parameters", "extra-argument", lambda ctx: gen(ctx, M, "stray"))
row("parameters", "no-prompt", lambda ctx: ["generate", "--model", M, "--out", ctx.out])
# without --model the bundled demo model is used, as in the plug-in
row("parameters", "no-model-uses-the-demo-model",
    lambda ctx: ["generate", "--prompt", "x", "--out", ctx.out, "--width", "64", "--height",
                 "64"] + FAST, expect="ok")
row("parameters", "no-out", lambda ctx: ["generate", "--model", M, "--prompt", "x"])
row("parameters", "no-image", lambda ctx: ["sdedit", "--model", M, "--prompt", "x",
                                           "--out", ctx.out])
row("parameters", "restyle-no-source-prompt",
    lambda ctx: ["restyle", "--model", M, "--image", ctx.img, "--prompt", "x", "--out", ctx.out])
row("parameters", "restyle-with-euler",
    lambda ctx: ["restyle", "--model", M, "--image", ctx.img, "--prompt", "x", "--source-prompt",
                 "y", "--sampler", "euler", "--out", ctx.out] + FAST)
row("parameters", "prompt-invalid-utf8", lambda ctx: ["generate", "--model", M, "--prompt",
                                                      b"\xff\xfe", "--out", ctx.out],
    words=("--prompt",))
row("parameters", "negative-prompt-invalid-utf8",
    lambda ctx: gen(ctx, M, "--negative-prompt", b"ok\xc3"), words=("--negative-prompt",))
row("parameters", "unknown-command", lambda ctx: ["paint", "--model", M])
row("parameters", "prompt-100k-chars", lambda ctx: ["generate", "--model", M, "--prompt",
                                                    "apple " * 20000, "--out", ctx.out] + FAST,
    expect="ok")

# outputs
row("outputs", "extension-gif", lambda ctx: gen(ctx, M, "--out", ctx.out_dir + "/x.gif"))
row("outputs", "no-extension", lambda ctx: gen(ctx, M, "--out", ctx.out_dir + "/x"))
row("outputs", "folder-missing", lambda ctx: gen(ctx, M, "--out", ctx.dir + "/no/x.png"))
row("outputs", "is-a-folder", lambda ctx: (os.makedirs(ctx.out_dir + "/d.png", exist_ok=True),
                                           gen(ctx, M, "--out", ctx.out_dir + "/d.png"))[1])
row("outputs", "is-a-fifo", lambda ctx: gen(ctx, M, "--out", ctx.fifo("out/f.png")),
    words=("regular file",))
row("outputs", "read-only-filesystem", lambda ctx: gen(ctx, M, "--out", "/proc/gesso.png"))
row("outputs", "in-sysfs", lambda ctx: gen(ctx, M, "--out", "/sys/gesso.png"))
row("outputs", "existing-file-replaced", lambda ctx: gen(ctx, M), expect="ok",
    existing_out=True)
row("outputs", "out-is-the-image",
    lambda ctx: ["sdedit", "--model", M, "--image", ctx.write("same.png", png), "--prompt",
                 "x", "--out", ctx.dir + "/same.png"] + FAST, expect="ok")
row("outputs", "symlink-to-existing-file",
    lambda ctx: (ctx.write("target.png", png),
                 os.path.lexists(ctx.out_dir + "/link.png")
                 or os.symlink(ctx.dir + "/target.png", ctx.out_dir + "/link.png"),
                 gen(ctx, M, "--out", ctx.out_dir + "/link.png"))[2], expect="ok")
row("outputs", "jpeg-output", lambda ctx: gen(ctx, M, "--out", ctx.out_dir + "/o.jpg"),
    expect="ok")

# signals: sent while the job runs; the job stops, says so, writes nothing. The job is made
# long enough (400 steps at 256 px: tens of seconds on a quiet machine with the demo model)
# that the signal always lands before it could finish.
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    for delay in (0.3, 1.5):
        row("signals", "%s-after-%.2fs" % (sig.name, delay),
            lambda ctx: gen(ctx, M, "--steps", "400", "--width", "256", "--height", "256"),
            codes=(1,), sig=(sig, delay), existing_out=True)


# concurrency: custom rows, each returning (Result, problems)
def two_readers(ctx):
    outs = [os.path.join(ctx.out_dir, "r%d.png" % i) for i in range(2)]
    procs = [subprocess.Popen([c.GESSO, "generate", "--model", M, "--prompt", "x", "--out", o]
                              + FAST, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for o in outs]
    errs = [p.communicate(timeout=120)[1].decode() for p in procs]
    problems = ["run %d: exit %d %r" % (i, p.returncode, errs[i])
                for i, p in enumerate(procs) if p.returncode != 0]
    problems += [c.png_complete(o) for o in outs if c.png_complete(o)]
    for o in outs:
        if os.path.exists(o):
            os.unlink(o)
    return c.Result(max(p.returncode for p in procs), "", "".join(errs), 0), problems


def model_renamed_over(ctx):
    """A model replaced the safe way (a new file renamed over it) during a run: the run keeps
    the file it opened and finishes."""
    folder = os.path.join(ctx.dir, "models", "renamed")
    if not os.path.isdir(folder):
        c.copy_model(folder)
    unet = os.path.join(folder, UNET)
    proc = subprocess.Popen([c.GESSO, "generate", "--model", folder, "--prompt", "x", "--out",
                             ctx.out, "--steps", "12", "--seed", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    open(unet + ".new", "wb").write(b"replaced")
    os.rename(unet + ".new", unet)
    _, err = proc.communicate(timeout=120)
    problems = [] if proc.returncode == 0 and not c.png_complete(ctx.out) else [
        "exit %d %r %s" % (proc.returncode, err, c.png_complete(ctx.out))]
    return c.Result(proc.returncode, "", err.decode(), 0), problems


def same_output_twice(ctx):
    procs = [subprocess.Popen([c.GESSO, "generate", "--model", M, "--prompt", "x", "--out",
                               ctx.out, "--seed", str(i), "--steps", "2", "--width", "512",
                               "--height", "512"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in (1, 2)]
    errs = [p.communicate(timeout=120)[1].decode() for p in procs]
    problems = ["exit %d %r" % (p.returncode, e) for p, e in zip(procs, errs) if p.returncode]
    if c.png_complete(ctx.out):
        problems.append(c.png_complete(ctx.out))
    return c.Result(0, "", "".join(errs), 0), problems


for name, fn in (("two-runs-one-model", two_readers), ("model-renamed-over-mid-run",
                                                        model_renamed_over),
                 ("two-runs-one-output", same_output_twice)):
    row("concurrency", name, None, expect="custom")
    ROWS[-1]["custom"] = fn


def run_row(ctx, r):
    if r.get("custom") is not None:
        for leftover in os.listdir(ctx.out_dir):
            p = os.path.join(ctx.out_dir, leftover)
            if os.path.isfile(p) and not os.path.islink(p):
                os.unlink(p)
        res, problems = r["custom"](ctx)
        left = [n for n in os.listdir(ctx.out_dir) if n.startswith(".")]
        if left:
            problems.append("left behind: %s" % left)
        return res, problems
    for leftover in os.listdir(ctx.out_dir):
        p = os.path.join(ctx.out_dir, leftover)
        if os.path.isfile(p) and not os.path.islink(p):
            os.unlink(p)
    if r["existing_out"]:
        open(ctx.out, "wb").write(png)
    args = r["args"](ctx)
    before_out = set(os.listdir(ctx.out_dir))
    guarded = c.snapshot([ctx.img, ctx.mask, ctx.jpg, ctx.out])
    start = time.monotonic()
    if r["sig"] is None:
        res = c.run(args, timeout=r["timeout"], max_rss_mb=2500)
    else:
        sig, delay = r["sig"]
        proc = subprocess.Popen([c.GESSO] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=r["timeout"])
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        res = c.Result(proc.returncode, out.decode(), err.decode(), time.monotonic() - start)
    problems = []
    if res.killed_for:
        problems.append(res.killed_for)
    if r["expect"] == "ok":
        if res.rc != 0:
            problems.append("expected success")
        else:
            # the last --out counts, as for GOption
            at = [i for i, a in enumerate(args) if a == "--out"]
            target = args[at[-1] + 1] if at else ctx.out
            if target.endswith(".png") and c.png_complete(target):
                problems.append(c.png_complete(target))
            elif not os.path.isfile(target):
                problems.append("no output at %s" % target)
    else:
        if res.rc not in r["codes"]:
            problems.append("expected exit %s" % "/".join(map(str, r["codes"])))
        if len(res.errors()) != 1:
            problems.append("expected one line, got %d" % len(res.errors()))
        bad = c.unchanged({p: d for p, d in guarded.items()})
        if bad:
            problems.append(bad)
        after = set(os.listdir(ctx.out_dir))
        if after - before_out:
            problems.append("left in the output folder: %s" % sorted(after - before_out))
        for w in r["words"]:
            if w not in res.stderr:
                problems.append("no %r in the message" % w)
    return res, problems


def main():
    if not os.path.isfile(c.GESSO) or not os.path.isdir(M):
        print("1..0 # SKIP GESSO_EXE or the demo model is absent")
        return 0
    tap = c.Tap()
    ctx = Ctx()
    counts = {}
    try:
        for r in ROWS:
            try:
                res, problems = run_row(ctx, r)
                detail = "%s; %s" % (res.describe(), "; ".join(problems))
            except Exception as e:  # a broken fixture fails its row, not the matrix
                problems, detail = [repr(e)], repr(e)
            ok = tap.check("%s/%s" % (r["category"], r["name"]), not problems, detail)
            done, total = counts.get(r["category"], (0, 0))
            counts[r["category"]] = (done + ok, total + 1)
    finally:
        shutil.rmtree(ctx.dir, ignore_errors=True)
    print("# bad-input matrix: category, rows passing / rows")
    for cat, (done, total) in counts.items():
        print("# %-12s %3d / %3d" % (cat, done, total))
    print("# %-12s %3d / %3d" % ("all", sum(d for d, _ in counts.values()),
                                 sum(t for _, t in counts.values())))
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
