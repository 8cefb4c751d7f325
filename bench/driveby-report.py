#!/usr/bin/env python3
"""Puts a drive-by run (bench/driveby.sh) next to the analytic model.

For each meter: its contact on the pass (the chord of its WiFi range along
the street at the van's speed), what the model predicts for that contact
(updated when the contact holds association, the session overhead and the
transfer at the meter's goodput, the rehearsal's constants from its
scenario.toml) and what the real stack did (lease, attempts, power cuts,
outcome, session time). Totals: updated fraction and median session time,
real against model. Writes OUT/compare.csv and prints the totals.

Usage: bench/driveby-report.py OUT [SPEED_KMH]
"""

import csv
import math
import statistics
import sys
import tomllib
from pathlib import Path


def main() -> None:
    out = Path(sys.argv[1])
    speed_ms = float(sys.argv[2] if len(sys.argv) > 2 else 10) / 3.6
    scenario = tomllib.loads((out / "work/rehearsal/scenario.toml").read_text())
    wifi = scenario["wifi"]
    goodput = (wifi["goodput_min_kb_s"] + wifi["goodput_max_kb_s"]) / 2 * 1000
    fixed = wifi["assoc_median_s"] + wifi["session_overhead_s"]
    sizes = {r["meter"]: float(r["bytes"] or 0)
             for r in csv.DictReader(open(out / "work/rehearsal/meters.csv"))}
    sessions = {r["meter"]: r for r in csv.DictReader(open(out / "sessions.csv"))}
    rows = []
    for meter in csv.DictReader(open(out / "meters.csv")):
        m, r, y = meter["meter"], float(meter["range_m"]), float(meter["y_m"])
        contact = 2 * math.sqrt(r * r - y * y) / speed_ms if r > abs(y) else 0.0
        need = fixed + sizes.get(m, 0.0) / goodput
        s = sessions.get(m)
        real_s = None
        if s and s["exit"] == "0":
            real_s = float(s["end"]) - float(s["start"])
        lease_s = float(s["leased"]) - float(s["start"]) if s and s["leased"] else None
        rows.append({
            "meter": m,
            "contact_s": round(contact, 1),
            "model_updated": contact >= need,
            "model_session_s": round(need, 2),
            "updated": meter["version"] != meter["from"],
            "session_s": None if real_s is None else round(real_s, 2),
            "lease_s": None if lease_s is None else round(lease_s, 2),
            "attempts": s["tries"] if s else 0,
            "power_cuts": s["power_cuts"] if s else 0,
            "exit": s["exit"] if s else "never_in_range",
        })
    with open(out / "compare.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    n = len(rows)
    real = sum(r["updated"] for r in rows) / n
    model = sum(r["model_updated"] for r in rows) / n
    real_sessions = [r["session_s"] for r in rows if r["session_s"] is not None]
    leases = [r["lease_s"] for r in rows if r["lease_s"] is not None]
    print(f"meters {n}: updated {real:.3f} real, {model:.3f} model "
          f"({(real - model) * 100:+.1f} points)")
    if real_sessions:
        med, model_med = statistics.median(real_sessions), statistics.median(
            r["model_session_s"] for r in rows)
        print(f"median session {med:.2f} s real, {model_med:.2f} s model "
              f"({(med / model_med - 1) * 100:+.0f} %); median lease {statistics.median(leases):.2f} s "
              f"against the model's whole association {wifi['assoc_median_s']} s")
    no_lease = sum(r["exit"] == "no_lease" for r in rows)
    print(f"no lease within the window: {no_lease}; power cuts: "
          f"{sum(int(r['power_cuts']) for r in rows)}")


if __name__ == "__main__":
    main()
