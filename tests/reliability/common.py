"""Shared pieces of the reliability suite: TAP output, running gesso, files and models.

Everything here is independent of Gesso's code: PNGs are written and checked with zlib and
struct, safetensors files are rewritten from their JSON header, so a bug in the code under
test cannot hide behind a helper that shares it.
"""
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

GESSO = os.environ.get("GESSO_EXE", "")
SOURCE = os.environ.get("GESSO_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(SOURCE, "data", "models", "gesso-emoji-64")
# the sanitizer build reserves terabytes of address space: ulimit -v cannot be used with it
SANITIZED = os.path.exists(GESSO) and b"__asan_init" in open(GESSO, "rb").read()


class Tap:
    """Prints one TAP line per check; the plan comes last (TAP allows that)."""

    def __init__(self):
        self.n = 0
        self.failed = 0
        self.skipped = 0

    def check(self, name, ok, detail=""):
        self.n += 1
        if not ok:
            self.failed += 1
        line = "%s %d %s" % ("ok" if ok else "not ok", self.n, name)
        print(line, flush=True)
        if detail and not ok:
            for d in str(detail).splitlines():
                print("# " + d, flush=True)
        return ok

    def skip(self, name, reason):
        self.n += 1
        self.skipped += 1
        print("ok %d %s # SKIP %s" % (self.n, name, reason), flush=True)

    def finish(self):
        print("1..%d" % self.n, flush=True)
        return 1 if self.failed else 0


class Result:
    def __init__(self, rc, stdout, stderr, seconds, peak_rss_kb=0, killed_for=None):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds
        self.peak_rss_kb = peak_rss_kb
        self.killed_for = killed_for

    def lines(self):
        return [l for l in self.stderr.splitlines() if l.strip()]

    def errors(self):
        return [l for l in self.lines() if not l.startswith("gesso: warning:")]

    def describe(self):
        what = "signal %d" % -self.rc if self.rc < 0 else "exit %d" % self.rc
        if self.killed_for:
            what += " (killed by the test: %s)" % self.killed_for
        return "%s after %.2f s; stderr: %r" % (what, self.seconds, self.stderr[-600:])


def limit_address_space(limit_bytes):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    return apply


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(args, timeout=60, max_rss_mb=3000, preexec=None, env=None):
    """Runs gesso ARGS; kills it (and says why) past TIMEOUT seconds or MAX_RSS_MB of memory,
    which is how a job that should have been refused shows itself without hurting the
    machine."""
    start = time.monotonic()
    proc = subprocess.Popen([GESSO] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=preexec, env=env)
    peak = 0
    killed_for = None
    out_chunks, err_chunks = [], []
    import threading

    def drain(stream, sink):
        for chunk in iter(lambda: stream.read(4096), b""):
            sink.append(chunk)
    threads = [threading.Thread(target=drain, args=(proc.stdout, out_chunks)),
               threading.Thread(target=drain, args=(proc.stderr, err_chunks))]
    for t in threads:
        t.start()
    while proc.poll() is None:
        peak = max(peak, rss_kb(proc.pid))
        if peak > max_rss_mb * 1024:
            killed_for = "resident memory passed %d MB" % max_rss_mb
            proc.kill()
        elif time.monotonic() - start > timeout:
            killed_for = "still running after %d s" % timeout
            proc.kill()
        time.sleep(0.01)
    for t in threads:
        t.join()
    return Result(proc.returncode, b"".join(out_chunks).decode("utf-8", "replace"),
                  b"".join(err_chunks).decode("utf-8", "replace"), time.monotonic() - start,
                  peak, killed_for)


def failed_cleanly(r, codes=(1,)):
    """Exit status in CODES (never a signal), one line on stderr (warnings aside)."""
    return r.killed_for is None and r.rc in codes and len(r.errors()) == 1


# --- PNG ------------------------------------------------------------------------------------

def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_bytes(width, height, pixel=lambda x, y: (x * 4 % 256, y * 4 % 256, 128), claim=None):
    """An 8-bit RGB PNG; CLAIM = (w, h) writes that size in the header over the real data."""
    rows = []
    for y in range(height):
        rows.append(b"\0" + b"".join(bytes(pixel(x, y)) for x in range(width)))
    w, h = claim or (width, height)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"".join(rows))) + _chunk(b"IEND", b""))


