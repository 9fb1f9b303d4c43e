#!/usr/bin/env python3
"""The reliability suite (issue 11): `gesso` as a hostile world treats it.

Each case drives the real command with the bundled demo model and checks what a user would
see: the user's files byte-identical after every failure, exit status 1 (2 for a bad
command line), never death by a signal, one line on stderr saying what happened, and a job
that cannot fit in memory refused in under a second. Real signals, two real processes
writing one file, and a tmpfs filled to the last byte for the full disk (that needs root:
without it those cases are skipped, saying so).

Environment: GESSO_EXE (the gesso binary), GESSO_SOURCE_DIR. Output is TAP.
"""
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as c  # noqa: E402

tap = c.Tap()
M = c.MODEL
FAST = ["--steps", "2", "--seed", "7"]


def gen(out, *extra, model=M):
    return ["generate", "--model", model, "--prompt", "a red apple", "--out", out] + list(extra)


# --- 1. outputs are never written in place --------------------------------------------------

class Tmpfs:
    """A tmpfs of SIZE bytes mounted on a new folder; None when mounting is not permitted."""

    def __init__(self, size):
        self.dir = c.tmpdir("tmpfs")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % size, "gesso-rel", self.dir],
                           capture_output=True, text=True)
        self.ok = r.returncode == 0
        self.why = r.stderr.strip() or "mount failed"

    def fill(self, leave=0):
        """Takes all the free space but LEAVE bytes."""
        st = os.statvfs(self.dir)
        free = st.f_bavail * st.f_frsize - leave
        fd = os.open(os.path.join(self.dir, "filler"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            if free > 0:
                os.write(fd, b"\0" * free)
            while leave == 0:
                os.write(fd, b"\0" * 512)
        except OSError:
            pass
        finally:
            os.close(fd)

    def close(self):
        subprocess.run(["umount", self.dir], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def leftovers(folder, expected):
    extra = sorted(set(os.listdir(folder)) - set(expected))
    return "left behind: %s" % extra if extra else None


def full_disk_cases():
    names = ["full-disk/existing-output-kept", "full-disk/out-is-image-kept",
             "full-disk/larger-output-on-nearly-full-disk"]
    probe = Tmpfs(1 << 20)
    if not probe.ok:
        for n in names:
            tap.skip(n, "cannot mount a tmpfs here (%s); needs root" % probe.why)
        shutil.rmtree(probe.dir, ignore_errors=True)
        return
    probe.close()
    work = c.tmpdir("disk")
    try:
        reference = os.path.join(work, "ref.png")
        r = c.run(gen(reference, *FAST))
        assert r.rc == 0, r.describe()
        image_bytes = c.png_bytes(64, 64)

        # an existing picture at --out, the disk full: it must survive, the error say so
        fs = Tmpfs(1 << 20)
        try:
            out = os.path.join(fs.dir, "out.png")
            open(out, "wb").write(image_bytes)
            fs.fill()
            before = c.snapshot([out])
            r = c.run(gen(out, *FAST))
            bad = c.unchanged(before) or leftovers(fs.dir, ["out.png", "filler"])
            tap.check(names[0], c.failed_cleanly(r) and "disk is full" in r.stderr and not bad,
                      "%s; %s" % (r.describe(), bad))
        finally:
            fs.close()

        # --out = --image: the input itself must survive
        fs = Tmpfs(1 << 20)
        try:
            img = os.path.join(fs.dir, "photo.png")
            open(img, "wb").write(image_bytes)
            fs.fill()
            before = c.snapshot([img])
            r = c.run(["sdedit", "--model", M, "--image", img, "--prompt", "x", "--out", img]
                      + FAST)
            bad = c.unchanged(before) or leftovers(fs.dir, ["photo.png", "filler"])
            tap.check(names[1], c.failed_cleanly(r) and "disk is full" in r.stderr and not bad,
                      "%s; %s" % (r.describe(), bad))
        finally:
            fs.close()

        # a small file at --out, a little free space, a larger result: in place, the old file
        # was truncated first and the new one did not fit, losing both
        fs = Tmpfs(1 << 20)
        try:
            out = os.path.join(fs.dir, "small.png")
            open(out, "wb").write(c.png_bytes(2, 2))
            fs.fill(leave=os.path.getsize(reference) // 2)
            before = c.snapshot([out])
            r = c.run(gen(out, *FAST))
            bad = c.unchanged(before) or leftovers(fs.dir, ["small.png", "filler"])
            tap.check(names[2], c.failed_cleanly(r) and "disk is full" in r.stderr and not bad,
                      "%s; %s" % (r.describe(), bad))
        finally:
            fs.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def watch_and_signal(args, folder, sig, names_before, tries_left=None):
    """Starts gesso, sends SIG the moment anything in FOLDER changes (the save begins), and
    returns its Result."""
    start = time.monotonic()
    proc = subprocess.Popen([c.GESSO] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sent = False
    while proc.poll() is None and time.monotonic() - start < 60:
        if not sent:
            now = {n: os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder)
                   if os.path.isfile(os.path.join(folder, n))}
            if now != names_before:
                proc.send_signal(sig)
                sent = True
        time.sleep(0.0005)
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate()
    return c.Result(proc.returncode, out.decode(), err.decode(), time.monotonic() - start), sent


def signal_while_saving_cases():
    # a large output so that writing it takes a while; the work itself is at 64 px
    big = ["--width", "1536", "--height", "1536"] + FAST
    for sig, name in ((signal.SIGINT, "ctrl-c"), (signal.SIGTERM, "sigterm"),
                      (signal.SIGKILL, "sigkill")):
        folder = c.tmpdir("sig")
        try:
            out = os.path.join(folder, "out.png")
            open(out, "wb").write(c.png_bytes(64, 64))
            before = c.snapshot([out])
            sizes = {"out.png": os.path.getsize(out)}
            r, sent = watch_and_signal(gen(out, *big), folder, sig, sizes)
            problem = None
            if not sent:
                problem = "the output never changed: no signal sent"
            elif sig == signal.SIGKILL:
                # nothing can catch it: the file must be the old one or a whole new one
                if c.unchanged(before) and c.png_complete(out):
                    problem = "out.png is neither the old file nor complete: %s" % (
                        c.png_complete(out))
            elif r.rc < 0:
                problem = "died of signal %d" % -r.rc
            elif r.rc == 0:
                problem = c.png_complete(out)
            else:
                problem = c.unchanged(before) or leftovers(folder, ["out.png"])
                if not problem and len(r.errors()) != 1:
                    problem = "expected one line"
            tap.check("signal/%s-while-saving" % name, problem is None,
                      "%s; %s" % (r.describe(), problem))
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def concurrent_writers_case():
    folder = c.tmpdir("race")
    try:
        a_ref = os.path.join(folder, "a.png")
        b_ref = os.path.join(folder, "b.png")
        big = ["--width", "768", "--height", "768", "--steps", "2"]
        for ref, seed in ((a_ref, "1"), (b_ref, "2")):
            r = c.run(gen(ref, *big, "--seed", seed))
            assert r.rc == 0, r.describe()
        want = {open(a_ref, "rb").read(), open(b_ref, "rb").read()}
        problems = []
        for i in range(5):
            out = os.path.join(folder, "out.png")
            procs = [subprocess.Popen([c.GESSO] + gen(out, *big, "--seed", seed),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                     for seed in ("1", "2")]
            results = [p.communicate() for p in procs]
            rcs = [p.returncode for p in procs]
            if rcs != [0, 0]:
                problems.append("pair %d: exit %s %r" % (i, rcs, [e for _, e in results]))
            elif open(out, "rb").read() not in want:
                problems.append("pair %d: out.png is neither run's image (%s)" % (
                    i, c.png_complete(out) or "spliced"))
            os.unlink(out)
        left = leftovers(folder, ["a.png", "b.png"])
        if left:
            problems.append(left)
        tap.check("concurrency/two-writers-one-output", not problems, "; ".join(problems))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- 2. a model that changes under a run ------------------------------------------------------

def model_shrinks_case():
    folder = c.tmpdir("shrink")
    try:
        model = c.copy_model(os.path.join(folder, "m"), f32=True)
        unet = os.path.join(model, c.COMPONENT_FILES["unet"])
        content = open(unet, "rb").read()
        out = os.path.join(folder, "out.png")
        problems = []
        # F32 weights were read from the mapping at every step: cut the file mid-run, as a
        # download over it does, at a few moments after the model is loaded
        for delay in (0.6, 1.2, 2.0):
            open(unet, "wb").write(content)
            proc = subprocess.Popen([c.GESSO] + gen(out, "--steps", "12", "--seed", "3",
                                                    model=model),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(delay)
            with open(unet, "r+b") as f:
                f.truncate(0)
                f.write(content[:len(content) // 3])
            _, err = proc.communicate(timeout=120)
            err = err.decode()
            lines = [l for l in err.splitlines() if l.strip()]
            if proc.returncode < 0:
                problems.append("cut at %.1f s: died of signal %d" % (delay, -proc.returncode))
            elif proc.returncode == 1 and len(lines) != 1:
                problems.append("cut at %.1f s: exit 1 with %r" % (delay, err))
            elif proc.returncode == 0 and c.png_complete(out):
                problems.append("cut at %.1f s: %s" % (delay, c.png_complete(out)))
            elif proc.returncode not in (0, 1):
                problems.append("cut at %.1f s: exit %d" % (delay, proc.returncode))
        tap.check("model/file-shrinks-during-run", not problems, "; ".join(problems))
        # cut before the run: refused at open with one line
        r = c.run(gen(out, *FAST, model=model))
        tap.check("model/file-cut-before-run", c.failed_cleanly(r) and "truncated" in r.stderr,
                  r.describe())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- 3. NaN and infinity --------------------------------------------------------------------

def set_values(component, name, make):
    def edit(comp, tensors):
        if comp != component:
            return
        for t in tensors:
            if t[0] == name:
                t[3] = make(t[1], t[3])
    return edit


def nan_cases():
    folder = c.tmpdir("nan")
    try:
        out = os.path.join(folder, "out.png")

        def half_nan(dtype, blob):
            assert dtype == "F16"
            return b"\x00\x7e" + blob[2:]                    # first value NaN

        def half_inf(dtype, blob):
            return blob[:10] + b"\x00\x7c" + blob[12:]       # sixth value +inf

        def huge(dtype, blob):
            n = len(blob) // 4
            return struct.pack("<%df" % n, *([3e38] * n))    # finite, overflows in a product

        cases = [
            ("nan/unet-weight-fp16", False, set_values("unet", "conv_in.weight", half_nan),
             ["conv_in.weight", "NaN"]),
            ("nan/text-encoder-weight-inf", False,
             set_values("text_encoder", "text_model.final_layer_norm.weight", half_inf),
             ["final_layer_norm.weight", "infinite"]),
            ("nan/vae-weight-fp16", False, set_values("vae", "decoder.conv_out.weight", half_nan),
             ["decoder.conv_out.weight", "NaN"]),
            ("nan/latents-overflow-at-step-1", True, set_values("unet", "conv_in.weight", huge),
             ["step 1 of"]),
            ("nan/decoder-overflow", True, set_values("vae", "decoder.conv_out.weight", huge),
             ["VAE decoder"]),
        ]
        for name, f32, edit, words in cases:
            model = c.copy_model(os.path.join(folder, name.replace("/", "-")), f32=f32, edit=edit)
            r = c.run(gen(out, "--steps", "3", "--seed", "5", model=model))
            tap.check(name, c.failed_cleanly(r) and all(w in r.stderr for w in words)
                      and not os.path.exists(out), r.describe())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- 4. jobs that cannot fit ----------------------------------------------------------------

def memory_cases():
    folder = c.tmpdir("mem")
    try:
        out = os.path.join(folder, "out.png")
        bomb = os.path.join(folder, "bomb.png")
        open(bomb, "wb").write(c.png_bytes(1, 1, claim=(60000, 60000)))
        for cmd in ("sdedit", "inpaint"):
            args = [cmd, "--model", M, "--image", bomb, "--prompt", "x", "--out", out] + FAST
            if cmd == "inpaint":
                args += ["--mask", bomb]
            r = c.run(args, timeout=20, max_rss_mb=2000)
            tap.check("memory/png-bomb-60000x60000/%s (%d bytes)" % (cmd, os.path.getsize(bomb)),
                      c.failed_cleanly(r) and r.seconds < 1.0 and "60000 x 60000" in r.stderr
                      and r.stderr.count("GiB") >= 2, r.describe())
        r = c.run(gen(out, "--width", "60000", "--height", "60000") + FAST, timeout=20,
                  max_rss_mb=2000)
        tap.check("memory/generate-60000x60000", c.failed_cleanly(r) and r.seconds < 1.0
                  and r.stderr.count("GiB") >= 2, r.describe())
        r = c.run(gen(out, "--pixel-budget", "2000000000") + FAST, timeout=20, max_rss_mb=2000)
        tap.check("memory/pixel-budget-2e9", c.failed_cleanly(r) and r.seconds < 1.0
                  and "pixel budget" in r.errors()[-1], r.describe())

        # a real, valid image too large for the memory this process may use (ulimit -v)
        names = ["memory/valid-6000x6000-image-under-ulimit",
                 "memory/generate-9000x9000-under-ulimit"]
        if c.SANITIZED:
            for n in names:
                tap.skip(n, "the sanitizer build cannot run under ulimit -v")
        else:
            big = os.path.join(folder, "big.png")
            open(big, "wb").write(c.png_blank(6000, 6000))
            limit = c.limit_address_space(1536 << 20)
            r = c.run(["sdedit", "--model", M, "--image", big, "--prompt", "x", "--out", out]
                      + FAST, preexec=limit, timeout=30)
            tap.check(names[0], c.failed_cleanly(r) and r.seconds < 1.0
                      and "6000 x 6000" in r.stderr and r.stderr.count("GiB") >= 2,
                      r.describe())
            r = c.run(gen(out, "--width", "9000", "--height", "9000") + FAST, preexec=limit,
                      timeout=30)
            tap.check(names[1], c.failed_cleanly(r) and r.seconds < 1.0
                      and r.stderr.count("GiB") >= 2, r.describe())

        # far above the native size: a warning first (the run is then stopped by the test)
        proc = subprocess.Popen([c.GESSO] + gen(out, "--pixel-budget", "4000000") + FAST,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = []
        reader = threading.Thread(target=lambda: first.append(proc.stderr.readline()))
        reader.start()
        reader.join(timeout=20)
        proc.kill()
        proc.communicate()
        line = first[0].decode() if first else ""
        tap.check("memory/pixel-budget-far-above-native-warns",
                  line.startswith("gesso: warning:") and "4000000" in line and "native" in line,
                  "first line: %r" % line)
        tap.check("memory/no-output-left", not os.path.exists(out), "out.png was written")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- 5. incomplete images -------------------------------------------------------------------

def truncated_image_cases():
    folder = c.tmpdir("cut")
    try:
        out = os.path.join(folder, "out.png")
        jpg = os.path.join(folder, "whole.jpg")
        r = c.run(gen(jpg, "--width", "256", "--height", "256") + FAST)
        assert r.rc == 0, r.describe()
        whole = open(jpg, "rb").read()
        progressive = open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "data", "progressive.jpg"), "rb").read()
        png = c.png_bytes(96, 96)
        cases = [("baseline-jpeg-60%", "cut.jpg", whole[:len(whole) * 6 // 10], "incomplete"),
                 ("baseline-jpeg-no-end-marker", "cut2.jpg", whole[:-2], "incomplete"),
                 ("progressive-jpeg-50%", "cutp.jpg", progressive[:len(progressive) // 2],
                  "incomplete"),
                 ("png-60%", "cut.png", png[:len(png) * 6 // 10], "image")]
        for name, file, data, word in cases:
            path = os.path.join(folder, file)
            open(path, "wb").write(data)
            for cmd in ("sdedit", "inpaint-mask"):
                if cmd == "sdedit":
                    args = ["sdedit", "--model", M, "--image", path]
                else:
                    args = ["inpaint", "--model", M, "--image", jpg, "--mask", path]
                if os.path.exists(out):
                    os.unlink(out)      # what an earlier case wrote must not fail this one
                r = c.run(args + ["--prompt", "x", "--out", out] + FAST)
                tap.check("image/truncated-%s/%s" % (name, cmd),
                          c.failed_cleanly(r) and word in r.stderr and not os.path.exists(out),
                          r.describe())
        r = c.run(["sdedit", "--model", M, "--image", jpg, "--prompt", "x", "--out", out] + FAST)
        tap.check("image/whole-jpeg-still-edits", r.rc == 0 and c.png_complete(out) is None,
                  r.describe())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- 6. the rest ----------------------------------------------------------------------------

def minor_cases():
    folder = c.tmpdir("minor")
    try:
        out = os.path.join(folder, "out.png")
        fifo = os.path.join(folder, "fifo")
        os.mkfifo(fifo)
        img = os.path.join(folder, "in.png")
        open(img, "wb").write(c.png_bytes(64, 64))
        fifo_model = os.path.join(folder, "model.safetensors")
        os.mkfifo(fifo_model)
        fifo_cfg = c.copy_model(os.path.join(folder, "fifo-config"))
        os.unlink(os.path.join(fifo_cfg, "unet", "config.json"))
        os.mkfifo(os.path.join(fifo_cfg, "unet", "config.json"))
        for name, args in (
                ("fifo/model", gen(out, model=fifo_model)),
                ("fifo/config", gen(out, model=fifo_cfg)),
                ("fifo/image", ["sdedit", "--model", M, "--image", fifo, "--prompt", "x",
                                "--out", out]),
                ("fifo/mask", ["inpaint", "--model", M, "--image", img, "--mask", fifo,
                               "--prompt", "x", "--out", out]),
                ("fifo/info", ["info", fifo_model])):
            r = c.run(args, timeout=10)
            # a config that is not a regular file is as good as missing
            tap.check(name, c.failed_cleanly(r) and r.seconds < 5
                      and ("regular file" in r.stderr or "missing" in r.stderr), r.describe())
        for opt in ("--prompt", "--negative-prompt"):
            argv = [c.GESSO, "generate", "--model", M, "--out", out, "--prompt", "x",
                    opt.encode(), b"caf\xe9"]
            p = subprocess.run(argv, capture_output=True, timeout=30)
            err = p.stderr.decode("utf-8", "replace")
            tap.check("utf8/%s" % opt.strip("-"), p.returncode == 2 and opt in err
                      and "UTF-8" in err and len(err.strip().splitlines()) == 1, err)
        r = c.run(gen(out, "--threads", "5000") + FAST)
        tap.check("threads/5000-capped-with-a-warning", r.rc == 0 and "warning" in r.stderr
                  and "5000" in r.stderr, r.describe())
        if os.path.exists(out):
            os.unlink(out)
        r = c.run(gen(out, "--threads", "-1") + FAST)
        tap.check("threads/negative-names-the-cap", c.failed_cleanly(r) and "4096" in r.stderr,
                  r.describe())

        dup = c.copy_model(os.path.join(folder, "dup"))
        unet = os.path.join(dup, c.COMPONENT_FILES["unet"])
        header, body = c.read_safetensors(unet)
        text = c.json.dumps(header)
        first = next(k for k in header if k != "__metadata__")
        entry = c.json.dumps(header[first])
        text = text[:-1] + ', "%s": %s}' % (first, entry)
        raw = text.encode() + b" " * (-len(text) % 8)
        open(unet, "wb").write(struct.pack("<Q", len(raw)) + raw + body)
        r = c.run(gen(out, *FAST, model=dup))
        tap.check("model/duplicate-tensor-name", c.failed_cleanly(r) and "twice" in r.stderr,
                  r.describe())

        big = c.copy_model(os.path.join(folder, "sample-size"))
        cfg = os.path.join(big, "unet", "config.json")
        conf = c.json.load(open(cfg))
        conf["sample_size"] = 4096
        c.json.dump(conf, open(cfg, "w"))
        r = c.run(gen(out, *FAST, model=big), timeout=20, max_rss_mb=2000)
        tap.check("config/sample-size-4096-named", c.failed_cleanly(r)
                  and "sample_size" in r.stderr and r.seconds < 2, r.describe())

        out_fifo = os.path.join(folder, "fifo.png")
        os.mkfifo(out_fifo)
        for name, target in (("out-is-fifo", out_fifo), ("out-is-folder", folder + "/sub.png")):
            if name == "out-is-folder":
                os.mkdir(target)
            r = c.run(gen(target, *FAST), timeout=20)
            # refused as a wrong command line, before any work
            tap.check("output/%s" % name, c.failed_cleanly(r, (1, 2)) and r.seconds < 1.0
                      and "not a regular file" in r.stderr, r.describe())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main():
    if not os.path.isfile(c.GESSO):
        print("1..0 # SKIP GESSO_EXE is not set")
        return 0
    if not os.path.isdir(M):
        print("1..0 # SKIP the demo model %s is absent" % M)
        return 0
    for part in (full_disk_cases, signal_while_saving_cases, concurrent_writers_case,
                 model_shrinks_case, nan_cases, memory_cases, truncated_image_cases,
                 minor_cases):
        try:
            part()
        except Exception as e:  # a broken fixture is a failure of its own, not a crash
            tap.check("%s (fixture)" % part.__name__, False, repr(e))
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
