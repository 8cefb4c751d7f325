#!/usr/bin/env python3
"""Puts a drive-by run (bench/driveby.sh) next to the analytic model.

For each meter: its contacts on the route (from the run's own timeline,
OUT/contacts.csv, the same for every pass), what the model predicts (the
meter updates on the first contact that holds association, the session
overhead and its transfer at its own goodput (the rehearsal's
goodput_kb_s, which the run paced its link by), the rehearsal's
constants from its scenario.toml, plus association and overhead again
for each link drop in it, OUT/drops.csv, as the rehearsal reconnects
after one (the drop's outage standing for association then); that is
its session time) and what the real stack did (lease, runs, power cuts,
outcome, session time). A session's time is what needs the van: from
its start to the van's receipt of the meter's DOWNLOADED report (the
van's database, OUT/work/otavan.db); the apply and the reports after it
need no link, in the rehearsal as on a meter. The veth has no WiFi
association: the model's association is the meter's own DHCP lease time
here, so that real and model time the same steps. Totals over the
meters without a bad-condition case: updated fraction and median session
time, real against model, and the session overhead the run measured (the
median, over sessions without a power cut, of the time from the lease
to DOWNLOADED less the transfer at the meter's goodput): the figure
behind the rehearsal's `wifi.session_overhead_s`. Then the same meters
through the analytic rehearsal itself (the run's OUT/work/rehearsal-route:
the town with its van on the drive-by's route, passes, release, power
cuts and the run's leases as association): its outcome per meter, and
the totals over the meters whose WAKE it did not lose (the drive-by has
no LoRa leg: its meters are always awake).
Writes OUT/compare.csv and prints the totals.

Usage: bench/driveby-report.py OUT [SESSION_OVERHEAD_S]
(the last in place of the scenario's, to check a calibration)
"""

import csv
import filecmp
import sqlite3
import statistics
import sys
import tomllib
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path


def downloaded_at(db: Path) -> dict[str, float]:
    """When the van first heard each meter report DOWNLOADED (Unix s)."""
    first: dict[str, float] = {}
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT device_id, time FROM reports WHERE state = 'DOWNLOADED' ORDER BY id")
        for device, time in rows:
            at = datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp()
            first.setdefault(device.removeprefix("m"), at)
    return first


def transfer_bytes(release: Path, source: str, target: str) -> int:
    """Files of `target` absent from or changed since `source`, plus its
    firmware (the run's deltas are off when its firmware was replaced)."""
    total = (release / f"firmware_{target}.bin").stat().st_size
    for path in (release / target).rglob("*"):
        if path.is_file():
            old = release / source / path.relative_to(release / target)
            if not old.is_file() or not filecmp.cmp(old, path, shallow=False):
                total += path.stat().st_size
    return total


