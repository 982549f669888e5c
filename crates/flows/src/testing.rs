//! The conformance harness: the checks every conditional density estimator must pass,
//! ours or a researcher's, in one call (feature `testing`).
//!
//! [`Conformance::run`] builds estimators through a user-supplied function and checks:
//!
//! * **gradients** with respect to the parameters, the input and the condition, from the
//!   backward pass, against central differences of `log_prob` (for several input
//!   dimensions, with and without a condition);
//! * **consistency** of the training pass (`forward`) with `log_prob`;
//! * **normalization**: the density integrates to 1 on a grid, in 1-D and in 2-D;
//! * **sampling**: samples agree with the density (Kolmogorov–Smirnov tests of 1-D
//!   samples and of each 2-D marginal against CDFs integrated from `log_prob`);
//! * **save → load** gives bit-identical log-densities and samples (when a round trip is
//!   given);
//! * **threads**: forward, backward, `log_prob` and sampling give the same bits on 1 and 2
//!   threads;
//! * **bad input** (wrong shapes, a non-finite condition) is an error, never a panic.
//!
//! The estimators the build function returns must run their training passes in `f64` (the
//! gradient checks need it); the harness perturbs their parameters a little, so that no
//! check passes merely because of a special initialization.
//!
//! ```
//! use simfer_flows::testing::Conformance;
//! use simfer_flows::{EstimatorConfig, MafConfig};
//!
//! // A small MAF so that the example is quick; `for_config` builds in f64 and round-trips
//! // through the binary format.
//! let config = EstimatorConfig::Maf(MafConfig { hidden_features: 8, num_transforms: 2, ..MafConfig::default() });
//! let report = Conformance::for_config(config).with_dims(&[1, 2]).run();
//! assert!(report.passed(), "{report}");
//! ```

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use simfer_nn::{Gradients, Precision};

use crate::estimator::ConditionalDensityEstimator;
use crate::{Estimator, EstimatorConfig, FlowError};

/// A function that builds an estimator of `input_dim` given `condition_dim` (0:
/// unconditional) from a seed, with `f64` training passes.
pub type BuildFn<'a, E> = Box<dyn Fn(usize, usize, u64) -> Result<E, FlowError> + 'a>;
/// A function that saves an estimator and loads it back.
pub type RoundTripFn<'a, E> = Box<dyn Fn(&E) -> Result<E, FlowError> + 'a>;

/// The settings of a conformance run; [`run`](Self::run) performs it.
pub struct Conformance<'a, E> {
    build: BuildFn<'a, E>,
    round_trip: Option<RoundTripFn<'a, E>>,
    dims: Vec<usize>,
    condition_dim: usize,
    max_gradient_entries: usize,
    gradient_tolerance: f64,
    normalization_tolerance: f64,
    perturbation: f64,
    seed: u64,
}

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    /// What was checked, e.g. `parameter gradient, D = 2, C = 2`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// The measurement, e.g. `relative error 3.1e-9 (tolerance 1e-5)`.
    pub detail: String,
}

/// Every check of a conformance run.
#[derive(Clone, Debug, PartialEq)]
pub struct ConformanceReport {
    /// The estimator's kind.
    pub kind: String,
    /// The checks in the order they ran.
    pub checks: Vec<CheckResult>,
}

impl ConformanceReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The checks that failed.
    pub fn failures(&self) -> Vec<&CheckResult> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }

    /// Panics with the whole report unless every check passed (for tests).
    pub fn assert_passed(&self) {
        assert!(self.passed(), "the estimator fails conformance:\n{self}");
    }
}

impl fmt::Display for ConformanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "conformance of `{}`:", self.kind)?;
        for c in &self.checks {
            writeln!(
                f,
                "  [{}] {}: {}",
                if c.passed { "ok" } else { "FAILED" },
                c.name,
                c.detail
            )?;
        }
        Ok(())
    }
}

