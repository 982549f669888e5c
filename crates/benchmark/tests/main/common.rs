//! Helpers shared by the test modules.

use nalgebra::{DMatrix, DVector};

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

/// Mass, mean and variance of `N(mu, sd²)` restricted to `[low, high]`, by composite
/// Simpson quadrature (independent of the crate's closed forms).
pub fn truncated_moments_by_quadrature(mu: f64, sd: f64, low: f64, high: f64) -> (f64, f64, f64) {
    let m = 20_000;
    let h = (high - low) / m as f64;
    let pdf = |x: f64| {
        (-0.5 * ((x - mu) / sd).powi(2)).exp() / (sd * (2.0 * std::f64::consts::PI).sqrt())
    };
    let (mut z, mut s1, mut s2) = (0.0, 0.0, 0.0);
    for i in 0..=m {
        let x = low + i as f64 * h;
        let w = if i == 0 || i == m {
            1.0
        } else if i % 2 == 1 {
            4.0
        } else {
            2.0
        } * h
            / 3.0;
        let p = pdf(x) * w;
        z += p;
        s1 += p * x;
        s2 += p * x * x;
    }
    let mean = s1 / z;
    (z, mean, s2 / z - mean * mean)
}

/// Classic fixed-step fourth-order Runge–Kutta from t = 0, recording the state every
/// `record_every` steps (the first record is the initial state).
pub fn rk4(
    f: impl Fn(&[f64], &mut [f64]),
    y0: &[f64],
    h: f64,
    steps: usize,
    record_every: usize,
) -> Vec<Vec<f64>> {
    let n = y0.len();
    let mut y = y0.to_vec();
    let (mut k1, mut k2, mut k3, mut k4, mut tmp) = (
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
    );
    let mut records = vec![y.clone()];
    for step in 1..=steps {
        f(&y, &mut k1);
        for i in 0..n {
            tmp[i] = y[i] + 0.5 * h * k1[i];
        }
        f(&tmp, &mut k2);
        for i in 0..n {
            tmp[i] = y[i] + 0.5 * h * k2[i];
        }
        f(&tmp, &mut k3);
        for i in 0..n {
            tmp[i] = y[i] + h * k3[i];
        }
        f(&tmp, &mut k4);
        for i in 0..n {
            y[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
        if step % record_every == 0 {
            records.push(y.clone());
        }
    }
    records
}

/// Sample mean vector of a batch.
pub fn mean_vector(m: &DMatrix<f64>) -> DVector<f64> {
    m.column_mean()
}
