#!/usr/bin/env python3
"""Run a command; print its wall time and peak RSS (of it and its children) as JSON.

Usage: bench/measure.py -- COMMAND [ARGS...]

Peak RSS: the kernel's ru_maxrss of a child also counts the memory it had
before exec, i.e. a copy of this Python process (~14 MiB), so on its own it
can never report less than that (`measure.py -- /bin/true` said 14 MiB).
So: when ru_maxrss exceeds what this process held when it started the
command, it is the command's own peak (children included) and is used;
otherwise the command stayed smaller than Python, and the peak is VmHWM of
the command's process, read from /proc every 5 ms after its exec (its
children are not followed in that case). "rss_source" says which.
"""
import json
import resource
import subprocess
import sys
import threading
import time


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> int:
    if "--" not in sys.argv:
        print(__doc__, file=sys.stderr)
        return 2
    command = sys.argv[sys.argv.index("--") + 1:]
    floor = status_kib("self", "VmHWM")
    started = time.perf_counter()
    # Popen returns once the child has exec'd (it waits for the close-on-exec
    # error pipe), so every VmHWM read below is the command's own.
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    sampled = [0]
    done = threading.Event()

    def sample():  # in a thread, so the wall time is not rounded up to a tick
        while not done.is_set():
            sampled[0] = max(sampled[0], status_kib(proc.pid, "VmHWM"))
            done.wait(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    proc.wait()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if usage > floor:
        peak, source = usage, "rusage"
    else:
        peak, source = sampled[0], "sampled VmHWM"
    print(json.dumps({
        "exit": proc.returncode,
        "wall_s": round(wall, 4),
        "max_rss_kib": peak,
        "rss_source": source,
        "rusage_maxrss_kib": usage,
        "python_floor_kib": floor,
    }))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
