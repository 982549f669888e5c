//! Properties of the estimators over random small architectures, seeds and inputs: the
//! flows (MAF, NSF) are bijections whose inverse undoes the forward map both ways, and
//! whose log-density is the base density of the forward image plus the log-det of the
//! map; every estimator (MDN included, which is not a bijection) samples reproducibly from
//! a seed, with finite samples of finite log-density.

use nalgebra::DMatrix;
use proptest::prelude::*;
use rand_distr::{Distribution, StandardNormal};
use simfer_flows::{
    ConditionalDensityEstimator, Maf, MafConfig, MdnConfig, Nsf, NsfConfig, Precision,
};

use crate::common::{flow as maf_flow, rng};
use crate::mdn::mdn;
use crate::nsf::flow as nsf_flow;

/// A MAF or an NSF, with their two directions.
#[derive(Debug)]
enum Flow {
    Maf(Maf),
    Nsf(Nsf),
}

impl Flow {
    fn estimator(&self) -> &dyn ConditionalDensityEstimator {
        match self {
            Flow::Maf(m) => m,
            Flow::Nsf(m) => m,
        }
    }

    /// Input → noise.
    fn forward(&self, input: &DMatrix<f64>, cond: &DMatrix<f64>) -> DMatrix<f64> {
        match self {
            Flow::Maf(m) => m.transform_to_noise(input, cond),
            Flow::Nsf(m) => m.transform_to_noise(input, cond),
        }
        .unwrap()
    }

    /// Noise → input.
    fn inverse(&self, noise: &DMatrix<f64>, cond: &[f64]) -> DMatrix<f64> {
        match self {
            Flow::Maf(m) => m.inverse(noise, cond),
            Flow::Nsf(m) => m.inverse(noise, cond),
        }
        .unwrap()
    }
}

/// A random small flow: its kind, input and condition dimensions, architecture and seed.
#[derive(Clone, Debug)]
struct FlowParams {
    nsf: bool,
    d: usize,
    c: usize,
    hidden: usize,
    transforms: usize,
    blocks: usize,
    bins: usize,
    tail_bound: f64,
    seed: u64,
}

fn flow_params() -> impl Strategy<Value = FlowParams> {
    (
        any::<bool>(),
        1usize..=3,
        0usize..=2,
        2usize..=8,
        1usize..=3,
        0usize..=2,
        2usize..=8,
        1.0f64..4.0,
        0u64..10_000,
    )
        .prop_map(
            |(nsf, d, c, hidden, transforms, blocks, bins, tail_bound, seed)| FlowParams {
                nsf,
                d,
                c,
                hidden,
                transforms,
                blocks,
                bins,
                tail_bound,
                seed,
            },
        )
}

impl FlowParams {
    /// The flow with parameters perturbed away from the initialization (by the helpers of
    /// the MAF and NSF tests), and its training data.
    fn build(&self) -> (Flow, DMatrix<f64>, DMatrix<f64>) {
        if self.nsf {
            let cfg = NsfConfig {
                hidden_features: self.hidden,
                num_transforms: self.transforms,
                num_blocks: self.blocks,
                num_bins: self.bins,
                tail_bound: self.tail_bound,
                precision: Precision::F64,
                ..NsfConfig::default()
            };
            let (f, theta, x) = nsf_flow(&cfg, self.d, self.c, self.seed, 0.3);
            (Flow::Nsf(f), theta, x)
        } else {
            let cfg = MafConfig {
                hidden_features: self.hidden,
                num_transforms: self.transforms,
                num_blocks: self.blocks,
                precision: Precision::F64,
                ..MafConfig::default()
            };
            let (f, theta, x) = maf_flow(&cfg, self.d, self.c, self.seed);
            (Flow::Maf(f), theta, x)
        }
    }
}

fn column(m: &DMatrix<f64>, j: usize) -> Vec<f64> {
    m.column(j).iter().copied().collect()
}

/// The condition column `x0` repeated `n` times.
fn repeat(x0: &[f64], n: usize) -> DMatrix<f64> {
    DMatrix::from_fn(x0.len(), n, |i, _| x0[i])
}

/// `max |a − b| / (1 + |b|)` over the entries.
fn max_rel_err(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        .fold(0.0, f64::max)
}

