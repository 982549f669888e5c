//! `simulate_for_sbi`, `process_prior`, `process_simulator` and `check_sbi_inputs`, with
//! the reference's names and arguments.

use std::sync::Arc;

use nalgebra::DMatrix;
use numpy::PyArray2;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use simfer_distributions::{Prior, derive_rng};
use simfer_simulators::SimulationOptions;

use crate::arrays;
use crate::error::{PyError, Result};
use crate::guard::{detached, guarded};
use crate::posterior::PyPosterior;
use crate::priors::{PyPrior, extract_prior};
use crate::seed::seed_or_next;
use crate::simulator::{PySimulator, PythonSimulator, wrap};

/// Checks a prior: returns `(prior, num_parameters, prior_returns_numpy)` as the
/// reference (simfer's priors return NumPy arrays).
#[pyfunction]
#[pyo3(signature = (prior, custom_prior_wrapper_kwargs = None))]
pub fn process_prior<'py>(
    prior: &Bound<'py, PyAny>,
    custom_prior_wrapper_kwargs: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, usize, bool)> {
    if custom_prior_wrapper_kwargs.is_some() {
        return Err(PyError::NotImplemented(
            "custom_prior_wrapper_kwargs: simfer takes its own priors only".into(),
        )
        .into());
    }
    let dim = extract_prior(prior)?.dim();
    Ok((prior.clone(), dim, true))
}

/// Wraps a Python callable (from an `(n, theta_dim)` NumPy array to `(n, x_dim)`) as a
/// simfer simulator for θ's of the prior's dimension.
#[pyfunction]
#[pyo3(signature = (simulator, prior, is_numpy_simulator = true))]
pub fn process_simulator(
    simulator: &Bound<'_, PyAny>,
    prior: &Bound<'_, PyAny>,
    is_numpy_simulator: bool,
) -> PyResult<PySimulator> {
    let _ = is_numpy_simulator;
    let dim = extract_prior(prior)?.dim();
    Ok(wrap(simulator, dim)?)
}

/// Checks that a simulator and a prior fit together: a batch of two prior draws is
/// simulated (the simulator must return shape `(2, x_dim)`), then simfer's own checks run
/// (a draw inside the support with a finite log-density, and one more simulation).
#[pyfunction]
pub fn check_sbi_inputs(
    py: Python<'_>,
    simulator: &Bound<'_, PyAny>,
    prior: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let prior = extract_prior(prior)?;
    let sim = wrap(simulator, prior.dim())?;
    let theta = prior.sample_batch(2, &mut derive_rng(seed_or_next(None), 0));
    sim.inner.call(py, theta.as_slice(), 2)?;
    let inner = Arc::clone(&sim.inner);
    let checked = detached(py, || {
        Ok(simfer_simulators::check_sbi_inputs(
            inner.as_ref(),
            prior.as_ref(),
        )?)
    });
    raise_from_simulator(&sim.inner, checked).map_err(Into::into)
}

/// The exception the Python simulator raised, if any, instead of `result`'s error.
pub(crate) fn raise_from_simulator<T>(sim: &PythonSimulator, result: Result<T>) -> Result<T> {
    match (sim.take_raised(), result) {
        (Some(e), Err(_)) => Err(PyError::Python(e)),
        (_, result) => result,
    }
}

/// A simulation batch that failed part way, with the simulations done before the failure.
pub(crate) struct PartialSimulations {
    /// Why it stopped.
    pub error: PyError,
    /// The x's of the first `done.ncols()` θ's, all simulated before the failure.
    pub done: DMatrix<f64>,
}

/// Keeps the simulations a batch hands over as they return.
struct Collect(std::sync::Mutex<Vec<(usize, Vec<f64>)>>);

impl simfer_simulators::SimulationSink for Collect {
    fn done(
        &self,
        first: usize,
        x: &[f64],
        _failed: &[(usize, String)],
    ) -> std::result::Result<(), String> {
        if let Ok(mut kept) = self.0.lock() {
            kept.push((first, x.to_vec()));
        }
        Ok(())
    }
}

/// Simulates `theta` (`theta_dim × n`) with the Python simulator in batches of
/// `batch_size`, the interpreter released between batches; its first batch is simulated
/// directly when x's dimension is not known yet. A failure hands back the simulations done
/// before it: those of every θ before the first one that failed.
pub(crate) fn simulate_python_keeping(
    py: Python<'_>,
    sim: &Arc<PythonSimulator>,
    theta: &DMatrix<f64>,
    batch_size: usize,
    progress: bool,
) -> std::result::Result<DMatrix<f64>, Box<PartialSimulations>> {
    let n = theta.ncols();
    let nothing = |error| {
        Box::new(PartialSimulations {
            error,
            done: DMatrix::zeros(0, 0),
        })
    };
    sim.set_batch_size(batch_size);
    let mut first: Vec<f64> = Vec::new();
    let mut start = 0;
    if sim.known_x_dim().is_none() && n > 0 {
        start = batch_size.min(n);
        first = sim
            .call(py, &theta.as_slice()[..start * theta.nrows()], start)
            .map_err(nothing)?;
    }
    let Some(x_dim) = sim.known_x_dim() else {
        return Err(nothing(PyError::Value(
            "num_simulations: expected at least 1 simulation, found 0".into(),
        )));
    };
    let rest = theta.columns(start, n - start).into_owned();
    let inner = Arc::clone(sim);
    let sink = Collect(std::sync::Mutex::new(Vec::new()));
    let simulated = detached(py, || {
        let options = SimulationOptions::with_seed(0).with_progress(progress);
        Ok(simfer_simulators::simulate_batch_with(inner.as_ref(), &rest, &options, Some(&sink))?.x)
    });
    let mut values = first;
    match raise_from_simulator(sim, simulated) {
        Ok(rest) => {
            values.extend_from_slice(rest.as_slice());
            Ok(DMatrix::from_vec(x_dim, n, values))
        }
        Err(error) => {
            // The simulations of the rest in order, up to the first gap (the failure).
            let mut kept = sink.0.into_inner().unwrap_or_else(|e| e.into_inner());
            kept.sort_by_key(|(first, _)| *first);
            let mut next = 0;
            for (first, x) in kept {
                if first != next {
                    break;
                }
                next += x.len() / x_dim.max(1);
                values.extend_from_slice(&x);
            }
            let done = values.len() / x_dim.max(1);
            Err(Box::new(PartialSimulations {
                error,
                done: DMatrix::from_vec(x_dim, done, values),
            }))
        }
    }
}