impl<'a, E: ConditionalDensityEstimator + Clone + 'static> Conformance<'a, E> {
    /// A run with the default settings on estimators from `build` (which must give `f64`
    /// training passes).
    pub fn new(build: impl Fn(usize, usize, u64) -> Result<E, FlowError> + 'a) -> Self {
        Conformance {
            build: Box::new(build),
            round_trip: None,
            dims: vec![1, 2, 3],
            condition_dim: 2,
            max_gradient_entries: 300,
            gradient_tolerance: 1e-5,
            normalization_tolerance: 1e-3,
            perturbation: 0.05,
            seed: 1,
        }
    }

    /// Also checks that saving and loading (through `round_trip`) changes nothing.
    pub fn with_round_trip(mut self, round_trip: impl Fn(&E) -> Result<E, FlowError> + 'a) -> Self {
        self.round_trip = Some(Box::new(round_trip));
        self
    }

    /// The input dimensions of the gradient checks (default 1, 2, 3).
    pub fn with_dims(mut self, dims: &[usize]) -> Self {
        self.dims = dims.to_vec();
        self
    }

    /// The condition dimension of the conditional checks (default 2).
    pub fn with_condition_dim(mut self, c: usize) -> Self {
        self.condition_dim = c;
        self
    }

    /// At most this many parameters are checked by central differences per estimator
    /// (a random subset; default 300).
    pub fn with_max_gradient_entries(mut self, n: usize) -> Self {
        self.max_gradient_entries = n;
        self
    }

    /// The relative tolerance of the gradient checks (default 1e-5).
    pub fn with_gradient_tolerance(mut self, tol: f64) -> Self {
        self.gradient_tolerance = tol;
        self
    }

    /// The tolerance of the normalization checks, |∫q − 1| (default 1e-3).
    pub fn with_normalization_tolerance(mut self, tol: f64) -> Self {
        self.normalization_tolerance = tol;
        self
    }

    /// Each parameter is moved by a uniform draw on ±`p` before the checks (default 0.05).
    pub fn with_perturbation(mut self, p: f64) -> Self {
        self.perturbation = p;
        self
    }

    /// The seed of the data, perturbations, weights and samples (default 1).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Builds, perturbs and returns an estimator (or the check that failed to build it).
    fn make(&self, d: usize, c: usize, salt: u64) -> Result<E, CheckResult> {
        let seed = self.seed.wrapping_mul(1000).wrapping_add(salt);
        let mut e = (self.build)(d, c, seed).map_err(|err| CheckResult {
            name: format!("build, D = {d}, C = {c}"),
            passed: false,
            detail: format!("the build function failed: {err}"),
        })?;
        if e.input_dim() != d || e.condition_dim() != c {
            return Err(CheckResult {
                name: format!("build, D = {d}, C = {c}"),
                passed: false,
                detail: format!(
                    "expected an estimator of dimensions ({d}, {c}), found ({}, {})",
                    e.input_dim(),
                    e.condition_dim()
                ),
            });
        }
        let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9);
        let p = self.perturbation;
        if p > 0.0 {
            for v in e.params_mut() {
                *v += rng.random_range(-p..p);
            }
        }
        Ok(e)
    }

    /// Runs every check and reports each.
    pub fn run(&self) -> ConformanceReport {
        let mut checks = Vec::new();
        let mut kind = String::from("(not built)");
        let mut salt = 0;
        for &d in &self.dims {
            for c in [0, self.condition_dim] {
                salt += 1;
                match self.make(d, c, salt) {
                    Ok(e) => {
                        kind = e.kind().to_string();
                        checks.extend(self.gradient_checks(&e, salt));
                    }
                    Err(failed) => checks.push(failed),
                }
            }
        }
        for d in [1, 2] {
            salt += 1;
            match self.make(d, self.condition_dim, salt) {
                Ok(e) => {
                    let condition = fixed_condition(self.condition_dim);
                    checks.push(guard(format!("normalization, D = {d}"), || {
                        normalization(&e, &condition, self.normalization_tolerance, salt)
                    }));
                    checks.push(guard(
                        format!("samples against the density, D = {d}"),
                        || samples_match(&e, &condition, salt),
                    ));
                }
                Err(failed) => checks.push(failed),
            }
        }
        salt += 1;
        match self.make(2, self.condition_dim, salt) {
            Ok(e) => {
                if let Some(rt) = &self.round_trip {
                    checks.push(guard("save → load".into(), || {
                        round_trip(&e, rt.as_ref(), salt)
                    }));
                }
                checks.push(guard("1 and 2 threads".into(), || threads(&e, salt)));
                checks.push(bad_input(&e));
            }
            Err(failed) => checks.push(failed),
        }
        ConformanceReport { kind, checks }
    }

    fn gradient_checks(&self, e: &E, salt: u64) -> Vec<CheckResult> {
        let (d, c) = (e.input_dim(), e.condition_dim());
        let n = 7;
        let (input, condition) = batch(d, c, n, salt);
        let mut rng = StdRng::seed_from_u64(salt.wrapping_add(77));
        let w: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let tol = self.gradient_tolerance;
        let tag = format!("D = {d}, C = {c}");
        let mut out = vec![guard(format!("forward matches log_prob, {tag}"), || {
            let mut ws = e.workspace();
            let mut fwd = vec![0.0; n];
            e.forward(&mut ws, input.as_view(), condition.as_view(), &mut fwd)?;
            let lp = e.log_prob(&input, &condition)?;
            let err = fwd
                .iter()
                .zip(lp.iter())
                .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                .fold(0.0, f64::max);
            Ok(check(
                err < 1e-9,
                format!("largest relative difference {err:.1e} (tolerance 1e-9, f64 passes)"),
            ))
        })];
        out.push(guard(format!("parameter gradient, {tag}"), || {
            let mut ws = e.workspace();
            let mut fwd = vec![0.0; n];
            e.forward(&mut ws, input.as_view(), condition.as_view(), &mut fwd)?;
            let mut g = vec![0.0; e.num_params()];
            e.backward(&mut ws, &w, Gradients::params(&mut g))?;
            let np = e.num_params();
            let mut idx: Vec<usize> = (0..np).collect();
            if np > self.max_gradient_entries {
                simfer_nn::shuffle(&mut idx, &mut rng.clone());
                idx.truncate(self.max_gradient_entries);
            }
            let mut probe = e.clone();
            let mut fd = Vec::with_capacity(idx.len());
            for &i in &idx {
                let p0 = probe.params()[i];
                let h = 1e-6 * p0.abs().max(1.0);
                probe.params_mut()[i] = p0 + h;
                let plus = weighted(&probe, &input, &condition, &w)?;
                probe.params_mut()[i] = p0 - h;
                let minus = weighted(&probe, &input, &condition, &w)?;
                probe.params_mut()[i] = p0;
                fd.push((plus - minus) / (2.0 * h));
            }
            let an: Vec<f64> = idx.iter().map(|&i| g[i]).collect();
            Ok(compare("of", &an, &fd, tol, idx.len(), np))
        }));
        out.push(guard(format!("input gradient, {tag}"), || {
            let (_, g) = e.log_prob_grad_input(&input, &condition)?;
            let mut ws = e.workspace();
            let mut fwd = vec![0.0; n];
            e.forward(&mut ws, input.as_view(), condition.as_view(), &mut fwd)?;
            let mut gw = vec![0.0; d * n];
            e.backward(&mut ws, &w, Gradients::input(&mut gw))?;
            let mut fd = vec![0.0; d * n];
            let mut fdw = vec![0.0; d * n];
            for k in 0..d * n {
                let mut x = input.clone();
                let h = 1e-6 * x[k].abs().max(1.0);
                x[k] += h;
                let lp_plus = e.log_prob(&x, &condition)?;
                x[k] -= 2.0 * h;
                let lp_minus = e.log_prob(&x, &condition)?;
                let j = k / d;
                fd[k] = (lp_plus[j] - lp_minus[j]) / (2.0 * h);
                fdw[k] = w[j] * fd[k];
            }
            let a = compare(
                "of log_prob_grad_input:",
                g.as_slice(),
                &fd,
                tol,
                d * n,
                d * n,
            );
            let b = compare("of the backward pass:", &gw, &fdw, tol, d * n, d * n);
            Ok(check(
                a.passed && b.passed,
                format!("{}; {}", a.detail, b.detail),
            ))
        }));
        if c > 0 {
            out.push(guard(format!("condition gradient, {tag}"), || {
                let (_, g) = e.log_prob_grad_condition(&input, &condition)?;
                let mut ws = e.workspace();
                let mut fwd = vec![0.0; n];
                e.forward(&mut ws, input.as_view(), condition.as_view(), &mut fwd)?;
                let mut gc = vec![0.0; c * n];
                e.backward(&mut ws, &w, Gradients::default().with_condition(&mut gc))?;
                let mut fd = vec![0.0; c * n];
                let mut fdw = vec![0.0; c * n];
                for k in 0..c * n {
                    let mut x = condition.clone();
                    let h = 1e-6 * x[k].abs().max(1.0);
                    x[k] += h;
                    let lp_plus = e.log_prob(&input, &x)?;
                    x[k] -= 2.0 * h;
                    let lp_minus = e.log_prob(&input, &x)?;
                    let j = k / c;
                    fd[k] = (lp_plus[j] - lp_minus[j]) / (2.0 * h);
                    fdw[k] = w[j] * fd[k];
                }
                let a = compare(
                    "of log_prob_grad_condition:",
                    g.as_slice(),
                    &fd,
                    tol,
                    c * n,
                    c * n,
                );
                let b = compare("of the backward pass:", &gc, &fdw, tol, c * n, c * n);
                Ok(check(
                    a.passed && b.passed,
                    format!("{}; {}", a.detail, b.detail),
                ))
            }));
        }
        out
    }
}

