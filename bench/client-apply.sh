#!/usr/bin/env bash
# Client apply benchmark (issue 3): a meter updates to a release of 1,000
# files plus a 100 MiB firmware image from a real `otavan serve` on
# loopback. Reports the client's peak RSS and its throughput against plain
# `cp` of the same bytes (also `cp` + `sync`, since the client fsyncs), and
# against like-for-like pipelines of standard tools: the same bytes copied
# (or downloaded with curl from the same server, four requests in flight
# like the client), made durable with `sync` and read back through SHA-1
# and SHA-256 (the two side by side, like the client).
#
# Usage: bench/client-apply.sh        (FILES=1000 IMAGE_MIB=100 RUNS=3)
#
# Environment: FILES, IMAGE_MIB, RUNS as above; QUIET_WAIT=60 (before each
# timed command, wait up to this many seconds for the machine to be < 15%
# busy, e.g. a build elsewhere); OTAVAN_BIN (a prebuilt otavan to measure
# instead of building the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-1000}
IMAGE_MIB=${IMAGE_MIB:-100}
RUNS=${RUNS:-3}
QUIET_WAIT=${QUIET_WAIT:-60}
OUT=bench/out/client
mkdir -p "$OUT"

die() {
  printf 'client-apply: %s\n' "$*" >&2
  exit 1
}

# Run a private copy: the working tree may be rebuilt during the run.
BIN=$OUT/otavan-bin
if [[ -n ${OTAVAN_BIN:-} ]]; then
  [[ -x $OTAVAN_BIN ]] || die "OTAVAN_BIN=$OTAVAN_BIN is not an executable"
  cp "$OTAVAN_BIN" "$BIN"
else
  cargo build --release --quiet
  cp target/release/otavan "$BIN"
fi

python3 - "$OUT/tree" "$FILES" "$IMAGE_MIB" <<'PY'
import os, random, shutil, sys
root, files, image_mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
marker = os.path.join(root, f".made-{files}-{image_mib}")
if os.path.exists(marker):
    sys.exit(0)
# A tree made with other parameters would leave stray files behind.
shutil.rmtree(root, ignore_errors=True)
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
# A fresh report database: one left by another otavan version may not match
# this one's schema (every POST /report then fails with 500).
rm -f "$OUT"/van.db*
"$BIN" serve --root "$OUT/tree" --bind 127.0.0.1 --port "$PORT" --db "$OUT/van.db" --preload-mib 0 2>"$OUT/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
# Indexing hashes every file (the 100 MiB image included) and, the first
# time, computes a firmware patch 1.0.0 -> 1.1.0 (~13 s here; cached in
# ./otavan-patches/ afterwards): allow 60 s.
for i in $(seq 600); do
  curl -sf "http://127.0.0.1:$PORT/manifest.json" >/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || die "the server died; see $OUT/server.log"
  ((i < 600)) || die "the server did not answer in 60 s; see $OUT/server.log"
  sleep 0.1
done

wait_quiet() { # up to QUIET_WAIT s for the machine to be < 15% busy over 1 s
  python3 - "$QUIET_WAIT" <<'PY'
import sys, time
def cpu():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(v[:8]) - v[3] - v[4], sum(v[:8])
deadline = time.monotonic() + float(sys.argv[1])
while True:
    a = cpu(); time.sleep(1); b = cpu()
    busy = 100 * (b[0] - a[0]) / max(1, b[1] - a[1])
    if busy < 15:
        break
    if time.monotonic() > deadline:
        print(f"  warning: machine still {busy:.0f}% busy; measuring anyway", file=sys.stderr)
        break
PY
}

# The reference pipelines' hashing: OpenSSL (SHA-NI, like the client's
# hashes) when installed, else coreutils.
if command -v openssl >/dev/null; then
  SHA1="openssl dgst -sha1" SHA256="openssl dgst -sha256" HASHER=openssl
else
  SHA1=sha1sum SHA256=sha256sum HASHER=coreutils
fi
# SHA-1 and SHA-256 of every file under a directory, the two side by side.
read_back() {
  printf "{ find '%s' -type f -print0 | xargs -0 %s >/dev/null & find '%s' -type f -print0 | xargs -0 %s >/dev/null; s=\$?; wait \$! && [ \$s = 0 ]; }" "$1" "$SHA1" "$1" "$SHA256"
}
# curl fetches the release's 1,001 URLs, as the client does.
{
  (cd "$OUT/tree/1.1.0" && find . -type f | sed 's|^\./||' | sort) | while read -r rel; do
    printf 'url = "http://127.0.0.1:%s/1.1.0/%s"\noutput = "%s/dl/%s"\n' "$PORT" "$rel" "$OUT" "$rel"
  done
  printf 'url = "http://127.0.0.1:%s/firmware_1.1.0.bin"\noutput = "%s/dl/firmware_1.1.0.bin"\n' "$PORT" "$OUT"
} >"$OUT/curl.cfg"
CURL="curl -sf --create-dirs --parallel --parallel-max 4 -K '$OUT/curl.cfg'"

