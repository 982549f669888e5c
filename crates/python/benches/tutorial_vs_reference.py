#!/usr/bin/env python3
"""The multi-round tutorial end to end on simfer beside the same script on the reference
library (sbi), in one sitting on one machine; not a test.

Each repeat runs both scripts in fresh interpreters, alternating, and times the whole
process (start-up and imports included) and the script after its imports. The scripts are
the tutorial's code (2 rounds × 500 simulations of the 3-D linear Gaussian, SNPE-C with the
default MAF, 10,000 posterior samples, the pairplot); simfer's differs only in its import
lines and NumPy in place of torch's array calls.

    target/ci-venv/bin/python crates/python/benches/tutorial_vs_reference.py \\
        --reference-python /work/venv-sbi/bin/python --repeats 5

The reference's `sbi.analysis` needs the `six` module; if its environment lacks it, it is
installed with the reference's pip into `target/bench-extra` (on its PYTHONPATH only).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

COMMON_TAIL = """
num_rounds = 2
posteriors = []
proposal = prior
for _ in range(num_rounds):
    theta, x = simulate_for_sbi(simulator, proposal, num_simulations=500)
    density_estimator = inference.append_simulations(theta, x, proposal=proposal).train()
    posterior = inference.build_posterior(density_estimator)
    posteriors.append(posterior)
    proposal = posterior.set_default_x(x_o)
posterior_samples = posterior.sample((10000,), x=x_o)
fig, ax = pairplot(posterior_samples, limits=[[-2, 2], [-2, 2], [-2, 2]], figsize=(5, 5))
elapsed = time.perf_counter() - start
mean = [round(float(v), 3) for v in posterior_samples.mean(0)]
std = [round(float(v), 3) for v in posterior_samples.std(0)]
print(f"RESULT {elapsed:.4f} mean={mean} std={std}")
"""

SIMFER = """
import time
start_imports = time.perf_counter()
import numpy as np
from simfer import pairplot
from simfer import SNPE, simulate_for_sbi
from simfer import BoxUniform
from simfer import check_sbi_inputs, process_prior, process_simulator
start = time.perf_counter()
num_dim = 3
x_o = np.zeros(num_dim,)
prior = BoxUniform(low=-2 * np.ones(num_dim), high=2 * np.ones(num_dim))
def linear_gaussian(theta):
    return theta + 1.0 + np.random.standard_normal(theta.shape) * 0.1
prior, num_parameters, prior_returns_numpy = process_prior(prior)
simulator = process_simulator(linear_gaussian, prior, prior_returns_numpy)
check_sbi_inputs(simulator, prior)
inference = SNPE(prior=prior, show_progress_bars=False)
""" + COMMON_TAIL

REFERENCE = """
import time
start_imports = time.perf_counter()
import torch
from sbi.analysis import pairplot
from sbi.inference import SNPE, simulate_for_sbi
from sbi.utils import BoxUniform
from sbi.utils.user_input_checks import check_sbi_inputs, process_prior, process_simulator
start = time.perf_counter()
num_dim = 3
x_o = torch.zeros(num_dim,)
prior = BoxUniform(low=-2 * torch.ones(num_dim), high=2 * torch.ones(num_dim))
def linear_gaussian(theta):
    return theta + 1.0 + torch.randn_like(theta) * 0.1
prior, num_parameters, prior_returns_numpy = process_prior(prior)
simulator = process_simulator(linear_gaussian, prior, prior_returns_numpy)
check_sbi_inputs(simulator, prior)
inference = SNPE(prior=prior, show_progress_bars=False)
""" + COMMON_TAIL.replace(
    "simulate_for_sbi(simulator, proposal, num_simulations=500)",
    "simulate_for_sbi(simulator, proposal, num_simulations=500, show_progress_bar=False)",
).replace("posterior.sample((10000,), x=x_o)",
          "posterior.sample((10000,), x=x_o, show_progress_bars=False)")


def run(python, script, env):
    import time

    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        start = time.perf_counter()
        out = subprocess.run([python, path], capture_output=True, text=True, env=env)
        total = time.perf_counter() - start
    finally:
        os.unlink(path)
    if out.returncode != 0:
        raise SystemExit(f"{python} failed:\n{out.stderr[-3000:]}")
    found = re.search(r"RESULT (\S+) (.*)", out.stdout)
    if found is None:
        raise SystemExit(f"{python} printed no result:\n{out.stdout[-3000:]}")
    return total, float(found.group(1)), found.group(2)


def reference_env(python, root):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    probe = subprocess.run([python, "-c", "import six"], capture_output=True)
    if probe.returncode != 0:
        extra = root / "target" / "bench-extra"
        if not (extra / "six.py").exists():
            subprocess.run([python, "-m", "pip", "install", "--quiet", "--target",
                            str(extra), "six"], check=True)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra),
                                                          env.get("PYTHONPATH")]))
    return env


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-python", default="/work/venv-sbi/bin/python")
    parser.add_argument("--simfer-python", default=sys.executable)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[3]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    ref_env = reference_env(args.reference_python, root)
    results = {"simfer": [], "reference": []}
    for i in range(args.repeats):
        for name, python, script, e in (("simfer", args.simfer_python, SIMFER, env),
                                        ("reference", args.reference_python, REFERENCE,
                                         ref_env)):
            total, script_seconds, summary = run(python, script, e)
            results[name].append((total, script_seconds))
            print(f"repeat {i + 1} {name:9s}: {total:6.2f} s in all, {script_seconds:6.2f} s "
                  f"after imports; {summary}", flush=True)
    print()
    med = {k: (statistics.median(t for t, _ in v), statistics.median(s for _, s in v))
           for k, v in results.items()}
    for k, (t, s) in med.items():
        print(f"median {k:9s}: {t:6.2f} s in all, {s:6.2f} s after imports")
    print(f"ratio (reference / simfer): {med['reference'][0] / med['simfer'][0]:.1f}x in all, "
          f"{med['reference'][1] / med['simfer'][1]:.1f}x after imports")


if __name__ == "__main__":
    main()
