#!/usr/bin/env bash
# Peak memory of a meter applying a large firmware patch (issue 13, part 4).
#
#   bench/patch-memory.sh                          # from the repo root
#   OTAVAN_BIN=/path/to/otavan bench/patch-memory.sh   # measure a prebuilt binary
#   TARGET_MIB=64 SOURCE_MIB=4 bench/patch-memory.sh   # smaller images
#
# 1. bench/patch-van.py makes, from a fixed seed, a SOURCE_MIB image (what
#    the meter boots), a TARGET_MIB image (version 1.1.0) and a BSDIFF40
#    patch between them a few percent smaller than the target (the largest
#    patch a meter accepts is its image's size), under bench/out/patch-memory/.
# 2. It serves them on 127.0.0.1 (a free port) as a van would: the manifest
#    offers the image and the patch.
# 3. A meter is provisioned at 1.0.0 booting the source image, and
#    `otavan device update` runs under /usr/bin/time -v, REPEAT times (a
#    fresh meter each time). The patch path is taken (the downloaded bytes
#    are the patch's); the script prints peak RSS and wall time per run and
#    checks the slot holds the target image.
#
# Before the streaming patcher, the meter read the whole patch into memory
# (qbsdiff's Bspatch takes it as a slice): peak RSS grew with the patch.
# Now the patch is read from its staged file block by block: peak RSS is the
# source image (bsdiff seeks in it, so it is in memory, at most 16 MiB by
# the meter's limit) plus fixed buffers. Figures: docs/benchmarks.md.
#
# Environment (defaults):
#   OTAVAN_BIN=    a prebuilt otavan (default: cargo build --release)
#   SOURCE_MIB=16  TARGET_MIB=256  SEED=13  REPEAT=1
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=$REPO/bench/out/patch-memory
SOURCE_MIB=${SOURCE_MIB:-16}
TARGET_MIB=${TARGET_MIB:-256}
SEED=${SEED:-13}
REPEAT=${REPEAT:-1}

log() { printf '\n==> %s\n' "$*" >&2; }
die() {
  printf 'patch-memory: %s\n' "$*" >&2
  exit 1
}

command -v python3 >/dev/null || die "python3 is needed"
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is needed: apt-get install time"

if [ -z "${OTAVAN_BIN:-}" ]; then
  log "cargo build --release"
  cargo build --release --bin otavan
  OTAVAN_BIN=$REPO/target/release/otavan
fi
[ -x "$OTAVAN_BIN" ] || die "no otavan binary at $OTAVAN_BIN"

IMAGES=$OUT/images-$SOURCE_MIB-$TARGET_MIB-$SEED
if [ ! -f "$IMAGES/manifest.json" ]; then
  log "images and patch: $SOURCE_MIB MiB -> $TARGET_MIB MiB (seed $SEED)"
  python3 bench/patch-van.py make "$IMAGES" --source-mib "$SOURCE_MIB" --target-mib "$TARGET_MIB" --seed "$SEED"
fi
PATCH_BYTES=$(stat -c %s "$IMAGES/patch.bsdiff")

log "van on 127.0.0.1"
rm -f "$OUT/port"
python3 bench/patch-van.py serve "$IMAGES" "$OUT/port" &
VAN=$!
trap 'kill $VAN 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$OUT/port" ] && break; sleep 0.1; done
[ -s "$OUT/port" ] || die "the van did not start"
SERVER=http://127.0.0.1:$(cat "$OUT/port")

printf '\n| run | patch MiB | downloaded bytes | peak RSS MiB | wall s |\n|---|---|---|---|---|\n'
for run in $(seq "$REPEAT"); do
  METER=$OUT/meter
  rm -rf "$METER" && mkdir -p "$METER"
  "$OTAVAN_BIN" device init --root "$METER" --version 1.0.0 --firmware "$IMAGES/source.bin" >/dev/null
  /usr/bin/time -v -o "$OUT/time.txt" "$OTAVAN_BIN" device update --root "$METER" \
    --server "$SERVER" --device-id bench >"$OUT/update.txt" 2>"$OUT/update.err" ||
    die "update failed: $(cat "$OUT/update.err")"
  DOWNLOADED=$(sed -n 's/.*(\([0-9]*\) bytes downloaded.*/\1/p' "$OUT/update.txt")
  RSS_KB=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$OUT/time.txt")
  WALL=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$OUT/time.txt")
  [ "$DOWNLOADED" = "$PATCH_BYTES" ] || die "run $run downloaded $DOWNLOADED bytes, not the patch's $PATCH_BYTES"
  cmp -s "$METER/.otavan/slots/b.bin" "$IMAGES/target.bin" || die "run $run: slot b is not the target image"
  printf '| %s | %s | %s | %s | %s |\n' "$run" "$((PATCH_BYTES / 1048576))" "$DOWNLOADED" \
    "$((RSS_KB / 1024))" "$WALL"
done
rm -rf "$OUT/meter"
