//! Posteriors from Python: `sample((n,), x=...)`, `log_prob(theta, x=...)`, `map()`,
//! `set_default_x`, `save`/`load` and pickling (direct posteriors), MCMC diagnostics.

use std::sync::Arc;

use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use simfer_distributions::{SeededRng, rng_from_seed};
use simfer_flows::Estimator;
use simfer_inference::{
    DirectPosterior, LikelihoodModel, MapOptions, McmcPosterior, Posterior, RatioModel,
};

use crate::arrays;
use crate::error::{PyError, Result};
use crate::guard::{detached, guarded};
use crate::priors::PyPrior;
use crate::seed::seed_or_next;

/// The posterior kinds the methods build.
#[derive(Clone, Debug)]
pub(crate) enum Inner {
    /// NPE, SNPE-C, TSNPE.
    Direct(DirectPosterior<Estimator>),
    /// NLE, SNLE.
    Likelihood(McmcPosterior<LikelihoodModel<Estimator>>),
    /// NRE, SNRE.
    Ratio(McmcPosterior<RatioModel>),
}

impl Inner {
    pub(crate) fn as_dyn(&self) -> &dyn Posterior {
        match self {
            Inner::Direct(p) => p,
            Inner::Likelihood(p) => p,
            Inner::Ratio(p) => p,
        }
    }

    fn as_dyn_mut(&mut self) -> &mut dyn Posterior {
        match self {
            Inner::Direct(p) => p,
            Inner::Likelihood(p) => p,
            Inner::Ratio(p) => p,
        }
    }
}

/// A trained posterior p(θ | x).
#[pyclass(name = "Posterior", module = "simfer")]
pub struct PyPosterior {
    pub(crate) inner: Inner,
    rng: SeededRng,
}

impl PyPosterior {
    pub(crate) fn new(inner: Inner) -> Self {
        PyPosterior {
            inner,
            rng: rng_from_seed(seed_or_next(None)),
        }
    }

    fn x(&self, x: Option<&Bound<'_, PyAny>>) -> Result<Option<Vec<f64>>> {
        x.map(|x| arrays::vector(x, "x", Some(self.inner.as_dyn().x_dim())))
            .transpose()
    }

    /// `n` samples at `x` (default x when `None`), drawn with `seed` or the posterior's
    /// own generator, with the interpreter released.
    pub(crate) fn draw(
        &mut self,
        py: Python<'_>,
        n: usize,
        x: Option<Vec<f64>>,
        seed: Option<u64>,
        inner: Option<Inner>,
    ) -> Result<nalgebra::DMatrix<f64>> {
        let mut own;
        let rng: &mut SeededRng = match seed {
            Some(s) => {
                own = rng_from_seed(s);
                &mut own
            }
            None => &mut self.rng,
        };
        let posterior = inner.as_ref().unwrap_or(&self.inner);
        detached(py, || {
            Ok(posterior.as_dyn().sample(n, x.as_deref(), rng)?)
        })
    }
}

impl PyPosterior {
    /// Applies the reference's `mcmc_parameters` (`num_chains`, `warmup_steps`, `thin`) to
    /// an MCMC posterior.
    pub(crate) fn configure_mcmc(&mut self, params: &Bound<'_, PyDict>) -> Result<()> {
        let mut values = [None; 3];
        let names = ["num_chains", "warmup_steps", "thin"];
        for (key, value) in params.iter() {
            let key: String = key.extract()?;
            let Some(i) = names.iter().position(|n| *n == key) else {
                return Err(PyError::Value(format!(
                    "mcmc_parameters: unknown key {key:?}; expected num_chains, warmup_steps or \
                     thin"
                )));
            };
            values[i] = Some(value.extract::<usize>().map_err(|_| {
                PyError::Type(format!("mcmc_parameters[{key:?}]: expected a whole number"))
            })?);
        }
        if matches!(self.inner, Inner::Direct(_)) && values.iter().any(Option::is_some) {
            return Err(PyError::Value(
                "mcmc_parameters: a direct posterior does not sample by MCMC".into(),
            ));
        }
        if let Some(adjusted) = mcmc_adjusted(&self.inner, values[0], values[1], values[2])? {
            self.inner = adjusted;
        }
        Ok(())
    }
}

