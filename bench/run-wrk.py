#!/usr/bin/env python3
"""Runs one wrk load while watching the server's processes.

    bench/run-wrk.py --pid PID [--interval 0.1] --out FILE.json -- wrk ARGS...

wrk must be given `-s bench/wrk-report.lua`, whose done() prints a line
`WRKJSON {...}` with the request count, bytes, duration and errors.
While wrk runs, every INTERVAL seconds this samples the server: PID and
all its descendants (nginx: master + workers), summing VmRSS from
/proc/N/status. It records the peak sum, the first sample, the VmHWM of
each process at the end, and the server CPU time used during the run
(utime+stime from /proc/N/stat). wrk's own CPU time comes from its
rusage. Everything is written as one JSON object to FILE. wrk is killed
if it outlives its -d by 30 s. Python 3 standard library only.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


def tree(pid):
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def machine_cpu():
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    total = sum(v[:8])  # guest time is already inside user
    return total - idle, total


def duration_of(wrk_args):
    for i, a in enumerate(wrk_args):
        if a in ("-d", "--duration") and i + 1 < len(wrk_args):
            m = re.fullmatch(r"(\d+)([smh]?)", wrk_args[i + 1])
            if m:
                return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    return 10


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--out", required=True)
    parser.add_argument("wrk", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    wrk_args = args.wrk[1:] if args.wrk[:1] == ["--"] else args.wrk
    if not wrk_args:
        sys.exit("run-wrk.py: no wrk command")

    pids = tree(args.pid)
    cpu_start = {p: cpu_ticks(p) for p in pids}
    cpu_last = dict(cpu_start)
    first_rss = sum(status_kib(p, "VmRSS") for p in pids)
    peak_rss, samples = first_rss, 0

    deadline = time.monotonic() + duration_of(wrk_args) + 30
    machine_start = machine_cpu()
    started = time.monotonic()
    proc = subprocess.Popen(wrk_args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # wrk prints a few KiB at most, all at the end: the pipe cannot fill.
    rusage = None
    try:
        while True:
            done_pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if done_pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("run-wrk.py: wrk overran its duration; killed")
            if samples % 10 == 0:
                for p in tree(args.pid):  # workers may be respawned
                    if p not in cpu_start:
                        cpu_start[p] = cpu_ticks(p)
                pids = list(cpu_start)
            rss = 0
            for p in pids:
                rss += status_kib(p, "VmRSS")
                t = cpu_ticks(p)
                if t is not None:
                    cpu_last[p] = t
            peak_rss = max(peak_rss, rss)
            samples += 1
            time.sleep(args.interval)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    wall = time.monotonic() - started
    machine_end = machine_cpu()
    busy = machine_end[0] - machine_start[0]
    total = machine_end[1] - machine_start[1]
    output = proc.stdout.read()

    live = [p for p in pids if os.path.exists(f"/proc/{p}")]
    hwm = {str(p): status_kib(p, "VmHWM") for p in live}
    rss_end = sum(status_kib(p, "VmRSS") for p in live)
    server_cpu = sum(
        (cpu_last[p] or 0) - (cpu_start[p] or 0) for p in cpu_start if cpu_start[p] is not None
    ) / TICK

    m = re.search(r"^WRKJSON (.*)$", output, re.M)
    wrk = json.loads(m.group(1)) if m else None
    result = {
        "cmd": wrk_args,
        "exit": proc.returncode,
        "wrk": wrk,
        "wrk_text": output,
        "wall_s": wall,
        "wrk_cpu_s": (rusage.ru_utime + rusage.ru_stime) if rusage else None,
        "server_pids": pids,
        "server_cpu_s": server_cpu,
        "server_cpu_by_pid": {
            str(p): ((cpu_last[p] or 0) - (cpu_start[p] or 0)) / TICK
            for p in cpu_start
            if cpu_start[p] is not None
        },
        "machine_busy_pct": 100.0 * busy / total if total else None,
        "rss_first_kib": first_rss,
        "rss_peak_kib": peak_rss,
        "rss_end_kib": rss_end,
        "hwm_kib": hwm,
        "hwm_max_kib": max(hwm.values(), default=0),
        "hwm_sum_kib": sum(hwm.values()),
        "samples": samples,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    if proc.returncode != 0 or wrk is None:
        sys.stderr.write(output)
        sys.exit(f"run-wrk.py: wrk failed (exit {proc.returncode})")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
