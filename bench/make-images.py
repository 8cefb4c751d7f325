#!/usr/bin/env python3
"""Generates deterministic ESP32-like firmware image pairs for the delta benchmark.

    bench/make-images.py OUT_DIR [--seed N] [--sizes-mib 1,4]

For every size S (MiB) it writes to OUT_DIR:

    S-old.bin      the image meters run now, exactly S MiB
    S-a-small.bin  (a) small change: ~300 bytes patched in 3 places
                   (a function's body, a run of log strings, a config table)
    S-b-code.bin   (b) code change: a 2 KiB function inserted near the start,
                   shifting everything after it, and every address word that
                   pointed past the insertion point relocated (+2048), which
                   changes ~1% of the bytes, spread over the whole image
    S-c-large.bin  (c) large change: 20% of the image replaced by new code,
                   new strings and new resources (same size)

and pairs.json, which lists the pairs with their sizes, SHA-256 and how many
bytes differ. Every new image also gets a new version string in its app
descriptor and a new SHA-256 trailer, as a real build does.

What an image looks like (offsets are file offsets; an address is the
mapping base plus the file offset, a simplification of the ESP32 MMU):

    header      ESP32 image header (magic 0xE9), segment table, and an
                esp_app_desc_t-like block: project name, version, build date
    code  ~55%  "functions" drawn from a pool of byte blocks of 64-2048 bytes
                (log-uniform), each a sequence of 2- and 3-byte "instructions"
                from a Zipf-weighted vocabulary (compiled code's byte
                distribution is skewed, not uniform), reused with variations
                (a few mutated bytes), each preceded by a literal pool of
                32-bit address words (0x400Dxxxx code, 0x3F40xxxx strings)
    strings ~18%  NUL-terminated log/format strings from a word list
    data  ~12%  structs of pointers (address words), small integers, zeros
    resources ~15%  random bytes (compressed assets: fonts, certificates)
    trailer     32-byte SHA-256 of everything before it

Everything derives from the seed through random.Random(str), whose seeding
does not depend on PYTHONHASHSEED, so the same seed gives the same bytes on
every machine (the script prints one digest over all images).
Python 3 standard library only.
"""

import argparse
import hashlib
import itertools
import json
import os
import random
import struct
import sys

KIB = 1024
MIB = 1024 * KIB
CODE_BASE = 0x400D0000  # ESP32 IROM (flash-mapped instructions)
DATA_BASE = 0x3F400000  # ESP32 DROM (flash-mapped read-only data)
INSERT_AT = 8 * KIB  # where change (b) inserts its function
INSERT_LEN = 2 * KIB

WORDS = (
    "meter reading pulse lora join send uplink downlink frame counter config "
    "value timeout retry sleep wake battery voltage flash partition ota boot "
    "checksum firmware update manifest version socket bytes buffer payload "
    "port ack rssi snr channel region status error failed ok none wifi sta "
    "connect disconnect reason heap free task stack watchdog nvs key handle "
    "i2c spi uart gpio adc rtc tick queue mutex event loop init deinit start "
    "stop read write open close mount sector erase verify signature tls cert"
).split()
TAGS = "wifi lora ota nvs app meter boot spi uart pm event tls http mqtt".split()


class Code:
    """Function bodies made of Zipf-weighted 2- and 3-byte instructions."""

    def __init__(self, rng, vocab_size=1500):
        self.rng = rng
        self.vocab = []
        for _ in range(vocab_size):
            wide = rng.random() < 0.6
            self.vocab.append(rng.randbytes(3 if wide else 2))
        weights = [1.0 / (k + 1) ** 1.1 for k in range(vocab_size)]
        self.cum = list(itertools.accumulate(weights))

    def body(self, length):
        out = bytearray()
        while len(out) < length:
            n = max(1, (length - len(out)) // 2)
            for ins in self.rng.choices(self.vocab, cum_weights=self.cum, k=n):
                out += ins
        del out[length:]
        # Functions end with a return ("retw.n") and are 4-byte aligned.
        out[-2:] = b"\x1d\xf0"
        return bytes(out)

    def function_length(self):
        # log-uniform in 64..2048, a multiple of 4
        return int(64 * 32 ** self.rng.random()) // 4 * 4


def log_string(rng):
    level = rng.choice("EWIDV")
    tag = rng.choice(TAGS)
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9)))
    fmt = rng.choice(["", " %d", " %s", " 0x%08x", ": %d (%s)", " %u/%u", " %.2f"])
    return f"{level} (%u) {tag}: {words}{fmt}\n".encode() + b"\0"


