#!/usr/bin/env python3
"""Page weight of the dashboard's crew map (issue 17 part 3).

Plans N synthetic meters on a 3 km x 3 km grid (PLAN.csv rows copied from
the example plan's first WAKE with new DevEUIs, METERS.csv with their
positions), serves them with `otavan serve --plan`, posts a report for a
third of them (UPDATED, FAILED, DOWNLOADING in turn) and prints the bytes
of `GET /` as it is and as the server gzips it for a browser
(Accept-Encoding: gzip), how long each took to serve, and how long
headless Chromium takes to load and dump it.

Usage: bench/crew-map-weight.py [OTAVAN_BIN] (default target/release/otavan;
run from the repository root). Prints one line per N.
"""
import gzip, json, os, random, socket, subprocess, sys, tempfile, time, urllib.request

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/otavan"
ROOT = "examples/releases"
CAMPAIGN = "examples/campaign"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def template_row(tmp):
    plan = os.path.join(tmp, "example.csv")
    subprocess.run([BIN, "campaign", "plan", "--meters", f"{CAMPAIGN}/METERS.csv",
                    "--route", f"{CAMPAIGN}/ROUTE.csv", "--start", "2025-06-03T06:00:00Z",
                    "--campaign", "7", "--target", "1.1.0", "--out", plan],
                   check=True, capture_output=True)
    header, first = open(plan).read().splitlines()[:2]
    return header, first.split(",", 1)[1]


def measure(n, tmp, header, rest):
    rng = random.Random(n)
    meters = ["dev_eui,lat,lon,install,uplink_interval_s,version,last_uplink,gen_app_key"]
    plan = [header]
    ids = []
    for i in range(n):
        eui = "70B3D5FE%08X" % i
        ids.append(eui)
        lat = 52.36 + rng.random() * 0.027
        lon = 9.72 + rng.random() * 0.044
        meters.append(f"{eui},{lat:.6f},{lon:.6f},basement,3600,1.0.0,,")
        plan.append(f"{eui},{rest}")
    route = ["lat,lon,time"] + [f"{52.36 + k * 0.0027:.6f},{9.72 if k % 2 == 0 else 9.764},"
                                for k in range(11)]
    route[1] += "2025-06-03T09:00:00Z"
    files = {}
    for name, lines in [("METERS.csv", meters), ("PLAN.csv", plan), ("ROUTE.csv", route)]:
        files[name] = os.path.join(tmp, f"{n}-{name}")
        open(files[name], "w").write("\n".join(lines) + "\n")
    port = free_port()
    server = subprocess.Popen([BIN, "serve", "--root", ROOT, "--db", os.path.join(tmp, f"{n}.db"),
                               "--no-deltas", "--bind", "127.0.0.1", "--port", str(port),
                               "--plan", files["PLAN.csv"], "--meters", files["METERS.csv"],
                               "--route", files["ROUTE.csv"]],
                              stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(100):
            try:
                urllib.request.urlopen(url).read()
                break
            except OSError:
                time.sleep(0.1)
        states = ["UPDATED", "FAILED", "DOWNLOADING"]
        for i, eui in enumerate(ids[: n // 3]):
            body = json.dumps({"device_id": eui, "from_version": "1.0.0", "to_version": "1.1.0",
                               "state": states[i % 3]}).encode()
            urllib.request.urlopen(urllib.request.Request(url + "report", data=body)).read()
        started = time.monotonic()
        page = urllib.request.urlopen(url).read()
        served_ms = (time.monotonic() - started) * 1000
        started = time.monotonic()
        zipped = urllib.request.urlopen(
            urllib.request.Request(url, headers={"Accept-Encoding": "gzip"}))
        encoding = zipped.headers.get("Content-Encoding")
        zipped = zipped.read()
        zipped_ms = (time.monotonic() - started) * 1000
        assert encoding == "gzip", encoding
        assert gzip.decompress(zipped).count(b"<circle") == page.count(b"<circle")
        profile = tempfile.mkdtemp(dir=tmp)
        started = time.monotonic()
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        f"--user-data-dir={profile}", "--dump-dom", url],
                       check=True, capture_output=True)
        chromium_s = time.monotonic() - started
        print(f"{n} meters: page {len(page)} bytes, served in {served_ms:.0f} ms; "
              f"gzipped by the server {len(zipped)} bytes, in {zipped_ms:.0f} ms; "
              f"chromium load+dump {chromium_s:.1f} s")
    finally:
        server.terminate()
        server.wait()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        header, rest = template_row(tmp)
        for n in (1000, 10000):
            measure(n, tmp, header, rest)


if __name__ == "__main__":
    main()
