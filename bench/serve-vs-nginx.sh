#!/usr/bin/env bash
# otavan vs nginx, side by side in one run (issue 2).
#
#   bench/serve-vs-nginx.sh            # from the repo root; ~4 minutes a round
#   DURATION=30 ROUNDS=3 bench/serve-vs-nginx.sh
#
# Installs nginx and wrk from Debian if missing, generates a deterministic
# release tree in bench/out/tree, builds otavan (release), starts two otavan
# instances (default 32 MiB preload; --preload-mib 0, streaming from disk),
# a third one (preload 32 MiB, RUST_LOG=warn: no per-request log line) and
# two nginx on free 127.0.0.1 ports: `nginx` (access_log off) and
# `nginx-log` (the same plus a buffered access log, one line per request, to
# bench/out/nginx-log/access.log). It measures each with wrk and prints
# Markdown tables (also written to bench/out/results.md). Comparisons are
# like for like: the logging otavans against nginx-log, otavan-quiet against
# nginx. Every process it starts is stopped on exit, failure included. Only
# 127.0.0.1 is targeted. wrk stands for many meters from one address, so the
# otavans run with --max-connections-per-ip 0 (nginx has no such cap).
#
# Environment (defaults):
#   DURATION=10       seconds of each measured wrk run
#   WARMUP=2          seconds of wrk warm-up before each measured run
#   THREADS=2 CONNS=64   wrk -t/-c for the manifest and download runs
#   RSS_CONNS=500 RSS_DURATION=10   the memory run (wrk -t$THREADS)
#   ROUNDS=1          repeat every measurement; the table shows medians
#   ERR_TOLERANCE=10  wrk socket errors + non-2xx allowed per run
#   OTAVAN_LOG=info   RUST_LOG for the first two otavans (info, the shipped
#                     default, logs one line per request, to bench/out/*.log)
#   STRICT_GOALS=0    1: exit 4 when a goal fails
#   OTAVAN_BIN=       a prebuilt otavan to measure instead of building the
#                     working tree (e.g. a clean build of a commit while the
#                     working tree is mid-edit); OTAVAN_COMMIT=  its label
#   QUIET_WAIT=60     before each run, wait up to this many seconds for the
#                     machine to be idle (< 15% busy), e.g. a build elsewhere
#   RETRY_DISTURBED=2 measure a run again (up to this many times) when
#                     something else took > 25% of a core during it; the
#                     discarded runs are kept in bench/out/raw/disturbed/
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=$REPO/bench/out
TREE=$OUT/tree
RAW=$OUT/raw
NGX=$OUT/nginx
NGXLOG=$OUT/nginx-log

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
RSS_CONNS=${RSS_CONNS:-500}
RSS_DURATION=${RSS_DURATION:-10}
ROUNDS=${ROUNDS:-1}
ERR_TOLERANCE=${ERR_TOLERANCE:-10}
OTAVAN_LOG=${OTAVAN_LOG:-info}
STRICT_GOALS=${STRICT_GOALS:-0}
QUIET_WAIT=${QUIET_WAIT:-60}
RETRY_DISTURBED=${RETRY_DISTURBED:-2}

