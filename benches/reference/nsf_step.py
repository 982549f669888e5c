#!/usr/bin/env python3
"""Times one maximum-likelihood training step of the reference library's neural spline
flow (sbi 0.27, `sbi.neural_nets.net_builders.build_nsf` with its defaults: 5 rational-
quadratic spline couplings with linear tails, LU layers, residual conditioners of width 50)
on the shapes of `crates/flows/benches/nsf.rs`.

A step is what sbi's trainer does per batch: zero the gradients, the loss
(−mean log q, `NFlowsFlow.loss(...).mean()`), backward, `clip_grad_norm_(…, 5.0)` and an
Adam step (lr 5e-4). Data: x ~ U(−1, 1)^C, θ_i = x_(i mod C) + 0.3·U(−1, 1), as in the
Rust benchmark. For D = C = 2 and D = C = 10, batches of 200 rows (`b200`) and the same
rows in the atomic loss's layout (`b200x10`: 2000 columns, each row's x repeated for its
10 atoms, as NPE-C's atomic loss evaluates the flow), and 1 and 2 torch threads, it runs `--warmup` steps, then `--repeats` timed steps, and prints the median
time per step (milliseconds) with the interquartile range, and the median CPU time of
the process per step (all its threads; a robust figure on a machine shared with other
work).

    /path/to/venv-with-sbi/bin/python benches/reference/nsf_step.py

Compare with `cargo bench -p simfer-flows --bench nsf -- nsf_train_step`.
"""

import argparse
import statistics
import time

import torch
from atomic_layout import ATOMS, atomic
from sbi.neural_nets.net_builders import build_nsf
from torch.nn.utils import clip_grad_norm_


def data(d, c, n, generator):
    x = 2.0 * torch.rand(n, c, generator=generator) - 1.0
    idx = torch.arange(d) % c
    theta = x[:, idx] + 0.3 * (2.0 * torch.rand(n, d, generator=generator) - 1.0)
    return theta, x


def time_steps(d, c, atoms, warmup, repeats):
    generator = torch.Generator().manual_seed(1)
    theta, x = data(d, c, 200, generator)
    if atoms:
        theta, x = atomic(theta, x)
    torch.manual_seed(3)
    flow = build_nsf(theta, x)
    params = list(flow.parameters())
    opt = torch.optim.Adam(params, lr=5e-4)

    def step():
        opt.zero_grad()
        loss = flow.loss(theta, x).mean()
        loss.backward()
        clip_grad_norm_(params, max_norm=5.0)
        opt.step()

    for _ in range(warmup):
        step()
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    n_params = sum(p.numel() for p in params)
    return times, cpu, n_params


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--repeats-large", type=int, default=30,
                        help="timed steps at 2000 columns")
    args = parser.parse_args()
    torch.set_num_interop_threads(1)
    print(f"torch {torch.__version__}, float32, CPU")
    print(f"{'shape':<16} {'threads':>7} {'params':>7} {'median ms':>10} {'IQR ms':>17} {'CPU ms':>8}")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for d, c in ((2, 2), (10, 10)):
            for atoms in (False, True):
                repeats = args.repeats_large if atoms else args.repeats
                times, cpu, n_params = time_steps(d, c, atoms, args.warmup, repeats)
                q = statistics.quantiles(times, n=4)
                med = statistics.median(times) * 1e3
                med_cpu = statistics.median(cpu) * 1e3
                name = f"D{d}_C{c}_b200x{ATOMS}" if atoms else f"D{d}_C{c}_b200"
                print(
                    f"{name:<16} {threads:>7} {n_params:>7} {med:>10.3f} "
                    f"{q[0] * 1e3:>8.3f}..{q[2] * 1e3:<8.3f} {med_cpu:>8.3f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
