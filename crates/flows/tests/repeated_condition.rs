//! Batches whose consecutive columns share a condition, as the atomic loss lays them out
//! (column `i·A + k` is atom `k` of row `i`, and every atom of a row has the row's x):
//! the estimators evaluate such a condition's layers once per run of columns. The
//! results must be those of the same columns in an order without runs.

use nalgebra::DMatrix;
use rand::Rng;
use simfer_flows::{
    ConditionalDensityEstimator, Gradients, Maf, MafConfig, Parameterized, Precision,
};

use crate::common::{flow, rng, small_config};

/// Rows and atoms: 2,000 columns, several chunks of the pass driver, with runs that
/// cross chunk boundaries.
const ROWS: usize = 200;
const ATOMS: usize = 10;

/// The atomic layout of `theta` (`d × ROWS·ATOMS`) and `x` (`c × ROWS`, repeated), and
/// the same columns in the interleaved order (position `k·ROWS + i` holds column
/// `i·ATOMS + k`), where neighbouring columns have different conditions.
struct Layouts {
    runs: (DMatrix<f64>, DMatrix<f64>),
    interleaved: (DMatrix<f64>, DMatrix<f64>),
}

fn layouts(d: usize, c: usize, seed: u64) -> Layouts {
    let mut r = rng(seed);
    let x_rows = DMatrix::from_fn(c, ROWS, |i, _| i as f64 + r.random_range(-2.0..2.0));
    let n = ROWS * ATOMS;
    let theta = DMatrix::from_fn(d, n, |_, _| r.random_range(-2.0..2.0));
    let x = DMatrix::from_fn(c, n, |i, j| x_rows[(i, j / ATOMS)]);
    let inter = |m: &DMatrix<f64>| {
        DMatrix::from_fn(m.nrows(), n, |i, q| m[(i, (q % ROWS) * ATOMS + q / ROWS)])
    };
    Layouts {
        interleaved: (inter(&theta), inter(&x)),
        runs: (theta, x),
    }
}

/// Position in the interleaved order of atomic column `j`.
fn position(j: usize) -> usize {
    (j % ATOMS) * ROWS + j / ATOMS
}

fn rel_norm(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(p, q)| (p - q).powi(2)).sum();
    let den: f64 = b.iter().map(|q| q * q).sum();
    assert!(den > 0.0, "a zero gradient cannot be compared");
    (num / den).sqrt()
}

struct Pass {
    log_q: Vec<f64>,
    params: Vec<f64>,
    condition: Option<Vec<f64>>,
}

fn pass(
    est: &dyn ConditionalDensityEstimator,
    (theta, x): &(DMatrix<f64>, DMatrix<f64>),
    weights: &[f64],
    condition: bool,
) -> Pass {
    let n = theta.ncols();
    let mut ws = est.workspace();
    let mut log_q = vec![0.0; n];
    est.forward(&mut ws, theta.as_view(), x.as_view(), &mut log_q)
        .unwrap();
    let mut params = vec![0.0; est.num_params()];
    let mut cond = condition.then(|| vec![0.0; x.len()]);
    let grads = Gradients {
        params: Some(&mut params),
        input: None,
        condition: cond.as_deref_mut(),
    };
    est.backward(&mut ws, weights, grads).unwrap();
    Pass {
        log_q,
        params,
        condition: cond,
    }
}

/// Checks one estimator: log-densities to the bit, gradients to `tol` (relative norm).
fn check(est: &dyn ConditionalDensityEstimator, tol: f64, seed: u64) {
    let (d, c) = (est.input_dim(), est.condition_dim());
    let l = layouts(d, c, seed);
    let n = ROWS * ATOMS;
    let mut r = rng(seed + 1);
    let w: Vec<f64> = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
    let w_inter: Vec<f64> = {
        let mut v = vec![0.0; n];
        for (j, wj) in w.iter().enumerate() {
            v[position(j)] = *wj;
        }
        v
    };
    for condition in [false, true] {
        let a = pass(est, &l.runs, &w, condition);
        let b = pass(est, &l.interleaved, &w_inter, condition);
        for j in 0..n {
            assert_eq!(
                a.log_q[j].to_bits(),
                b.log_q[position(j)].to_bits(),
                "{}: log q of column {j}",
                est.kind()
            );
        }
        let e = rel_norm(&a.params, &b.params);
        assert!(e < tol, "{}: parameter gradient off by {e:e}", est.kind());
        if let (Some(ga), Some(gb)) = (&a.condition, &b.condition) {
            let gb: Vec<f64> = (0..n)
                .flat_map(|j| gb[position(j) * c..(position(j) + 1) * c].to_vec())
                .collect();
            let e = rel_norm(ga, &gb);
            assert!(e < tol, "{}: condition gradient off by {e:e}", est.kind());
        }
    }
}

fn maf(precision: Precision) -> Maf {
    let cfg = MafConfig {
        precision,
        ..small_config()
    };
    let (maf, _, _) = flow(&cfg, 3, 2, 41);
    maf
}

#[test]
fn maf_runs_of_one_condition_give_the_per_column_results_in_f64() {
    // The sums over columns run in another order: equal to rounding.
    check(&maf(Precision::F64), 1e-12, 5);
}

#[test]
fn maf_runs_of_one_condition_give_the_per_column_results_in_f32() {
    // f32 sums over 2,000 columns in another order: ≈ 1e-7 per term, more after
    // cancellation between columns of both signs.
    check(&maf(Precision::F32), 1e-5, 6);
}

#[test]
fn maf_default_architecture_runs_match_too() {
    let (theta, x) = crate::common::data(2, 2, 64, 3);
    let mut m = Maf::new(&MafConfig::default(), &theta, &x, 3).unwrap();
    let mut r = rng(4);
    for p in m.params_mut() {
        *p += r.random_range(-0.05..0.05);
    }
    check(&m, 1e-5, 7);
}

fn nsf(precision: Precision, d: usize, c: usize) -> simfer_flows::Nsf {
    let cfg = simfer_flows::NsfConfig {
        hidden_features: 8,
        num_transforms: 3,
        num_bins: 5,
        num_blocks: 2,
        precision,
        ..simfer_flows::NsfConfig::default()
    };
    let (nsf, _, _) = crate::nsf::flow(&cfg, d, c, 43, 0.2);
    nsf
}

#[test]
fn nsf_runs_of_one_condition_give_the_per_column_results() {
    // f64: the gates' gradient sums run in another order, equal to rounding; f32 as for
    // the MAF above.
    check(&nsf(Precision::F64, 2, 2), 1e-12, 8);
    check(&nsf(Precision::F32, 2, 2), 1e-5, 9);
    // A condition of more than five rows takes the large-product kernel for the gates.
    check(&nsf(Precision::F64, 3, 8), 1e-12, 10);
}

fn mdn(precision: Precision, d: usize, c: usize) -> simfer_flows::Mdn {
    let cfg = simfer_flows::MdnConfig {
        hidden_features: 9,
        num_components: 3,
        precision,
        ..simfer_flows::MdnConfig::default()
    };
    let (mdn, _, _) = crate::mdn::mdn(&cfg, d, c, 44);
    mdn
}

#[test]
fn mdn_runs_of_one_condition_give_the_per_column_results() {
    // The whole network runs once per run: its parameter gradient sums the run's columns
    // first, equal to rounding in f64; f32 as for the MAF above.
    check(&mdn(Precision::F64, 2, 2), 1e-12, 11);
    check(&mdn(Precision::F32, 2, 2), 1e-5, 12);
    check(&mdn(Precision::F64, 3, 8), 1e-12, 13);
}
