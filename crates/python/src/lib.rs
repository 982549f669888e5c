//! # simfer-python: the Python package `simfer`
//!
//! The reference library's (`sbi`) workflow from Python on simfer's Rust core, with the
//! reference's names and argument names where the concept is the same, so that a script
//! needs only its import lines changed:
//!
//! ```python
//! import numpy as np
//! from simfer import SNPE, BoxUniform, pairplot, simulate_for_sbi
//! from simfer import check_sbi_inputs, process_prior, process_simulator
//!
//! prior = BoxUniform(low=-2 * np.ones(3), high=2 * np.ones(3))
//! prior, num_parameters, prior_returns_numpy = process_prior(prior)
//! simulator = process_simulator(
//!     lambda theta: theta + 1.0 + 0.1 * np.random.standard_normal(theta.shape),
//!     prior, prior_returns_numpy)
//! check_sbi_inputs(simulator, prior)
//!
//! inference = SNPE(prior)
//! x_o = np.zeros(3)
//! proposal = prior
//! for _ in range(2):
//!     theta, x = simulate_for_sbi(simulator, proposal, num_simulations=500)
//!     density_estimator = inference.append_simulations(theta, x, proposal=proposal).train()
//!     posterior = inference.build_posterior(density_estimator)
//!     proposal = posterior.set_default_x(x_o)
//! samples = posterior.sample((10000,), x=x_o)       # (10000, 3) NumPy array
//! fig, axes = pairplot(samples, limits=[[-2, 2]] * 3, path="pairplot.svg")
//! ```
//!
//! This crate is the native module `simfer._simfer`, built with maturin
//! (`maturin develop --release -m crates/python/Cargo.toml` in a virtual environment; see
//! the README's section "From Python"); the Python package around it (`python/simfer`)
//! gives the classes their reference signatures. How a call runs:
//!
//! - arrays come in through NumPy (any array-like: lists, objects with `__array__` such as
//!   torch tensors) as `float64`, are checked for shape, dtype and NaN, and results go
//!   back as NumPy arrays ([`arrays`]);
//! - simfer's work runs with the interpreter's lock released; training stops on Ctrl-C
//!   between minibatches ([`guard`]); a Python simulator is called with the lock held,
//!   one batch at a time ([`simulator`]);
//! - every error is a Python exception ([`error`]), and a panic is caught at the
//!   boundary and raised as `RuntimeError`, never crossing into Python.

mod arrays;
mod error;
mod guard;
mod inference;
mod method;
mod plot;
mod posterior;
mod priors;
mod seed;
mod simulate;
mod simulator;

use pyo3::prelude::*;

/// Seeds the generator that unseeded simfer objects and calls draw their seeds from (as
/// `torch.manual_seed`): after `manual_seed(s)` a script gives the same results again.
/// Simulators that use NumPy's generator need `numpy.random.seed` as well.
#[pyfunction]
fn manual_seed(seed: u64) {
    seed::manual_seed(seed);
}

/// The native module.
#[pymodule]
fn _simfer(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<priors::PyPrior>()?;
    m.add_class::<priors::PyBoxUniform>()?;
    m.add_class::<priors::PyMultivariateNormal>()?;
    m.add_class::<priors::PyLogNormal>()?;
    m.add_class::<priors::PyIndependent>()?;
    m.add_class::<simulator::PySimulator>()?;
    m.add_class::<posterior::PyPosterior>()?;
    m.add_class::<inference::PyInference>()?;
    m.add_class::<inference::PyDensityEstimator>()?;
    m.add_function(wrap_pyfunction!(manual_seed, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::simulate_for_sbi, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::process_prior, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::process_simulator, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::check_sbi_inputs, m)?)?;
    m.add_function(wrap_pyfunction!(plot::_pairplot_svg, m)?)?;
    m.add_function(wrap_pyfunction!(posterior::_posterior_from_json, m)?)?;
    Ok(())
}
