#!/usr/bin/env bash
# The main demo: build the tsync tool (release preset), run `tsync shootout` on
# every simulated scenario preset, and write the accuracy table (Markdown and
# CSV) and the plots (PNG, gnuplot) into build/demo/.
#   SEEDS=N ./scripts/demo.sh     (default 10 seeds per scenario)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${SEEDS:-10}
out=build/demo
./scripts/deps.sh
echo "demo: building the tsync tool (release preset; log in build/demo-build.log)"
mkdir -p build
if ! { cmake --preset release && cmake --build --preset release --target tsync_cli; } > build/demo-build.log 2>&1; then
  tail -n 40 build/demo-build.log >&2
  echo "demo: the build failed (full log: build/demo-build.log)" >&2
  exit 1
fi
tsync=./build/release/examples/tsync
rm -rf "$out"
mkdir -p "$out"
echo "demo: tsync shootout --seeds $seeds (every preset scenario, every estimator)"
"$tsync" shootout --seeds "$seeds" --csv "$out/shootout.csv" --plots "$out/plots" | tee "$out/shootout.md"
./scripts/plot.sh "$out/plots"
"$tsync" simulate --scenario quiet --seed 1 --out "$out/quiet_probes.csv" --truth "$out/quiet_truth.csv"
echo
echo "demo: results in $out/"
echo "  table:  $out/shootout.md  (CSV: $out/shootout.csv)"
echo "  plots:  $out/plots/<scenario>_offsets.png and <scenario>_hist.png"
echo "  sample: $out/quiet_probes.csv with its truth $out/quiet_truth.csv"