def png_blank(width, height, level=9):
    """A large valid grey PNG made quickly: every row is the same."""
    row = b"\0" + b"\x80" * (3 * width)
    comp = zlib.compressobj(level)
    data = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))


def png_complete(path):
    """None when PATH is a whole PNG (every chunk's CRC right, the pixel data all there),
    else what is wrong with it."""
    try:
        data = open(path, "rb").read()
    except OSError as e:
        return str(e)
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "not a PNG (%d bytes)" % len(data)
    pos, idat, ihdr, end = 8, b"", None, False
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = data[pos + 8 + n:pos + 12 + n]
        if len(body) < n or len(crc) < 4:
            return "chunk %r cut at byte %d of %d" % (kind, len(data), pos + 12 + n)
        if struct.unpack(">I", crc)[0] != zlib.crc32(kind + body) & 0xFFFFFFFF:
            return "chunk %r has a bad CRC" % kind
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            end = True
            break
        pos += 12 + n
    if ihdr is None or not end:
        return "no IHDR or no IEND"
    w, h, depth, color = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color, 1)
    try:
        raw = zlib.decompress(idat)
    except zlib.error as e:
        return "pixel data broken: %s" % e
    if len(raw) != h * (1 + w * channels * depth // 8):
        return "pixel data holds %d bytes, %d x %d needs %d" % (
            len(raw), w, h, h * (1 + w * channels * depth // 8))
    return None


# --- models ---------------------------------------------------------------------------------

def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    return header, data[8 + n:]


def write_safetensors(path, tensors, metadata=None, raw_header=None):
    """TENSORS: list of (name, dtype, shape, bytes)."""
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = raw_header if raw_header is not None else json.dumps(header)
    text = text.encode() if isinstance(text, str) else text
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def tensors_of(path):
    header, body = read_safetensors(path)
    out = []
    for name, e in sorted(((k, v) for k, v in header.items() if k != "__metadata__"),
                          key=lambda kv: kv[1]["data_offsets"][0]):
        a, b = e["data_offsets"]
        out.append([name, e["dtype"], e["shape"], body[a:b]])
    return out, header.get("__metadata__")


def to_f32(dtype, blob):
    if dtype == "F16":
        n = len(blob) // 2
        return struct.pack("<%df" % n, *struct.unpack("<%de" % n, blob))
    if dtype == "BF16":
        n = len(blob) // 2
        return b"".join(b"\0\0" + blob[2 * i:2 * i + 2] for i in range(n))
    return blob


COMPONENT_FILES = {
    "unet": "unet/diffusion_pytorch_model.safetensors",
    "vae": "vae/diffusion_pytorch_model.safetensors",
    "text_encoder": "text_encoder/model.safetensors",
}


def copy_model(dest, f32=False, edit=None):
    """A copy of the demo model in DEST; F32 widens every float tensor; EDIT(component,
    tensors) may change the [name, dtype, shape, bytes] lists in place."""
    shutil.copytree(MODEL, dest)
    for component, rel in COMPONENT_FILES.items():
        if not f32 and edit is None:
            continue
        path = os.path.join(dest, rel)
        tensors, metadata = tensors_of(path)
        if f32:
            for t in tensors:
                if t[1] in ("F16", "BF16"):
                    t[3] = to_f32(t[1], t[3])
                    t[1] = "F32"
        if edit is not None:
            edit(component, tensors)
        write_safetensors(path, [tuple(t) for t in tensors], metadata)
    return dest


def tmpdir(prefix):
    return tempfile.mkdtemp(prefix="gesso-rel-%s-" % prefix)


def snapshot(paths):
    """The bytes of each file that exists, to compare after a failure."""
    return {p: open(p, "rb").read() for p in paths if os.path.isfile(p)}


def unchanged(before):
    for path, data in before.items():
        try:
            now = open(path, "rb").read()
        except OSError as e:
            return "%s: %s" % (path, e)
        if now != data:
            return "%s changed: %d bytes before, %d now" % (path, len(data), len(now))
    return None