impl Conformance<'static, Estimator> {
    /// A run on estimators of this crate built from `config` (switched to `f64` training
    /// passes), on data with a non-trivial dependence on the condition, with a round trip
    /// through the binary format.
    pub fn for_config(config: EstimatorConfig) -> Self {
        let mut config = config;
        config.set_precision(Precision::F64);
        Conformance::new(move |d, c, seed| {
            let (input, condition) = batch(d, c, 200, seed);
            config.build(&input, &condition, seed)
        })
        .with_round_trip(|e: &Estimator| Estimator::from_bytes(&e.to_bytes()?))
    }
}

/// A check result from a condition and a description.
fn check(passed: bool, detail: String) -> CheckResult {
    CheckResult {
        name: String::new(),
        passed,
        detail,
    }
}

/// Runs a check, naming it; an error or a panic fails it.
fn guard(name: String, f: impl FnOnce() -> Result<CheckResult, FlowError>) -> CheckResult {
    let mut result = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => check(false, format!("returned an error: {e}")),
        Err(_) => check(false, "panicked".into()),
    };
    result.name = name;
    result
}

/// Analytic against central-difference gradients: the relative error of the whole vector,
/// `‖a − f‖ / ‖f‖`, and the worst entry.
fn compare(
    what: &str,
    a: &[f64],
    f: &[f64],
    tol: f64,
    checked: usize,
    total: usize,
) -> CheckResult {
    let diff: f64 = a
        .iter()
        .zip(f)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = f.iter().map(|y| y * y).sum::<f64>().sqrt();
    let rel = diff / norm.max(1e-300);
    let (worst, wi) = a
        .iter()
        .zip(f)
        .enumerate()
        .map(|(i, (x, y))| ((x - y).abs() / (1e-8 + y.abs().max(x.abs())), i))
        .fold((0.0, 0), |m, v| if v.0 > m.0 { v } else { m });
    let zero = norm == 0.0 && diff == 0.0;
    let passed = (rel < tol || zero) && worst < tol.sqrt();
    check(
        passed,
        format!(
            "relative error {what} {checked} of {total} entries {rel:.1e} (tolerance {tol:.0e}); \
             worst entry {wi}: {:.6e} vs central difference {:.6e}",
            a.get(wi).copied().unwrap_or(0.0),
            f.get(wi).copied().unwrap_or(0.0)
        ),
    )
}

