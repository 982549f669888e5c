//! Targets, an independent serial version of the slice sampler, and statistics helpers.

use std::sync::atomic::{AtomicU64, Ordering};

use nalgebra::DMatrix;
use rand::Rng;
use rand::seq::SliceRandom;
use simfer_distributions::SeededRng;
use simfer_mcmc::{LogDensity, SliceSettings, diagnostics};

/// A 2-D Gaussian with unit variances and correlation ρ.
pub struct Gauss2 {
    pub rho: f64,
}

impl LogDensity for Gauss2 {
    fn dim(&self) -> usize {
        2
    }
    fn log_density(&self, x: &[f64]) -> f64 {
        let (a, b) = (x[0], x[1]);
        -(a * a - 2.0 * self.rho * a * b + b * b) / (2.0 * (1.0 - self.rho * self.rho))
    }
}

/// A Rosenbrock-type banana: `x ~ N(0, 1)`, `y = z + b(x² − 1)` with `z ~ N(0, 1)`, so
/// `E x = E y = 0`, `Var x = 1`, `Var y = 1 + 2b²`, `Cov(x, y) = 0`, `E[x² y] = 2b`.
pub struct Banana {
    pub b: f64,
}

impl LogDensity for Banana {
    fn dim(&self) -> usize {
        2
    }
    fn log_density(&self, x: &[f64]) -> f64 {
        let z = x[1] - self.b * (x[0] * x[0] - 1.0);
        -0.5 * x[0] * x[0] - 0.5 * z * z
    }
}

/// Wraps a target and counts its batch calls, the points they held and the largest batch.
pub struct Counting<T> {
    pub inner: T,
    pub calls: AtomicU64,
    pub points: AtomicU64,
    pub largest: AtomicU64,
}

impl<T> Counting<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            calls: AtomicU64::new(0),
            points: AtomicU64::new(0),
            largest: AtomicU64::new(0),
        }
    }
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.calls.load(Ordering::Relaxed),
            self.points.load(Ordering::Relaxed),
            self.largest.load(Ordering::Relaxed),
        )
    }
}

impl<T: LogDensity> LogDensity for Counting<T> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn log_density(&self, x: &[f64]) -> f64 {
        self.points.fetch_add(1, Ordering::Relaxed);
        self.inner.log_density(x)
    }
    fn log_density_batch(&self, xs: &DMatrix<f64>, out: &mut [f64]) {
        assert_eq!(xs.ncols(), out.len(), "one output per column");
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.largest.fetch_max(xs.ncols() as u64, Ordering::Relaxed);
        self.points.fetch_add(xs.ncols() as u64, Ordering::Relaxed);
        self.inner.log_density_batch(xs, out)
    }
}

/// One chain of the slice sampler exactly as the reference's algorithm reads, serially and
/// without a state machine: `U(x)` re-evaluated at every coordinate update, stepping out
/// with `while`, shrinking with `loop`. Draws from `rng` in the order the sampler does.
/// Returns the kept draws (after thinning and warm-up), the final state, the widths and the
/// number of evaluations other than the re-evaluations of `U(x)`.
pub fn serial_chain(
    target: &dyn LogDensity,
    x0: Vec<f64>,
    rng: &mut SeededRng,
    s: &SliceSettings,
    n: usize,
) -> (Vec<Vec<f64>>, Vec<f64>, Vec<f64>, u64) {
    let d = x0.len();
    let n_stored = s.warmup * s.thin + (n * s.thin).div_ceil(s.chains);
    let max_width = s.max_width.unwrap_or(f64::INFINITY);
    let mut w = vec![s.init_width; d];
    let mut x = x0;
    let mut order: Vec<usize> = (0..d).collect();
    let mut stored = Vec::new();
    let mut evaluations = 0u64;
    for t in 0..s.tuning + n_stored {
        order.shuffle(rng);
        for &i in &order {
            let l0 = target.log_density(&x);
            let logu = l0 + (1.0 - rng.random::<f64>()).ln();
            let c = x[i];
            let mut lx = c - w[i] * rng.random::<f64>();
            let mut ux = lx + w[i];
            let mut at = |v: f64| {
                evaluations += 1;
                let mut y = x.clone();
                y[i] = v;
                target.log_density(&y)
            };
            while at(lx) >= logu && c - lx < max_width {
                lx -= w[i];
            }
            while at(ux) >= logu && ux - c < max_width {
                ux += w[i];
            }
            let accepted = loop {
                let candidate = lx + (ux - lx) * rng.random::<f64>();
                if at(candidate) < logu {
                    if candidate < c {
                        lx = candidate;
                    } else {
                        ux = candidate;
                    }
                } else {
                    break candidate;
                }
            };
            x[i] = accepted;
            if t < s.tuning {
                w[i] += ((ux - lx) - w[i]) / (t as f64 + 1.0);
            }
        }
        if t >= s.tuning {
            stored.push(x.clone());
        }
    }
    let kept = stored.into_iter().step_by(s.thin).skip(s.warmup).collect();
    (kept, x, w, evaluations)
}

/// `f` of each draw of each chain, as `1 × draws` chains.
pub fn statistic(chains: &[DMatrix<f64>], f: impl Fn(&[f64]) -> f64) -> Vec<DMatrix<f64>> {
    chains
        .iter()
        .map(|c| {
            let v: Vec<f64> = c.column_iter().map(|col| f(col.as_slice())).collect();
            DMatrix::from_row_slice(1, v.len(), &v)
        })
        .collect()
}

/// Checks that the MCMC estimate of `E f` is within `z` Monte Carlo standard errors of
/// `expected`, the standard error being `sd(f)/√ESS(f)` with the multi-chain ESS of `f`.
/// Returns the ESS.
pub fn assert_expectation(
    what: &str,
    chains: &[DMatrix<f64>],
    f: impl Fn(&[f64]) -> f64,
    expected: f64,
    z: f64,
) -> f64 {
    let values = statistic(chains, f);
    let all: Vec<f64> = values.iter().flat_map(|m| m.iter().copied()).collect();
    let n = all.len() as f64;
    let mean = all.iter().sum::<f64>() / n;
    let sd = (all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let ess = diagnostics::ess_mean(&values).unwrap()[0];
    let se = sd / ess.sqrt();
    assert!(
        (mean - expected).abs() < z * se,
        "{what}: estimate {mean}, expected {expected}, standard error {se} (ESS {ess:.0})"
    );
    ess
}

/// The p-value of the Kolmogorov–Smirnov statistic `dn` for `n` independent draws
/// (Stephens' finite-n correction of the asymptotic Kolmogorov distribution).
pub fn ks_p_value(dn: f64, n: f64) -> f64 {
    let lambda = (n.sqrt() + 0.12 + 0.11 / n.sqrt()) * dn;
    let mut p = 0.0;
    for k in 1..200 {
        let term = 2.0 * (-1f64).powi(k - 1) * (-2.0 * (k as f64 * lambda).powi(2)).exp();
        p += term;
        if term.abs() < 1e-16 {
            break;
        }
    }
    p.clamp(0.0, 1.0)
}

/// The Kolmogorov–Smirnov distance between the draws and the CDF `cdf`.
pub fn ks_distance(draws: &[f64], cdf: impl Fn(f64) -> f64) -> f64 {
    let mut sorted = draws.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    sorted
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).max((i + 1) as f64 / n - f)
        })
        .fold(0.0, f64::max)
}
