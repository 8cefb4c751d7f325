#!/usr/bin/env python3
"""Run a command; print its wall time and peak RSS (of it and its children) as JSON.

Usage: bench/measure.py -- COMMAND [ARGS...]
"""
import json
import resource
import subprocess
import sys
import time


def main() -> int:
    if "--" not in sys.argv:
        print(__doc__, file=sys.stderr)
        return 2
    command = sys.argv[sys.argv.index("--") + 1:]
    started = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"exit": result.returncode, "wall_s": round(wall, 4), "max_rss_kib": usage.ru_maxrss}))
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
