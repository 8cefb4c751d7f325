#!/usr/bin/env python3
"""Generates a deterministic Pycom-style release tree for the benchmarks.

    bench/make-tree.py OUT_DIR [--seed N]

OUT_DIR is emptied and refilled with:

    1.0.0/{flash,sd}/...   200 files
    1.1.0/{flash,sd}/...   200 files: 100 identical to 1.0.0, 80 changed,
                           20 new (and 20 of 1.0.0's paths are gone)
    firmware_1.0.0.bin     1 MiB - 12 KiB
    firmware_1.1.0.bin     exactly 1 MiB

Sizes are those of a real meter application: most files are 1-20 KiB
.py/.json, a dozen are 50-200 KiB .wav/.bin. Everything derives from the
seed through random.Random(str), whose seeding does not depend on
PYTHONHASHSEED, so the same seed gives the same bytes on every machine.
Prints one SHA-256 over the whole tree (paths and contents) so two runs
can be compared. Python 3 standard library only.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import sys

KIB = 1024
MIB = 1024 * KIB

WORDS = (
    "meter reading pulse lora join send uplink downlink frame counter "
    "config value timeout retry sleep wake battery voltage flash sd "
    "checksum firmware update manifest version socket bytes buffer "
    "payload port ack rssi snr channel region status error ok none"
).split()


def text_lines(rng, size, kind):
    """Roughly `size` bytes of Python source or JSON that look the part."""
    out = []
    total = 0
    n = 0
    while total < size:
        n += 1
        a, b, c = rng.choice(WORDS), rng.choice(WORDS), rng.choice(WORDS)
        if kind == "py":
            line = rng.choice(
                (
                    f"def {a}_{b}_{n}({c}, timeout={rng.randint(1, 600)}):\n",
                    f"    {a}_{b} = {c}.get('{a}', {rng.randint(0, 65535)})\n",
                    f"    if {a} > {rng.randint(0, 999)}:\n        return {b}_{c}({a})\n",
                    f"# {a} {b} {c}: {rng.randint(0, 10**9):x}\n",
                    f"{a.upper()}_{b.upper()}_{n} = {rng.random():.6f}\n",
                )
            )
        else:
            line = json.dumps({f"{a}_{n}": rng.randint(0, 10**6), b: [c, rng.random()]}) + ",\n"
        out.append(line)
        total += len(line)
    data = "".join(out).encode()
    return data[:size]


def binary(rng, size, kind):
    if kind == "wav":
        body = rng.randbytes(size - 44)
        header = (
            b"RIFF" + (size - 8).to_bytes(4, "little") + b"WAVEfmt "
            + (16).to_bytes(4, "little") + (1).to_bytes(2, "little")
            + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
            + (16000).to_bytes(4, "little") + (2).to_bytes(2, "little")
            + (16).to_bytes(2, "little") + b"data" + (size - 44).to_bytes(4, "little")
        )
        return header + body
    return rng.randbytes(size)


def plan_paths(rng, count, tag):
    """`count` paths (with their kind and size), about 60% under flash/."""
    paths = []
    big = 0
    for i in range(count):
        # About one file in 16 is a large asset.
        if rng.random() < 1 / 16 and big < 16:
            big += 1
            kind = rng.choice(("wav", "bin"))
            folder = "sd/sounds" if kind == "wav" else "sd/assets"
            size = rng.randint(50 * KIB, 200 * KIB)
        else:
            kind = rng.choice(("py", "py", "py", "json"))
            if rng.random() < 0.6:
                folder = rng.choice(("flash", "flash/lib", "flash/lib/lora", "flash/config"))
            else:
                folder = rng.choice(("sd/data", "sd/app", "sd/app/drivers"))
            size = rng.randint(1 * KIB, 20 * KIB)
        name = f"{rng.choice(WORDS)}_{tag}{i:03d}.{kind}"
        paths.append((f"{folder}/{name}", kind, size))
    return paths


def content(seed, version_tag, path, kind, size):
    rng = random.Random(f"{seed}:{version_tag}:{path}")
    if kind in ("py", "json"):
        return text_lines(rng, size, kind)
    return binary(rng, size, kind)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args()
    seed = args.seed
    rng = random.Random(f"{seed}:plan")

    base = plan_paths(rng, 200, "a")  # 1.0.0
    kept = base[:]
    rng.shuffle(kept)
    removed, kept = kept[:20], kept[20:]  # 20 paths dropped in 1.1.0
    changed = set(p for p, _, _ in kept[:80])  # 80 kept paths get new content
    added = plan_paths(rng, 20, "b")  # 20 paths only in 1.1.0

    files = {}  # relative path -> bytes
    for path, kind, size in base:
        files[f"1.0.0/{path}"] = content(seed, "1.0.0", path, kind, size)
    for path, kind, size in kept:
        if path in changed:
            # A changed file keeps roughly its size.
            new_size = max(KIB, size + rng.randint(-size // 10, size // 10))
            files[f"1.1.0/{path}"] = content(seed, "1.1.0", path, kind, new_size)
        else:
            files[f"1.1.0/{path}"] = files[f"1.0.0/{path}"]
    for path, kind, size in added:
        files[f"1.1.0/{path}"] = content(seed, "1.1.0", path, kind, size)
    files["firmware_1.0.0.bin"] = random.Random(f"{seed}:fw:1.0.0").randbytes(MIB - 12 * KIB)
    files["firmware_1.1.0.bin"] = random.Random(f"{seed}:fw:1.1.0").randbytes(MIB)

    for version in ("1.0.0", "1.1.0"):
        n = sum(1 for p in files if p.startswith(version + "/"))
        assert n == 200, (version, n)

    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    digest = hashlib.sha256()
    for rel in sorted(files):
        data = files[rel]
        dest = os.path.join(args.out, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(data)
        digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())

    def total(prefix):
        sel = [len(d) for p, d in files.items() if p.startswith(prefix)]
        return len(sel), sum(sel)

    for prefix in ("1.0.0/", "1.1.0/"):
        n, b = total(prefix)
        print(f"{prefix:8} {n} files, {b / MIB:.2f} MiB", file=sys.stderr)
    differ = len(changed) + len(added)
    print(f"1.1.0 differs from 1.0.0 in {differ} of 200 files "
          f"({len(changed)} changed, {len(added)} new, {len(removed)} deleted)", file=sys.stderr)
    print(digest.hexdigest())


if __name__ == "__main__":
    main()
