#!/bin/sh
# The tutorial's linear Gaussian as an external simulator for simfer: a line filter in awk,
# in any dimension: x = theta + 1 + 0.1 * eps, eps ~ N(0, I).
#
# The batch protocol (documented in the rustdoc of `simfer_simulators::external`): simfer
# writes `batch <m>` and then m rows `<seed> <theta_1> ... <theta_d>`; a line filter skips the
# header and answers each row with one line `<x_1> ... <x_d>` at once, flushing every line.
#
# awk's own rand() differs between awks, so the noise comes from a small generator written
# here: the Park-Miller minimal standard generator (Park & Miller 1988, "Random number
# generators: good ones are hard to find"), whose products stay below 2^53 and so are exact
# in awk's doubles, seeded from the last 9 digits of the row's seed, and Box-Muller for the
# normal draws. The same seed gives the same x with any awk (on the same C maths library).
#
# mawk reads its input in blocks unless told otherwise, so that it would wait for more rows
# before answering the first: it needs `-W interactive` (gawk handles each line as it comes).
#
# Try it by hand:
#     printf 'batch 2\n1 0.1 0.2 0.3\n2 -1 0 1\n' | sh linear_gaussian.sh
case $(awk -W version 2>&1 </dev/null) in
    *mawk*) set -- -W interactive ;;
    *) set -- ;;
esac
exec awk "$@" '
function uniform() {
    state = (16807 * state) % 2147483647
    return state / 2147483647
}
$1 == "batch" { next }
{
    s = $1
    if (length(s) > 9) s = substr(s, length(s) - 8)
    state = (s % 2147483646) + 1
    for (k = 0; k < 3; k++) uniform()
    line = ""
    for (j = 2; j <= NF; j++) {
        z = sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform())
        line = line (j > 2 ? " " : "") sprintf("%.17g", $j + 1 + 0.1 * z)
    }
    print line
    fflush()
}'