/// `Σ_j w_j log q(input_j | condition_j)` in `f64`.
fn weighted<E: ConditionalDensityEstimator>(
    e: &E,
    input: &DMatrix<f64>,
    condition: &DMatrix<f64>,
    w: &[f64],
) -> Result<f64, FlowError> {
    let lp = e.log_prob(input, condition)?;
    Ok(lp.iter().zip(w).map(|(a, b)| a * b).sum())
}

/// Input (`d × n`) that depends on the condition (`c × n`), both with non-trivial means
/// and scales.
fn batch(d: usize, c: usize, n: usize, seed: u64) -> (DMatrix<f64>, DMatrix<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let condition = DMatrix::from_fn(c, n, |i, _| 0.5 * i as f64 + rng.random_range(-1.0..1.0));
    let input = DMatrix::from_fn(d, n, |i, j| {
        let cx = if c > 0 { condition[(i % c, j)] } else { 0.0 };
        0.7 * cx + 0.3 * i as f64 + (0.5 + 0.1 * i as f64) * rng.random_range(-1.5..1.5)
    });
    (input, condition)
}

fn fixed_condition(c: usize) -> DMatrix<f64> {
    DMatrix::from_fn(c, 1, |i, _| 0.3 - 0.2 * i as f64)
}

/// The condition column repeated `n` times.
fn repeat(condition: &DMatrix<f64>, n: usize) -> DMatrix<f64> {
    DMatrix::from_fn(condition.nrows(), n, |i, _| condition[(i, 0)])
}

