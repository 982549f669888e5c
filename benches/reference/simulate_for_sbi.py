#!/usr/bin/env python3
"""Times the reference library's `sbi.utils.simulation_utils.simulate_for_sbi` (sbi 0.27,
re-exported as `sbi.inference.simulate_for_sbi`) with the trivial simulator of
`crates/simulators/benches/external.rs`: x = theta + 0.1 * eps per row, eps ~ N(0, I) drawn
with the standard library's `random`, in pure Python, on a 3-D BoxUniform(-2, 2) prior.

For each number of workers (1, 2) and simulation batch size (1, sbi's default, and 100), it
runs simulate_for_sbi once to warm up (joblib starts its worker processes then), then
`--repeats` timed runs, and prints the median simulations per second.

    /path/to/venv-with-sbi/bin/python benches/reference/simulate_for_sbi.py

Compare with `cargo bench -p simfer-simulators --bench external`, where the simulator is a
separate Python process speaking simfer's batch protocol.
"""

import argparse
import random
import statistics
import time

import numpy as np
import torch
from sbi.inference import simulate_for_sbi
from sbi.utils import BoxUniform


def simulator(theta):
    """x = theta + 0.1 * eps for each row of a batch (a Tensor, or a NumPy array when
    simulate_for_sbi uses several workers)."""
    rows = np.asarray(theta, dtype=np.float64).tolist()
    gauss = random.gauss
    x = [[t + 0.1 * gauss(0.0, 1.0) for t in row] for row in rows]
    return torch.tensor(x, dtype=torch.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    prior = BoxUniform(low=-2 * torch.ones(3), high=2 * torch.ones(3))
    print("sbi simulate_for_sbi, trivial Python simulator, 3-D; median of %d runs" % args.repeats)
    for batch, n in [(1, 2_000), (100, 20_000)]:
        for workers in [1, 2]:
            simulate_for_sbi(simulator, prior, n, num_workers=workers,
                             simulation_batch_size=batch, seed=0, show_progress_bar=False)
            seconds = []
            for r in range(args.repeats):
                start = time.perf_counter()
                theta, x = simulate_for_sbi(simulator, prior, n, num_workers=workers,
                                            simulation_batch_size=batch, seed=r,
                                            show_progress_bar=False)
                seconds.append(time.perf_counter() - start)
                assert x.shape == (n, 3)
            median = statistics.median(seconds)
            print("simulation_batch_size=%-4d num_workers=%d  n=%-6d  %.3f s  %10.0f simulations/s"
                  % (batch, workers, n, median, n / median))


if __name__ == "__main__":
    main()
