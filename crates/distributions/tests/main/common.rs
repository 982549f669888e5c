//! Helpers shared by the test modules.

use nalgebra::{DMatrix, DVector};

/// Per-row sample mean and unbiased variance of a `D × n` batch.
pub fn moments(samples: &DMatrix<f64>) -> (DVector<f64>, DVector<f64>) {
    let n = samples.ncols() as f64;
    let mean = samples.column_mean();
    let var = DVector::from_iterator(
        samples.nrows(),
        samples
            .row_iter()
            .zip(mean.iter())
            .map(|(r, m)| r.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0)),
    );
    (mean, var)
}

/// Unbiased sample covariance of a `D × n` batch.
pub fn covariance(samples: &DMatrix<f64>) -> DMatrix<f64> {
    let mean = samples.column_mean();
    let mut centered = samples.clone();
    for mut c in centered.column_iter_mut() {
        c -= &mean;
    }
    &centered * centered.transpose() / (samples.ncols() as f64 - 1.0)
}

/// Asserts `|found − expected| <= tol` entry by entry.
pub fn assert_all_close(found: &[f64], expected: &[f64], tol: f64, what: &str) {
    assert_eq!(found.len(), expected.len(), "{what}: lengths differ");
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!(
            (f - e).abs() <= tol,
            "{what}[{i}]: found {f}, expected {e} (tolerance {tol})"
        );
    }
}
