# Plots of one scenario of `tsync shootout --plots DIR`.
# usage: gnuplot -e "dir='DIR'; scen='NAME'" scripts/shootout.gp
# Reads DIR/NAME_vars.gp, DIR/NAME_probes.dat, DIR/NAME_<estimator>.dat,
# DIR/NAME_hist.dat, DIR/NAME_marks.dat; writes DIR/NAME_offsets.png and
# DIR/NAME_hist.png. Every value is relative to the truth (0 = exact).
load dir.'/'.scen.'_vars.gp'
set terminal pngcairo size 1400,800 font ',11' noenhanced
set datafile missing 'NaN'
set key outside right top box
set grid

# ---- probe offsets over time, each estimator's map and its hard band ----
set output dir.'/'.scen.'_offsets.png'
set title sprintf("%s: probe offsets and fitted maps relative to the truth (floor %.2f us)", scen, floor_us)
set xlabel 'time since trace start (s)'
set ylabel 'offset - true offset (us): host - guest'
set yrange [-yr_us:yr_us]
set style fill transparent solid 0.12 noborder
n = words(ests)
plot dir.'/'.scen.'_probes.dat' using 1:2 with points pt 7 ps 0.15 lc rgb '#a0a0a0' title 'probe midpoints', \
     for [i=1:n] dir.'/'.scen.'_'.word(ests,i).'.dat' using 1:3:4 with filledcurves lc i notitle, \
     for [i=1:n] dir.'/'.scen.'_'.word(ests,i).'.dat' using 1:2 with lines lw 2 lc i title word(ests,i)

# ---- histogram of one burst's probe offsets with the estimates marked ----
set output dir.'/'.scen.'_hist.png'
set title sprintf("%s: midpoint offsets of burst %d (relative to the true offset) and each estimate", scen, hist_burst)
set xlabel 'offset - true offset (us): host - guest'
set ylabel 'probes'
set yrange [0:*]
stats dir.'/'.scen.'_hist.dat' using 1 nooutput
lo = STATS_min; hi = STATS_max
if (hi - lo > 4 * yr_us) { lo = STATS_median - 2*yr_us; hi = STATS_median + 2*yr_us }
set xrange [lo - 0.05*(hi-lo+0.001) : hi + 0.05*(hi-lo+0.001)]
bw = (hi - lo) / 60.0
if (bw <= 0) bw = 0.001
bin(x) = bw * floor(x / bw) + bw / 2
set style fill solid 0.5 border lc rgb '#606060'
set boxwidth bw
unset arrow
set arrow from 0, graph 0 to 0, graph 1 nohead lw 3 lc rgb 'black' dt 2
marks = dir.'/'.scen.'_marks.dat'
nm = int(system('grep -vc "^#" '.marks))
do for [i=1:nm] {
  x = real(system('grep -v "^#" '.marks.' | sed -n '.i.'p | cut -d" " -f2'))
  set arrow from x, graph 0 to x, graph 1 nohead lw 2 lc i front
}
plot dir.'/'.scen.'_hist.dat' using (bin($1)):(1.0) smooth frequency with boxes lc rgb '#9ecae1' title 'probes', \
     for [i=1:nm] NaN with lines lw 2 lc i title system('grep -v "^#" '.marks.' | sed -n '.i.'p | cut -d" " -f1'), \
     NaN with lines lw 3 dt 2 lc rgb 'black' title 'truth'