def main() -> None:
    out = Path(sys.argv[1])
    work = out / "work"
    scenario = tomllib.loads((work / "rehearsal/scenario.toml").read_text())
    wifi = scenario["wifi"]
    overhead = float(sys.argv[2]) if len(sys.argv) > 2 else wifi["session_overhead_s"]
    mean_goodput = (wifi["goodput_min_kb_s"] + wifi["goodput_max_kb_s"]) / 2 * 1000
    replaced = (work / "firmware_kb").read_text().strip() != ""
    drop_file = work / "drop_s"
    drop_s = float(drop_file.read_text()) if drop_file.exists() else 2.0
    town = list(csv.DictReader(open(work / "rehearsal/meters.csv")))
    rehearsed = {r["meter"]: float(r["bytes"] or 0) for r in town}
    goodputs = {r["meter"]: float(r["goodput_kb_s"]) * 1000 for r in town
                if r.get("goodput_kb_s")}
    heard = downloaded_at(work / "otavan.db")
    contacts = defaultdict(list)
    for row in csv.reader(open(out / "contacts.csv")):
        contacts[row[0]].append((float(row[1]), float(row[2])))
    drops = defaultdict(list)
    for row in csv.reader(open(out / "drops.csv")):
        drops[row[0]].append(float(row[1]))
    sessions = defaultdict(list)
    for row in csv.DictReader(open(out / "sessions.csv")):
        sessions[row["meter"]].append(row)
    targets = sorted((p.name for p in (work / "release").iterdir()
                      if p.is_dir() and p.name[0].isdigit()),
                     key=lambda v: tuple(map(int, v.split("."))))
    target = targets[-1]
    leases = [float(s["leased"]) - float(s["start"])
              for runs in sessions.values() for s in runs if s["leased"]]
    typical_lease = statistics.median(leases) if leases else 0.0
    routed = work / "rehearsal-route/meters.csv"
    rehearsal = ({r["meter"]: r for r in csv.DictReader(open(routed))}
                 if routed.exists() else {})
    rows = []
    measured = []
    for meter in csv.DictReader(open(out / "meters.csv")):
        m = meter["meter"]
        size = (transfer_bytes(work / "release", meter["from"], target) if replaced
                else rehearsed.get(m, 0.0))
        goodput = goodputs.get(m, mean_goodput)
        leased = [s for s in sessions[m] if s["leased"]]
        lease = (float(leased[0]["leased"]) - float(leased[0]["start"])) if leased else typical_lease
        fixed = lease + overhead
        again = drop_s + overhead
        # The session in which the van heard DOWNLOADED.
        done = [s for s in leased
                if m in heard and float(s["leased"]) <= heard[m] <= float(s["end"])]
        if not meter["case"]:
            measured += [heard[m] - float(s["leased"]) - size / goodput
                         for s in done if s["power_cuts"] == "0"]
        needs = [fixed + again * sum(a <= d < b for d in drops[m]) + size / goodput
                 for a, b in contacts[m]]
        held = [n for (a, b), n in zip(contacts[m], needs) if b - a >= n]
        model_updated = bool(held)
        need = held[0] if held else (needs[0] if needs else fixed + size / goodput)
        rows.append({
            "meter": m,
            "case": meter["case"],
            "contacts_s": " ".join(f"{b - a:.0f}" for a, b in contacts[m]),
            "drops": len(drops[m]),
            "bytes": int(size),
            "goodput_kb_s": round(goodput / 1000, 1),
            "model_updated": model_updated,
            "model_session_s": round(need, 2),
            "updated": meter["version"] != meter["from"],
            "session_s": (round(heard[m] - float(done[0]["start"]), 2)
                          if done else None),
            "lease_s": (round(float(leased[0]["leased"]) - float(leased[0]["start"]), 2)
                        if leased else None),
            "runs": sum(int(s["runs"]) for s in sessions[m]),
            "power_cuts": sum(int(s["power_cuts"]) for s in sessions[m]),
            "exit": sessions[m][-1]["exit"] if sessions[m] else "never_in_range",
            "rehearsal": rehearsal[m]["outcome"] if m in rehearsal else "",
            "rehearsal_loss": rehearsal[m]["loss"] if m in rehearsal else "",
        })
    with open(out / "compare.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plain = [r for r in rows if not r["case"]]
    n = len(plain)
    real = sum(r["updated"] for r in plain) / n
    model = sum(r["model_updated"] for r in plain) / n
    print(f"meters {n} (without cases): updated {real:.3f} real, {model:.3f} model "
          f"({(real - model) * 100:+.1f} points)")
    both = [r for r in plain if r["session_s"] is not None]
    if both:
        med = statistics.median(r["session_s"] for r in both)
        model_med = statistics.median(r["model_session_s"] for r in both)
        print(f"median session {med:.2f} s real, {model_med:.2f} s model "
              f"({(med / model_med - 1) * 100:+.0f} %) over the {len(both)} meters whose "
              "DOWNLOADED the van heard")
    print(f"session overhead {overhead} s in the model; measured "
          f"{statistics.median(measured) if measured else float('nan'):.2f} s (median of "
          f"{len(measured)}); median lease {typical_lease:.2f} s (the model's association)")
    disagree = [r for r in plain if r["updated"] != r["model_updated"]]
    print(f"meters where real and model disagree: {len(disagree)} "
          f"({sum(r['updated'] for r in disagree)} updated only for real); "
          f"no lease within the window: {sum(r['exit'] == 'no_lease' for r in plain)}; "
          f"power cuts: {sum(r['power_cuts'] for r in plain)}")
    if rehearsal:
        awake = [r for r in plain if r["rehearsal_loss"] != "wake_not_delivered"]
        real = sum(r["updated"] for r in awake) / len(awake)
        model = sum(r["rehearsal"] == "updated" for r in awake) / len(awake)
        print(f"the rehearsal itself, {len(awake)} meters whose WAKE it delivered "
              f"({len(plain) - len(awake)} lost to LoRa left out): updated {real:.3f} real, "
              f"{model:.3f} rehearsal ({(real - model) * 100:+.1f} points)")
        print("  where they disagree: " + ", ".join(
            f"{k} {v}" for k, v in sorted(Counter(
                f"{'real' if r['updated'] else 'rehearsal'} only ({r['rehearsal']}, "
                f"{r['rehearsal_loss'] or '-'})" for r in awake
                if r["updated"] != (r["rehearsal"] == "updated")).items())))


if __name__ == "__main__":
    main()