/// `error` as a Python exception carrying, when some were done, the simulations done
/// before it as its `simulations` attribute, `(theta, x)` of shapes `(k, theta_dim)` and
/// `(k, x_dim)`, with a note saying so: nothing simulated is lost.
pub(crate) fn keep_in_exception(
    py: Python<'_>,
    failure: PartialSimulations,
    theta: &DMatrix<f64>,
    total: usize,
) -> PyErr {
    let err: PyErr = failure.error.into();
    let k = failure.done.ncols();
    if k == 0 {
        return err;
    }
    let attach = || -> PyResult<()> {
        let theta_done = theta.columns(0, k).into_owned();
        let t = arrays::to_numpy(py, &theta_done)?.into_any();
        let x = arrays::to_numpy(py, &failure.done)?.into_any();
        let value = err.value(py);
        value.setattr("simulations", PyTuple::new(py, [t, x])?)?;
        let note = format!(
            "simfer: the {k} simulations (of {total}) done before this error are kept in \
             this exception's `simulations` attribute as (theta, x)"
        );
        if value.hasattr("add_note")? {
            value.call_method1("add_note", (note,))?;
        }
        Ok(())
    };
    // An exception that takes no attributes is raised as it is.
    let _ = attach();
    err
}

/// Draws `num_simulations` θ's from `proposal` (a prior, or a posterior with a default x)
/// and simulates them with `simulator` in batches of `simulation_batch_size`; returns
/// `(theta, x)` as NumPy arrays of shapes `(n, theta_dim)` and `(n, x_dim)`.
///
/// `seed` seeds the θ draws and, for a Python simulator, NumPy's global generator
/// (`numpy.random.seed`) before simulating. A Python simulator is called from one thread,
/// so `num_workers` other than 1 only gives a warning.
#[pyfunction]
#[pyo3(signature = (
    simulator, proposal, num_simulations, num_workers = 1, simulation_batch_size = Some(1),
    seed = None, show_progress_bar = true
))]
#[allow(clippy::too_many_arguments)]
pub fn simulate_for_sbi<'py>(
    py: Python<'py>,
    simulator: &Bound<'py, PyAny>,
    proposal: &Bound<'py, PyAny>,
    num_simulations: usize,
    num_workers: usize,
    simulation_batch_size: Option<usize>,
    seed: Option<u64>,
    show_progress_bar: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let (theta, x) = guarded(|| {
        if num_workers != 1 {
            let warnings = py.import("warnings")?;
            warnings.call_method1(
                "warn",
                (format!(
                    "num_workers={num_workers}: simfer calls a Python simulator from one \
                     thread, one batch at a time; pass large batches \
                     (simulation_batch_size) to a vectorized simulator instead"
                ),),
            )?;
        }
        let batch_size = match simulation_batch_size {
            Some(0) => {
                return Err(PyError::Value(
                    "simulation_batch_size: expected at least 1, found 0".into(),
                ));
            }
            Some(b) => b,
            None => num_simulations.max(1),
        };
        let seed = seed_or_next(seed);
        let theta = draw_proposal(py, proposal, num_simulations, seed)?;
        let sim = wrap(simulator, theta.nrows())?;
        py.import("numpy")?
            .getattr("random")?
            .call_method1("seed", (seed % (1 << 32),))?;
        let x = simulate_python_keeping(py, &sim.inner, &theta, batch_size, show_progress_bar)
            .map_err(|failure| {
                PyError::Python(keep_in_exception(py, *failure, &theta, num_simulations))
            })?;
        Ok((theta, x))
    })?;
    let theta: Bound<'py, PyArray2<f64>> = arrays::to_numpy(py, &theta)?;
    let x: Bound<'py, PyArray2<f64>> = arrays::to_numpy(py, &x)?;
    PyTuple::new(py, [theta.into_any(), x.into_any()])
}

/// `n` θ's (`theta_dim × n`) from a prior or a posterior with a default x.
pub(crate) fn draw_proposal(
    py: Python<'_>,
    proposal: &Bound<'_, PyAny>,
    n: usize,
    seed: u64,
) -> Result<DMatrix<f64>> {
    if let Ok(prior) = proposal.cast::<PyPrior>() {
        let prior: Arc<dyn Prior> = Arc::clone(&prior.get().inner);
        return detached(py, move || {
            Ok(prior.sample_batch(n, &mut derive_rng(seed, 0)))
        });
    }
    if let Ok(posterior) = proposal.cast::<PyPosterior>() {
        let mut posterior = posterior.borrow_mut();
        if posterior.inner.as_dyn().default_x().is_none() {
            return Err(PyError::Value(
                "proposal: the posterior has no default x; call `set_default_x(x_o)` on it \
                 first"
                    .into(),
            ));
        }
        return posterior.draw(py, n, None, Some(seed), None);
    }
    Err(PyError::Type(format!(
        "proposal: expected a simfer prior or posterior, found {}",
        proposal
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "an object".into())
    )))
}