/// A grid per dimension that covers the samples' range widened by half of it each side.
fn grid_bounds(samples: &DMatrix<f64>) -> Vec<(f64, f64)> {
    samples
        .row_iter()
        .map(|r| {
            let (lo, hi) = r
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(*v), b.max(*v))
                });
            let span = (hi - lo).max(1e-6);
            (lo - 0.5 * span, hi + 0.5 * span)
        })
        .collect()
}

/// A density on a midpoint grid.
struct Grid {
    /// The points' coordinates, per dimension.
    axes: Vec<Vec<f64>>,
    /// The density values (row-major over dimension 0 then 1).
    density: Vec<f64>,
    /// The cell volume.
    cell: f64,
}

/// The density on a midpoint grid of `m` points per dimension (D = 1 or 2).
fn density_grid<E: ConditionalDensityEstimator>(
    e: &E,
    condition: &DMatrix<f64>,
    bounds: &[(f64, f64)],
    m: usize,
) -> Result<Grid, FlowError> {
    let d = bounds.len();
    let axes: Vec<Vec<f64>> = bounds
        .iter()
        .map(|&(lo, hi)| {
            (0..m)
                .map(|k| lo + (hi - lo) * (k as f64 + 0.5) / m as f64)
                .collect()
        })
        .collect();
    let cell: f64 = bounds
        .iter()
        .map(|&(lo, hi)| (hi - lo) / m as f64)
        .product();
    let total = m.pow(d as u32);
    let pts = DMatrix::from_fn(d, total, |i, j| {
        let k = if i == 0 {
            j / m.pow(d as u32 - 1)
        } else {
            j % m
        };
        axes[i][k]
    });
    let lp = e.log_prob(&pts, &repeat(condition, total))?;
    Ok(Grid {
        axes,
        density: lp.iter().map(|v| v.exp()).collect(),
        cell,
    })
}

fn normalization<E: ConditionalDensityEstimator>(
    e: &E,
    condition: &DMatrix<f64>,
    tol: f64,
    salt: u64,
) -> Result<CheckResult, FlowError> {
    let d = e.input_dim();
    let cvec: Vec<f64> = condition.iter().copied().collect();
    let samples = e.sample(20_000, &cvec, &mut StdRng::seed_from_u64(salt))?;
    let m = if d == 1 { 20_000 } else { 500 };
    let grid = density_grid(e, condition, &grid_bounds(&samples), m)?;
    let integral: f64 = grid.density.iter().sum::<f64>() * grid.cell;
    Ok(check(
        (integral - 1.0).abs() < tol,
        format!("grid integral {integral:.6} (expected 1 ± {tol:.0e}; {m} points per dimension)"),
    ))
}

/// The Kolmogorov–Smirnov statistic of sorted `samples` against a CDF given on a grid.
fn ks_statistic(sorted: &[f64], axis: &[f64], cdf: &[f64]) -> f64 {
    let n = sorted.len() as f64;
    let h = axis[1] - axis[0];
    let at = |x: f64| -> f64 {
        // Linear interpolation of the CDF between cell boundaries.
        let pos = (x - (axis[0] - 0.5 * h)) / h;
        if pos <= 0.0 {
            return 0.0;
        }
        let k = pos.floor() as usize;
        if k >= cdf.len() {
            return 1.0;
        }
        let before = if k == 0 { 0.0 } else { cdf[k - 1] };
        before + (cdf[k] - before) * (pos - k as f64)
    };
    sorted
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = at(x);
            (f - i as f64 / n).abs().max((f - (i + 1) as f64 / n).abs())
        })
        .fold(0.0, f64::max)
}

