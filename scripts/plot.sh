#!/usr/bin/env bash
# Turn the plot data written by `tsync shootout --plots DIR` into PNG images
# (DIR/<scenario>_offsets.png and DIR/<scenario>_hist.png) with gnuplot.
# usage: scripts/plot.sh DIR
set -euo pipefail
dir=${1:?usage: scripts/plot.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
shopt -s nullglob
n=0
for vars in "$dir"/*_vars.gp; do
  scen=$(basename "$vars" _vars.gp)
  gnuplot -e "dir='$dir'; scen='$scen'" "$here/shootout.gp"
  n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "plot.sh: no plot data in $dir (run tsync shootout --plots $dir)" >&2; exit 1; }
echo "plot.sh: wrote $((2 * n)) images to $dir"
