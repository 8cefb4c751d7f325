#!/usr/bin/env bash
# Rehearsal benchmark (issue 6): wall time, peak RSS and events/s of
# `otavan rehearse` on examples/town.toml and examples/city.toml.
#
# Usage: bench/rehearse.sh            (RUNS=3)
#
# Environment: RUNS (3); OTAVAN_BIN (a prebuilt otavan instead of building
# the working tree). Goals: city <= 60 s wall and <= 2 GiB peak RSS on 2
# cores; town in a few seconds.
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
for scenario in town city; do
  for run in $(seq "$RUNS"); do
    measured=$(python3 bench/measure.py -- sh -c '"$0" rehearse "$1" --out "$2" --patch-cache "$3" >"$2.stdout" 2>"$2.stderr"' \
      "$BIN" "examples/$scenario.toml" "$OUT/$scenario" "$OUT/patches")
    events=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["events"])' "$OUT/$scenario/report.json")
    results+=("$scenario|$measured|$events")
  done
done
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
city = runs.get("city")
if city:
    wall = statistics.median(w for w, _, _ in city)
    rss = max(r for _, r, _ in city)
    print(f"\ncity: {wall:.1f} s (goal <= 60 s: {'PASS' if wall <= 60 else 'FAIL'}), "
          f"{rss:.0f} MiB (goal <= 2048 MiB: {'PASS' if rss <= 2048 else 'FAIL'})")
PY
