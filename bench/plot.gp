# Latency distributions as percentile curves (gnuplot 5). Called by bench/run:
#   gnuplot -e "files='a.dat b.dat'; titles='A|B'; out='x.svg'" bench/plot.gp
# Each .dat (latency::write_ladder): a header line of peer names, then one line per
# percentile: the percentile, then each peer's cycles there. One panel per file; x is
# the percentile on a scale of nines (p50, p90, p99, ... and the max at the right end),
# y the cycles, both logarithmic: the body on the left, the tail that matters on the right.
n = words(files)
cols = (n < 2) ? 1 : 2
rows = (n + cols - 1) / cols
if (out[strlen(out)-2:] eq "png") {
  set terminal pngcairo size 560*cols, 400*rows font "sans,10" background rgb "white"
} else {
  set terminal svg size 560*cols, 400*rows dynamic font "sans,11" background rgb "white"
}
set output out
set multiplot layout rows, cols
# Twelve distinguishable colours, so that no two peers of a panel share one.
array colours[12] = ["#1f77b4", "#d62728", "#2ca02c", "#000000", "#ff7f0e", "#9467bd", \
                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8"]
do for [i = 1:12] { set linetype i lc rgb colours[i] }
set linetype cycle 12
set logscale xy
set grid xtics ytics mytics lc rgb "#dddddd"
set xrange [1.5:3e7]
set xtics ("p50" 2, "p90" 10, "p99" 100, "p99.9" 1000, "p99.99" 1e4, "p99.999" 1e5, "p99.9999" 1e6, "max" 1e7)
set ylabel "cycles (timer overhead subtracted)"
set key top left font ",9" samplen 2 spacing 0.9
set datafile missing "nan"
x(q) = (q >= 1) ? 1e7 : 1 / (1 - q)
do for [i = 1:n] {
  f = word(files, i)
  set title word(titles, i) noenhanced
  ncol = 1 + int(system("head -1 '" . f . "' | tr -cd '\"' | wc -c")) / 2
  set key autotitle columnhead noenhanced
  plot for [c = 2:ncol] f using (x($1)):c with linespoints pt 7 ps 0.4 lw 1.5
}
unset multiplot
