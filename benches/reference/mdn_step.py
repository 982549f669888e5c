"""Times one maximum-likelihood training step of the reference library's mixture density
network, for comparison with `cargo bench -p simfer-flows --bench mdn -- mdn_train_step`.

The step is what sbi's trainer does per batch in round 0 (`npe_base.py`, `_loss` then the
optimizer): loss = mean(-log q(theta | x)) of the MDN of `build_mdn` with its defaults
(2 hidden layers of 50, 10 components, z-scoring of theta and x), `zero_grad`,
`backward`, `clip_grad_norm_(..., 5.0)`, `Adam(lr=5e-4).step()`.

Data as in the Rust benchmark: x ~ U(-1, 1)^C, theta_i = x_(i mod C) + 0.3 U(-1, 1);
D = C = 2 and D = C = 10, batches of 200 rows (`b200`) and the same rows in the atomic
loss's layout (`b200x10`: 2000 columns, each row's x repeated for its 10 atoms, as NPE-C's
atomic loss evaluates the estimator), float32, 1 and 2 torch threads.
The steps cycle through a pool of batches of 20,000 samples in all (as epochs do; one
batch repeated thousands of times lets the mixture collapse onto its points). The
network is built, as in sbi, from the first training batch.
Each configuration reports the median over many timed steps after a warm-up, in wall
time and in CPU time of the process (`time.process_time`; with one thread, what the step
costs when it has a core to itself, also on a shared machine).

    /path/to/venv/bin/python benches/reference/mdn_step.py [--reps N] [--threads 1 2]
        [--non-atomic] [--json out.json]
"""

import argparse
import json
import statistics
import time

import torch
from atomic_layout import ATOMS, atomic
from sbi import __version__ as sbi_version
from sbi.neural_nets.net_builders import build_mdn


POOL = 20_000


def data(d, c, n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, generator=g) * 2 - 1
    idx = torch.arange(d) % c
    theta = x[:, idx] + 0.3 * (torch.rand(n, d, generator=g) * 2 - 1)
    return theta.float(), x.float()


def time_steps(d, c, atoms, threads, reps, warmup):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    theta_all, x_all = data(d, c, POOL, 1)
    batch = 200
    pool = [
        (theta_all[b * batch:(b + 1) * batch], x_all[b * batch:(b + 1) * batch])
        for b in range(POOL // batch)
    ]
    if atoms:
        pool = [atomic(t, x) for t, x in pool]
    net = build_mdn(batch_x=pool[0][0], batch_y=pool[0][1])
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    state = {"next": 0}

    def step():
        theta, x = pool[state["next"]]
        state["next"] = (state["next"] + 1) % len(pool)
        opt.zero_grad()
        loss = net.loss(theta, x).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=5.0)
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    n_params = sum(p.numel() for p in net.parameters())
    return statistics.median(wall), statistics.median(cpu), n_params


class _NoTracker:
    """A tracker that records nothing (sbi's default writes TensorBoard logs to ./sbi-logs)."""

    log_dir = None

    def log_metric(self, name, value, step=None):
        pass

    def log_metrics(self, metrics, step=None):
        pass

    def log_params(self, params):
        pass

    def add_figure(self, name, figure, step=None):
        pass

    def flush(self):
        pass


def time_non_atomic(d, c, batch, threads, reps, warmup):
    """One training step with NPE-C's non-atomic loss (`_log_prob_proposal_posterior_mog`)
    of an MDN against an MDN proposal at its default x, Gaussian prior N(0, I)."""
    import copy

    from sbi.inference import NPE_C
    from sbi.inference.posteriors import DirectPosterior
    from torch.distributions import MultivariateNormal

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    prior = MultivariateNormal(torch.zeros(d), torch.eye(d))
    theta = prior.sample((batch,))
    x = theta[:, torch.arange(c) % d] + 0.1 * (torch.rand(batch, c) * 2 - 1)
    net = build_mdn(batch_x=theta, batch_y=x)
    proposal = DirectPosterior(copy.deepcopy(net), prior).set_default_x(torch.zeros(1, c))
    trainer = NPE_C(
        prior=prior, density_estimator="mdn", show_progress_bars=False, tracker=_NoTracker()
    )
    trainer._neural_net = net
    trainer._set_state_for_mog_proposal()
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)

    def step():
        opt.zero_grad()
        loss = -trainer._log_prob_proposal_posterior_mog(theta, x, proposal).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=5.0)
        opt.step()

    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=1000, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--json", help="write the medians (seconds) to this file")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument(
        "--non-atomic",
        action="store_true",
        help="also time a step with the non-atomic loss (batch 200)",
    )
    args = ap.parse_args()
    print(f"sbi {sbi_version}, torch {torch.__version__}")
    results = {}
    for d, c in [(2, 2), (10, 10)]:
        for atoms in [False, True]:
            for threads in args.threads:
                reps = max(args.reps // 4, 50) if atoms else args.reps
                wall, cpu, n_params = time_steps(d, c, atoms, threads, reps, args.warmup)
                layout = f"b200x{ATOMS}" if atoms else "b200"
                key = f"D{d}_C{c}_{layout}/{threads}thr"
                results[key] = {"wall": wall, "cpu": cpu}
                print(
                    f"{key:24s} median wall {wall * 1e6:10.1f} us, cpu {cpu * 1e6:10.1f} us"
                    f" over {reps} steps ({n_params} parameters)"
                )
    if args.non_atomic:
        for d in [2, 10]:
            for threads in args.threads:
                reps = max(args.reps // 4, 20)
                wall, cpu = time_non_atomic(d, d, 200, threads, reps, max(args.warmup // 4, 5))
                key = f"non_atomic_D{d}_C{d}_b200/{threads}thr"
                results[key] = {"wall": wall, "cpu": cpu}
                print(f"{key:30s} median wall {wall * 1e6:10.1f} us, cpu {cpu * 1e6:10.1f} us over {reps} steps")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