log() { printf '\n==> %s\n' "$*" >&2; }
die() {
  printf 'serve-vs-nginx: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------- cleanup
STARTED=()        # pids of the servers we started
TEMP_POLICY_RC="" # a policy-rc.d we created for the apt install
cleanup() {
  local rc=$? pid kids=() i
  trap - EXIT INT TERM
  for pid in "${STARTED[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      mapfile -t -O "${#kids[@]}" kids < <(pgrep -P "$pid" || true)
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for i in $(seq 50); do # up to 5 s for a graceful stop
    local alive=0
    for pid in "${STARTED[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break
    sleep 0.1
  done
  for pid in "${STARTED[@]}" "${kids[@]}"; do
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -n $TEMP_POLICY_RC ]] && rm -f "$TEMP_POLICY_RC"
  # Keep only the tail of the per-request logs: they grow by ~100 MB a run.
  for f in "$OUT"/otavan-*.log "$NGXLOG/access.log"; do
    [[ -f $f ]] || continue
    tail -n 200 "$f" >"$f.tail" && mv "$f.tail" "$f"
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- 1. tools
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
if ((${#need[@]})); then
  [[ $(id -u) == 0 ]] || die "need root to install: ${need[*]}"
  log "installing ${need[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  pkgs=()
  for p in "${need[@]}"; do
    if [[ $p == nginx ]]; then
      # bookworm/trixie: "nginx" holds the binary; nginx-light is the older
      # name for the minimal build (bullseye), a metapackage on bookworm.
      pick=""
      for cand in nginx nginx-light; do
        if apt-cache policy "$cand" 2>/dev/null | grep 'Candidate: [0-9]' >/dev/null; then
          pick=$cand
          break
        fi
      done
      [[ -n $pick ]] || die "no nginx package in the apt sources"
      pkgs+=("$pick")
    else
      pkgs+=("$p")
    fi
  done
  # Do not let the package start the system-wide nginx on port 80.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    TEMP_POLICY_RC=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$TEMP_POLICY_RC"
    chmod +x "$TEMP_POLICY_RC"
  fi
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  if [[ -n $TEMP_POLICY_RC ]]; then
    rm -f "$TEMP_POLICY_RC"
    TEMP_POLICY_RC=""
  fi
fi
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX_BIN ]] || die "nginx not found after install"
command -v wrk >/dev/null || die "wrk not found after install"
command -v python3 >/dev/null || die "python3 is needed"
command -v curl >/dev/null || die "curl is needed"

# 500 clients + 5 servers need far more than 1024 descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) >= 4096)) || die "ulimit -n is $(ulimit -n); need 4096+"

# ---------------------------------------------------------------- 2. tree
mkdir -p "$OUT"
rm -rf "$RAW" "$NGX" "$NGXLOG" "$OUT"/otavan-*.db* "$OUT"/otavan-*.log "$OUT/results.md"
mkdir -p "$RAW" "$NGX" "$NGXLOG"
log "generating the release tree in $TREE"
TREE_DIGEST=$(python3 bench/make-tree.py "$TREE")
echo "tree digest: $TREE_DIGEST"

# ---------------------------------------------------------------- 3. servers
# Run a private copy: the other engineer may rebuild target/ during the run.
OTAVAN=$OUT/otavan-bin
if [[ -n ${OTAVAN_BIN:-} ]]; then
  log "using the prebuilt $OTAVAN_BIN (${OTAVAN_COMMIT:-commit not given})"
  [[ -x $OTAVAN_BIN ]] || die "OTAVAN_BIN=$OTAVAN_BIN is not an executable"
  cp "$OTAVAN_BIN" "$OTAVAN"
  OTAVAN_COMMIT=${OTAVAN_COMMIT:-"unknown (prebuilt $OTAVAN_BIN)"}
else
  log "building otavan (release)"
  cargo build --release --quiet
  cp target/release/otavan "$OTAVAN"
  OTAVAN_COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
  if [[ -n $(git status --porcelain --untracked-files=no -- . ':!bench' ':!docs' 2>/dev/null) ]]; then
    OTAVAN_COMMIT+=" (+ uncommitted changes)"
  fi
fi

free_ports() { # N distinct free 127.0.0.1 ports
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
read -r P_OTAVAN P_STREAM P_QUIET P_NGINX P_NGINXLOG <<<"$(free_ports 5)"

wait_http() { # URL PID: wait up to 60 s for a 200, failing if PID dies
  local url=$1 pid=$2 i
  for i in $(seq 600); do
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || die "server $pid died before answering $url"
    sleep 0.1
  done
  die "no answer from $url after 60 s"
}

start_otavan() { # NAME PORT PRELOAD_MIB RUST_LOG; sets LAST_PID
  local name=$1 port=$2 preload=$3 rust_log=$4
  RUST_LOG=$rust_log "$OTAVAN" serve --root "$TREE" --port "$port" --bind 127.0.0.1 \
    --db "$OUT/$name.db" --preload-mib "$preload" --max-connections-per-ip 0 </dev/null >>"$OUT/$name.log" 2>&1 &
  LAST_PID=$!
  STARTED+=("$LAST_PID")
}

log "starting otavan on 127.0.0.1:$P_OTAVAN (preload 32 MiB), :$P_STREAM (--preload-mib 0) and :$P_QUIET (preload 32 MiB, RUST_LOG=warn)"
start_otavan otavan-preload "$P_OTAVAN" 32 "$OTAVAN_LOG"
PID_OTAVAN=$LAST_PID
start_otavan otavan-stream "$P_STREAM" 0 "$OTAVAN_LOG"
PID_STREAM=$LAST_PID
# The same as the first with the per-request log line off: compared with
# the nginx that has access_log off.
start_otavan otavan-quiet "$P_QUIET" 32 warn
PID_QUIET=$LAST_PID
wait_http "http://127.0.0.1:$P_OTAVAN/manifest.json" "$PID_OTAVAN"
wait_http "http://127.0.0.1:$P_STREAM/manifest.json" "$PID_STREAM"
wait_http "http://127.0.0.1:$P_QUIET/manifest.json" "$PID_QUIET"
grep -h 'release indexed' "$OUT"/otavan-*.log | sed 's/^/  /' >&2 || true

MANIFEST=$TREE/manifest-1.0.0.json
curl -fsS --max-time 10 "http://127.0.0.1:$P_OTAVAN/manifest.json?current_ver=1.0.0" -o "$MANIFEST"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print("manifest: %d bytes, %d new, %d update, %d delete, firmware %s" % (len(open(sys.argv[1],"rb").read()), len(m["new"]), len(m["update"]), len(m["delete"]), (m.get("firmware") or {}).get("URL")))' "$MANIFEST"

# nginx_conf DIR PORT ACCESS_LOG_LINES: a static file server tuned as one
# would; the two instances differ only in their access_log lines.
nginx_conf() {
  local dir=$1 port=$2 access=$3
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<EOF
# Generated by bench/serve-vs-nginx.sh: a static file server tuned as one would.
# reuseport: the kernel spreads connections over the workers evenly, which
# makes nginx's figures steadier from run to run.
worker_processes auto;
worker_rlimit_nofile 65536;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 4096;
}
http {
$access
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    types {
        application/json json;
    }
    open_file_cache max=2000 inactive=60s;
    open_file_cache_valid 60s;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$port reuseport;
        root $TREE;
        location / { }
    }
}
EOF
}

start_nginx() { # DIR PORT; sets LAST_PID
  local dir=$1 port=$2 args
  args=(-p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log")
  "$NGINX_BIN" -t -q "${args[@]}"
  "$NGINX_BIN" "${args[@]}" </dev/null &
  LAST_PID=$!
  STARTED+=("$LAST_PID")
}

# The same fields as otavan's per-request line (method, path, status, body
# bytes, time, peer), buffered per worker as a tuned nginx would log.
NGINX_LOG_FORMAT='$time_iso8601 $request_method $uri $status $body_bytes_sent $request_time $remote_addr:$remote_port'
NGINX_ACCESS_LOG="access_log $NGXLOG/access.log otavan buffer=64k flush=1s;"
nginx_conf "$NGX" "$P_NGINX" "    access_log off;"
nginx_conf "$NGXLOG" "$P_NGINXLOG" "    log_format otavan '$NGINX_LOG_FORMAT';
    $NGINX_ACCESS_LOG"

log "starting nginx on 127.0.0.1:$P_NGINX (access_log off) and nginx-log on :$P_NGINXLOG ($NGINX_ACCESS_LOG)"
start_nginx "$NGX" "$P_NGINX"
PID_NGINX=$LAST_PID
start_nginx "$NGXLOG" "$P_NGINXLOG"
PID_NGINXLOG=$LAST_PID
wait_http "http://127.0.0.1:$P_NGINX/manifest-1.0.0.json" "$PID_NGINX"
wait_http "http://127.0.0.1:$P_NGINXLOG/manifest-1.0.0.json" "$PID_NGINXLOG"

# ---------------------------------------------------------------- sanity
log "checking that every server answers the same bytes"
sha() { sha256sum | cut -d' ' -f1; }
FW_SHA=$(sha <"$TREE/firmware_1.1.0.bin")
for port in "$P_OTAVAN" "$P_STREAM" "$P_QUIET" "$P_NGINX" "$P_NGINXLOG"; do
  got=$(curl -fsS --max-time 10 "http://127.0.0.1:$port/firmware_1.1.0.bin" | sha)
  [[ $got == "$FW_SHA" ]] || die "firmware from port $port differs from the file"
done
for port in "$P_NGINX" "$P_NGINXLOG"; do
  [[ $(curl -fsS "http://127.0.0.1:$port/manifest-1.0.0.json" | sha) == $(sha <"$MANIFEST") ]] ||
    die "nginx manifest (port $port) differs from the saved one"
done
[[ $(curl -fsS "http://127.0.0.1:$P_OTAVAN/manifest.json?current_ver=1.0.0" | sha) == $(sha <"$MANIFEST") ]] ||
  die "otavan manifest is not stable"
echo "ok: firmware_1.1.0.bin identical from all five servers; manifest bytes identical"
# Like for like: each logging server must have written a line for the
# firmware request above (otavan within 50 ms, nginx-log within its 1 s
# flush), and otavan-quiet none.
sleep 1.5
has_line() { # FILE REGEX WHAT
  grep -E "$2" "$1" >/dev/null || die "$3: no per-request line matching /$2/ in $1"
}
has_line "$NGXLOG/access.log" ' GET /firmware_1\.1\.0\.bin 200 1048576 [0-9.]+ 127\.0\.0\.1:[0-9]+$' nginx-log
if [[ $OTAVAN_LOG == info ]]; then
  for name in otavan-preload otavan-stream; do
    has_line "$OUT/$name.log" 'method=GET path="/firmware_1\.1\.0\.bin" status=200 bytes=1048576 us=[0-9]+ peer=127\.0\.0\.1:' "$name"
  done
fi
! grep 'firmware_1' "$OUT/otavan-quiet.log" >/dev/null || die "otavan-quiet logged a request line"
echo "ok: one line per request from nginx-log and the logging otavans, none from otavan-quiet, e.g."
grep -h ' GET /firmware_1' "$NGXLOG/access.log" | tail -n 1 | sed 's/^/  nginx-log: /' || true
grep -h 'path="/firmware_1' "$OUT/otavan-preload.log" | tail -n 1 | sed 's/^/  otavan:    /' || true

# ---------------------------------------------------------------- 4. load
declare -A PORT=([nginx]=$P_NGINX [nginx-log]=$P_NGINXLOG [otavan]=$P_OTAVAN
  [otavan-stream]=$P_STREAM [otavan-quiet]=$P_QUIET)
declare -A PID=([nginx]=$PID_NGINX [nginx-log]=$PID_NGINXLOG [otavan]=$PID_OTAVAN
  [otavan-stream]=$PID_STREAM [otavan-quiet]=$PID_QUIET)
SERVERS=(nginx nginx-log otavan otavan-stream otavan-quiet)
LUA=$REPO/bench/wrk-report.lua

url_for() { # TEST SERVER
  local base="http://127.0.0.1:${PORT[$2]}"
  case $1 in
  manifest) [[ $2 == nginx* ]] && echo "$base/manifest-1.0.0.json" || echo "$base/manifest.json?current_ver=1.0.0" ;;
  download | rss) echo "$base/firmware_1.1.0.bin" ;;
  esac
}

