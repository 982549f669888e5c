//! Priors: `BoxUniform`, `MultivariateNormal`, `LogNormal` and `Independent` products, all
//! subclasses of `simfer.Prior`, with the reference's constructor argument names
//! (`low`/`high`; `loc` with `covariance_matrix`, `precision_matrix` or `scale_tril`;
//! `loc`/`scale`).

use std::sync::Arc;

use nalgebra::DMatrix;
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use simfer_distributions::{
    BoxUniform, Independent, LogNormal, MultivariateNormal, Prior, derive_rng,
};

use crate::arrays;
use crate::error::{PyError, Result};
use crate::guard::guarded;
use crate::seed::seed_or_next;

/// A prior distribution over θ ∈ ℝᴰ (the base class of simfer's priors).
#[pyclass(name = "Prior", module = "simfer", subclass, frozen)]
pub struct PyPrior {
    pub(crate) inner: Arc<dyn Prior>,
}

impl PyPrior {
    pub(crate) fn new(inner: Arc<dyn Prior>) -> Self {
        PyPrior { inner }
    }
}

#[pymethods]
impl PyPrior {
    /// The dimension D of θ.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// `(D,)`, as torch's `event_shape`.
    #[getter]
    fn event_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, [self.inner.dim()])
    }

    /// Draws samples: `sample((n,))` is an `(n, D)` array, `sample()` one `(D,)` vector.
    /// `seed` makes the draw reproducible (default: the next seed of the module, see
    /// `simfer.manual_seed`).
    #[pyo3(signature = (sample_shape = None, seed = None))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        sample_shape: Option<&Bound<'py, PyAny>>,
        seed: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Ok(guarded(|| {
            let (n, single) = match sample_shape {
                Some(s) => arrays::sample_count(s)?,
                None => (1, true),
            };
            let mut rng = derive_rng(seed_or_next(seed), 0);
            let theta = self.inner.sample_batch(n, &mut rng);
            Ok(if single {
                arrays::vector_to_numpy(py, theta.as_slice()).into_any()
            } else {
                arrays::to_numpy(py, &theta)?.into_any()
            })
        })?)
    }

    /// `log p(θ)` of each row of θ (`(n, D)`, or one `(D,)` vector): an `(n,)` array, −∞
    /// outside the support.
    fn log_prob<'py>(
        &self,
        py: Python<'py>,
        theta: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Ok(guarded(|| {
            let theta = arrays::batch(theta, "theta", Some(self.inner.dim()), true, false)?;
            let lp = self.inner.log_prob_batch(&theta)?;
            Ok(arrays::dvector_to_numpy(py, &lp))
        })?)
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// A value or vector argument as a vector: a scalar becomes one value.
fn values(obj: &Bound<'_, PyAny>, what: &str) -> Result<Vec<f64>> {
    let a = arrays::real_array(obj, what)?;
    if a.shape.len() > 1 {
        return Err(PyError::Value(format!(
            "{what}: expected a number or a 1-D array, found shape {:?}",
            a.shape
        )));
    }
    if let Some(v) = a.values.iter().find(|v| !v.is_finite()) {
        return Err(PyError::Value(format!(
            "{what}: expected finite numbers, found {v}"
        )));
    }
    Ok(a.values)
}

fn square(obj: &Bound<'_, PyAny>, what: &str, d: usize) -> Result<DMatrix<f64>> {
    let a = arrays::real_array(obj, what)?;
    if a.shape != [d, d] {
        return Err(PyError::Value(format!(
            "{what}: expected a ({d}, {d}) matrix to match loc, found shape {:?}",
            a.shape
        )));
    }
    // C order is the transpose of column-major; the matrices are symmetric or triangular
    // and transposed back below.
    Ok(DMatrix::from_vec(d, d, a.values).transpose())
}

/// Uniform on the box `[low, high]` (per dimension), as the reference's `BoxUniform`.
#[pyclass(name = "BoxUniform", module = "simfer", extends = PyPrior, frozen)]
pub struct PyBoxUniform;

#[pymethods]
impl PyBoxUniform {
    /// `low` and `high`: the bounds per dimension (1-D arrays of the same length, or
    /// numbers for one dimension). `reinterpreted_batch_ndims` and `device` are accepted
    /// for compatibility (only 1 and `"cpu"`).
    #[new]
    #[pyo3(signature = (low, high, reinterpreted_batch_ndims = 1, device = None))]
    fn new(
        low: &Bound<'_, PyAny>,
        high: &Bound<'_, PyAny>,
        reinterpreted_batch_ndims: usize,
        device: Option<&str>,
    ) -> PyResult<(Self, PyPrior)> {
        Ok(guarded(|| {
            check_device(device)?;
            if reinterpreted_batch_ndims != 1 {
                return Err(PyError::Value(format!(
                    "reinterpreted_batch_ndims: expected 1, found {reinterpreted_batch_ndims}"
                )));
            }
            let prior = BoxUniform::new(values(low, "low")?, values(high, "high")?)?;
            Ok((PyBoxUniform, PyPrior::new(Arc::new(prior))))
        })?)
    }
}

