"""A simulator for the external-simulator tests, speaking simfer's batch protocol.

x = (theta_1 + N(0, 1), theta_2 + U(0, 1)), drawn from random.Random(row seed), except that
theta_1 picks a misbehaviour:
  1: write to stderr and exit with status 3     2: hang
  3: answer `hello world`                      4: answer three values
  5: answer `nan NaN`                          6: answer `error negative mass`
  7: answer `-inf 1`

The first argument is the mode:
  filter     a line filter: skip the header, answer each row at once
  vectorize  read the whole batch, then answer it (a misbehaving row spoils the batch)
  short      vectorize, but answer only the first 2 rows of each batch
  noisy      filter, writing 100 kB to stderr before each answer
"""

import os
import random
import sys
import time


def answer(row):
    fields = row.split()
    seed, theta = int(fields[0]), [float(v) for v in fields[1:]]
    t = theta[0]
    if t == 1:
        sys.stderr.write("boom at theta=1\n")
        sys.stderr.flush()
        os._exit(3)
    if t == 2:
        time.sleep(60)
    if t == 3:
        return "hello world"
    if t == 4:
        return "1 2 3"
    if t == 5:
        return "nan NaN"
    if t == 6:
        return "error negative mass"
    if t == 7:
        return "-inf 1"
    rng = random.Random(seed)
    return "%r %r" % (theta[0] + rng.gauss(0.0, 1.0), theta[1] + rng.random())


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "filter"
    if mode in ("filter", "noisy"):
        for line in sys.stdin:
            if line.startswith("batch"):
                continue
            if mode == "noisy":
                sys.stderr.write("x" * 100_000 + "\n")
            print(answer(line), flush=True)
        return
    while True:
        header = sys.stdin.readline()
        if not header:
            return
        rows = [sys.stdin.readline() for _ in range(int(header.split()[1]))]
        answers = [answer(row) for row in rows]
        if mode == "short":
            answers = answers[:2]
        sys.stdout.write("".join(a + "\n" for a in answers))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
