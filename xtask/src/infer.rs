//! The pipeline shared by `run` and `bench`: a task by name, an observation, one NPE/SNPE-C
//! run through `simfer_inference::run_snpe`, posterior samples, and what each round did.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use nalgebra::DMatrix;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use simfer_benchmark::tasks::LinearGaussian;
use simfer_benchmark::{Task, task};
use simfer_distributions::{Prior, derive_rng};
use simfer_flows::{EstimatorKind, Precision};
use simfer_inference::{ProposalSource, SnpeConfig, run_snpe};
use simfer_simulators::{SimulationOptions, Simulator, simulate_batch};

// The random streams that xtask derives from a run's seed with `derive_rng(seed, stream)`,
// far from the streams the inference crate derives from the same seed (below 2⁴⁰).

/// Stream of the seed that simulates x_o from a given θ (`run --theta`).
pub const STREAM_OBSERVATION: u64 = (1 << 40) + 1;
/// Stream of the final posterior samples.
pub const STREAM_SAMPLES: u64 = (1 << 40) + 2;
/// Stream of the seed of the posterior-predictive simulations.
pub const STREAM_PREDICTIVE: u64 = (1 << 40) + 3;
/// Streams `STREAM_ACCEPTANCE + r` of the acceptance-rate estimate of round `r`.
pub const STREAM_ACCEPTANCE: u64 = (1 << 41) + (1 << 20);

/// Accepted samples behind the acceptance rate of each round but the last (enough for a
/// diagnostic: the standard error of a rate p is about p·√((1 − p)/1000)).
pub const ACCEPTANCE_SAMPLES: usize = 1000;

/// The task called `name`; `dim` sets the dimension of linear_gaussian (other tasks have
/// fixed dimensions and reject it).
///
/// # Errors
/// An unknown name (the message lists the valid ones) or a `dim` that does not apply.
pub fn load_task(name: &str, dim: Option<usize>) -> Result<Box<dyn Task>> {
    match (name, dim) {
        ("linear_gaussian", Some(d)) => Ok(Box::new(LinearGaussian::new(d)?)),
        (_, Some(d)) => bail!(
            "--dim applies to linear_gaussian only; {name} has a fixed dimension (found --dim {d})"
        ),
        _ => Ok(task(name)?),
    }
}

/// Simulates x_o from a true θ: one simulation through the seeded runner with `seed`.
///
/// # Errors
/// θ of the wrong length or outside the prior's support, a simulator error, or a
/// simulation with NaN/±∞ (the message suggests another seed).
pub fn simulate_observation(task: &dyn Task, theta: &[f64], seed: u64) -> Result<Vec<f64>> {
    let prior = task.prior();
    ensure!(
        theta.len() == prior.dim(),
        "θ of {}: expected {} values, found {}",
        task.name(),
        prior.dim(),
        theta.len()
    );
    ensure!(
        prior.in_support(theta),
        "θ = {theta:?} is outside the support of the prior of {}",
        task.name()
    );
    let simulator = task.simulator();
    let options = SimulationOptions::with_seed(seed).with_progress(false);
    let sims = simulate_batch(
        simulator.as_ref(),
        &DMatrix::from_column_slice(theta.len(), 1, theta),
        &options,
    )?;
    let x: Vec<f64> = sims.x.column(0).iter().copied().collect();
    ensure!(
        x.iter().all(|v| v.is_finite()),
        "the simulation of {} at θ = {theta:?} is not finite ({x:?}); try another seed",
        task.name()
    );
    Ok(x)
}

/// Settings of one inference run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InferenceSettings {
    /// Rounds (1: NPE; more: SNPE-C).
    pub rounds: usize,
    /// Simulations per round.
    pub simulations_per_round: usize,
    /// Seed of the run.
    pub seed: u64,
    /// Posterior samples drawn at the end.
    pub samples: usize,
    /// Cap on the epochs per round (`None`: early stopping alone).
    pub max_epochs: Option<usize>,
    /// The density estimator (with the reference's settings of its kind).
    #[serde(default = "default_estimator")]
    pub estimator: EstimatorKind,
    /// Precision of the estimator's training passes.
    pub precision: Precision,
    /// Progress bars.
    pub progress: bool,
}

/// The estimator of reports written before the estimator was a setting.
fn default_estimator() -> EstimatorKind {
    EstimatorKind::Maf
}

/// What one round did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundSummary {
    /// The round (0-based).
    pub round: usize,
    /// `prior`, or `posterior after round k`.
    pub proposal: String,
    /// Simulations run.
    pub simulations: usize,
    /// Simulations with a NaN (excluded).
    pub invalid_nan: usize,
    /// Simulations with ±∞ and no NaN (excluded).
    pub invalid_inf: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// The epoch whose weights were kept (1-based).
    pub best_epoch: usize,
    /// The best validation loss.
    pub best_validation_loss: f64,
    /// Why training stopped.
    pub stop_reason: String,
    /// Estimated mass of this round's posterior inside the prior's support: the acceptance
    /// rate of its rejection sampling, from [`ACCEPTANCE_SAMPLES`] accepted samples (for the
    /// last round, from the final samples), or `None` if the sampling budget ran out.
    pub acceptance_rate: Option<f64>,
    /// Seconds proposing and simulating.
    pub seconds_simulate: f64,
    /// Seconds training.
    pub seconds_train: f64,
}

