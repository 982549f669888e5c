//! Simulations drawn by the caller from the run's posterior, appended with
//! `Sequential::append_posterior_simulations` (the reference's
//! `append_simulations(theta, x, proposal=posterior)`).

use std::sync::Arc;

use nalgebra::DMatrix;
use simfer_distributions::{BoxUniform, Prior, rng_from_seed};
use simfer_flows::MafConfig;
use simfer_inference::{InferenceError, Posterior, ProposalSource, Snpe, SnpeConfig};
use simfer_simulators::{FnSimulator, SimulationOptions, Simulator, simulate_batch};
use simfer_snpe::TrainingConfig;

const X_O: [f64; 2] = [0.2, -0.3];

fn simulator() -> impl Simulator {
    FnSimulator::new(2, 2, |t: &[f64], rng: &mut dyn rand::RngCore| {
        use rand_distr::{Distribution, StandardNormal};
        t.iter()
            .map(|v| v + 0.1 * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng))
            .collect::<Vec<f64>>()
    })
}

fn snpe(seed: u64) -> Snpe {
    let prior: Arc<dyn Prior> = Arc::new(BoxUniform::uniform(2, -1.0, 1.0).unwrap());
    let config = SnpeConfig {
        estimator: MafConfig {
            hidden_features: 16,
            num_transforms: 2,
            ..MafConfig::default()
        }
        .into(),
        training: TrainingConfig {
            max_num_epochs: Some(15),
            ..TrainingConfig::default()
        },
        ..SnpeConfig::default()
    };
    Snpe::new(prior, config, seed).unwrap()
}

fn simulate(theta: &DMatrix<f64>, seed: u64) -> DMatrix<f64> {
    let options = SimulationOptions::with_seed(seed).with_progress(false);
    simulate_batch(&simulator(), theta, &options).unwrap().x
}

/// A run with one round of 300 prior simulations, trained.
fn trained_run(seed: u64) -> Snpe {
    let mut run = snpe(seed);
    let theta = run
        .prior()
        .sample_batch(300, &mut rng_from_seed(seed + 100));
    let x = simulate(&theta, seed + 200);
    run.append_prior_simulations(theta, x).unwrap();
    run.train().unwrap();
    run
}

/// The run's latest posterior at x_o, and 200 θ's drawn from it.
fn draw(run: &Snpe, seed: u64) -> (Box<dyn Posterior>, DMatrix<f64>) {
    let posterior = run.build_posterior().unwrap().with_default_x(&X_O).unwrap();
    let theta = posterior
        .sample(200, None, &mut rng_from_seed(seed))
        .unwrap();
    (Box::new(posterior), theta)
}

#[test]
fn posterior_draws_are_a_later_round_from_that_posterior_and_train_with_the_atomic_loss() {
    let mut run = trained_run(1);
    let (posterior, theta) = draw(&run, 5);
    let x = simulate(&theta, 6);
    let round = run
        .append_posterior_simulations(theta.clone(), x, posterior)
        .unwrap();
    assert_eq!(round.round, 1);
    assert_eq!(
        round.proposal,
        ProposalSource::Posterior {
            trained_on_round: 0,
            x_o: X_O.to_vec()
        }
    );
    assert!(round.proposer.is_some());
    assert_eq!(round.theta, theta);
    let history = run.train().unwrap();
    assert_eq!(history.round, 1);
    assert!(history.loss.contains("atomic"), "loss {}", history.loss);

    // The next round's posterior is the latest again: its draws append as round 2.
    let (posterior, theta) = draw(&run, 7);
    let x = simulate(&theta, 8);
    let round = run
        .append_posterior_simulations(theta, x, posterior)
        .unwrap();
    assert_eq!(round.round, 2);
}

#[test]
fn a_posterior_that_is_not_the_runs_latest_is_refused() {
    let mut run = trained_run(2);
    let (old, old_theta) = draw(&run, 5);
    let x = simulate(&old_theta, 6);
    run.append_posterior_simulations(old_theta.clone(), x.clone(), old.clone())
        .unwrap();
    run.train().unwrap();

    // The round-0 posterior is no longer the latest.
    let err = run
        .append_posterior_simulations(old_theta.clone(), x.clone(), old)
        .unwrap_err();
    assert!(matches!(err, InferenceError::OutOfOrder(_)), "{err}");
    assert!(err.to_string().contains("not this run's latest"), "{err}");

    // Nor is another run's posterior, trained on other data.
    let other = trained_run(3);
    let (foreign, theta) = draw(&other, 5);
    let x = simulate(&theta, 6);
    let err = run
        .append_posterior_simulations(theta, x, foreign)
        .unwrap_err();
    assert!(err.to_string().contains("not this run's latest"), "{err}");
    assert_eq!(run.rounds().len(), 2);
}

#[test]
fn user_errors_are_reported() {
    // Before any training there is no posterior to draw from.
    let mut fresh = snpe(4);
    let run = trained_run(4);
    let (posterior, theta) = draw(&run, 5);
    let x = simulate(&theta, 6);
    let err = fresh
        .append_posterior_simulations(theta.clone(), x.clone(), posterior.clone())
        .unwrap_err();
    assert!(matches!(err, InferenceError::OutOfOrder(_)), "{err}");

    // A posterior without a default x does not say which observation it proposed for.
    let mut run = run;
    let bare: Box<dyn Posterior> = Box::new(run.build_posterior().unwrap());
    let err = run
        .append_posterior_simulations(theta.clone(), x.clone(), bare)
        .unwrap_err();
    assert!(matches!(err, InferenceError::NoObservation), "{err}");

    // θ of the wrong dimension, and x of the wrong number of simulations.
    let err = run
        .append_posterior_simulations(DMatrix::zeros(3, 200), x.clone(), posterior.clone())
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
        "{err}"
    );
    let err = run
        .append_posterior_simulations(theta, x.columns(0, 10).into_owned(), posterior)
        .unwrap_err();
    assert!(
        matches!(
            err,
            InferenceError::DimensionMismatch {
                expected: 200,
                found: 10,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(run.rounds().len(), 1);
}