proptest! {
    #[test]
    fn forward_of_inverse_and_inverse_of_forward_are_the_identity(
        params in flow_params(),
        noise_scale in 0.1f64..2.5,
        noise_seed in any::<u64>(),
        pick in 0usize..64,
    ) {
        let (flow, theta, x) = params.build();
        let x0 = column(&x, pick);
        let n = theta.ncols();
        let xs = repeat(&x0, n);
        // Noise → input → noise, reaching into the tails of the base distribution.
        let mut r = rng(noise_seed);
        let z = DMatrix::from_fn(params.d, n, |_, _| {
            let e: f64 = StandardNormal.sample(&mut r);
            noise_scale * e
        });
        let input = flow.inverse(&z, &x0);
        prop_assert!(input.iter().all(|v| v.is_finite()));
        let z2 = flow.forward(&input, &xs);
        // A round trip loses the digits that the map's conditioning costs: a rare flow
        // here contracts a direction by orders of magnitude and was seen to lose all but
        // 2e-9; 1e-7 leaves room for those.
        let err = max_rel_err(&z2, &z);
        prop_assert!(err < 1e-7, "max |z − f(f⁻¹(z))|/(1 + |z|) = {:e}", err);
        // Input → noise → input, on the training data (some of it in the spline tails).
        let u = flow.forward(&theta, &xs);
        let back = flow.inverse(&u, &x0);
        let err = max_rel_err(&back, &theta);
        prop_assert!(err < 1e-7, "max |θ − f⁻¹(f(θ))|/(1 + |θ|) = {:e}", err);
    }

    #[test]
    fn log_prob_is_the_base_log_density_of_the_noise_plus_the_log_det(
        params in flow_params(), pick in 0usize..64,
    ) {
        let (flow, theta, x) = params.build();
        let (d, n) = (params.d, 20);
        let x0 = column(&x, pick);
        let xs = repeat(&x0, n);
        let input = theta.columns(0, n).into_owned();
        let lp = flow.estimator().log_prob(&input, &xs).unwrap();
        let u = flow.forward(&input, &xs);
        // The Jacobian ∂u/∂input of each column by differences, one input coordinate at
        // a time over the whole batch: central ones, and forward and backward ones. The
        // NSF's conditioners are ReLU networks, so its map has kinks where a hidden unit
        // switches; a central difference that straddles one is wrong, but then one of the
        // one-sided differences is right.
        let h = 1e-6;
        let mut central = vec![DMatrix::<f64>::zeros(d, d); n];
        let mut forward = central.clone();
        let mut backward = central.clone();
        for k in 0..d {
            let (mut up, mut down) = (input.clone(), input.clone());
            up.row_mut(k).add_scalar_mut(h);
            down.row_mut(k).add_scalar_mut(-h);
            let (fu, fd) = (flow.forward(&up, &xs), flow.forward(&down, &xs));
            for j in 0..n {
                central[j].set_column(k, &((fu.column(j) - fd.column(j)) / (2.0 * h)));
                forward[j].set_column(k, &((fu.column(j) - u.column(j)) / h));
                backward[j].set_column(k, &((u.column(j) - fd.column(j)) / h));
            }
        }
        let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        for j in 0..n {
            let base: f64 = u.column(j).iter().map(|v| -0.5 * v * v - half_ln_2pi).sum();
            // The error of a differenced log-det: truncation (~h² central, ~h one-sided,
            // and ~h for a central difference that straddles a knot of a spline, only C¹
            // there), within 1e-5 for these maps; and rounding: u is known to
            // ~δ = 1e-14·max(1, |u|) (the passes' rounding), so each entry of the Jacobian
            // to δ/h and ln|det| to δ/h·‖J⁻¹‖ (a map that contracts some direction a lot,
            // as the flows do far in the tails, makes that large).
            let delta = 1e-14 * u.column(j).amax().max(1.0);
            let inverse_norm = central[j].clone().try_inverse().map_or(f64::INFINITY, |m| m.norm());
            let tol = 1e-5 * (1.0 + lp[j].abs()) + 2.0 * delta / h * inverse_norm;
            let log_dets: Vec<f64> = [&central[j], &forward[j], &backward[j]]
                .iter()
                .map(|m| (*m).clone().lu().determinant().abs().ln())
                .collect();
            prop_assert!(
                log_dets.iter().any(|ld| (lp[j] - (base + ld)).abs() <= tol),
                "column {}: log_prob {} vs base {} + log det {:?} (central, forward, backward \
                 differences; tolerance {:e})",
                j, lp[j], base, log_dets, tol
            );
        }
    }

    #[test]
    fn seeded_sampling_is_reproducible_with_finite_samples_and_log_prob(
        params in flow_params(),
        mdn_kind in any::<bool>(),
        components in 1usize..=4,
        pick in 0usize..64,
        seed in any::<u64>(),
        n in 1usize..50,
    ) {
        let (estimator, x): (Box<dyn ConditionalDensityEstimator>, DMatrix<f64>) = if mdn_kind {
            let cfg = MdnConfig {
                hidden_features: params.hidden,
                num_components: components,
                num_hidden_layers: params.transforms,
                precision: Precision::F64,
                ..MdnConfig::default()
            };
            let (m, _, x) = mdn(&cfg, params.d, params.c, params.seed);
            (Box::new(m), x)
        } else {
            let (f, _, x) = params.build();
            let e: Box<dyn ConditionalDensityEstimator> = match f {
                Flow::Maf(m) => Box::new(m),
                Flow::Nsf(m) => Box::new(m),
            };
            (e, x)
        };
        let x0 = column(&x, pick);
        let a = estimator.sample(n, &x0, &mut rng(seed)).unwrap();
        let b = estimator.sample(n, &x0, &mut rng(seed)).unwrap();
        prop_assert_eq!(a.shape(), (params.d, n));
        let bits = |m: &DMatrix<f64>| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&a), bits(&b));
        prop_assert!(a.iter().all(|v| v.is_finite()), "{}", a);
        let lp = estimator.log_prob(&a, &repeat(&x0, n)).unwrap();
        prop_assert!(lp.iter().all(|v| v.is_finite()), "{}", lp);
        let other = estimator.sample(n, &x0, &mut rng(seed.wrapping_add(1))).unwrap();
        prop_assert_ne!(bits(&a), bits(&other));
    }
}
