#!/usr/bin/env python3
"""A van that offers one large firmware patch, for bench/patch-memory.sh.

  patch-van.py make DIR [--source-mib 16] [--target-mib 256] [--seed 13]
  patch-van.py serve DIR PORT_FILE

`make` writes into DIR: source.bin (the image the meter boots), target.bin
(the image of version 1.1.0: random bytes below 200, so bzip2 cannot shrink
them much), patch.bsdiff (a BSDIFF40 patch from source to target made by
hand: one control copying the whole target from the extra block; a few
percent smaller than the target, so a meter accepts it) and manifest.json
(1.0.0 -> 1.1.0: the firmware and its patch, no files).

`serve` answers GET /manifest.json, GET /firmware_1.1.0.bin, GET
/patch.bsdiff (whole files, streamed) and POST /report (204) on 127.0.0.1,
on a free port it writes to PORT_FILE.
"""

import bz2
import hashlib
import http.server
import json
import random
import shutil
import struct
import sys
from pathlib import Path

CHUNK = 1 << 20


def bsdiff_int(x):
    return struct.pack("<Q", x if x >= 0 else (-x) | (1 << 63))


def digests(path):
    sha1, sha256 = hashlib.sha1(), hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            sha1.update(block)
            sha256.update(block)
    return sha1.hexdigest(), sha256.hexdigest(), path.stat().st_size


def make(out, source_mib, target_mib, seed):
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with open(out / "source.bin", "wb") as f:
        for _ in range(source_mib):
            f.write(rng.randbytes(CHUNK))
    target = out / "target.bin"
    extra = out / "extra.bz2"
    compressor = bz2.BZ2Compressor(9)
    below_200 = bytes(i % 200 for i in range(256))
    with open(target, "wb") as t, open(extra, "wb") as e:
        for _ in range(target_mib):
            block = rng.randbytes(CHUNK).translate(below_200)
            t.write(block)
            e.write(compressor.compress(block))
        e.write(compressor.flush())
    size = target.stat().st_size
    controls = bz2.compress(bsdiff_int(0) + bsdiff_int(size) + bsdiff_int(0), 9)
    diff = bz2.compress(b"", 9)
    patch = out / "patch.bsdiff"
    with open(patch, "wb") as p:
        p.write(b"BSDIFF40" + bsdiff_int(len(controls)) + bsdiff_int(len(diff)) + bsdiff_int(size))
        p.write(controls + diff)
        with open(extra, "rb") as e:
            shutil.copyfileobj(e, p, CHUNK)
    extra.unlink()
    image_sha1, image_sha256, image_size = digests(target)
    patch_sha1, patch_sha256, patch_size = digests(patch)
    _, source_sha256, _ = digests(out / "source.bin")
    if patch_size > image_size:
        sys.exit(f"the patch ({patch_size} bytes) is larger than the image ({image_size})")
    manifest = {
        "delete": [],
        "new": [],
        "update": [],
        "version": "1.1.0",
        "previous_version": "1.0.0",
        "firmware": {
            "URL": "http://van/firmware_1.1.0.bin",
            "hash": image_sha1,
            "sha256": image_sha256,
            "size": image_size,
            "patch": {
                "URL": "http://van/patch.bsdiff",
                "source_sha256": source_sha256,
                "hash": patch_sha1,
                "sha256": patch_sha256,
                "size": patch_size,
            },
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    print(f"image {image_size} bytes, patch {patch_size} bytes, source {source_mib} MiB")


def serve(out, port_file):
    files = {
        "/manifest.json": out / "manifest.json",
        "/firmware_1.1.0.bin": out / "target.bin",
        "/patch.bsdiff": out / "patch.bsdiff",
    }

    class Van(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            path = files.get(self.path.split("?")[0])
            if path is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            with open(path, "rb") as f:
                shutil.copyfileobj(f, self.wfile, CHUNK)

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Van)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        args = sys.argv[3:]
        option = lambda name, default: int(args[args.index(name) + 1]) if name in args else default
        make(Path(sys.argv[2]), option("--source-mib", 16), option("--target-mib", 256), option("--seed", 13))
    elif len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(Path(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
