#!/usr/bin/env python3
"""Times the reference library (sbi 0.27) running SNPE-C, SNLE or SNRE end to end on
two_moons: R rounds of N simulations (round 1 from the prior, later rounds from the
posterior at x_o), one training per round, then the final posterior samples, all with the
library's defaults (SNPE-C: MAF posterior estimator, the atomic loss with 10 atoms after
the first round, direct sampling with leakage rejection; SNLE/SNRE: MAF likelihood
estimator or residual-net classifier with the NRE-B loss, sampled by
`slice_np_vectorized` with 20 chains, 200 warm-up steps, `resample` initialisation).

The two_moons simulator is the benchmark's (see `crates/benchmark/src/tasks/two_moons.rs`),
vectorized in torch. The printed phases (simulate, train, sample) sum to the total.

    /path/to/venv-with-sbi/bin/python benches/reference/sequential_methods.py --method snpe
    /path/to/venv-with-sbi/bin/python benches/reference/sequential_methods.py --method snle
    /path/to/venv-with-sbi/bin/python benches/reference/sequential_methods.py --method snre

Compare, in the same sitting, with
    cargo xtask run --task two_moons --method snpe --rounds 10 --simulations-per-round 1000 \
        --observation=0,0 --samples 10000 --out target/xtask/snpe-two-moons
    cargo xtask run --task two_moons --method snle --rounds 10 --simulations-per-round 1000 \
        --observation=0,0 --samples 10000 --out target/xtask/snle-two-moons
which prints the same phases. The last line gives Σ epochs × (simulations trained on) /
1000 over the rounds, the training work that the two libraries' early stopping decides.
"""

import argparse
import math
import time

import torch
from sbi.inference import NLE, NPE, NRE_B
from sbi.utils import BoxUniform


def two_moons(theta):
    """x = p + (-|z0|, z1) with z0 = (t1 + t2)/sqrt 2, z1 = (-t1 + t2)/sqrt 2 and the crescent
    point p = (r cos a + 0.25, r sin a), a ~ U(-pi/2, pi/2), r ~ N(0.1, 0.01^2)."""
    n = theta.shape[0]
    a = math.pi * (torch.rand(n) - 0.5)
    r = 0.1 + 0.01 * torch.randn(n)
    p0 = r * torch.cos(a) + 0.25
    p1 = r * torch.sin(a)
    z0 = (theta[:, 0] + theta[:, 1]) / math.sqrt(2.0)
    z1 = (-theta[:, 0] + theta[:, 1]) / math.sqrt(2.0)
    return torch.stack([p0 - z0.abs(), p1 + z1], dim=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=["snpe", "snle", "snre"], required=True)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--simulations-per-round", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--samples-out", default=None, help="write the final samples as CSV")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    prior = BoxUniform(low=-torch.ones(2), high=torch.ones(2))
    x_o = torch.zeros(1, 2)
    method = {"snpe": NPE, "snle": NLE, "snre": NRE_B}[args.method]
    inference = method(prior=prior, show_progress_bars=False)
    proposal = prior
    phases = {"simulate": 0.0, "train": 0.0, "sample": 0.0}
    start = time.perf_counter()
    posterior = None
    work = 0.0
    for r in range(args.rounds):
        t = time.perf_counter()
        theta = (proposal.sample((args.simulations_per_round,)) if r == 0 else
                 proposal.sample((args.simulations_per_round,), show_progress_bars=False))
        phases["sample" if r > 0 else "simulate"] += time.perf_counter() - t
        t = time.perf_counter()
        x = two_moons(theta)
        phases["simulate"] += time.perf_counter() - t
        t = time.perf_counter()
        if args.method == "snpe":
            inference.append_simulations(theta, x, proposal=proposal)
        else:
            inference.append_simulations(theta, x)
        estimator = inference.train()
        epochs = inference.summary["epochs_trained"][-1]
        work += epochs * (r + 1) * args.simulations_per_round / 1000
        posterior = inference.build_posterior(estimator)
        proposal = posterior.set_default_x(x_o)
        phases["train"] += time.perf_counter() - t
        print("round %2d: %5d simulations, %3d epochs, %.1f s so far"
              % (r + 1, args.simulations_per_round, epochs, time.perf_counter() - start),
              flush=True)
    t = time.perf_counter()
    samples = posterior.sample((args.samples,), x=x_o, show_progress_bars=False)
    phases["sample"] += time.perf_counter() - t
    total = time.perf_counter() - start
    print("sbi %s two_moons %d x %d, %d samples: %.1f s (simulate %.1f + train %.1f + sample %.1f)"
          % (args.method, args.rounds, args.simulations_per_round, args.samples, total,
             phases["simulate"], phases["train"], phases["sample"]))
    print("training work: sum of epochs x simulations trained on / 1000 = %.0f" % work)
    print("posterior mean %s std %s" % (samples.mean(0).tolist(), samples.std(0).tolist()))
    if args.samples_out:
        with open(args.samples_out, "w") as f:
            f.write("theta_1,theta_2\n")
            for row in samples.tolist():
                f.write("%r,%r\n" % (row[0], row[1]))


if __name__ == "__main__":
    main()
