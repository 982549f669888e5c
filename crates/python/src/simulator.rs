//! A Python callable as a simfer [`Simulator`]: it receives a whole batch of θ's as a 2-D
//! NumPy array (one row per θ) and returns an array-like of one row per θ. The runner
//! hands it chunks through a [`BatchPlan`] of concurrency 1, so it is called with the
//! interpreter's lock held, one batch at a time, never from several threads at once.
//!
//! An exception the callable raises (Ctrl-C included) is kept and raised again, as itself,
//! by the call that ran the simulations.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use numpy::IntoPyArray;
use numpy::ndarray::Array2;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rand::RngCore;
use simfer_simulators::{
    BatchPlan, SimulationChunk, Simulator, SimulatorError, check_chunk, check_lengths,
};

use crate::arrays;
use crate::error::{PyError, Result};

/// The Rust side of a Python simulator.
pub struct PythonSimulator {
    function: Py<PyAny>,
    theta_dim: usize,
    x_dim: OnceLock<usize>,
    batch_size: AtomicUsize,
    raised: Mutex<Option<PyErr>>,
}

impl PythonSimulator {
    /// `function` simulating θ's of dimension `theta_dim`; x's dimension is learned from
    /// its first answer.
    pub fn new(function: Py<PyAny>, theta_dim: usize) -> Self {
        PythonSimulator {
            function,
            theta_dim,
            x_dim: OnceLock::new(),
            batch_size: AtomicUsize::new(1),
            raised: Mutex::new(None),
        }
    }

    /// The dimension of x, once known.
    pub fn known_x_dim(&self) -> Option<usize> {
        self.x_dim.get().copied()
    }

    /// Sets the largest batch handed to the callable (at least 1).
    pub fn set_batch_size(&self, size: usize) {
        self.batch_size.store(size.max(1), Ordering::Relaxed);
    }

    /// The exception raised by the last simulations, if any (taken: it is raised once).
    pub fn take_raised(&self) -> Option<PyErr> {
        self.raised.lock().ok().and_then(|mut r| r.take())
    }

    fn keep(&self, e: PyErr) -> SimulatorError {
        let message = e.to_string();
        if let Ok(mut r) = self.raised.lock() {
            r.get_or_insert(e);
        }
        SimulatorError::InvalidArgument(format!("the Python simulator failed: {message}"))
    }

    /// Calls the function on `m` θ's (`thetas` holds them one after another) and returns
    /// their simulations one after another.
    pub fn call(&self, py: Python<'_>, thetas: &[f64], m: usize) -> Result<Vec<f64>> {
        let d = self.theta_dim;
        let batch = Array2::from_shape_vec((m, d), thetas.to_vec())
            .map_err(|e| PyError::Panic(format!("batch shape: {e}")))?
            .into_pyarray(py);
        let out = self.function.bind(py).call1((batch,))?;
        let out = arrays::real_array(&out, "the simulator's output").map_err(|e| {
            let hint = format!(
                "{e}; a simulator returns one row of x per row of θ, e.g. a NumPy array of \
                 shape ({m}, x_dim)"
            );
            // A wrong dtype stays a type error, as for every other array argument.
            match e {
                PyError::Type(_) => PyError::Type(hint),
                _ => PyError::Value(hint),
            }
        })?;
        let x_dim = match out.shape.as_slice() {
            [rows, k] if *rows == m => *k,
            [rows] if *rows == m => 1,
            shape => {
                return Err(PyError::Value(format!(
                    "the simulator returned an array of shape {shape:?} for a batch of {m} θ's \
                     (shape ({m}, {d})); expected shape ({m}, x_dim): one row per θ"
                )));
            }
        };
        if x_dim == 0 {
            return Err(PyError::Value(
                "the simulator returned rows of length 0; expected x_dim >= 1".into(),
            ));
        }
        let known = *self.x_dim.get_or_init(|| x_dim);
        if known != x_dim {
            return Err(PyError::Value(format!(
                "the simulator returned rows of length {x_dim}, but earlier rows had length \
                 {known}"
            )));
        }
        Ok(out.values)
    }

