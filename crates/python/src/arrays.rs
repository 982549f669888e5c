//! NumPy arrays in and out: anything array-like (a NumPy array, a list, an object with
//! `__array__` such as a torch tensor) of real numbers becomes a column-major `d × n`
//! matrix with one sample per column — the memory layout of a C-ordered `(n, d)` array,
//! so the conversion is one copy — and results go back as `float64` arrays.

use nalgebra::{DMatrix, DVector};
use numpy::ndarray::{Array1, Array2};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::error::{PyError, Result};

/// An array-like converted to a C-ordered `float64` array: its shape and values.
pub struct Real {
    /// The shape.
    pub shape: Vec<usize>,
    /// The values in C order.
    pub values: Vec<f64>,
}

/// Converts `obj` with `numpy.asarray` (which honours `__array__`), checks that it holds
/// real numbers (floats or integers) and copies it as `float64`.
pub fn real_array(obj: &Bound<'_, PyAny>, what: &str) -> Result<Real> {
    let py = obj.py();
    if obj.is_none() || obj.is_instance_of::<PyString>() {
        return Err(PyError::Type(format!(
            "{what}: expected an array of real numbers, found {}",
            type_name(obj)
        )));
    }
    let np = py.import("numpy")?;
    let array = np.call_method1("asarray", (obj,)).map_err(|e| {
        PyError::Type(format!(
            "{what}: expected an array of real numbers, found {} that NumPy cannot convert \
             ({e})",
            type_name(obj)
        ))
    })?;
    let dtype = array.getattr("dtype")?;
    let kind: String = dtype.getattr("kind")?.extract()?;
    if !matches!(kind.as_str(), "f" | "i" | "u") {
        let name: String = dtype.getattr("name")?.extract()?;
        return Err(PyError::Type(format!(
            "{what}: expected an array of real numbers (a float or integer dtype), found dtype \
             {name}"
        )));
    }
    let array = np.call_method1("ascontiguousarray", (array, "float64"))?;
    let array = array.cast_into::<PyArrayDyn<f64>>().map_err(PyErr::from)?;
    let readonly = array.readonly();
    let shape = readonly.shape().to_vec();
    let values = readonly
        .as_slice()
        .map_err(|e| PyError::Value(format!("{what}: {e}")))?
        .to_vec();
    Ok(Real { shape, values })
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an object".into())
}

fn check_finite(what: &str, values: &[f64], dim: usize) -> Result<()> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        let (row, col) = (i / dim.max(1), i % dim.max(1));
        return Err(PyError::Value(format!(
            "{what} has a non-finite value ({}) at row {row}, column {col}; expected finite \
             numbers",
            values[i]
        )));
    }
    Ok(())
}

/// A batch of `dim`-vectors, shape `(n, dim)` (or `(dim,)` for one vector when
/// `allow_single`), as a `dim × n` matrix. Non-finite values are an error when `finite`.
pub fn batch(
    obj: &Bound<'_, PyAny>,
    what: &str,
    dim: Option<usize>,
    allow_single: bool,
    finite: bool,
) -> Result<DMatrix<f64>> {
    let a = real_array(obj, what)?;
    let (n, d) = match (a.shape.as_slice(), dim) {
        ([n, d], Some(expected)) if *d != expected => {
            return Err(PyError::Value(format!(
                "{what}: expected shape ({n}, {expected}) — one row per sample, {expected} \
                 columns — found {:?}",
                a.shape
            )));
        }
        ([n, d], _) => (*n, *d),
        ([d], Some(expected)) if allow_single && *d == expected => (1, *d),
        ([d], None) if allow_single => (1, *d),
        (shape, dim) => {
            let want = dim.map_or("d".to_string(), |d| d.to_string());
            return Err(PyError::Value(format!(
                "{what}: expected a 2-D array of shape (n, {want}){}, found shape {shape:?}",
                if allow_single {
                    format!(" or one vector of shape ({want},)")
                } else {
                    String::new()
                }
            )));
        }
    };
    if finite {
        check_finite(what, &a.values, d)?;
    }
    Ok(DMatrix::from_vec(d, n, a.values))
}

/// One vector of length `dim` (shape `(dim,)` or `(1, dim)`), checked finite.
pub fn vector(obj: &Bound<'_, PyAny>, what: &str, dim: Option<usize>) -> Result<Vec<f64>> {
    let a = real_array(obj, what)?;
    let ok = match a.shape.as_slice() {
        [d] | [1, d] => dim.is_none_or(|e| e == *d),
        _ => false,
    };
    if !ok {
        let want = dim.map_or("d".to_string(), |d| d.to_string());
        return Err(PyError::Value(format!(
            "{what}: expected one vector of shape ({want},) or (1, {want}), found shape {:?}",
            a.shape
        )));
    }
    check_finite(what, &a.values, a.values.len())?;
    Ok(a.values)
}

/// A `d × n` matrix as an `(n, d)` float64 array.
pub fn to_numpy<'py>(py: Python<'py>, m: &DMatrix<f64>) -> Result<Bound<'py, PyArray2<f64>>> {
    let (d, n) = m.shape();
    let a = Array2::from_shape_vec((n, d), m.as_slice().to_vec())
        .map_err(|e| PyError::Panic(format!("array shape: {e}")))?;
    Ok(a.into_pyarray(py))
}

/// A vector as a 1-D float64 array.
pub fn vector_to_numpy<'py>(py: Python<'py>, v: &[f64]) -> Bound<'py, PyArray1<f64>> {
    Array1::from_vec(v.to_vec()).into_pyarray(py)
}

/// A `DVector` as a 1-D float64 array.
pub fn dvector_to_numpy<'py>(py: Python<'py>, v: &DVector<f64>) -> Bound<'py, PyArray1<f64>> {
    vector_to_numpy(py, v.as_slice())
}

/// The number of samples of a `sample_shape` argument: `()`, `(n,)`, `[n]` or `n`.
/// Returns the count and whether the shape was empty (one sample, returned as a vector).
pub fn sample_count(shape: &Bound<'_, PyAny>) -> Result<(usize, bool)> {
    if let Ok(n) = shape.extract::<i64>() {
        return count(n).map(|n| (n, false));
    }
    let dims: Vec<i64> = shape.extract().map_err(|_| {
        PyError::Type(format!(
            "sample_shape: expected a tuple such as (1000,), found {}",
            type_name(shape)
        ))
    })?;
    match dims.as_slice() {
        [] => Ok((1, true)),
        [n] => count(*n).map(|n| (n, false)),
        _ => Err(PyError::Value(format!(
            "sample_shape: expected () or (n,), found a shape of {} dimensions {dims:?}",
            dims.len()
        ))),
    }
}

fn count(n: i64) -> Result<usize> {
    usize::try_from(n).map_err(|_| {
        PyError::Value(format!(
            "sample_shape: expected a non-negative number of samples, found {n}"
        ))
    })
}
