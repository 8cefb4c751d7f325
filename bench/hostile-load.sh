#!/usr/bin/env bash
# Hostile-load benchmark (issue 14): one `otavan serve` with default limits,
# and at the same time 1,000 meters downloading the 1 MiB firmware at
# 40-130 kB/s, 500 idle or slow-reading connections, a cache filler with
# 10,000 distinct current_ver and Host values, 200 junk reporters and a
# latency probe (the driver: server/benches/hostile_load/).
#
#   bench/hostile-load.sh                  # from anywhere in the repo; ~2 minutes
#   DURATION=30 METERS=300 bench/hostile-load.sh
#
# Builds otavan (release) and the driver, generates the release tree with
# bench/make-tree.py, starts the server on a free 127.0.0.1 port, samples its
# VmRSS every 100 ms for the whole run, runs the driver, stops the server
# and checks the report store with sqlite3. Prints a Markdown table of
# figures and goals, also written to bench/out/hostile-load.md. Every
# process it starts is stopped on exit, failure included. Only 127.0.0.0/8
# is targeted.
#
# Environment (defaults):
#   DURATION=60  seconds during which meters start updates
#   METERS=1000 HOSTILE=500 FILLER=10000 JUNK=200 SEED=1 RAMP=10
#   STRICT_GOALS=0   1: exit 4 when a goal is missed
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=$(pwd)/bench/out # absolute: cargo bench runs the driver in server/
TREE=$OUT/hostile-tree
RUN=$OUT/hostile-run
DURATION=${DURATION:-60}
METERS=${METERS:-1000}
HOSTILE=${HOSTILE:-500}
FILLER=${FILLER:-10000}
JUNK=${JUNK:-200}
SEED=${SEED:-1}
RAMP=${RAMP:-10}
STRICT_GOALS=${STRICT_GOALS:-0}

log() { printf '\n==> %s\n' "$*" >&2; }
die() {
  printf 'hostile-load: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------- cleanup
SERVER_PID=""
SAMPLER_PID=""
CONNS_PID=""
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in $SAMPLER_PID $CONNS_PID $SERVER_PID; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for _ in $(seq 50); do
    [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  for pid in $SAMPLER_PID $CONNS_PID $SERVER_PID; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v python3 >/dev/null || die "python3 is needed"
command -v curl >/dev/null || die "curl is needed"
command -v sqlite3 >/dev/null || die "sqlite3 is needed (apt-get install sqlite3)"

# ~2,700 client sockets in the driver, as many in the server.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) >= 8192)) || die "ulimit -n is $(ulimit -n); need 8192+"

# ---------------------------------------------------------------- build
log "building otavan (release) and the driver"
cargo build --release --locked --quiet -p otavan
cargo bench --locked --quiet -p otavan-server --bench hostile_load --no-run 2>/dev/null
mkdir -p "$OUT"
rm -rf "$RUN" "$OUT/hostile-load.md"
mkdir -p "$RUN"
OTAVAN=$RUN/otavan
cp target/release/otavan "$OTAVAN" # a private copy: target/ may be rebuilt meanwhile
COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

log "generating the release tree in $TREE"
python3 bench/make-tree.py "$TREE" >/dev/null

# ---------------------------------------------------------------- server
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log "starting otavan serve on 127.0.0.1:$PORT (default limits)"
"$OTAVAN" serve --root "$TREE" --bind 127.0.0.1 --port "$PORT" --db "$RUN/van.db" \
  --patch-cache "$RUN/patches" </dev/null >"$RUN/server.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 600); do
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/manifest.json" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "the server died: $(tail -5 "$RUN/server.log")"
  ((i < 600)) || die "no answer from the server after 60 s"
  sleep 0.1
done

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }
RSS_IDLE=$(rss_kib "$SERVER_PID")
(
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    rss_kib "$SERVER_PID"
    sleep 0.1
  done
) >"$RUN/rss.txt" &
SAMPLER_PID=$!
# SYNs the listen queue dropped (system-wide counter; nothing else should
# be connecting during the run).
listen_overflows() {
  awk '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) n[i] = $i; h = 1 }
    else for (i = 1; i <= NF; i++) if (n[i] == "ListenOverflows") print $i }' /proc/net/netstat
}
# Every 0.5 s: the server's established connections, all its connections
# (closing ones whose response still sits in the kernel's send buffer
# included), bytes queued in its send buffers, ListenOverflows.
(
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    ss -Htn "( sport = :$PORT )" |
      awk -v o="$(listen_overflows)" '{ all++; q += $3 } $1 == "ESTAB" { est++ }
        END { print est + 0, all + 0, q + 0, o }'
    sleep 0.5
  done
) >"$RUN/connections.txt" &
CONNS_PID=$!
OVERFLOWS_BEFORE=$(listen_overflows)