#[pymethods]
impl PyPosterior {
    /// Sets the default observation (used when `x` is not passed, and by a posterior used
    /// as a proposal) and returns the posterior.
    fn set_default_x<'py>(
        mut slf: PyRefMut<'py, Self>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        guarded(|| {
            let x = arrays::vector(x, "x", Some(slf.inner.as_dyn().x_dim()))?;
            slf.inner.as_dyn_mut().set_default_x(&x)?;
            Ok(())
        })?;
        Ok(slf)
    }

    /// The default observation, or `None`.
    #[getter]
    fn default_x<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        self.inner
            .as_dyn()
            .default_x()
            .map(|x| arrays::vector_to_numpy(py, x))
    }

    /// `"direct"`, `"mcmc"` or `"rejection"`.
    #[getter]
    fn kind(&self) -> String {
        self.inner.as_dyn().kind().to_string()
    }

    /// The prior.
    #[getter]
    fn prior(&self) -> PyPrior {
        PyPrior::new(Arc::clone(self.inner.as_dyn().prior()))
    }

    /// Draws samples θ ~ p(θ | x): `sample((n,))` is `(n, theta_dim)`, `sample()` one
    /// vector. Direct posteriors reject samples outside the prior's support
    /// (`reject_outside_prior`), in batches of `max_sampling_batch_size`, within
    /// `max_sampling_time` seconds if given; MCMC posteriors take `num_chains`,
    /// `warmup_steps` and `thin`. `seed` makes the draw reproducible (default: the
    /// posterior's own generator).
    #[pyo3(signature = (
        sample_shape = None, x = None, max_sampling_batch_size = None, show_progress_bars = false,
        reject_outside_prior = None, max_sampling_time = None, num_chains = None,
        warmup_steps = None, thin = None, seed = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn sample<'py>(
        &mut self,
        py: Python<'py>,
        sample_shape: Option<&Bound<'py, PyAny>>,
        x: Option<&Bound<'py, PyAny>>,
        max_sampling_batch_size: Option<usize>,
        show_progress_bars: bool,
        reject_outside_prior: Option<bool>,
        max_sampling_time: Option<f64>,
        num_chains: Option<usize>,
        warmup_steps: Option<usize>,
        thin: Option<usize>,
        seed: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Ok(guarded(|| {
            let (n, single) = match sample_shape {
                Some(s) => arrays::sample_count(s)?,
                None => (1, true),
            };
            let x = self.x(x)?;
            let adjusted = match &self.inner {
                Inner::Direct(p) => {
                    let mut options = p.sampling_options().clone();
                    if let Some(b) = max_sampling_batch_size {
                        options.max_sampling_batch_size = b;
                    }
                    if let Some(r) = reject_outside_prior {
                        options.reject_outside_prior = r;
                    }
                    if max_sampling_time.is_some() {
                        options.max_seconds = max_sampling_time;
                    }
                    options.progress = show_progress_bars;
                    if &options == p.sampling_options() {
                        None
                    } else {
                        let mut p = p.clone();
                        p.set_sampling_options(options)?;
                        Some(Inner::Direct(p))
                    }
                }
                Inner::Likelihood(_) | Inner::Ratio(_) => {
                    mcmc_adjusted(&self.inner, num_chains, warmup_steps, thin)?
                }
            };
            let samples = self.draw(py, n, x, seed, adjusted)?;
            Ok(if single {
                arrays::vector_to_numpy(py, samples.as_slice()).into_any()
            } else {
                arrays::to_numpy(py, &samples)?.into_any()
            })
        })?)
    }

    /// `log p(θ | x)` of each row of θ (`(n, theta_dim)` or one vector). Direct
    /// posteriors are normalized over the prior's support (`norm_posterior=False`: the
    /// estimator's density, −∞ outside the support); posteriors over a potential give the
    /// unnormalized potential, as the reference.
    #[pyo3(signature = (theta, x = None, norm_posterior = true, track_gradients = false))]
    fn log_prob<'py>(
        &self,
        py: Python<'py>,
        theta: &Bound<'py, PyAny>,
        x: Option<&Bound<'py, PyAny>>,
        norm_posterior: bool,
        track_gradients: bool,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Ok(guarded(|| {
            if track_gradients {
                return Err(PyError::NotImplemented(
                    "track_gradients: simfer's posteriors give no autograd graph".into(),
                ));
            }
            let d = self.inner.as_dyn().theta_dim();
            let theta = arrays::batch(theta, "theta", Some(d), true, false)?;
            let x = self.x(x)?;
            let inner = &self.inner;
            let lp = detached(py, || match (inner, norm_posterior) {
                (Inner::Direct(p), false) => Ok(p.log_prob_unnormalized(&theta, x.as_deref())?),
                _ => Ok(inner.as_dyn().log_prob(&theta, x.as_deref())?),
            })?;
            Ok(arrays::dvector_to_numpy(py, &lp))
        })?)
    }

    /// The maximum a posteriori θ at `x` (default x when `None`): L-BFGS in the prior's
    /// unconstrained space from the best `num_to_optimize` of `num_init_samples`
    /// posterior draws, at most `num_iter` iterations each. Returns a `(theta_dim,)`
    /// array.
    #[pyo3(signature = (x = None, num_iter = 200, num_to_optimize = 10, num_init_samples = 1000, seed = None))]
    fn map<'py>(
        &self,
        py: Python<'py>,
        x: Option<&Bound<'py, PyAny>>,
        num_iter: u64,
        num_to_optimize: usize,
        num_init_samples: usize,
        seed: Option<u64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Ok(guarded(|| {
            let x = self.x(x)?;
            let options = MapOptions {
                num_init_samples,
                num_to_optimize,
                max_iters: num_iter,
                seed: seed_or_next(seed),
            };
            let inner = &self.inner;
            let map = detached(py, || Ok(inner.as_dyn().map(x.as_deref(), &options)?))?;
            Ok(arrays::vector_to_numpy(py, &map.theta))
        })?)
    }

    /// The convergence diagnostics of the last MCMC run (split-R̂, bulk and tail ESS per
    /// coordinate, ...) as a dict, or `None`.
    fn mcmc_diagnostics<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(d) = self.inner.as_dyn().mcmc_diagnostics() else {
            return Ok(None);
        };
        let json = serde_json::to_string(&d)
            .map_err(|e| PyError::Panic(format!("diagnostics as JSON: {e}")))?;
        Ok(Some(py.import("json")?.call_method1("loads", (json,))?))
    }

    /// Saves a direct posterior (NPE, SNPE, TSNPE) to a versioned JSON file.
    fn save(&self, path: std::path::PathBuf) -> PyResult<()> {
        Ok(guarded(|| match &self.inner {
            Inner::Direct(p) => Ok(p.save(&path)?),
            _ => Err(not_saveable(&self.inner)),
        })?)
    }

    /// Loads a posterior saved with `save`.
    #[classmethod]
    fn load(_cls: &Bound<'_, PyType>, path: std::path::PathBuf) -> PyResult<Self> {
        Ok(guarded(|| {
            Ok(PyPosterior::new(Inner::Direct(DirectPosterior::load(
                &path,
            )?)))
        })?)
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        let json = guarded(|| match &self.inner {
            Inner::Direct(p) => Ok(p.to_json()?),
            _ => Err(not_saveable(&self.inner)),
        })?;
        let f = py
            .import("simfer._simfer")?
            .getattr("_posterior_from_json")?;
        Ok((f, (json,)))
    }

    fn __repr__(&self) -> String {
        let p = self.inner.as_dyn();
        format!(
            "Posterior(kind={}, theta_dim={}, x_dim={}, default_x={:?})",
            p.kind(),
            p.theta_dim(),
            p.x_dim(),
            p.default_x()
        )
    }
}

