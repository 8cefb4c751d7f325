#!/usr/bin/env python3
"""Turns bench/out/raw/*.json (from run-wrk.py) into the Markdown report.

    bench/report.py OUT_DIR --otavan-bin BIN --nginx-bin BIN [--tolerance N] ...

Prints the tables and writes them, with the machine facts, to
OUT_DIR/results.md. Ratios are like for like: each otavan is compared with
the nginx that logs as it does (REFERENCE below): the default otavans, which
log one line per request, with nginx-log (buffered access log); otavan-quiet
(RUST_LOG=warn) with nginx (access_log off). Exit status: 0, or 3 when some wrk run had more
errors (socket errors + non-2xx) than --tolerance, or 4 with
--strict-goals when a goal fails. Python 3 standard library only.
"""

import argparse
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import time

MIB = 1024 * 1024
SERVERS = [
    ("nginx", "nginx (access_log off)"),
    ("nginx-log", "nginx-log (buffered access log)"),
    ("otavan", "otavan (preload 32 MiB, logs)"),
    ("otavan-stream", "otavan-stream (--preload-mib 0, logs)"),
    ("otavan-quiet", "otavan-quiet (preload 32 MiB, RUST_LOG=warn)"),
]
LABEL = dict(SERVERS)
# What each server's ratios are computed against (same logging behaviour).
# nginx-log against nginx shows what nginx's own access log costs.
REFERENCE = {
    "nginx-log": "nginx",
    "otavan": "nginx-log",
    "otavan-stream": "nginx-log",
    "otavan-quiet": "nginx",
}
OTAVANS = [s for s in SERVERS if s[0].startswith("otavan")]
RSS_LIMIT_MIB = 64
RATIO_GOAL = 0.8


def sh(cmd, cwd=None):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=10)
        return (p.stdout + p.stderr).strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"({e})"


def load_runs(out):
    runs = {}
    for path in sorted(glob.glob(os.path.join(out, "raw", "*.json"))):
        name = os.path.basename(path)[:-5]
        test, rest = name.split("-", 1)
        server, _round = rest.rsplit("-r", 1)
        with open(path) as f:
            runs.setdefault((test, server), []).append(json.load(f))
    return runs


def errors(run):
    return sum(run["wrk"]["errors"].values())


def rate(run):
    return run["wrk"]["requests"] / (run["wrk"]["duration_us"] / 1e6)


def mib_s(run):
    return run["wrk"]["bytes"] / MIB / (run["wrk"]["duration_us"] / 1e6)


def median(runs, f):
    return statistics.median(f(r) for r in runs) if runs else None