# ---------------------------------------------------------------- load
log "driving: $METERS meters for ${DURATION}s, $HOSTILE hostile, $FILLER filler requests, $JUNK junk reporters"
uptime >&2
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cargo bench --locked --quiet -p otavan-server --bench hostile_load -- \
  --server "127.0.0.1:$PORT" --duration "$DURATION" --ramp "$RAMP" --meters "$METERS" \
  --hostile "$HOSTILE" --filler "$FILLER" --junk "$JUNK" --seed "$SEED" \
  --json "$RUN/driver.json" >/dev/null
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)
OVERFLOWS=$(($(listen_overflows) - OVERFLOWS_BEFORE))
RSS_FINAL=$(rss_kib "$SERVER_PID")
METRICS=$(curl -fsS --max-time 5 "http://127.0.0.1:$PORT/metrics" || true)
printf '%s\n' "$METRICS" >"$RUN/metrics.txt"

# Stop the server (graceful) before reading the store.
kill -TERM "$SAMPLER_PID" "$CONNS_PID" 2>/dev/null || true
wait "$SAMPLER_PID" "$CONNS_PID" 2>/dev/null || true
SAMPLER_PID=""
CONNS_PID=""
kill -TERM "$SERVER_PID"
for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$SERVER_PID" 2>/dev/null && die "the server did not stop within 10 s of SIGTERM"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