/// Seconds per phase of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseSeconds {
    /// Proposing and simulating, all rounds.
    pub simulate: f64,
    /// Training, all rounds.
    pub train: f64,
    /// Drawing the final posterior samples.
    pub sample: f64,
    /// simulate + train + sample: the time of the inference itself.
    pub inference: f64,
    /// Estimating each round's acceptance rate (diagnostics, not part of the inference).
    pub acceptance: f64,
}

/// The result of [`infer`].
#[derive(Clone, Debug)]
pub struct InferenceOutcome {
    /// Posterior samples, `theta_dim × samples`.
    pub samples: DMatrix<f64>,
    /// One summary per round.
    pub rounds: Vec<RoundSummary>,
    /// Acceptance rate of drawing the final samples (rejection to the prior's support).
    pub acceptance_rate: f64,
    /// Seconds per phase.
    pub seconds: PhaseSeconds,
}

/// Runs NPE or SNPE-C on `task` at `x_o` with `simfer_inference::run_snpe`, the estimator
/// of `settings.estimator` with the reference's settings of its kind and the reference's
/// training settings (training passes in `settings.precision`), then
/// draws the posterior samples with the generator `derive_rng(seed, STREAM_SAMPLES)`.
///
/// # Errors
/// Bad settings, an observation of the wrong length, and anything the inference reports
/// (all-invalid simulations, a spent rejection budget, ...).
pub fn infer(
    task: &dyn Task,
    x_o: &[f64],
    settings: &InferenceSettings,
) -> Result<InferenceOutcome> {
    let prior: Arc<dyn Prior> = Arc::from(task.prior());
    let simulator: Box<dyn Simulator> = task.simulator();
    let mut config = SnpeConfig {
        estimator: settings.estimator.default_config(),
        progress: settings.progress,
        ..SnpeConfig::default()
    };
    config.training.max_num_epochs = settings.max_epochs;
    config.sampling.progress = settings.progress;
    config.estimator.set_precision(settings.precision);
    let run = run_snpe(
        prior,
        simulator.as_ref(),
        Some(x_o),
        settings.rounds,
        settings.simulations_per_round,
        settings.seed,
        config,
    )
    .with_context(|| format!("inference on {}", task.name()))?;

    let start = Instant::now();
    let mut rng = derive_rng(settings.seed, STREAM_SAMPLES);
    let (samples, stats) = run
        .posterior()
        .sample_with_stats(settings.samples, None, &mut rng)
        .context("sampling the posterior")?;
    let seconds_sample = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let rounds: Vec<RoundSummary> = run
        .rounds
        .iter()
        .zip(&run.posteriors)
        .map(|(r, posterior)| RoundSummary {
            round: r.round,
            proposal: match &r.proposal {
                ProposalSource::Prior => "prior".into(),
                ProposalSource::Posterior {
                    trained_on_round, ..
                } => format!("posterior after round {trained_on_round}"),
            },
            simulations: r.simulations,
            invalid_nan: r.invalid.nan.len(),
            invalid_inf: r.invalid.inf.len(),
            epochs: r.history.epochs_trained,
            best_epoch: r.history.best_epoch,
            best_validation_loss: r.history.best_validation_loss,
            stop_reason: r.history.stop_reason.to_string(),
            acceptance_rate: if r.round + 1 == run.rounds.len() {
                Some(stats.acceptance_rate())
            } else {
                let mut rng = derive_rng(settings.seed, STREAM_ACCEPTANCE + r.round as u64);
                posterior
                    .sample_with_stats(ACCEPTANCE_SAMPLES, None, &mut rng)
                    .ok()
                    .map(|(_, stats)| stats.acceptance_rate())
            },
            seconds_simulate: r.seconds_simulate,
            seconds_train: r.seconds_train,
        })
        .collect();
    let seconds_acceptance = start.elapsed().as_secs_f64();

    let simulate: f64 = rounds.iter().map(|r| r.seconds_simulate).sum();
    let train: f64 = rounds.iter().map(|r| r.seconds_train).sum();
    Ok(InferenceOutcome {
        samples,
        rounds,
        acceptance_rate: stats.acceptance_rate(),
        seconds: PhaseSeconds {
            simulate,
            train,
            sample: seconds_sample,
            inference: simulate + train + seconds_sample,
            acceptance: seconds_acceptance,
        },
    })
}

/// Per-dimension mean and unbiased standard deviation of samples (`D × n`).
pub fn mean_std(samples: &DMatrix<f64>) -> (Vec<f64>, Vec<f64>) {
    let n = samples.ncols() as f64;
    samples
        .row_iter()
        .map(|row| {
            let mean = row.mean();
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
            (mean, var.sqrt())
        })
        .unzip()
}

/// A `u64` seed drawn from stream `stream` of `seed`.
pub fn derived_seed(seed: u64, stream: u64) -> u64 {
    derive_rng(seed, stream).next_u64()
}