pub(crate) fn check_device(device: Option<&str>) -> Result<()> {
    match device {
        None | Some("cpu") => Ok(()),
        Some(d) => Err(PyError::Value(format!(
            "device: simfer runs on the CPU, expected \"cpu\", found \"{d}\""
        ))),
    }
}

/// A Gaussian N(loc, Σ), given by exactly one of `covariance_matrix`, `precision_matrix`
/// or `scale_tril` (Σ = L Lᵀ), as torch's `MultivariateNormal`.
#[pyclass(name = "MultivariateNormal", module = "simfer", extends = PyPrior, frozen)]
pub struct PyMultivariateNormal;

#[pymethods]
impl PyMultivariateNormal {
    #[new]
    #[pyo3(signature = (loc, covariance_matrix = None, precision_matrix = None, scale_tril = None))]
    fn new(
        loc: &Bound<'_, PyAny>,
        covariance_matrix: Option<&Bound<'_, PyAny>>,
        precision_matrix: Option<&Bound<'_, PyAny>>,
        scale_tril: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Self, PyPrior)> {
        Ok(guarded(|| {
            let mean = values(loc, "loc")?;
            let d = mean.len();
            let prior = match (covariance_matrix, precision_matrix, scale_tril) {
                (Some(c), None, None) => {
                    MultivariateNormal::new(mean, square(c, "covariance_matrix", d)?)?
                }
                (None, Some(p), None) => {
                    MultivariateNormal::from_precision(mean, square(p, "precision_matrix", d)?)?
                }
                (None, None, Some(l)) => {
                    let l = square(l, "scale_tril", d)?.transpose().lower_triangle();
                    MultivariateNormal::new(mean, &l * l.transpose())?
                }
                _ => {
                    return Err(PyError::Value(
                        "expected exactly one of covariance_matrix, precision_matrix or \
                         scale_tril"
                            .into(),
                    ));
                }
            };
            Ok((PyMultivariateNormal, PyPrior::new(Arc::new(prior))))
        })?)
    }
}

/// Independent log-normals per dimension: `log θᵢ ~ N(loc[i], scale[i]²)`.
#[pyclass(name = "LogNormal", module = "simfer", extends = PyPrior, frozen)]
pub struct PyLogNormal;

#[pymethods]
impl PyLogNormal {
    #[new]
    fn new(loc: &Bound<'_, PyAny>, scale: &Bound<'_, PyAny>) -> PyResult<(Self, PyPrior)> {
        Ok(guarded(|| {
            let prior = LogNormal::new(values(loc, "loc")?, values(scale, "scale")?)?;
            Ok((PyLogNormal, PyPrior::new(Arc::new(prior))))
        })?)
    }
}

/// The product of independent priors over consecutive blocks of θ (the reference's
/// `MultipleIndependent`).
#[pyclass(name = "Independent", module = "simfer", extends = PyPrior, frozen)]
pub struct PyIndependent;

#[pymethods]
impl PyIndependent {
    #[new]
    fn new(priors: Vec<Bound<'_, PyAny>>) -> PyResult<(Self, PyPrior)> {
        Ok(guarded(|| {
            let mut parts: Vec<Box<dyn Prior>> = Vec::with_capacity(priors.len());
            for (i, p) in priors.iter().enumerate() {
                let prior =
                    extract_prior(p).map_err(|e| PyError::Type(format!("priors[{i}]: {e}")))?;
                parts.push(Box::new(prior));
            }
            let prior = Independent::new(parts)?;
            Ok((PyIndependent, PyPrior::new(Arc::new(prior))))
        })?)
    }
}

/// The simfer prior behind a Python object.
pub(crate) fn extract_prior(obj: &Bound<'_, PyAny>) -> Result<Arc<dyn Prior>> {
    match obj.cast::<PyPrior>() {
        Ok(p) => Ok(Arc::clone(&p.get().inner)),
        Err(_) => Err(PyError::Type(format!(
            "expected a simfer prior (BoxUniform, MultivariateNormal, LogNormal or \
             Independent), found {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "an object".into())
        ))),
    }
}
