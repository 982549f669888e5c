"""The atomic loss's layout of a batch, shared by the step-timing scripts of this folder
(`nsf_step.py`, `mdn_step.py`) and laid out as the Rust benchmarks lay it out
(`crates/flows/benches/common/mod.rs`, `atomic`)."""

import torch

ATOMS = 10


def atomic(theta, x):
    """Row i's x repeated for its ATOMS columns, atom k holding the theta of row
    (i + 17 k) mod rows (atom 0 is the row's own theta), as NPE-C's atomic loss evaluates
    the estimator on a batch."""
    rows = theta.shape[0]
    i = torch.arange(rows).repeat_interleave(ATOMS)
    k = torch.arange(ATOMS).repeat(rows)
    return theta[(i + 17 * k) % rows], x[i]
