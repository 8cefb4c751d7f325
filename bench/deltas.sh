#!/usr/bin/env bash
# Firmware deltas: otavan's bsdiff patches vs Python's bsdiff4 (issue 4).
#
#   bench/deltas.sh                 # from the repo root; ~1 minute after the build
#   REPEAT=3 bench/deltas.sh        # median time of 3 runs per tool and pair
#   OTAVAN_BIN=/path/to/otavan bench/deltas.sh   # measure a prebuilt binary
#
# 1. Installs bsdiff4 from PyPI into a venv (bench/out/venv; falls back to
#    `pip install --user` if the venv cannot be made) and checks the import.
# 2. Builds otavan (`cargo build --release`, retried if the working tree is
#    mid-edit) and measures a private copy of the binary
#    (bench/out/otavan-deltas-bin), so a rebuild elsewhere cannot swap it.
# 3. bench/make-images.py generates, from a fixed seed, 6 ESP32-like image
#    pairs in bench/out/deltas/: 1 MiB and 4 MiB, each with (a) a small
#    change, (b) a 2 KiB insertion near the start with relocated addresses,
#    (c) 20% of the image replaced.
# 4. bench/measure-deltas.py runs `otavan release diff` and bsdiff4.diff on
#    every pair, checks with bsdiff4.patch that both patches rebuild the new
#    image, and prints Markdown tables, also written to bench/out/deltas.md
#    (raw figures: bench/out/deltas.json; patches: bench/out/deltas/patches/).
#
# Environment (defaults):
#   REPEAT=1          timed runs per tool and pair (the table shows medians)
#   OTAVAN_BIN=       a prebuilt otavan instead of building the working tree;
#                     OTAVAN_COMMIT=  its label in the report
#   BUILD_TRIES=5     cargo build attempts, BUILD_WAIT=60 s apart
#   STRICT_GOALS=0    1: exit 4 when a pair misses the goal (ratio > 1.05)
#   SEED=4            image generator seed
# Exits 2 if a patch does not rebuild its image.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=$REPO/bench/out
PAIRS=$OUT/deltas
VENV=$OUT/venv
REPEAT=${REPEAT:-1}
BUILD_TRIES=${BUILD_TRIES:-5}
BUILD_WAIT=${BUILD_WAIT:-60}
STRICT_GOALS=${STRICT_GOALS:-0}
SEED=${SEED:-4}

log() { printf '\n==> %s\n' "$*" >&2; }
die() {
  printf 'deltas: %s\n' "$*" >&2
  exit 1
}

mkdir -p "$OUT"
command -v python3 >/dev/null || die "python3 is needed"

log "bsdiff4 (PyPI)"
PY=
if [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" 2>/dev/null; then
  PY=$VENV/bin/python
  "$PY" -c 'import bsdiff4' 2>/dev/null || "$PY" -m pip install --quiet bsdiff4 ||
    die "pip install bsdiff4 failed in $VENV"
else
  rm -rf "$VENV"
  PY=$(command -v python3)
  "$PY" -c 'import bsdiff4' 2>/dev/null || "$PY" -m pip install --quiet --user bsdiff4 ||
    die "pip install --user bsdiff4 failed"
fi
"$PY" -c 'import bsdiff4; print("bsdiff4", bsdiff4.__version__, "from", bsdiff4.__file__)' ||
  die "bsdiff4 does not import"

BIN=$OUT/otavan-deltas-bin
if [ -n "${OTAVAN_BIN:-}" ]; then
  log "using $OTAVAN_BIN"
  [ "$OTAVAN_BIN" -ef "$BIN" ] || cp "$OTAVAN_BIN" "$BIN"
else
  log "cargo build --release"
  command -v cargo >/dev/null || die "cargo is needed (or set OTAVAN_BIN)"
  try=1
  until cargo build --release --quiet; do
    [ "$try" -lt "$BUILD_TRIES" ] || die "cargo build --release failed $try times"
    printf 'build failed (working tree mid-edit?); retrying in %s s\n' "$BUILD_WAIT" >&2
    sleep "$BUILD_WAIT"
    try=$((try + 1))
  done
  cp target/release/otavan "$BIN"
fi
"$BIN" release diff --help >/dev/null 2>&1 || die "$BIN has no 'release diff' subcommand"

log "generating image pairs in ${PAIRS#"$REPO"/}"
digest=$(python3 bench/make-images.py "$PAIRS" --seed "$SEED")
printf 'images digest %s\n' "$digest" >&2

log "measuring (REPEAT=$REPEAT)"
status=0
"$PY" bench/measure-deltas.py "$PAIRS" "$BIN" "$OUT/deltas.md" --repeat "$REPEAT" || status=$?
[ "$status" -eq 0 ] || exit "$status"
if [ -n "${OTAVAN_BIN:-}" ]; then
  built="prebuilt $OTAVAN_BIN${OTAVAN_COMMIT:+ ($OTAVAN_COMMIT)}"
else
  built="built from $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  [ -z "$(git status --porcelain -- src server client protocol Cargo.toml Cargo.lock 2>/dev/null)" ] ||
    built="$built + uncommitted changes"
fi
printf '\nImages digest (seed %s): %s. otavan: %s.\n' "$SEED" "$digest" "$built" | tee -a "$OUT/deltas.md"

if [ "$STRICT_GOALS" = 1 ] && grep -q '| FAIL |' "$OUT/deltas.md"; then
  printf 'deltas: a pair misses the goal (otavan patch > 1.05 x bsdiff4)\n' >&2
  exit 4
fi