/// The asymptotic p-value of a KS statistic `dn` for `n` samples (Kolmogorov's series).
fn ks_p_value(dn: f64, n: usize) -> f64 {
    let sn = (n as f64).sqrt();
    let t = (sn + 0.12 + 0.11 / sn) * dn;
    let mut p = 0.0;
    for k in 1..=100 {
        let k = k as f64;
        p += 2.0 * (-1f64).powf(k - 1.0) * (-2.0 * k * k * t * t).exp();
    }
    p.clamp(0.0, 1.0)
}

fn samples_match<E: ConditionalDensityEstimator>(
    e: &E,
    condition: &DMatrix<f64>,
    salt: u64,
) -> Result<CheckResult, FlowError> {
    let d = e.input_dim();
    let cvec: Vec<f64> = condition.iter().copied().collect();
    let n = 4000;
    let samples = e.sample(n, &cvec, &mut StdRng::seed_from_u64(salt + 1))?;
    let bounds = grid_bounds(&e.sample(20_000, &cvec, &mut StdRng::seed_from_u64(salt + 2))?);
    let m = if d == 1 { 20_000 } else { 500 };
    let Grid {
        axes,
        density: dens,
        ..
    } = density_grid(e, condition, &bounds, m)?;
    let mut worst_p: f64 = 1.0;
    let mut details = Vec::new();
    for dim in 0..d {
        // The marginal of dimension `dim` on its axis.
        let mut marginal = vec![0.0; m];
        for (j, v) in dens.iter().enumerate() {
            let k = if d == 1 || dim == 1 { j % m } else { j / m };
            marginal[k] += v;
        }
        let total: f64 = marginal.iter().sum();
        let mut acc = 0.0;
        let cdf: Vec<f64> = marginal
            .iter()
            .map(|v| {
                acc += v / total;
                acc
            })
            .collect();
        let mut s: Vec<f64> = samples.row(dim).iter().copied().collect();
        s.sort_by(f64::total_cmp);
        let stat = ks_statistic(&s, &axes[dim], &cdf);
        let p = ks_p_value(stat, n);
        worst_p = worst_p.min(p);
        details.push(format!("dimension {}: KS {stat:.4}, p = {p:.3}", dim + 1));
    }
    // With a fixed seed the test is deterministic; a correct sampler fails it with
    // probability 1e-4 per dimension at most.
    Ok(check(
        worst_p > 1e-4,
        format!("{} ({n} samples; fails if p < 1e-4)", details.join("; ")),
    ))
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn round_trip<E: ConditionalDensityEstimator>(
    e: &E,
    rt: &dyn Fn(&E) -> Result<E, FlowError>,
    salt: u64,
) -> Result<CheckResult, FlowError> {
    let back = rt(e)?;
    let (input, condition) = batch(e.input_dim(), e.condition_dim(), 50, salt);
    let a = e.log_prob(&input, &condition)?;
    let b = back.log_prob(&input, &condition)?;
    let cvec: Vec<f64> = condition.column(0).iter().copied().collect();
    let sa = e.sample(20, &cvec, &mut StdRng::seed_from_u64(salt))?;
    let sb = back.sample(20, &cvec, &mut StdRng::seed_from_u64(salt))?;
    let same = bits(e.params()) == bits(back.params())
        && bits(a.as_slice()) == bits(b.as_slice())
        && bits(sa.as_slice()) == bits(sb.as_slice())
        && back.kind() == e.kind();
    Ok(check(
        same,
        if same {
            "parameters, log-densities and samples bit-identical".into()
        } else {
            "the loaded estimator differs".into()
        },
    ))
}

/// Every output of the estimator's passes on a batch, for comparing bits.
fn pass_outputs<E: ConditionalDensityEstimator>(e: &E, salt: u64) -> Result<Vec<u64>, FlowError> {
    let (d, c) = (e.input_dim(), e.condition_dim());
    let n = 700; // several chunks of the pass driver
    let (input, condition) = batch(d, c, n, salt);
    let w: Vec<f64> = (0..n).map(|j| ((j % 7) as f64 - 3.0) / n as f64).collect();
    let mut ws = e.workspace();
    let mut fwd = vec![0.0; n];
    e.forward(&mut ws, input.as_view(), condition.as_view(), &mut fwd)?;
    let (mut gp, mut gi, mut gc) = (
        vec![0.0; e.num_params()],
        vec![0.0; d * n],
        vec![0.0; c * n],
    );
    e.backward(
        &mut ws,
        &w,
        Gradients::params(&mut gp)
            .with_input(&mut gi)
            .with_condition(&mut gc),
    )?;
    let lp = e.log_prob(&input, &condition)?;
    let cvec: Vec<f64> = condition.column(0).iter().copied().collect();
    let s = e.sample(1000, &cvec, &mut StdRng::seed_from_u64(salt))?;
    Ok([
        bits(&fwd),
        bits(&gp),
        bits(&gi),
        bits(&gc),
        bits(lp.as_slice()),
        bits(s.as_slice()),
    ]
    .concat())
}

#[cfg(feature = "parallel")]
fn threads<E: ConditionalDensityEstimator>(e: &E, salt: u64) -> Result<CheckResult, FlowError> {
    let pool = |t| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .map_err(|err| FlowError::InvalidConfig(format!("a thread pool of {t}: {err}")))
    };
    let one = pool(1)?.install(|| pass_outputs(e, salt))?;
    let two = pool(2)?.install(|| pass_outputs(e, salt))?;
    let same = one == two;
    Ok(check(
        same,
        if same {
            "forward, backward, log_prob and samples bit-identical".into()
        } else {
            "results differ between 1 and 2 threads".into()
        },
    ))
}