def strings_block(rng, length):
    """NUL-terminated strings, some 4-byte aligned; returns (bytes, starts)."""
    out = bytearray()
    starts = []
    while len(out) < length:
        if rng.random() < 0.5:
            out += b"\0" * (-len(out) % 4)
        starts.append(len(out))
        out += log_string(rng)
    del out[length:]
    return bytes(out), [s for s in starts if s < length]


class Image:
    """Builds one image; records where the address words are."""

    def __init__(self, size, seed, version):
        self.size = size
        self.rng = random.Random(f"otavan-firmware-{seed}-{size}")
        self.code = Code(self.rng)
        self.version = version
        s = size
        self.header_len = 256
        self.code_range = (self.header_len, self.header_len + s * 55 // 100 // 4 * 4)
        self.str_range = (self.code_range[1], self.code_range[1] + s * 18 // 100 // 4 * 4)
        self.data_range = (self.str_range[1], self.str_range[1] + s * 12 // 100 // 4 * 4)
        self.res_range = (self.data_range[1], s - 32)
        self.buf = bytearray(s)
        self.addr_words = []  # file offsets of 32-bit address words
        self.string_starts = []

    # -- address words ------------------------------------------------------
    def code_ref(self):
        lo, hi = self.code_range
        return CODE_BASE + self.rng.randrange(lo, hi) // 4 * 4

    def string_ref(self):
        if self.string_starts and self.rng.random() < 0.9:
            return DATA_BASE + self.rng.choice(self.string_starts)
        lo, hi = self.str_range
        return DATA_BASE + self.rng.randrange(lo, hi)

    def put_word(self, at, value, is_addr):
        struct.pack_into("<I", self.buf, at, value)
        if is_addr:
            self.addr_words.append(at)

    # -- regions ------------------------------------------------------------
    def fill_strings(self, lo, hi):
        block, starts = strings_block(self.rng, hi - lo)
        self.buf[lo:hi] = block
        self.string_starts += [lo + s for s in starts]

    def fill_code(self, lo, hi, pool):
        """Function instances from `pool`, each with a literal pool before it."""
        at = lo
        # Zipf-ish reuse: a few functions (inlined helpers, templates) often
        cum = list(itertools.accumulate(1.0 / (k + 1) ** 0.8 for k in range(len(pool))))
        while at < hi:
            fn = bytearray(self.rng.choices(pool, cum_weights=cum)[0])
            if self.rng.random() < 0.5:  # variation: other registers, offsets
                for _ in range(self.rng.randint(1, 4)):
                    fn[self.rng.randrange(len(fn) - 2)] = self.rng.randrange(256)
            literals = 1 + len(fn) // 160
            for _ in range(literals):
                if at + 4 > hi:
                    break
                value = self.code_ref() if self.rng.random() < 0.5 else self.string_ref()
                self.put_word(at, value, True)
                at += 4
            n = min(len(fn), hi - at)
            self.buf[at:at + n] = fn[:n]
            at += n

    def make_pool(self, code_bytes):
        # each function is used ~2 times on average (with the instruction
        # vocabulary this makes gzip -9 shrink an image to ~50%)
        avg = (2048 - 64) / 3.4657  # mean of the log-uniform length
        count = max(8, int(code_bytes / avg / 2))
        return [self.code.body(self.code.function_length()) for _ in range(count)]

    def fill_data(self, lo, hi):
        at = lo
        while at + 4 <= hi:
            kind = self.rng.random()
            fields = self.rng.randint(2, 12)
            for _ in range(fields):
                if at + 4 > hi:
                    break
                r = self.rng.random()
                if r < 0.12:
                    self.put_word(at, self.string_ref(), True)
                elif r < 0.20:
                    self.put_word(at, self.code_ref(), True)
                elif r < 0.55 or kind < 0.2:
                    self.put_word(at, 0, False)
                else:
                    self.put_word(at, self.rng.randrange(1 << self.rng.choice((4, 8, 12, 16))), False)
                at += 4

    def fill_header(self):
        h = bytearray(self.header_len)
        # esp_image_header_t: magic, segment count, spi mode, size/freq, entry
        struct.pack_into("<BBBBI", h, 0, 0xE9, 4, 2, 0x20, CODE_BASE + self.code_range[0])
        h[8:24] = bytes([0xEE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        segments = [self.code_range, self.str_range, self.data_range, self.res_range]
        for i, (lo, hi) in enumerate(segments):
            struct.pack_into("<II", h, 24 + 8 * i, (CODE_BASE if i == 0 else DATA_BASE) + lo, hi - lo)
        # esp_app_desc_t-like: magic word, version, project, time, date, idf
        struct.pack_into("<I", h, 64, 0xABCD5432)
        h[72:104] = self.version.encode().ljust(32, b"\0")
        h[104:136] = b"meter-app".ljust(32, b"\0")
        stamp = hashlib.sha256(self.version.encode()).digest()
        h[136:152] = (f"{stamp[0] % 24:02d}:{stamp[1] % 60:02d}:{stamp[2] % 60:02d}").encode().ljust(16, b"\0")
        h[152:168] = f"Nov {1 + stamp[3] % 28:2d} 2025".encode().ljust(16, b"\0")
        h[168:200] = b"v5.3.1".ljust(32, b"\0")
        self.buf[0:self.header_len] = h

    def build(self):
        self.fill_header()
        self.fill_strings(*self.str_range)  # first: code refers to strings
        pool = self.make_pool(self.code_range[1] - self.code_range[0])
        self.fill_code(*self.code_range, pool)
        self.fill_data(*self.data_range)
        lo, hi = self.res_range
        self.buf[lo:hi] = self.rng.randbytes(hi - lo)
        self.addr_words.sort()
        return self


def finish(buf, version):
    """New version string and SHA-256 trailer, as a real build would have."""
    buf = bytearray(buf)
    buf[72:104] = version.encode().ljust(32, b"\0")
    buf[-32:] = hashlib.sha256(bytes(buf[:-32])).digest()
    return bytes(buf)


def change_small(img, rng):
    """(a) ~300 bytes patched in 3 places: code, strings, a config table."""
    buf = bytearray(img.buf)
    places = []
    lo, hi = img.code_range
    at = (lo + (hi - lo) * 3 // 10) // 4 * 4
    body = img.code.body(120)
    buf[at:at + 120] = body
    places.append(("code", at, 120))
    lo, hi = img.str_range
    at = lo + (hi - lo) * 6 // 10
    block, _ = strings_block(rng, 110)
    buf[at:at + 110] = block
    places.append(("strings", at, 110))
    lo, hi = img.data_range
    at = (lo + (hi - lo) * 8 // 10) // 4 * 4
    for k in range(20):  # a table of 20 thresholds/timeouts, all retuned
        struct.pack_into("<I", buf, at + 4 * k, rng.randrange(1, 60000))
    places.append(("data", at, 80))
    return buf, places


def change_code(img, rng):
    """(b) a 2 KiB function inserted at INSERT_AT; address words relocated."""
    buf = bytearray(img.buf)
    moved = 0
    for at in img.addr_words:
        (w,) = struct.unpack_from("<I", buf, at)
        for base in (CODE_BASE, DATA_BASE):
            if base + INSERT_AT <= w < base + img.size:
                struct.pack_into("<I", buf, at, w + INSERT_LEN)
                moved += 1
    # the header's segment table moves too (all segments start after INSERT_AT)
    for i in range(4):
        off = 24 + 8 * i
        (addr, length) = struct.unpack_from("<II", buf, off)
        if i == 0:
            struct.pack_into("<II", buf, off, addr, length + INSERT_LEN)
        else:
            struct.pack_into("<II", buf, off, addr + INSERT_LEN, length)
    relocated = bytes(buf)
    changed = sum(1 for x, y in zip(relocated, img.buf) if x != y)
    new_fn = bytearray(img.code.body(INSERT_LEN - 16))
    lits = b"".join(struct.pack("<I", img.code_ref() + INSERT_LEN) for _ in range(4))
    buf[INSERT_AT:INSERT_AT] = lits + new_fn
    return buf, moved, changed


def change_large(img, seed):
    """(c) 20% of the image replaced: new code, strings and resources."""
    buf = bytearray(img.buf)
    s = img.size
    # A second image generator with another seed provides content that is
    # not in the old image (a new library version, new assets).
    other = Image(s, f"{seed}-large", img.version)
    other.string_starts = img.string_starts  # new code points at old strings too
    other.code.vocab, other.code.cum = img.code.vocab, img.code.cum  # same ISA
    regions = []
    lo, _ = img.code_range
    code_lo = (lo + s * 20 // 100) // 4 * 4
    code_len = s * 12 // 100 // 4 * 4
    pool = other.make_pool(code_len)
    other.buf = bytearray(s)
    other.fill_code(code_lo, code_lo + code_len, pool)
    buf[code_lo:code_lo + code_len] = other.buf[code_lo:code_lo + code_len]
    regions.append(("code", code_lo, code_len))
    lo, hi = img.str_range
    str_len = s * 4 // 100
    str_lo = lo + (hi - lo) // 3
    block, _ = strings_block(other.rng, str_len)
    buf[str_lo:str_lo + str_len] = block
    regions.append(("strings", str_lo, str_len))
    lo, hi = img.res_range
    res_len = s * 20 // 100 - code_len - str_len
    res_lo = lo + (hi - lo - res_len) // 2
    buf[res_lo:res_lo + res_len] = other.rng.randbytes(res_len)
    regions.append(("resources", res_lo, res_len))
    return buf, regions


def diff_bytes(a, b):
    return sum(1 for x, y in zip(a, b) if x != y) + abs(len(a) - len(b))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", default="4")
    ap.add_argument("--sizes-mib", default="1,4")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    pairs = []
    everything = hashlib.sha256()
    for mib in [int(x) for x in args.sizes_mib.split(",")]:
        size = mib * MIB
        img = Image(size, args.seed, "1.0.0").build()
        old = finish(img.buf, "1.0.0")
        img.buf = bytearray(old)
        rng = random.Random(f"otavan-changes-{args.seed}-{size}")
        names = {}
        names["old"] = (f"{mib}MiB-old.bin", old, {})
        a, places = change_small(img, rng)
        names["a"] = (f"{mib}MiB-a-small.bin", finish(a, "1.0.1"),
                      {"kind": "small", "places": places})
        b, moved, changed = change_code(img, rng)
        names["b"] = (f"{mib}MiB-b-code.bin", finish(b, "1.1.0"),
                      {"kind": "code", "insert_at": INSERT_AT, "insert_len": INSERT_LEN,
                       "address_words": len(img.addr_words), "relocated_words": moved,
                       "relocated_bytes_changed": changed,
                       "relocated_pct": round(100 * changed / size, 2)})
        c, regions = change_large(img, args.seed)
        names["c"] = (f"{mib}MiB-c-large.bin", finish(c, "2.0.0"),
                      {"kind": "large", "regions": regions,
                       "replaced_pct": round(100 * sum(r[2] for r in regions) / size, 2)})
        for _, (name, data, _) in sorted(names.items()):
            with open(os.path.join(args.out, name), "wb") as f:
                f.write(data)
            everything.update(name.encode() + b"\0" + data)
        for key in "abc":
            name, data, info = names[key]
            info = dict(info)
            if key != "b":  # same size: count differing bytes directly
                info["bytes_differ"] = diff_bytes(old, data)
            pairs.append({
                "label": f"{mib} MiB ({key}) {info['kind']}",
                "size_mib": mib, "change": key,
                "old": names["old"][0], "new": name,
                "old_size": len(old), "new_size": len(data),
                "old_sha256": hashlib.sha256(old).hexdigest(),
                "new_sha256": hashlib.sha256(data).hexdigest(),
                **info,
            })
        print(f"{mib} MiB: {len(img.addr_words)} address words; (b) relocates "
              f"{moved} of them, {changed} bytes ({100 * changed / size:.2f}%)", file=sys.stderr)
    with open(os.path.join(args.out, "pairs.json"), "w") as f:
        json.dump(pairs, f, indent=1)
    print(everything.hexdigest())


if __name__ == "__main__":
    main()
