//! The posterior: support, normalization, persistence, determinism.

use std::sync::Arc;

use nalgebra::DMatrix;
use simfer_distributions::{BoxUniform, Prior, rng_from_seed};
use simfer_flows::MafConfig;
use simfer_inference::{DirectPosterior, SamplingOptions, SnpeConfig};
use simfer_simulators::FnSimulator;
use simfer_snpe::TrainingConfig;

/// A small, quickly trained 2-D problem whose posterior at x_o = (0.9, 0.9) leaks well
/// outside the box [−1, 1]²: x = θ + 0.3·ε.
pub fn leaky_run(seed: u64) -> simfer_inference::InferenceRun {
    let prior: Arc<dyn Prior> = Arc::new(BoxUniform::uniform(2, -1.0, 1.0).unwrap());
    let sim = FnSimulator::new(2, 2, |t: &[f64], rng: &mut dyn rand::RngCore| {
        use rand_distr::{Distribution, StandardNormal};
        t.iter()
            .map(|v| v + 0.3 * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng))
            .collect::<Vec<f64>>()
    });
    let config = SnpeConfig {
        estimator: MafConfig {
            hidden_features: 16,
            num_transforms: 2,
            ..MafConfig::default()
        }
        .into(),
        training: TrainingConfig {
            max_num_epochs: Some(40),
            ..TrainingConfig::default()
        },
        ..SnpeConfig::default()
    };
    crate::run_npe(prior, &sim, Some(&[0.9, 0.9]), 1, 1000, seed, config).unwrap()
}

#[test]
fn samples_lie_inside_the_support_and_the_density_is_normalized() {
    let run = leaky_run(1);
    let posterior = run.direct_posterior().unwrap();
    let (samples, stats) = posterior
        .sample_with_stats(5000, None, &mut rng_from_seed(2))
        .unwrap();
    assert_eq!(samples.ncols(), 5000);
    assert!(samples.iter().all(|v| (-1.0..=1.0).contains(v)));
    let rate = stats.acceptance_rate();
    assert!(rate < 0.9, "the test needs leakage; acceptance rate {rate}");

    // ∫ p(θ | x_o) dθ over the box by the midpoint rule on a 300 × 300 grid.
    let m = 300;
    let h = 2.0 / m as f64;
    let grid = DMatrix::from_fn(2, m * m, |i, j| {
        let k = if i == 0 { j % m } else { j / m };
        -1.0 + (k as f64 + 0.5) * h
    });
    let lp = posterior.log_prob(&grid, None).unwrap();
    let integral: f64 = lp.iter().map(|v| v.exp()).sum::<f64>() * h * h;
    // The acceptance rate is estimated from 10^4 accepted samples: relative error about
    // sqrt((1 − r)/10^4) ≈ 1 %, so 3 % is a safe bound that still catches a missing
    // normalization (which would be off by the leakage, > 10 %).
    assert!(
        (integral - 1.0).abs() < 0.03,
        "integral {integral} (acceptance {rate})"
    );

    // The same integral by Monte Carlo: volume (4) × the mean density at uniform draws
    // over the box. With 2·10^5 draws its standard error is about 4·sd(p)/√(2·10^5) < 1 %
    // here; together with the acceptance rate's ~1 %, 4 % stays well below the > 10 % that
    // a missing normalization would give.
    let box_prior = BoxUniform::uniform(2, -1.0, 1.0).unwrap();
    let draws = box_prior.sample_batch(200_000, &mut rng_from_seed(5));
    let lp_mc = posterior.log_prob(&draws, None).unwrap();
    let mc_integral = 4.0 * lp_mc.iter().map(|v| v.exp()).sum::<f64>() / draws.ncols() as f64;
    assert!(
        (mc_integral - 1.0).abs() < 0.04,
        "Monte Carlo integral {mc_integral} (acceptance {rate})"
    );
    assert!(
        (mc_integral - integral).abs() < 0.03,
        "Monte Carlo {mc_integral} vs grid {integral}"
    );

    let unnormalized: f64 = posterior
        .log_prob_unnormalized(&grid, None)
        .unwrap()
        .iter()
        .map(|v| v.exp())
        .sum::<f64>()
        * h
        * h;
    assert!(
        (unnormalized - rate).abs() < 0.03,
        "{unnormalized} vs {rate}"
    );

    // Outside the support the density is zero.
    let outside = DMatrix::from_column_slice(2, 1, &[1.2, 0.0]);
    assert_eq!(
        posterior.log_prob(&outside, None).unwrap()[0],
        f64::NEG_INFINITY
    );
    // The acceptance rate is cached and reproducible.
    let a = posterior.acceptance_rate(None).unwrap();
    assert_eq!(a, posterior.acceptance_rate(None).unwrap());
    assert_eq!(a, posterior.clone().acceptance_rate(None).unwrap());
}

