#!/usr/bin/python3
"""Gesso's own byte-level BPE trainer and encoder, in the format of CLIP's tokenizer.

The vocabulary is CLIP's layout at a small size: ids 0-255 are the 256 byte symbols of GPT-2's
bytes-to-unicode table, 256-511 the same with the end-of-word marker "</w>", then one token per
learned merge, then "<|startoftext|>" and "<|endoftext|>".  merges.txt starts with a
"#version: 0.2" line and lists the merges best first.  Text is prepared like transformers'
CLIPTokenizer without ftfy (lower-case, whitespace collapsed) and cut into words with CLIP's
regex, so Gesso's C tokenizer (core/model/tokenizer.c) reads the files unchanged.

usage: bpe.py train CORPUS.txt OUT_DIR [--vocab-size 2048]   (one caption a line)
       bpe.py encode OUT_DIR "some text"
"""
import argparse
import collections
import json
import os
import unicodedata

try:
    import regex as re
    WORD_RE = re.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                         re.IGNORECASE)
except ImportError:  # python3-regex missing: an ASCII-exact approximation
    import re
    WORD_RE = re.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+""",
                         re.IGNORECASE)

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_ENCODER = bytes_to_unicode()


def clean(text):
    """BasicTokenizer(do_lower_case=True, strip_accents=False) as CLIPTokenizer runs it."""
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
            continue
        out.append(" " if ch in "\t\n\r" or unicodedata.category(ch) == "Zs" else ch)
    text = unicodedata.normalize("NFC", "".join(out))
    return " ".join(text.lower().split())


def words(text):
    for w in WORD_RE.findall(clean(text)):
        yield "".join(BYTE_ENCODER[b] for b in w.encode("utf-8"))


def train(lines, vocab_size):
    counts = collections.Counter(w for line in lines for w in words(line))
    # each word as a list of symbols, the last one carrying "</w>"
    corpus = [[list(w[:-1]) + [w[-1] + "</w>"], c] for w, c in sorted(counts.items())]
    base = list(BYTE_ENCODER.values())
    vocab = base + [b + "</w>" for b in base]
    merges = []
    while len(vocab) + 2 < vocab_size:
        pairs = collections.Counter()
        for syms, c in corpus:
            for a, b in zip(syms, syms[1:]):
                pairs[a, b] += c
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], [-ord(ch) for ch in kv[0][0] + " " + kv[0][1]]))
        (a, b), freq = best
        if freq < 2:
            break
        merges.append((a, b))
        vocab.append(a + b)
        for item in corpus:
            syms = item[0]
            i, out = 0, []
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            item[0] = out
    vocab += [BOS, EOS]
    return {tok: i for i, tok in enumerate(vocab)}, merges


class Tokenizer:
    def __init__(self, folder):
        with open(os.path.join(folder, "vocab.json"), encoding="utf-8") as f:
            self.vocab = json.load(f)
        with open(os.path.join(folder, "merges.txt"), encoding="utf-8") as f:
            lines = f.read().split("\n")[1:]
        self.ranks = {tuple(l.split()): i for i, l in enumerate(l for l in lines if l.strip())}
        self.bos, self.eos = self.vocab[BOS], self.vocab[EOS]
        self.cache = {}

    def bpe(self, w):
        if w in self.cache:
            return self.cache[w]
        syms = list(w[:-1]) + [w[-1] + "</w>"]
        while len(syms) > 1:
            pairs = [(self.ranks.get(p, 1 << 30), i) for i, p in enumerate(zip(syms, syms[1:]))]
            rank, _ = min(pairs)
            if rank == 1 << 30:
                break
            a, b = next(p for p in zip(syms, syms[1:]) if self.ranks.get(p) == rank)
            i, out = 0, []
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            syms = out
        self.cache[w] = syms
        return syms

    def encode(self, text, length=77):
        ids = [self.vocab.get(s, self.eos) for w in words(text) for s in self.bpe(w)]
        ids = [self.bos] + ids[:length - 2] + [self.eos]
        return ids + [self.eos] * (length - len(ids))


def write(folder, vocab, merges):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    special = {"content": None, "lstrip": False, "normalized": True, "rstrip": False,
               "single_word": False}
    tmap = {k: dict(special, content=v) for k, v in
            (("bos_token", BOS), ("eos_token", EOS), ("pad_token", EOS), ("unk_token", EOS))}
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        json.dump(tmap, f, indent=2)
    config = {
        "added_tokens_decoder": {
            str(vocab[BOS]): dict(special, content=BOS, special=True),
            str(vocab[EOS]): dict(special, content=EOS, special=True),
        },
        "bos_token": BOS, "clean_up_tokenization_spaces": False, "eos_token": EOS,
        "errors": "replace", "model_max_length": 77, "pad_token": EOS,
        "tokenizer_class": "CLIPTokenizer", "unk_token": EOS,
    }
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("corpus")
    t.add_argument("out")
    t.add_argument("--vocab-size", type=int, default=2048)
    e = sub.add_parser("encode")
    e.add_argument("folder")
    e.add_argument("text")
    a = p.parse_args()
    if a.cmd == "train":
        with open(a.corpus, encoding="utf-8") as f:
            lines = [l.strip() for l in f if l.strip()]
        vocab, merges = train(lines, a.vocab_size)
        write(a.out, vocab, merges)
        print(f"{len(vocab)} tokens, {len(merges)} merges -> {a.out}")
    else:
        ids = Tokenizer(a.folder).encode(a.text)
        print(ids[:ids.index(Tokenizer(a.folder).eos) + 1])


if __name__ == "__main__":
    main()
