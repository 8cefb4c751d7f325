#!/usr/bin/env bash
# Rehearsal benchmark (issues 6 and 7): wall time, peak RSS and events/s of
# `otavan rehearse` on examples/town.toml and examples/city.toml, and of a
# live rehearsal of 2,000 real meters through the town.
#
# Usage: bench/rehearse.sh            (RUNS=3)
#
# Environment: RUNS (3); OTAVAN_BIN (a prebuilt otavan instead of building
# the working tree). Goals: city <= 60 s wall and <= 2 GiB peak RSS on 2
# cores; town in a few seconds; 2,000 live meters <= 120 s wall.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
OUT=bench/out/rehearse
mkdir -p "$OUT"
BIN=$OUT/otavan-bin
if [[ -n ${OTAVAN_BIN:-} ]]; then
  cp "$OTAVAN_BIN" "$BIN"
else
  cargo build --release --quiet
  cp target/release/otavan "$BIN"
fi
nproc_now=$(nproc)
results=()
run() { # NAME SCENARIO [ARGS...]
  local name=$1 scenario=$2
  shift 2
  for run in $(seq "$RUNS"); do
    measured=$(python3 bench/measure.py -- sh -c 'b=$0 s=$1 o=$2 p=$3; shift 3; "$b" rehearse "$s" --out "$o" --patch-cache "$p" "$@" >"$o.stdout" 2>"$o.stderr"' \
      "$BIN" "examples/$scenario.toml" "$OUT/$name" "$OUT/patches" "$@")
    events=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["events"])' "$OUT/$name/report.json")
    results+=("$name|$measured|$events")
  done
}
run town town
run city city
run town-live-2000 town --live --meters 2000
python3 - "$nproc_now" "${results[@]}" <<'PY'
import json, statistics, sys
cores = sys.argv[1]
runs = {}
for r in sys.argv[2:]:
    name, measured, events = r.split("|")
    m = json.loads(measured)
    assert m["exit"] == 0, f"{name} failed; see bench/out/rehearse/{name}.stderr"
    runs.setdefault(name, []).append((m["wall_s"], m["max_rss_kib"] / 1024, int(events)))
print(f"## otavan rehearse, {cores} cores, median of {len(next(iter(runs.values())))} runs\n")
print("| scenario | events | wall s | events/s | peak RSS MiB |")
print("|---|---:|---:|---:|---:|")
for name, rs in runs.items():
    wall = statistics.median(w for w, _, _ in rs)
    rss = max(r for _, r, _ in rs)
    events = rs[0][2]
    assert all(e == events for _, _, e in rs), "event counts differ between runs"
    print(f"| {name} | {events:,} | {wall:.2f} | {events / wall:,.0f} | {rss:.0f} |")
live = runs.get("town-live-2000")
if live:
    wall = statistics.median(w for w, _, _ in live)
    print(f"\n2,000 live meters: {wall:.1f} s (goal <= 120 s: {'PASS' if wall <= 120 else 'FAIL'})")
city = runs.get("city")
if city:
    wall = statistics.median(w for w, _, _ in city)
    rss = max(r for _, r, _ in city)
    print(f"\ncity: {wall:.1f} s (goal <= 60 s: {'PASS' if wall <= 60 else 'FAIL'}), "
          f"{rss:.0f} MiB (goal <= 2048 MiB: {'PASS' if rss <= 2048 else 'FAIL'})")
PY