wait_quiet() { # up to QUIET_WAIT s for the machine to be < 15% busy over 1 s
  python3 - "$QUIET_WAIT" <<'EOF'
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
EOF
}

measure() { # TEST SERVER ROUND CONNS DURATION WARMUP
  local test=$1 server=$2 round=$3 conns=$4 dur=$5 warm=$6 url attempt rc
  local out=$RAW/$test-$server-r$round.json
  url=$(url_for "$test" "$server")
  for attempt in $(seq 0 "$RETRY_DISTURBED"); do
    kill -0 "${PID[$server]}" 2>/dev/null || die "$server (pid ${PID[$server]}) is not running"
    wait_quiet
    if ((warm > 0)); then
      timeout $((warm + 30)) wrk -t"$THREADS" -c"$conns" -d"${warm}s" --timeout 10s "$url" >/dev/null
    fi
    python3 bench/run-wrk.py --pid "${PID[$server]}" --interval 0.1 \
      --out "$out" -- \
      wrk -t"$THREADS" -c"$conns" -d"${dur}s" --timeout 10s -s "$LUA" "$url"
    # Exit 10: something else took > 25% of a core during the run (the
    # report's "disturbed" threshold).
    rc=0
    python3 - "$out" <<'EOF' || rc=$?
import json, os, sys
r = json.load(open(sys.argv[1])); w = r["wrk"]; d = w["duration_us"] / 1e6
server, wrk = 100 * r["server_cpu_s"] / d, 100 * (r["wrk_cpu_s"] or 0) / d
other = (r["machine_busy_pct"] or 0) * os.cpu_count() - server - wrk
print("  %-26s %9.0f req/s %8.1f MiB/s  errors %s  cpu: server %3.0f%% wrk %3.0f%% other %3.0f%% machine %3.0f%%  peak rss %.1f MiB" % (
    sys.argv[1].rsplit("/", 1)[1][:-5], w["requests"] / d, w["bytes"] / 2**20 / d,
    sum(w["errors"].values()), server, wrk, other,
    r["machine_busy_pct"], r["rss_peak_kib"] / 1024))
sys.exit(10 if other > 25 else 0)
EOF
    ((rc == 0 || rc == 10)) || die "cannot read $out"
    ((rc == 0)) && break
    if ((attempt < RETRY_DISTURBED)); then
      # Kept aside (the report reads only raw/*.json); VmHWM still covers it.
      mkdir -p "$RAW/disturbed"
      mv "$out" "$RAW/disturbed/$test-$server-r$round-a$attempt.json"
      echo "  ^ disturbed by other work on the machine; measuring again" >&2
    fi
  done
}