#[test]
fn save_and_load_give_identical_log_probs() {
    let run = leaky_run(3);
    let posterior = run.direct_posterior().unwrap();
    let dir = std::env::temp_dir().join(format!("simfer-posterior-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("posterior.json");
    posterior.save(&path).unwrap();
    let loaded: DirectPosterior = DirectPosterior::load(&path).unwrap();
    let theta = posterior.sample(500, None, &mut rng_from_seed(4)).unwrap();
    let a = posterior.log_prob(&theta, None).unwrap();
    let b = loaded.log_prob(&theta, None).unwrap();
    assert_eq!(a, b);
    assert_eq!(loaded.default_x(), Some(&[0.9, 0.9][..]));
    assert_eq!(loaded.history(), posterior.history());
    // Same draws from the same seed.
    assert_eq!(
        posterior.sample(50, None, &mut rng_from_seed(9)).unwrap(),
        loaded.sample(50, None, &mut rng_from_seed(9)).unwrap()
    );

    // Another version or format is a clear error.
    let text = std::fs::read_to_string(&path).unwrap();
    let other = text.replacen(
        &format!("\"version\":{}", simfer_inference::POSTERIOR_FORMAT_VERSION),
        "\"version\":99",
        1,
    );
    let err = DirectPosterior::<simfer_flows::Estimator>::from_json(&other).unwrap_err();
    assert!(err.to_string().contains("version 99"), "{err}");
    let err =
        DirectPosterior::<simfer_flows::Estimator>::from_json("{\"format\":\"x\",\"version\":1}")
            .unwrap_err();
    assert!(err.to_string().contains("simfer-posterior"), "{err}");
    assert!(DirectPosterior::<simfer_flows::Estimator>::from_json("not json").is_err());
    // An estimator of an unknown kind, or a known kind in an unknown version (the file
    // sealed again, as a changed file fails its checksum first).
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["estimator"]["kind"] = serde_json::json!("spline-of-the-future");
    simfer_flows::io::seal_json(&mut v);
    let err = DirectPosterior::<simfer_flows::Estimator>::from_json(&v.to_string()).unwrap_err();
    assert!(
        err.to_string().contains("spline-of-the-future") && err.to_string().contains("`maf`"),
        "{err}"
    );
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["estimator"]["version"] = serde_json::json!(41);
    simfer_flows::io::seal_json(&mut v);
    let err = DirectPosterior::<simfer_flows::Estimator>::from_json(&v.to_string()).unwrap_err();
    assert!(err.to_string().contains("version 41"), "{err}");

    // A file of version 1 (the estimator a bare MAF, no checksum) still loads, with the
    // same density.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let model = v["estimator"]["model"].take();
    v["estimator"] = model;
    v["version"] = serde_json::json!(1);
    v.as_object_mut().unwrap().remove("checksum");
    let old: DirectPosterior = DirectPosterior::from_json(&v.to_string()).unwrap();
    assert_eq!(old.log_prob(&theta, None).unwrap(), a);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn posterior_files_of_every_estimator_kind_save_and_load() {
    let dir = std::env::temp_dir().join(format!("simfer-posterior-kinds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prior: Arc<dyn Prior> = Arc::new(BoxUniform::uniform(2, -1.0, 1.0).unwrap());
    let sim = FnSimulator::new(2, 2, |t: &[f64], rng: &mut dyn rand::RngCore| {
        use rand_distr::{Distribution, StandardNormal};
        t.iter()
            .map(|v| v + 0.3 * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng))
            .collect::<Vec<f64>>()
    });
    for &kind in simfer_flows::EstimatorKind::ALL {
        let config = SnpeConfig {
            estimator: kind.default_config(),
            training: TrainingConfig {
                max_num_epochs: Some(3),
                ..TrainingConfig::default()
            },
            ..SnpeConfig::default()
        };
        let run = crate::run_npe(prior.clone(), &sim, Some(&[0.2, -0.3]), 1, 300, 7, config)
            .unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
        let posterior = run.direct_posterior().unwrap();
        let path = dir.join(format!("{}.json", kind.name()));
        posterior.save(&path).unwrap();
        let loaded: DirectPosterior = DirectPosterior::load(&path).unwrap();
        assert_eq!(loaded.estimator().estimator_kind(), kind);
        let theta = posterior.sample(200, None, &mut rng_from_seed(8)).unwrap();
        assert_eq!(
            posterior.log_prob(&theta, None).unwrap(),
            loaded.log_prob(&theta, None).unwrap(),
            "{}",
            kind.name()
        );
        assert_eq!(
            loaded.sample(50, None, &mut rng_from_seed(9)).unwrap(),
            posterior.sample(50, None, &mut rng_from_seed(9)).unwrap(),
            "{}",
            kind.name()
        );
        // The file names its kind; another kind's name in its place is an error or a
        // different estimator, never a silent success with this one's weights.
        let text = std::fs::read_to_string(&path).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["estimator"]["kind"], serde_json::json!(kind.name()));
        v["estimator"]["version"] = serde_json::json!(77);
        simfer_flows::io::seal_json(&mut v);
        let err = DirectPosterior::<simfer_flows::Estimator>::from_json(&v.to_string())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("version 77") && err.contains(kind.name()),
            "{err}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn one_seed_reproduces_a_run_whatever_the_number_of_threads() {
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let run = leaky_run(5);
                run.posterior()
                    .sample(200, None, &mut rng_from_seed(6))
                    .unwrap()
            })
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn batched_sampling_conditions_on_each_observation() {
    let run = leaky_run(7);
    let posterior = run.direct_posterior().unwrap();
    let xs = DMatrix::from_column_slice(2, 3, &[0.9, 0.9, -0.5, 0.0, 0.0, 0.5]);
    let samples = posterior.sample_batched(300, &xs, 8).unwrap();
    assert_eq!(samples.len(), 3);
    for (j, s) in samples.iter().enumerate() {
        let x: Vec<f64> = xs.column(j).iter().copied().collect();
        let single = posterior
            .sample(
                300,
                Some(&x),
                &mut simfer_distributions::derive_rng(8, j as u64),
            )
            .unwrap();
        assert_eq!(s, &single, "observation {j}");
    }
    assert_ne!(samples[0], samples[1]);
    let bad = DMatrix::zeros(3, 2);
    assert!(posterior.sample_batched(10, &bad, 8).is_err());
}

#[test]
fn a_spent_rejection_budget_is_an_error_stating_the_rate() {
    let run = leaky_run(1);
    let mut posterior = run.direct_posterior().unwrap().clone();
    // A budget of draws smaller than the samples requested cannot suffice.
    posterior
        .set_sampling_options(SamplingOptions {
            max_draws: 3_000,
            max_sampling_batch_size: 1_000,
            ..SamplingOptions::default()
        })
        .unwrap();
    let err = posterior
        .sample(10_000, None, &mut rng_from_seed(1))
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("% of the estimator's samples"), "{msg}");
    assert!(msg.contains("budget of 3000 draws"), "{msg}");
    match err {
        simfer_inference::InferenceError::RejectionBudget {
            drawn, accepted, ..
        } => {
            assert!(drawn <= 3_000 && accepted < 10_000);
        }
        other => panic!("unexpected {other}"),
    }
    // At about 58 % acceptance, 10^6 samples need about 1.7·10^6 draws: a budget of
    // 1.2·10^6 is seen to be insufficient after the first 10^4 draws, without spending it.
    posterior
        .set_sampling_options(SamplingOptions {
            max_draws: 1_200_000,
            max_sampling_batch_size: 10_000,
            ..SamplingOptions::default()
        })
        .unwrap();
    let err = posterior
        .sample(1_000_000, None, &mut rng_from_seed(1))
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("stopped early"), "{msg}");
    assert!(msg.contains("budget of 1200000 draws"), "{msg}");
    match err {
        simfer_inference::InferenceError::RejectionBudget { drawn, .. } => {
            assert!(drawn < 100_000, "drew {drawn}");
        }
        other => panic!("unexpected {other}"),
    }
    // A time budget.
    posterior
        .set_sampling_options(SamplingOptions {
            max_seconds: Some(1e-9),
            max_sampling_batch_size: 100,
            ..SamplingOptions::default()
        })
        .unwrap();
    let msg = posterior
        .sample(10_000, None, &mut rng_from_seed(1))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("time budget"), "{msg}");
    // Without rejection it returns the raw samples.
    posterior
        .set_sampling_options(SamplingOptions {
            reject_outside_prior: false,
            ..SamplingOptions::default()
        })
        .unwrap();
    assert_eq!(
        posterior
            .sample(100, None, &mut rng_from_seed(1))
            .unwrap()
            .ncols(),
        100
    );
}
