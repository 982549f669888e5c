//! The catalogue of bad inputs of the library (see docs/BAD-INPUTS.md): one test each, named
//! for the bad input. Each asserts the error's variant, that its message names what was
//! expected and what was found, and that nothing computed before it is lost.

use std::sync::atomic::{AtomicUsize, Ordering};

use nalgebra::DMatrix;
use simfer_distributions::{BoxUniform, DistributionError, MultivariateNormal, Prior};
use simfer_flows::{Estimator, EstimatorKind, FlowError};
use simfer_inference::{DirectPosterior, Inference, InferenceError, MethodKind, Snpe};
use simfer_simulators::{FnSimulator, Simulator, SimulatorError};
use simfer_snpe::SnpeError;

use crate::{prior, quick};

/// x = θ (2 → 2), counting the simulations it runs.
struct Counting(AtomicUsize);

impl Counting {
    fn new() -> Self {
        Self(AtomicUsize::new(0))
    }
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Simulator for Counting {
    fn theta_dim(&self) -> usize {
        2
    }
    fn x_dim(&self) -> usize {
        2
    }
    fn simulate(
        &self,
        theta: &[f64],
        _rng: &mut dyn rand::RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        out.copy_from_slice(theta);
        Ok(())
    }
}

fn inference(method: &str, rounds: usize, n: usize) -> Inference {
    Inference::new(prior())
        .method(method)
        .with_snpe_config(quick())
        .rounds(rounds)
        .simulations_per_round(n)
        .observation(&[0.1, 0.2])
        .seed(1)
}

/// A trained one-round posterior with a default x.
fn trained() -> DirectPosterior {
    let sim = Counting::new();
    let run = inference("npe", 1, 200).run(&sim).unwrap();
    run.direct_posterior().unwrap().clone()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bad-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn one_simulation_per_round() {
    // Training splits off a validation set (10 %) and the atomic loss of later rounds
    // contrasts rows of a batch: at least 2 rows in each part, so 11 simulations. The run
    // says so before it simulates anything.
    let sim = Counting::new();
    let err = inference("snpe", 3, 1).run(&sim).unwrap_err();
    assert!(
        matches!(
            err,
            InferenceError::InvalidConfig {
                name: "simulations_per_round",
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("at least 11") && msg.contains("found 1"),
        "{msg}"
    );
    assert_eq!(sim.count(), 0, "no simulation ran before the error");
}

#[test]
fn too_few_simulations_for_a_large_validation_fraction() {
    let sim = Counting::new();
    let mut config = quick();
    config.training.validation_fraction = 0.5;
    let err = Inference::new(prior())
        .method("npe")
        .with_snpe_config(config)
        .simulations_per_round(1)
        .seed(1)
        .run(&sim)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, InferenceError::InvalidConfig { .. }),
        "{err:?}"
    );
    assert!(
        msg.contains("at least 2") && msg.contains("found 1") && msg.contains("0.5"),
        "{msg}"
    );
    assert_eq!(sim.count(), 0, "no simulation ran before the error");
}

#[test]
fn zero_rounds() {
    let sim = Counting::new();
    let err = inference("snpe", 0, 100).run(&sim).unwrap_err();
    assert!(
        matches!(err, InferenceError::InvalidConfig { name: "rounds", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("found 0"), "{err}");
    assert_eq!(sim.count(), 0);
}

#[test]
fn zero_simulations_per_round() {
    let sim = Counting::new();
    let err = inference("npe", 1, 0).run(&sim).unwrap_err();
    assert!(
        matches!(
            err,
            InferenceError::InvalidConfig {
                name: "simulations_per_round",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("found 0"), "{err}");
    assert_eq!(sim.count(), 0);
}

#[test]
fn several_rounds_of_a_one_round_method() {
    let sim = Counting::new();
    let err = inference("npe", 3, 100).run(&sim).unwrap_err();
    assert!(
        matches!(err, InferenceError::InvalidConfig { name: "rounds", .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("rounds = 3") && err.to_string().contains("snpe"),
        "{err}"
    );
    assert_eq!(sim.count(), 0);
}

#[test]
fn observation_of_the_wrong_dimension() {
    let sim = Counting::new();
    let err = inference("npe", 1, 100)
        .observation(&[0.0; 3])
        .run(&sim)
        .unwrap_err();
    assert!(
        matches!(
            err,
            InferenceError::DimensionMismatch {
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("expected 2, found 3"), "{err}");
    assert_eq!(sim.count(), 0);
}

#[test]
fn simulator_of_another_theta_dimension_than_the_prior() {
    let sim = FnSimulator::new(3, 2, |t: &[f64], _: &mut dyn rand::RngCore| t[..2].to_vec());
    let err = Inference::new(prior())
        .method("npe")
        .simulations_per_round(100)
        .run(&sim)
        .unwrap_err();
    assert!(
        matches!(
            err,
            InferenceError::DimensionMismatch {
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("prior"), "{err}");
}

#[test]
fn unknown_method_name() {
    let err = "xpe".parse::<MethodKind>().unwrap_err();
    assert!(
        matches!(err, InferenceError::InvalidConfig { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("xpe") && msg.contains("snpe"), "{msg}");
}

#[test]
fn unknown_estimator_name() {
    let err = "maff".parse::<EstimatorKind>().unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("maff") && msg.contains("maf"), "{msg}");
}

#[test]
fn nan_in_appended_theta() {
    let mut snpe = Snpe::new(prior(), quick(), 1).unwrap();
    let mut theta = DMatrix::from_element(2, 20, 0.5);
    theta[(1, 7)] = f64::NAN;
    let x = DMatrix::from_element(2, 20, 0.5);
    let err = snpe.append_prior_simulations(theta, x).unwrap_err();
    assert!(
        matches!(
            err,
            InferenceError::Training(SnpeError::NonFiniteData { what: "θ", row: 7 })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("θ") && err.to_string().contains('7'));
    assert!(snpe.rounds().is_empty(), "nothing was appended");
}

#[test]
fn mismatched_theta_and_x_counts_when_appending() {
    let mut snpe = Snpe::new(prior(), quick(), 1).unwrap();
    let err = snpe
        .append_prior_simulations(DMatrix::zeros(2, 20), DMatrix::zeros(2, 19))
        .unwrap_err();
    assert!(
        matches!(
            err,
            InferenceError::DimensionMismatch {
                expected: 20,
                found: 19,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("expected 20, found 19"), "{err}");
    assert!(snpe.rounds().is_empty());
}

#[test]
fn x_of_another_dimension_than_the_rounds_before() {
    let mut snpe = Snpe::new(prior(), quick(), 1).unwrap();
    snpe.append_prior_simulations(DMatrix::zeros(2, 20), DMatrix::zeros(2, 20))
        .unwrap();
    let err = snpe
        .append_prior_simulations(DMatrix::zeros(2, 20), DMatrix::zeros(4, 20))
        .unwrap_err();
    assert!(
        matches!(
            err,
            InferenceError::DimensionMismatch {
                expected: 2,
                found: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(snpe.rounds().len(), 1, "the first round is kept");
}

#[test]
fn theta_of_another_dimension_than_the_prior_when_appending() {
    let mut snpe = Snpe::new(prior(), quick(), 1).unwrap();
    let err = snpe
        .append_prior_simulations(DMatrix::zeros(3, 20), DMatrix::zeros(2, 20))
        .unwrap_err();
    assert!(
        matches!(
            err,
            InferenceError::DimensionMismatch {
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn too_few_appended_simulations_to_train_keeps_them() {
    let mut snpe = Snpe::new(prior(), quick(), 1).unwrap();
    snpe.append_prior_simulations(DMatrix::from_element(2, 1, 0.1), DMatrix::zeros(2, 1))
        .unwrap();
    let err = snpe.train().unwrap_err();
    // One simulation cannot be split into a training and a validation set: 2 can.
    assert!(
        matches!(
            err,
            InferenceError::Training(SnpeError::NotEnoughData {
                found: 1,
                needed: 2,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("1 valid rows, but at least 2"),
        "{err}"
    );
    // The simulations are kept: append more and train.
    assert_eq!(snpe.rounds()[0].theta.ncols(), 1);
    snpe.append_prior_simulations(DMatrix::from_element(2, 99, 0.2), DMatrix::zeros(2, 99))
        .unwrap();
    snpe.train().unwrap();
}

#[test]
fn a_simulator_that_returns_the_wrong_number_of_values() {
    let sim = FnSimulator::new(2, 2, |t: &[f64], _: &mut dyn rand::RngCore| vec![t[0]; 3]);
    let err = inference("npe", 1, 50).run(&sim).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, InferenceError::Simulation(_)), "{err:?}");
    assert!(msg.contains('3') && msg.contains("x_dim = 2"), "{msg}");
}

#[test]
fn sample_without_default_x() {
    let sim = Counting::new();
    let run = Inference::new(prior())
        .method("npe")
        .with_snpe_config(quick())
        .simulations_per_round(100)
        .run(&sim)
        .unwrap();
    let err = run
        .posterior()
        .sample(5, None, &mut simfer_distributions::rng_from_seed(0))
        .unwrap_err();
    assert!(matches!(err, InferenceError::NoObservation), "{err:?}");
    assert!(err.to_string().contains("observation"), "{err}");
}

#[test]
fn sample_at_x_with_nan() {
    let posterior = trained();
    let err = posterior
        .sample(
            5,
            Some(&[0.0, f64::NAN]),
            &mut simfer_distributions::rng_from_seed(0),
        )
        .unwrap_err();
    assert!(
        matches!(err, InferenceError::NonFiniteObservation { index: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn zero_samples() {
    // Zero samples is no error: an empty 2 × 0 matrix.
    let posterior = trained();
    let s = posterior
        .sample(0, None, &mut simfer_distributions::rng_from_seed(0))
        .unwrap();
    assert_eq!(s.shape(), (2, 0));
}

#[test]
fn a_truncated_posterior_file() {
    let dir = scratch("truncated");
    let path = dir.join("posterior.json");
    trained().save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let err = DirectPosterior::<Estimator>::load(&path).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            InferenceError::Format(_) | InferenceError::Corrupted { .. }
        ),
        "{err:?}"
    );
    assert!(msg.contains(path.to_str().unwrap()), "{msg}");
}

#[test]
fn an_estimator_file_loaded_as_a_posterior() {
    let dir = scratch("wrong-kind");
    let path = dir.join("estimator.json");
    let posterior = trained();
    std::fs::write(&path, posterior.estimator().to_json().unwrap()).unwrap();
    let err = DirectPosterior::<Estimator>::load(&path).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(path.to_str().unwrap()) && msg.contains(simfer_inference::POSTERIOR_FORMAT),
        "{msg}"
    );
}

#[test]
fn a_posterior_file_loaded_as_an_estimator() {
    let dir = scratch("wrong-kind-2");
    let path = dir.join("posterior.json");
    trained().save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let err = Estimator::from_json(&text).unwrap_err();
    assert!(err.to_string().contains("expected"), "{err}");
}

#[test]
fn a_missing_estimator_file() {
    let dir = scratch("missing-estimator");
    let path = dir.join("nothing.bin");
    let err = Estimator::load(&path).unwrap_err();
    assert!(matches!(err, FlowError::File { .. }), "{err:?}");
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
}

#[test]
fn a_posterior_saved_where_no_directory_is() {
    let dir = scratch("unwritable");
    let path = dir.join("no-such-dir").join("posterior.json");
    let err = trained().save(&path).unwrap_err();
    assert!(matches!(err, InferenceError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
}

#[test]
fn a_failed_overwrite_of_a_posterior_file() {
    let dir = scratch("failed-overwrite");
    let path = dir.join("posterior.json");
    std::fs::write(&path, "the old posterior").unwrap();
    // The save writes a temporary file beside the target first: where it cannot, the save
    // fails and the file already there is left as it was.
    let tmp = dir.join(format!(".posterior.json.tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let err = trained().save(&path).unwrap_err();
    assert!(matches!(err, InferenceError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "the old posterior");
    // Once it can, the save replaces the file whole.
    std::fs::remove_dir(&tmp).unwrap();
    trained().save(&path).unwrap();
    DirectPosterior::<Estimator>::load(&path).unwrap();
    assert!(!tmp.exists());
}

#[test]
fn prior_bounds_with_low_not_below_high() {
    let err = BoxUniform::new(vec![0.0, 1.0], vec![1.0, 1.0]).unwrap_err();
    assert!(
        matches!(err, DistributionError::InvalidBounds { index: 1, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("expected low < high") && msg.contains("low = 1, high = 1"),
        "{msg}"
    );
}

#[test]
fn prior_bounds_that_are_not_finite() {
    let err = BoxUniform::new(vec![f64::NAN, 0.0], vec![1.0, 1.0]).unwrap_err();
    assert!(
        matches!(err, DistributionError::NonFinite { index: 0, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("NaN"), "{err}");
}

#[test]
fn a_covariance_that_is_not_positive_definite() {
    let cov = DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 2.0, 1.0]);
    let err = MultivariateNormal::new(vec![0.0, 0.0], cov).unwrap_err();
    assert!(
        matches!(err, DistributionError::NotPositiveDefinite { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("positive definite"), "{err}");
}

#[test]
fn a_covariance_of_the_wrong_shape() {
    let err = MultivariateNormal::new(vec![0.0, 0.0], DMatrix::identity(3, 3)).unwrap_err();
    assert!(
        matches!(err, DistributionError::ShapeMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("2×2") && err.to_string().contains("3×3"));
}

#[test]
fn prior_log_prob_of_theta_of_the_wrong_dimension() {
    let p = prior();
    let err = p.log_prob(&[0.0, 0.0, 0.0]).unwrap_err();
    assert!(err.to_string().contains("expected") && err.to_string().contains('3'));
}
