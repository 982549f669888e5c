"""A simulator for simfer-cli's tests, speaking simfer's batch protocol as a line filter.

x = theta + 0.1 * N(0, 1) per value, drawn from random.Random(row seed). The first argument
is the mode; in every mode but `ok` and `slow`, a row whose seed is divisible by 10
misbehaves:
  ok       never              slow     never, but sleeps SLEEP seconds (2nd argument) a row
  crash    exits (status 3)   hang     sleeps for a minute
  garbage  answers `hello`    count    answers one value too many
  nan      answers NaN's      error    answers `error negative mass`
"""

import os
import random
import sys
import time


def answer(line, mode, sleep):
    fields = line.split()
    seed, theta = int(fields[0]), [float(v) for v in fields[1:]]
    if sleep:
        time.sleep(sleep)
    if seed % 10 == 0:
        if mode == "crash":
            sys.stderr.write("crashing at seed %d\n" % seed)
            sys.stderr.flush()
            os._exit(3)
        if mode == "hang":
            time.sleep(60)
        if mode == "garbage":
            return "hello"
        if mode == "count":
            return " ".join(["1.0"] * (len(theta) + 1))
        if mode == "nan":
            return " ".join(["nan"] * len(theta))
        if mode == "error":
            return "error negative mass"
    rng = random.Random(seed)
    return " ".join(repr(t + 0.1 * rng.gauss(0.0, 1.0)) for t in theta)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
    sleep = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    for line in sys.stdin:
        if line.startswith("batch"):
            continue
        print(answer(line, mode, sleep), flush=True)


if __name__ == "__main__":
    main()