# ---------------------------------------------------------------- store
q() { sqlite3 "$RUN/van.db" "$1"; }
ROWS=$(q "SELECT count(*) FROM reports")
METER_ROWS=$(q "SELECT count(*) FROM reports WHERE device_id GLOB 'meter-[0-9][0-9][0-9][0-9]'
  AND from_version = '1.0.0' AND to_version = '1.1.0' AND state = 'UPDATED' AND error IS NULL")
OTHER_ROWS=$(q "SELECT count(*) FROM reports WHERE NOT device_id GLOB 'meter-[0-9][0-9][0-9][0-9]'")

# ---------------------------------------------------------------- table
rc=0
python3 - "$RUN/driver.json" "$RUN/rss.txt" "$RSS_IDLE" "$RSS_FINAL" "$ROWS" "$METER_ROWS" \
  "$OTHER_ROWS" "$RUN/metrics.txt" "$STARTED" "$COMMIT" "$LOAD_BEFORE" "$LOAD_AFTER" \
  "$OUT/hostile-load.md" "$RUN/connections.txt" "$OVERFLOWS" <<'EOF' || rc=$?
import json, sys
(driver, rss_file, rss_idle, rss_final, rows, meter_rows, other_rows, metrics_file,
 started, commit, load_before, load_after, out, conns_file, overflows) = sys.argv[1:]
samples = [[int(x) for x in line.split()] for line in open(conns_file) if line.strip()]
est_peak = max((s[0] for s in samples), default=0)
all_peak = max((s[1] for s in samples), default=0)
sendq_peak = max((s[2] for s in samples), default=0)
d = json.load(open(driver))
rss = [int(x) for x in open(rss_file).read().split()]
rss_max = max(rss) if rss else 0
rows, meter_rows, other_rows = int(rows), int(meter_rows), int(other_rows)
metrics = {}
for line in open(metrics_file):
    if line.startswith("otavan_") and " " in line:
        name, value = line.rsplit(" ", 1)
        metrics[name] = value.strip()
mib = lambda kib: f"{int(kib) / 1024:.1f} MiB"
statuses = lambda m: ", ".join(f"{k if k != '0' else 'no answer'}: {v}" for k, v in m.items())
fig = [
    ("started (UTC), commit", f"{started}, {commit}"),
    ("load average before / after", f"{load_before} / {load_after}"),
    ("meters, time to the last update's end", f"{d['meters']}, {d['meters_seconds']:.1f} s"),
    ("meter updates ok / failed", f"{d['meter_updates_ok']} / {d['meter_updates_failed']} {d['meter_failures_by_stage'] or ''}"),
    ("firmware delivered", f"{d['meter_firmware_bytes'] / 1e6:.0f} MB ({d['meter_firmware_bytes'] / 1e6 / d['meters_seconds']:.1f} MB/s)"),
    ("probe: manifests, failures", f"{d['probe_count']}, {d['probe_failures']}"),
    ("probe latency p50 / p99 / max", f"{d['probe_p50_ms']:.1f} / {d['probe_p99_ms']:.1f} / {d['probe_max_ms']:.1f} ms"),
    ("hostile clients, connections opened (errors)", f"{d['hostile']}, {d['hostile_connections']} ({d['hostile_connect_errors']})"),
    ("filler requests, statuses, seconds", f"{d['filler_sent']}, {statuses(d['filler_statuses'])}, {d['filler_seconds']:.1f} s"),
    ("junk reporters, posts, statuses", f"{d['junk']}, {d['junk_sent']}, {statuses(d['junk_statuses'])}"),
    ("server's connections, peak established / peak all states (0.5 s samples)", f"{est_peak} / {all_peak}"),
    ("server's kernel send queues, peak total", f"{sendq_peak / 2**20:.0f} MiB"),
    ("SYNs dropped by a full listen queue (ListenOverflows)", overflows),
    ("server RSS idle / max / final", f"{mib(rss_idle)} / {mib(rss_max)} / {mib(rss_final)} ({len(rss)} samples)"),
    ("store rows: all / meters' UPDATED / other", f"{rows} / {meter_rows} / {other_rows}"),
]
for name in sorted(metrics):
    if name.startswith(("otavan_connections_closed_total", "otavan_manifest_cache_bytes")):
        fig.append((f"`{name}`", metrics[name]))
goals = [
    ("0 failed downloads among the meters", d["meter_updates_failed"] == 0 and d["meter_updates_ok"] > 0,
     f"{d['meter_updates_failed']} failed of {d['meter_updates_ok'] + d['meter_updates_failed']}"),
    ("legitimate manifest p99 < 100 ms", d["probe_failures"] == 0 and d["probe_p99_ms"] < 100,
     f"p99 {d['probe_p99_ms']:.1f} ms, {d['probe_failures']} failed"),
    ("server RSS < 96 MiB for the whole run", 0 < rss_max < 96 * 1024, f"max {mib(rss_max)}"),
    ("every junk report refused with 4xx", d["junk_not_refused"] == 0 and d["junk_sent"] > 0,
     f"{d['junk_not_refused']} not 4xx ({statuses(d['junk_statuses'])})"),
    ("nothing in the store but well-formed meter reports",
     other_rows == 0 and meter_rows == rows == d["meter_reports_accepted"],
     f"{rows} rows, {meter_rows} meters' UPDATED, {other_rows} other; {d['meter_reports_accepted']} accepted"),
]
lines = ["| figure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in fig]
lines += ["", "| goal | met | measured |", "|---|---|---|"]
lines += [f"| {g} | {'yes' if ok else '**no**'} | {m} |" for g, ok, m in goals]
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
sys.exit(0 if all(ok for _, ok, _ in goals) else 4)
EOF
((rc == 0 || STRICT_GOALS == 0)) || exit "$rc"