fn not_saveable(inner: &Inner) -> PyError {
    PyError::NotImplemented(format!(
        "only direct posteriors (NPE, SNPE, TSNPE) save; this one is an {} posterior",
        inner.as_dyn().kind()
    ))
}

fn mcmc_adjusted(
    inner: &Inner,
    num_chains: Option<usize>,
    warmup_steps: Option<usize>,
    thin: Option<usize>,
) -> Result<Option<Inner>> {
    if num_chains.is_none() && warmup_steps.is_none() && thin.is_none() {
        return Ok(None);
    }
    macro_rules! adjust {
        ($p:expr, $variant:ident) => {{
            let mut settings = $p.settings().clone();
            settings.chains = num_chains.unwrap_or(settings.chains);
            settings.warmup = warmup_steps.unwrap_or(settings.warmup);
            settings.thin = thin.unwrap_or(settings.thin);
            let mut p = $p.clone();
            p.set_settings(settings)?;
            Ok(Some(Inner::$variant(p)))
        }};
    }
    match inner {
        Inner::Likelihood(p) => adjust!(p, Likelihood),
        Inner::Ratio(p) => adjust!(p, Ratio),
        Inner::Direct(_) => Ok(None),
    }
}

/// Rebuilds a pickled direct posterior.
#[pyfunction]
pub fn _posterior_from_json(json: &str) -> PyResult<PyPosterior> {
    Ok(guarded(|| {
        Ok(PyPosterior::new(Inner::Direct(DirectPosterior::from_json(
            json,
        )?)))
    })?)
}
