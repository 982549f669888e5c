#!/usr/bin/env python3
"""two_moons as an external simulator for simfer: a vectorizing one (it reads a whole batch,
then answers it), using the Python standard library only.

The batch protocol (documented in the rustdoc of `simfer_simulators::external`): simfer
writes `batch <m>` and then m rows `<seed> <theta_1> <theta_2>`; this script answers m lines
`<x_1> <x_2>` in the same order and flushes. Each simulation is seeded from its row's seed
alone, so the result does not depend on the batch size, the number of workers or restarts.

The simulator is sbibm's two_moons (as `simfer_simulators::tasks::TwoMoons`):
a ~ U(-pi/2, pi/2), r ~ N(0.1, 0.01^2), p = (r cos a + 0.25, r sin a),
z0 = (theta_1 + theta_2) / sqrt(2), z1 = (-theta_1 + theta_2) / sqrt(2),
x = p + (-|z0|, z1).

Try it by hand:
    printf 'batch 2\n1 0.1 0.2\n2 -0.5 0.5\n' | python3 two_moons.py
"""

import math
import random
import sys


def simulate(theta, seed):
    """One simulation of two_moons at theta, drawing only from `seed`."""
    if len(theta) != 2:
        raise ValueError("expected 2 parameters, found %d" % len(theta))
    rng = random.Random(seed)
    a = math.pi * (rng.random() - 0.5)
    r = 0.1 + 0.01 * rng.gauss(0.0, 1.0)
    p0, p1 = r * math.cos(a) + 0.25, r * math.sin(a)
    z0 = (theta[0] + theta[1]) / math.sqrt(2.0)
    z1 = (-theta[0] + theta[1]) / math.sqrt(2.0)
    return (p0 - abs(z0), p1 + z1)


def answer(row):
    """The answer line of one request row: x, or `error <message>` for a failed simulation."""
    try:
        fields = row.split()
        x = simulate([float(v) for v in fields[1:]], int(fields[0]))
        # repr writes the shortest form that reads back to the same double.
        return " ".join(repr(v) for v in x)
    except Exception as e:  # one failed simulation must not stop the worker
        return "error " + " ".join(str(e).split())


def main():
    stdin, stdout = sys.stdin, sys.stdout
    while True:
        header = stdin.readline()
        if not header:  # end of file: simfer has no more work for this worker
            return
        fields = header.split()
        if len(fields) != 2 or fields[0] != "batch":
            sys.stderr.write("two_moons.py: expected `batch <m>`, found %r\n" % header)
            sys.exit(2)
        rows = [stdin.readline() for _ in range(int(fields[1]))]
        stdout.write("".join(answer(row) + "\n" for row in rows))
        stdout.flush()


if __name__ == "__main__":
    main()