for round in $(seq "$ROUNDS"); do
  log "round $round/$ROUNDS: manifests (wrk -t$THREADS -c$CONNS, ${WARMUP}s warm-up + ${DURATION}s)"
  for s in "${SERVERS[@]}"; do measure manifest "$s" "$round" "$CONNS" "$DURATION" "$WARMUP"; done
  log "round $round/$ROUNDS: 1 MiB firmware downloads (wrk -t$THREADS -c$CONNS)"
  for s in "${SERVERS[@]}"; do measure download "$s" "$round" "$CONNS" "$DURATION" "$WARMUP"; done
  log "round $round/$ROUNDS: RSS with $RSS_CONNS clients downloading (wrk -t$THREADS -c$RSS_CONNS, ${RSS_DURATION}s, VmRSS every 100 ms)"
  for s in "${SERVERS[@]}"; do measure rss "$s" "$round" "$RSS_CONNS" "$RSS_DURATION" 0; done
done

# ---------------------------------------------------------------- 5. report
log "results"
report_args=(--otavan-bin "$OTAVAN" --nginx-bin "$NGINX_BIN" --tolerance "$ERR_TOLERANCE"
  --commit "$OTAVAN_COMMIT"
  --param "tree digest=$TREE_DIGEST"
  --param "manifest body=$(stat -c %s "$MANIFEST") bytes"
  --param "wrk=-t$THREADS -c$CONNS, ${WARMUP}s warm-up + ${DURATION}s per run; RSS run -c$RSS_CONNS ${RSS_DURATION}s"
  --param "rounds=$ROUNDS (medians)"
  --param "runs measured again because disturbed=$(find "$RAW/disturbed" -name '*.json' 2>/dev/null | wc -l) (RETRY_DISTURBED=$RETRY_DISTURBED; kept in raw/disturbed/)"
  --param "otavan RUST_LOG=$OTAVAN_LOG (otavan-quiet: warn)"
  --param "nginx-log=log_format otavan '$NGINX_LOG_FORMAT'; $NGINX_ACCESS_LOG"
  --param "ulimit -n=$(ulimit -n)")
[[ $STRICT_GOALS == 1 ]] && report_args+=(--strict-goals)
python3 bench/report.py "$OUT" "${report_args[@]}"