# The payload: file contents only (du -sb would add the directories' sizes).
BYTES=$(( $(find "$OUT/tree/1.1.0" -type f -printf '%s\n' | awk '{s += $1} END {print s}') + $(stat -c %s "$OUT/tree/firmware_1.1.0.bin") ))
FW_SHA1=$(sha1sum <"$OUT/tree/firmware_1.1.0.bin" | cut -d' ' -f1)
results=()
for run in $(seq "$RUNS"); do
  rm -rf "$OUT/meter" "$OUT/cp"
  mkdir -p "$OUT/meter/flash" "$OUT/cp"
  cp "$OUT/tree/1.0.0/flash/main.py" "$OUT/meter/flash/"
  "$BIN" device init --root "$OUT/meter" --version 1.0.0 --firmware "$OUT/tree/firmware_1.0.0.bin" >/dev/null
  wait_quiet
  update=$(python3 bench/measure.py -- "$BIN" device update --root "$OUT/meter" --server "http://127.0.0.1:$PORT" --device-id bench) || {
    tail -n 20 "$OUT/server.log" >&2
    die "run $run: the update failed ($update)"
  }
  # The timed update must really have installed 1.1.0: same files, new image booted.
  status=$("$BIN" device status --root "$OUT/meter" --json)
  python3 -c 'import json,sys; s=json.loads(sys.argv[1]); sys.exit(s["version"] != "1.1.0" or s["firmware_sha1"] != sys.argv[2])' "$status" "$FW_SHA1" ||
    die "run $run: the meter is not at 1.1.0 with the new image: $status"
  diff -r --exclude=.otavan "$OUT/tree/1.1.0" "$OUT/meter" >/dev/null ||
    die "run $run: the meter's files differ from $OUT/tree/1.1.0"
  wait_quiet
  cp_plain=$(python3 bench/measure.py -- sh -c "cp -r '$OUT/tree/1.1.0/.' '$OUT/cp/' && cp '$OUT/tree/firmware_1.1.0.bin' '$OUT/cp/'")
  rm -rf "$OUT/cp"; mkdir -p "$OUT/cp"
  wait_quiet
  cp_sync=$(python3 bench/measure.py -- sh -c "cp -r '$OUT/tree/1.1.0/.' '$OUT/cp/' && cp '$OUT/tree/firmware_1.1.0.bin' '$OUT/cp/' && sync")
  rm -rf "$OUT/cp"; mkdir -p "$OUT/cp"
  wait_quiet
  cp_hash=$(python3 bench/measure.py -- sh -c "cp -r '$OUT/tree/1.1.0/.' '$OUT/cp/' && cp '$OUT/tree/firmware_1.1.0.bin' '$OUT/cp/' && sync && $(read_back "$OUT/cp")")
  rm -rf "$OUT/dl"
  wait_quiet
  curl_plain=$(python3 bench/measure.py -- sh -c "$CURL 2>/dev/null")
  rm -rf "$OUT/dl"
  wait_quiet
  curl_hash=$(python3 bench/measure.py -- sh -c "$CURL 2>/dev/null && sync && $(read_back "$OUT/dl")")
  # The references must have moved the same bytes.
  cmp -s "$OUT/dl/firmware_1.1.0.bin" "$OUT/tree/firmware_1.1.0.bin" &&
    diff -r "$OUT/tree/1.1.0" "$OUT/dl" --exclude=firmware_1.1.0.bin >/dev/null ||
    die "run $run: curl did not download the release (see $OUT/curl.cfg)"
  results+=("$update|$cp_plain|$cp_sync|$cp_hash|$curl_plain|$curl_hash")
done
rm -rf "$OUT/cp" "$OUT/dl"

python3 - "$BYTES" "$FILES" "$IMAGE_MIB" "$HASHER" "${results[@]}" <<'PY'
import json, statistics, sys
nbytes, files, image_mib, hasher = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
runs = [[json.loads(part) for part in r.split("|")] for r in sys.argv[5:]]
for run in runs:
    assert all(m["exit"] == 0 for m in run), f"a timed command failed: {run}"
def median(i):
    return statistics.median(r[i]["wall_s"] for r in runs)
mib = nbytes / 2**20
rows = [
    "otavan device update (HTTP download, verify, apply, flash, read back)",
    "cp of the same bytes",
    "cp + sync",
    f"cp + sync + SHA-1 and SHA-256 of the copies ({hasher}, side by side)",
    "curl of the same 1,001 URLs from the same server, 4 in flight",
    f"curl + sync + SHA-1 and SHA-256 of the downloads ({hasher}, side by side)",
]
up = median(0)
rss = max(r[0]["max_rss_kib"] for r in runs) / 1024
print(f"## Client apply: {files} files + {image_mib} MiB image ({mib:.1f} MiB), median of {len(runs)} runs\n")
print("| what | wall s | MiB/s | client / it |")
print("|---|---|---|---|")
for i, label in enumerate(rows):
    t = median(i)
    ratio = "1.00" if i == 0 else f"{t/up:.2f}"
    print(f"| {label} | {t:.2f} | {mib/t:.0f} | {ratio} |")
print("\nper run (wall s: update / cp / cp + sync / cp + sync + hashes / curl / curl + sync + hashes; update peak RSS):")
for i, run in enumerate(runs, 1):
    walls = " / ".join(f"{m['wall_s']:.2f}" for m in run)
    u = run[0]
    print(f"  run {i}: {walls}; {u['max_rss_kib'] / 1024:.1f} MiB ({u.get('rss_source', 'rusage')})")
cp, cps, cph, curl, curlh = (median(i) for i in range(1, 6))
print(f"\nclient peak RSS: {rss:.1f} MiB (goal < 32 MiB: {'PASS' if rss < 32 else 'FAIL'})")
print(f"throughput vs cp: {cp/up:.2f}x (goal >= 0.5x: {'PASS' if cp/up >= 0.5 else 'FAIL'}); vs cp+sync: {cps/up:.2f}x")
print(f"like for like: vs cp+sync+hashes {cph/up:.2f}x; vs curl alone {curl/up:.2f}x; vs curl+sync+hashes {curlh/up:.2f}x")
PY