def fmt(x, spec=",.0f"):
    return "n/a" if x is None else format(x, spec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--otavan-bin", required=True)
    ap.add_argument("--nginx-bin", default="nginx")
    ap.add_argument("--tolerance", type=int, default=10)
    ap.add_argument("--strict-goals", action="store_true")
    ap.add_argument("--commit", help="otavan commit the binary was built from (default: HEAD now)")
    ap.add_argument("--param", action="append", default=[], help="KEY=VALUE shown in the facts")
    args = ap.parse_args()
    runs = load_runs(args.out)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    # --- validity: wrk's own error counts -------------------------------
    bad = []
    for (test, server), rs in sorted(runs.items()):
        for i, r in enumerate(rs, 1):
            e = r["wrk"]["errors"]
            if errors(r):
                print(f"wrk errors in {test}/{server} round {i}: {e}", file=sys.stderr)
                print(r["wrk_text"], file=sys.stderr)
            if errors(r) > args.tolerance:
                bad.append(f"{test}/{server} round {i}: {e}")

    man = {s: median(runs.get(("manifest", s), []), rate) for s, _ in SERVERS}
    dl = {s: median(runs.get(("download", s), []), rate) for s, _ in SERVERS}
    dl_mib = {s: median(runs.get(("download", s), []), mib_s) for s, _ in SERVERS}
    rss = {s: runs.get(("rss", s), []) for s, _ in SERVERS}

    def ratio(d, s):
        ref = REFERENCE.get(s)
        return d[s] / d[ref] if ref and d[s] and d[ref] else None

    def peak(s):
        return max((r["rss_peak_kib"] for r in rss[s]), default=None)

    def hwm(s):
        # nginx: the sum over master + workers; otavan is one process.
        return max((r["hwm_sum_kib"] for r in rss[s]), default=None)

    def idle(s):
        return min((r["rss_first_kib"] for r in rss[s]), default=None)

    def kib_to_mib(k):
        return None if k is None else k / 1024

    lines = []
    w = lines.append
    def ratio_cell(d, s):
        r = ratio(d, s)
        return "—" if s not in REFERENCE else "n/a" if r is None else f"{r:.2f}×"

    w("| server | ratios against | manifests/s | × ref | 1 MiB downloads/s | MiB/s | × ref "
      "| RSS before the 500-client run | peak RSS, 500 downloads | VmHWM at end |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s, label in SERVERS:
        w(f"| {label} | {REFERENCE.get(s, '—')} | {fmt(man[s])} | {ratio_cell(man, s)} "
          f"| {fmt(dl[s])} | {fmt(dl_mib[s])} "
          f"| {ratio_cell(dl, s)} | {fmt(kib_to_mib(idle(s)), '.1f')} MiB "
          f"| {fmt(kib_to_mib(peak(s)), '.1f')} MiB | {fmt(kib_to_mib(hwm(s)), '.1f')} MiB |")
    w("")
    w("× ref: the server's rate divided by that of the nginx in \"ratios against\", "
      "same run: like for like, a server that logs every request against nginx-log, "
      "one that does not against nginx (nginx-log's own ratio to nginx is what its "
      "access log costs it). nginx RSS is master + workers summed.")
    w("")

    goals_ok = True

    def verdict(ok, detail):
        nonlocal goals_ok
        if ok is None:
            goals_ok = False
            return f"n/a ({detail})"
        goals_ok &= ok
        return f"{'PASS' if ok else 'FAIL'} ({detail})"

    w("| goal | " + " | ".join(f"{s} vs {REFERENCE[s]}" for s, _ in OTAVANS) + " |")
    w("|---|" + "---|" * len(OTAVANS))
    row = []
    for s, _ in OTAVANS:
        r = ratio(man, s)
        row.append(verdict(None if r is None else r >= RATIO_GOAL, f"{fmt(r, '.2f')}×"))
    w(f"| manifests/s ≥ {RATIO_GOAL}× its nginx | " + " | ".join(row) + " |")
    row = []
    for s, _ in OTAVANS:
        r = ratio(dl, s)
        row.append(verdict(None if r is None else r >= RATIO_GOAL, f"{fmt(r, '.2f')}×"))
    w(f"| downloads/s ≥ {RATIO_GOAL}× its nginx | " + " | ".join(row) + " |")
    row = []
    for s, _ in OTAVANS:
        p = kib_to_mib(peak(s))
        row.append(verdict(None if p is None else p < RSS_LIMIT_MIB, f"peak {fmt(p, '.1f')} MiB"))
    w(f"| RSS < {RSS_LIMIT_MIB} MiB with 500 downloading clients | " + " | ".join(row) + " |")
    w("")

    # --- diagnostics: who used the CPU ----------------------------------
    w("CPU use during each measured run (server and wrk: 100% = one core; the machine "
      f"has {os.cpu_count()}; machine busy: share of all cores, from /proc/stat), "
      "latency and wrk errors (median round shown). On loopback the kernel's TCP work "
      "is charged to whichever side happens to run it, so the server/wrk split is rough.")
    w("")
    w("| test | server | server CPU | wrk CPU | other CPU | machine busy | p50 latency "
      "| p99 latency | errors |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    noisy = []
    for (test, s), rs in sorted(runs.items()):
        for i, r in enumerate(rs, 1):
            d = r["wrk"]["duration_us"] / 1e6
            other = (r.get("machine_busy_pct") or 0) * os.cpu_count() - 100 * (
                r["server_cpu_s"] + (r["wrk_cpu_s"] or 0)) / d
            if other > 25:
                noisy.append(f"{test}/{s} round {i} ({other:.0f}%)")
    for test in ("manifest", "download", "rss"):
        for s, label in SERVERS:
            rs = runs.get((test, s), [])
            if not rs:
                continue
            r = sorted(rs, key=rate)[len(rs) // 2]
            d = r["wrk"]["duration_us"] / 1e6
            lat = r["wrk"]["latency_us"]
            server_pct = 100 * r["server_cpu_s"] / d
            wrk_pct = 100 * (r["wrk_cpu_s"] or 0) / d
            busy = r.get("machine_busy_pct") or 0
            other = max(0.0, busy * os.cpu_count() - server_pct - wrk_pct)
            w(f"| {test} | {label} | {server_pct:.0f}% | {wrk_pct:.0f}% | {other:.0f}% | {busy:.0f}% "
              f"| {lat['p50'] / 1000:.2f} ms "
              f"| {lat['p99'] / 1000:.2f} ms | {sum(errors(x) for x in rs)} |")
    w("")
    w("other CPU = all cores busy minus server and wrk (the sampler, idle servers, "
      "anything else on the machine).")
    if noisy:
        w("")
        w("**Warning**: something else used the CPU (other > 25% of a core) during: "
          + ", ".join(noisy) + ". Those runs are disturbed; with ROUNDS=1 rerun on a "
          "quiet machine (with ROUNDS≥3 the median is usually still sound).")
    w("")
    table = "\n".join(lines)

    # --- machine facts ----------------------------------------------------
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = args.commit
    if not commit:
        commit = sh(["git", "rev-parse", "--short=12", "HEAD"], cwd=repo)
        if sh(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench", ":!docs"], cwd=repo):
            commit += " (+ uncommitted changes)"
    facts = [
        ("date (UTC)", time.strftime("%Y-%m-%d %H:%M", time.gmtime())),
        ("nproc", str(os.cpu_count())),
        ("CPU", cpu),
        ("kernel", platform.release()),
        ("memory", sh(["sh", "-c", "free -h | awk '/^Mem:/{print $2}'"])),
        ("nginx", sh([args.nginx_bin, "-v"]).replace("nginx version: ", "")),
        ("wrk", sh(["wrk", "-v"]).splitlines()[0] if sh(["wrk", "-v"]) else "?"),
        ("otavan commit", commit),
        ("otavan binary", sh([args.otavan_bin, "--version"])),
    ] + [tuple(p.split("=", 1)) for p in args.param]

    doc = ["# otavan vs nginx: results", "", table, "## Machine and parameters", ""]
    doc += [f"- {k}: {v}" for k, v in facts]
    if bad:
        doc += ["", "**Invalid runs** (wrk errors above tolerance): " + "; ".join(bad)]
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(doc) + "\n")

    print(table)
    print("\n".join(f"- {k}: {v}" for k, v in facts))
    print(f"\n(written to {os.path.join(args.out, 'results.md')})")
    if bad:
        print("INVALID: wrk reported errors above tolerance in: " + "; ".join(bad), file=sys.stderr)
        sys.exit(3)
    if args.strict_goals and not goals_ok:
        sys.exit(4)


if __name__ == "__main__":
    main()
