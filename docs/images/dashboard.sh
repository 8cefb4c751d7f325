#!/usr/bin/env bash
# Regenerates docs/images/dashboard.png: a real `otavan serve` on the
# sample release (plus one large file so downloads stay in flight), 60
# meters' reports posted with curl, two throttled downloads running, and
# headless Chromium's screenshot of http://127.0.0.1:PORT/.
#
#   docs/images/dashboard.sh                 # from the repository root
#   OTAVAN_BIN=target/release/otavan docs/images/dashboard.sh
#
# Needs curl and Chromium (`.ci/setup` installs Chromium). Everything runs
# on 127.0.0.1 and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=docs/images/dashboard.png
BIN=${OTAVAN_BIN:-}
if [[ -z $BIN ]]; then
  cargo build --release --quiet
  BIN=target/release/otavan
fi
command -v chromium >/dev/null || { echo "chromium missing: run .ci/setup" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cp -r examples/releases "$WORK/release"
head -c $((64 * 1024 * 1024)) /dev/zero >"$WORK/release/1.1.0/sd/recording.bin"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUST_LOG=warn "$BIN" serve --root "$WORK/release" --bind 127.0.0.1 --port "$PORT" \
  --db "$WORK/van.db" --patch-cache "$WORK/patches" --van-id van-north-2 \
  --preload-mib 0 &
PIDS+=($!)
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$URL/metrics" >/dev/null && break; sleep 0.1; done

post() { # device state [error]
  local error=""
  [[ -n ${3:-} ]] && error=",\"error\":\"$3\""
  curl -sf -X POST "$URL/report" \
    -d "{\"device_id\":\"$1\",\"from_version\":\"1.0.0\",\"to_version\":\"1.1.0\",\"state\":\"$2\"$error}"
}
for m in $(seq 1 60); do
  id=$(printf '70B3D57ED00%05X' "$m")
  post "$id" DOWNLOADING
  case $((m % 12)) in
    0) post "$id" FAILED "sha1 mismatch for /flash/lib/meter.py" ;;
    5) post "$id" FAILED "connection cut after 412 KiB (van out of range)" ;;
    1 | 2) ;; # still downloading
    3) post "$id" DOWNLOADED; post "$id" VERIFIED ;;
    4) post "$id" DOWNLOADED; post "$id" VERIFIED; post "$id" UPDATING ;;
    *) for s in DOWNLOADED VERIFIED UPDATING UPDATED; do post "$id" "$s"; done ;;
  esac
done
# Two meters downloading at WiFi-at-the-kerb speeds.
curl -s --limit-rate 180k -o /dev/null "$URL/1.1.0/sd/recording.bin" &
PIDS+=($!)
curl -s --limit-rate 420k -o /dev/null "$URL/1.1.0/sd/recording.bin" -H "Range: bytes=1048576-" &
PIDS+=($!)
sleep 3

PROFILE="$WORK/chromium"
chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --disable-quic \
  --user-data-dir="$PROFILE" --hide-scrollbars --window-size=1280,1000 \
  --screenshot="$PWD/$OUT" "$URL/" 2>/dev/null
echo "wrote $OUT"
