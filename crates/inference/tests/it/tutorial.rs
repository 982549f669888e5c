//! End-to-end runs against closed-form posteriors.

use std::sync::Arc;

use simfer_benchmark::task;
use simfer_distributions::{Prior, rng_from_seed};
use simfer_inference::{MapOptions, ProposalSource, SnpeConfig};

fn mean_std(samples: &nalgebra::DMatrix<f64>) -> Vec<(f64, f64)> {
    samples
        .row_iter()
        .map(|r| {
            let n = r.len() as f64;
            let m = r.sum() / n;
            let v = r.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0);
            (m, v.sqrt())
        })
        .collect()
}

/// The tutorial: 3-D linear Gaussian, BoxUniform(−2, 2), x = θ + 1 + 0.1·ε, x_o = 0,
/// 2 rounds × 500 simulations with the default settings. Exact posterior: N(−1, 0.1²·I).
#[test]
fn tutorial_posterior_matches_the_closed_form_and_map_finds_the_mode() {
    let t = task("linear_gaussian").unwrap();
    let prior: Arc<dyn Prior> = Arc::from(t.prior());
    let run = crate::run_npe(
        prior,
        t.simulator().as_ref(),
        Some(&[0.0; 3]),
        2,
        500,
        7,
        SnpeConfig::default(),
    )
    .unwrap();
    assert_eq!(run.rounds.len(), 2);
    assert_eq!(run.rounds[0].proposal, ProposalSource::Prior);
    assert!(matches!(
        run.rounds[1].proposal,
        ProposalSource::Posterior {
            trained_on_round: 0,
            ..
        }
    ));
    assert_eq!(run.rounds[1].history.loss, "atomic (APT)");
    let posterior = run.posterior();
    let samples = posterior
        .sample(10_000, None, &mut rng_from_seed(1))
        .unwrap();
    for (d, (m, s)) in mean_std(&samples).into_iter().enumerate() {
        assert!((m + 1.0).abs() < 0.03, "dim {d}: mean {m}");
        assert!((s / 0.1 - 1.0).abs() < 0.15, "dim {d}: std {s}");
    }
    let map = posterior.map(None, &MapOptions::default()).unwrap();
    for (d, v) in map.theta.iter().enumerate() {
        assert!((v + 1.0).abs() < 0.02, "dim {d}: MAP {v}");
    }
}

/// gaussian_linear (10-D), one round of 10,000 simulations: posterior N(x_o/2, 0.05·I).
#[test]
fn gaussian_linear_single_round_matches_the_closed_form() {
    let t = task("gaussian_linear").unwrap();
    let prior: Arc<dyn Prior> = Arc::from(t.prior());
    let x_o: Vec<f64> = (0..10).map(|i| 0.3 * ((i as f64) - 4.5) / 4.5).collect();
    let run = crate::run_npe(
        prior,
        t.simulator().as_ref(),
        Some(&x_o),
        1,
        10_000,
        3,
        SnpeConfig::default(),
    )
    .unwrap();
    let samples = run
        .posterior()
        .sample(20_000, None, &mut rng_from_seed(5))
        .unwrap();
    let sd = 0.05f64.sqrt();
    for (d, (m, s)) in mean_std(&samples).into_iter().enumerate() {
        // Tolerances: the error here is the estimator's, not Monte Carlo's (sd/141 for
        // 20,000 samples). The reference MAF (36k parameters) on 9,000 training samples
        // stops at a validation loss ≈ 0.14 nats above the optimum; its posteriors come out
        // about 8 % narrow with means ≈ 0.15 sd off (seeds 1–3; at 10^5 simulations
        // 4 % and 0.07 sd). These bounds hold that level and fail on a wrong posterior
        // (e.g. the prior, sd 0.32, or the proposal-posterior bias of a wrong loss).
        assert!(
            (m - x_o[d] / 2.0).abs() < 0.25 * sd,
            "dim {d}: mean {m} vs {}",
            x_o[d] / 2.0
        );
        assert!((s / sd - 1.0).abs() < 0.15, "dim {d}: std {s} vs {sd}");
    }
}