    /// [`call`](Self::call) from the runner: takes the interpreter's lock, looks for
    /// Ctrl-C first, keeps any exception.
    fn call_from_runner(
        &self,
        thetas: &[f64],
        m: usize,
        out: &mut [f64],
    ) -> std::result::Result<(), SimulatorError> {
        Python::attach(|py| {
            if let Err(e) = py.check_signals() {
                return Err(self.keep(e));
            }
            match self.call(py, thetas, m) {
                Ok(x) if x.len() == out.len() => {
                    out.copy_from_slice(&x);
                    Ok(())
                }
                Ok(x) => Err(self.keep(PyValueError::new_err(format!(
                    "the simulator returned {} values for {m} θ's, expected {}",
                    x.len(),
                    out.len()
                )))),
                Err(e) => Err(self.keep(e.into())),
            }
        })
    }
}

impl Simulator for PythonSimulator {
    fn theta_dim(&self) -> usize {
        self.theta_dim
    }

    /// 0 until the first answer (the runner then refuses the simulator).
    fn x_dim(&self) -> usize {
        self.known_x_dim().unwrap_or(0)
    }

    fn simulate(
        &self,
        theta: &[f64],
        _rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> std::result::Result<(), SimulatorError> {
        check_lengths(self, theta, out)?;
        self.call_from_runner(theta, 1, out)
    }

    fn batch_plan(&self) -> Option<BatchPlan> {
        Some(BatchPlan {
            batch_size: self.batch_size.load(Ordering::Relaxed),
            concurrency: 1,
        })
    }

    fn simulate_many(
        &self,
        chunk: &SimulationChunk<'_>,
        out: &mut [f64],
        _failed: &mut Vec<(usize, String)>,
    ) -> std::result::Result<(), SimulatorError> {
        check_chunk(self, chunk, out)?;
        self.call_from_runner(chunk.thetas(), chunk.len(), out)
    }
}

/// A simulator for simfer: a Python callable on 2-D NumPy batches (from
/// `process_simulator`). Calling it simulates a batch.
#[pyclass(name = "Simulator", module = "simfer", frozen)]
pub struct PySimulator {
    pub(crate) inner: Arc<PythonSimulator>,
}

#[pymethods]
impl PySimulator {
    /// Wraps `simulator`, a callable from an `(n, theta_dim)` array to an array-like of
    /// shape `(n, x_dim)`.
    #[new]
    fn new(simulator: Bound<'_, PyAny>, theta_dim: usize) -> PyResult<Self> {
        wrap(&simulator, theta_dim).map_err(Into::into)
    }

    /// The dimension of θ.
    #[getter]
    fn theta_dim(&self) -> usize {
        self.inner.theta_dim
    }

    /// The dimension of x (`None` until the simulator has answered once).
    #[getter]
    fn x_dim(&self) -> Option<usize> {
        self.inner.known_x_dim()
    }

    /// Simulates a batch: `theta` of shape `(n, theta_dim)`; returns `(n, x_dim)`.
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        theta: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let theta = arrays::batch(theta, "theta", Some(self.inner.theta_dim), true, true)?;
        let x = self.inner.call(py, theta.as_slice(), theta.ncols())?;
        let x_dim = x.len() / theta.ncols().max(1);
        let m = nalgebra::DMatrix::from_vec(x_dim, theta.ncols(), x);
        Ok(arrays::to_numpy(py, &m)?.into_any())
    }

    fn __repr__(&self) -> String {
        format!(
            "Simulator(theta_dim={}, x_dim={})",
            self.inner.theta_dim,
            self.inner
                .known_x_dim()
                .map_or("unknown".to_string(), |d| d.to_string())
        )
    }
}

/// A callable or a [`PySimulator`] as a simulator of θ's of dimension `theta_dim`.
pub(crate) fn wrap(simulator: &Bound<'_, PyAny>, theta_dim: usize) -> Result<PySimulator> {
    if let Ok(s) = simulator.cast::<PySimulator>() {
        let inner = Arc::clone(&s.get().inner);
        if inner.theta_dim != theta_dim {
            return Err(PyError::Value(format!(
                "the simulator takes θ's of dimension {}, but the prior has dimension \
                 {theta_dim}",
                inner.theta_dim
            )));
        }
        return Ok(PySimulator { inner });
    }
    if !simulator.is_callable() {
        return Err(PyError::Type(format!(
            "simulator: expected a callable on a batch of θ's, found {}",
            simulator
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "an object".into())
        )));
    }
    if theta_dim == 0 {
        return Err(PyError::Value(
            "theta_dim: expected at least 1, found 0".into(),
        ));
    }
    Ok(PySimulator {
        inner: Arc::new(PythonSimulator::new(simulator.clone().unbind(), theta_dim)),
    })
}
