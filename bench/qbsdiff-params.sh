#!/usr/bin/env bash
# Which qbsdiff settings would close the gap to bsdiff4 (issue 4)? Optional,
# after bench/deltas.sh (it reads bench/out/deltas/ and bench/out/deltas.json).
#
#   bench/qbsdiff-params.sh
#
# Writes a throwaway crate to bench/out/qbprobe/ (ignored by git, not part of
# the workspace) that links the same qbsdiff as otavan (the version in
# Cargo.lock), builds it at nice 19, and diffs every pair with several
# settings at bzip2 level 9: the parallel scheme (otavan uses qbsdiff's
# default, Auto = 512 KiB target chunks, or Never) and small_match (qbsdiff's
# default 12; the classic bsdiff's is 8). Prints a Markdown table of patch
# sizes and otavan-variant / bsdiff4 ratios, also written to
# bench/out/qbsdiff-params.md. Does not touch otavan's code.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=$PWD/bench/out
PROBE=$OUT/qbprobe
[ -f "$OUT/deltas.json" ] || { echo "run bench/deltas.sh first" >&2; exit 1; }
version=$(awk '/^name = "qbsdiff"$/ { getline; gsub(/[^0-9.]/, ""); print }' Cargo.lock)
[ -n "$version" ] || { echo "qbsdiff not in Cargo.lock" >&2; exit 1; }

mkdir -p "$PROBE/src"
cat >"$PROBE/Cargo.toml" <<EOF
[package]
name = "qbprobe"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
qbsdiff = "=$version"

[workspace]
EOF
cat >"$PROBE/src/main.rs" <<'EOF'
use qbsdiff::{Bsdiff, ParallelScheme};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = &args[1];
    for pair in &args[2..] {
        let (old, new) = pair.split_once(':').unwrap();
        let old = std::fs::read(format!("{dir}/{old}")).unwrap();
        let new_bytes = std::fs::read(format!("{dir}/{new}")).unwrap();
        for (label, scheme, small) in [
            ("Auto, 12", ParallelScheme::Auto, 12),
            ("Never, 12", ParallelScheme::Never, 12),
            ("Auto, 8", ParallelScheme::Auto, 8),
            ("Never, 8", ParallelScheme::Never, 8),
            ("Never, 16", ParallelScheme::Never, 16),
        ] {
            let mut patch = Vec::new();
            let started = std::time::Instant::now();
            Bsdiff::new(&old, &new_bytes)
                .compression_level(9)
                .parallel_scheme(scheme)
                .small_match(small)
                .compare(&mut patch)
                .unwrap();
            let secs = started.elapsed().as_secs_f64();
            println!("{new}\t{label}\t{}\t{secs:.3}", patch.len());
        }
    }
}
EOF
echo "building the probe (qbsdiff $version) at nice 19" >&2
(cd "$PROBE" && CARGO_TARGET_DIR="$PROBE/target" nice -n 19 cargo build --release --quiet)

pairs=$(python3 -c 'import json,sys; print(" ".join(p["old"]+":"+p["new"] for p in json.load(open(sys.argv[1]))))' "$OUT/deltas.json")
# shellcheck disable=SC2086
"$PROBE/target/release/qbprobe" "$OUT/deltas" $pairs >"$OUT/qbsdiff-params.tsv"

python3 - "$OUT/deltas.json" "$OUT/qbsdiff-params.tsv" "$OUT/qbsdiff-params.md" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))
runs = [line.split("\t") for line in open(sys.argv[2]).read().splitlines()]
labels = list(dict.fromkeys(r[1] for r in runs))
size = {(r[0], r[1]): int(r[2]) for r in runs}
secs = {(r[0], r[1]): float(r[3]) for r in runs}
out = ["| pair | bsdiff4 | " + " | ".join(f"{l}" for l in labels) + " |",
       "|---|--:|" + "--:|" * len(labels)]
for r in rows:
    cells = []
    for l in labels:
        n = size[(r["new"], l)]
        ratio = n / r["bsdiff4_bytes"]
        mark = "" if ratio <= 1.05 else " **FAIL**"
        cells.append(f"{n} B ({ratio:.3f}{mark}, {secs[(r['new'], l)]:.2f} s)")
    out.append(f"| {r['label']} | {r['bsdiff4_bytes']} B | " + " | ".join(cells) + " |")
head = ("Patch size (ratio to bsdiff4, time) for qbsdiff's parallel scheme and "
        "small_match; bzip2 level 9 throughout. otavan today: Auto, 12.\n\n")
text = head + "\n".join(out) + "\n"
open(sys.argv[3], "w").write(text)
print(text)
EOF
