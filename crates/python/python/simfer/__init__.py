"""simfer: simulation-based inference on a Rust core, with the reference library's
(``sbi``) workflow and names, so that a script needs only its import lines changed::

    from simfer import SNPE, BoxUniform, pairplot, simulate_for_sbi
    from simfer import check_sbi_inputs, process_prior, process_simulator

Arrays go in as anything array-like (NumPy arrays, lists, torch tensors through
``__array__``) and come out as NumPy ``float64`` arrays, one sample per row. Seeds: pass
``seed=`` to the objects and calls that take one, or call :func:`manual_seed` once.
"""

from ._simfer import (
    BoxUniform,
    DensityEstimator,
    Independent,
    LogNormal,
    MultivariateNormal,
    Posterior,
    Prior,
    Simulator,
    check_sbi_inputs,
    manual_seed,
    process_prior,
    process_simulator,
    simulate_for_sbi,
)
from ._inference import BNRE, NLE, NPE, NRE, NRE_A, NRE_C, TSNPE
from ._plot import SvgFigure, pairplot

SNPE = NPE
SNPE_C = NPE
NPE_C = NPE
SNLE = NLE
SNLE_A = NLE
NLE_A = NLE
SNRE = NRE
SNRE_B = NRE
NRE_B = NRE
SNRE_A = NRE_A
SNRE_C = NRE_C
MultipleIndependent = Independent


def load_posterior(path):
    """Loads a posterior saved with ``Posterior.save``."""
    return Posterior.load(path)


__all__ = [
    "BNRE", "BoxUniform", "DensityEstimator", "Independent", "LogNormal",
    "MultipleIndependent", "MultivariateNormal", "NLE", "NLE_A", "NPE", "NPE_C", "NRE",
    "NRE_A", "NRE_B", "NRE_C", "Posterior", "Prior", "SNLE", "SNLE_A", "SNPE", "SNPE_C",
    "SNRE", "SNRE_A", "SNRE_B", "SNRE_C", "Simulator", "SvgFigure", "TSNPE",
    "check_sbi_inputs", "load_posterior", "manual_seed", "pairplot", "process_prior",
    "process_simulator", "simulate_for_sbi",
]