#[cfg(not(feature = "parallel"))]
fn threads<E: ConditionalDensityEstimator>(e: &E, salt: u64) -> Result<CheckResult, FlowError> {
    let a = pass_outputs(e, salt)?;
    let b = pass_outputs(e, salt)?;
    Ok(check(
        a == b,
        "built without `parallel`: two runs compared".into(),
    ))
}

/// Wrong shapes and a non-finite condition must be errors, not panics.
fn bad_input<E: ConditionalDensityEstimator>(e: &E) -> CheckResult {
    let (d, c) = (e.input_dim(), e.condition_dim());
    type Case<'e> = (&'static str, Box<dyn Fn() -> bool + 'e>);
    let cases: Vec<Case<'_>> = vec![
        (
            "input with a wrong number of rows",
            Box::new(move || {
                e.log_prob(&DMatrix::zeros(d + 1, 3), &DMatrix::zeros(c, 3))
                    .is_err()
            }),
        ),
        (
            "condition with a wrong number of rows",
            Box::new(move || {
                e.log_prob(&DMatrix::zeros(d, 3), &DMatrix::zeros(c + 1, 3))
                    .is_err()
            }),
        ),
        (
            "a forward output of the wrong length",
            Box::new(move || {
                let (i, x) = (DMatrix::zeros(d, 3), DMatrix::zeros(c, 3));
                e.forward(&mut e.workspace(), i.as_view(), x.as_view(), &mut [0.0; 2])
                    .is_err()
            }),
        ),
        (
            "backward without forward",
            Box::new(move || {
                let mut g = vec![0.0; e.num_params()];
                e.backward(&mut e.workspace(), &[1.0], Gradients::params(&mut g))
                    .is_err()
            }),
        ),
        (
            "a condition of the wrong length to sample at",
            Box::new(move || {
                e.sample(2, &vec![0.0; c + 1], &mut StdRng::seed_from_u64(0))
                    .is_err()
            }),
        ),
        (
            "a non-finite condition to sample at",
            Box::new(move || {
                c == 0
                    || e.sample(2, &vec![f64::NAN; c], &mut StdRng::seed_from_u64(0))
                        .is_err()
            }),
        ),
    ];
    let mut failed = Vec::new();
    for (what, f) in &cases {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(true) => {}
            Ok(false) => failed.push(format!("{what}: accepted")),
            Err(_) => failed.push(format!("{what}: panicked")),
        }
    }
    CheckResult {
        name: "bad input".into(),
        passed: failed.is_empty(),
        detail: if failed.is_empty() {
            format!("{} kinds of bad input, each an error", cases.len())
        } else {
            failed.join("; ")
        },
    }
}
