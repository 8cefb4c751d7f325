#!/usr/bin/env bash
# Client apply benchmark (issue 3): a meter updates to a release of 1,000
# files plus a 100 MiB firmware image from a real `otavan serve` on
# loopback. Reports the client's peak RSS and its throughput against plain
# `cp` of the same bytes (also `cp` + `sync`, since the client fsyncs).
#
# Usage: bench/client-apply.sh        (FILES=1000 IMAGE_MIB=100 RUNS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-1000}
IMAGE_MIB=${IMAGE_MIB:-100}
RUNS=${RUNS:-3}
OUT=bench/out/client
mkdir -p "$OUT"

cargo build --release --quiet
BIN=target/release/otavan

python3 - "$OUT/tree" "$FILES" "$IMAGE_MIB" <<'PY'
import os, random, sys
root, files, image_mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
marker = os.path.join(root, f".made-{files}-{image_mib}")
if os.path.exists(marker):
    sys.exit(0)
rng = random.Random(3)
def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
write(f"{root}/1.0.0/flash/main.py", b"print('1.0.0')\n")
write(f"{root}/firmware_1.0.0.bin", rng.randbytes(64 * 1024))
for i in range(files):
    size = rng.choice([512, 2048, 4096, 8192, 16384])
    folder = "flash/lib" if i % 2 else "sd/data"
    write(f"{root}/1.1.0/{folder}/d{i % 20}/file{i}.bin", rng.randbytes(size))
chunk = rng.randbytes(1024 * 1024)
with open(f"{root}/firmware_1.1.0.bin", "wb") as f:
    for i in range(image_mib):
        f.write(bytes([i % 256]) + chunk[1:])
open(marker, "w").close()
PY

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --root "$OUT/tree" --bind 127.0.0.1 --port "$PORT" --db "$OUT/van.db" --preload-mib 0 2>"$OUT/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/manifest.json" >/dev/null && break; sleep 0.1; done

BYTES=$(( $(du -sb "$OUT/tree/1.1.0" | cut -f1) + $(stat -c %s "$OUT/tree/firmware_1.1.0.bin") ))
results=()
for run in $(seq "$RUNS"); do
  rm -rf "$OUT/meter" "$OUT/cp"
  mkdir -p "$OUT/meter/flash" "$OUT/cp"
  cp "$OUT/tree/1.0.0/flash/main.py" "$OUT/meter/flash/"
  "$BIN" device init --root "$OUT/meter" --version 1.0.0 --firmware "$OUT/tree/firmware_1.0.0.bin" >/dev/null
  update=$(python3 bench/measure.py -- "$BIN" device update --root "$OUT/meter" --server "http://127.0.0.1:$PORT" --device-id bench)
  cp_plain=$(python3 bench/measure.py -- sh -c "cp -r '$OUT/tree/1.1.0/.' '$OUT/cp/' && cp '$OUT/tree/firmware_1.1.0.bin' '$OUT/cp/'")
  rm -rf "$OUT/cp"; mkdir -p "$OUT/cp"
  cp_sync=$(python3 bench/measure.py -- sh -c "cp -r '$OUT/tree/1.1.0/.' '$OUT/cp/' && cp '$OUT/tree/firmware_1.1.0.bin' '$OUT/cp/' && sync")
  results+=("$update|$cp_plain|$cp_sync")
done

python3 - "$BYTES" "$FILES" "$IMAGE_MIB" "${results[@]}" <<'PY'
import json, statistics, sys
nbytes, files, image_mib = int(sys.argv[1]), sys.argv[2], sys.argv[3]
runs = [[json.loads(part) for part in r.split("|")] for r in sys.argv[4:]]
for update, _, _ in runs:
    assert update["exit"] == 0, "the update failed; see bench/out/client/server.log"
def median(i, key):
    return statistics.median(r[i][key] for r in runs)
mib = nbytes / 2**20
up, cp, cps = median(0, "wall_s"), median(1, "wall_s"), median(2, "wall_s")
rss = max(r[0]["max_rss_kib"] for r in runs) / 1024
print(f"## Client apply: {files} files + {image_mib} MiB image ({mib:.1f} MiB), median of {len(runs)} runs\n")
print("| what | wall s | MiB/s | client / it |")
print("|---|---|---|---|")
print(f"| otavan device update (HTTP download, verify, apply, flash, read back) | {up:.2f} | {mib/up:.0f} | 1.00 |")
print(f"| cp of the same bytes | {cp:.2f} | {mib/cp:.0f} | {cp/up:.2f} |")
print(f"| cp + sync | {cps:.2f} | {mib/cps:.0f} | {cps/up:.2f} |")
print(f"\nclient peak RSS: {rss:.1f} MiB (goal < 32 MiB: {'PASS' if rss < 32 else 'FAIL'})")
print(f"throughput vs cp: {cp/up:.2f}x (goal >= 0.5x: {'PASS' if cp/up >= 0.5 else 'FAIL'}); vs cp+sync: {cps/up:.2f}x")
PY
