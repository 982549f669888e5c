//! The pipeline shared by `run` and `bench`: a task by name, an observation, one run of any
//! method through `simfer_inference::Inference`, posterior samples, and what each round did.

use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use nalgebra::DMatrix;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use simfer_benchmark::tasks::LinearGaussian;
use simfer_benchmark::{Task, task};
use simfer_distributions::{Prior, derive_rng};
use simfer_flows::{EstimatorKind, Precision};
use simfer_inference::{DirectPosterior, Inference, MethodKind, Posterior};
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
    /// The method.
    #[serde(default = "default_method")]
    pub method: MethodKind,
    /// Rounds (1 for npe, nle, nre; more for the sequential methods).
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

/// The method of reports written before the method was a setting (NPE or SNPE-C by the
/// number of rounds; the round count is checked against it).
fn default_method() -> MethodKind {
    MethodKind::Snpe
}

/// The method of `rounds` rounds of `family` (`npe`, `nle`, `nre`, or their sequential
/// variants): the one-round name for one round, the sequential one otherwise (TSNPE is
/// sequential in any case).
pub fn method_for_rounds(family: MethodKind, rounds: usize) -> MethodKind {
    match (family, rounds > 1) {
        (MethodKind::Npe | MethodKind::Snpe, false) => MethodKind::Npe,
        (MethodKind::Npe | MethodKind::Snpe, true) => MethodKind::Snpe,
        (MethodKind::Nle | MethodKind::Snle, false) => MethodKind::Nle,
        (MethodKind::Nle | MethodKind::Snle, true) => MethodKind::Snle,
        (MethodKind::Nre | MethodKind::Snre, false) => MethodKind::Nre,
        (MethodKind::Nre | MethodKind::Snre, true) => MethodKind::Snre,
        (MethodKind::Tsnpe, _) => MethodKind::Tsnpe,
    }
}

/// The convergence diagnostics of an MCMC posterior's samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChainSummary {
    /// Chains.
    pub chains: usize,
    /// Draws kept per chain.
    pub draws_per_chain: usize,
    /// The largest rank-normalized split-R̂ over the coordinates.
    pub max_rhat: f64,
    /// The smallest bulk ESS over the coordinates.
    pub min_ess_bulk: f64,
    /// The smallest tail ESS over the coordinates.
    pub min_ess_tail: f64,
    /// Potential evaluations.
    pub evaluations: u64,
}

impl From<&simfer_mcmc::McmcDiagnostics> for ChainSummary {
    fn from(d: &simfer_mcmc::McmcDiagnostics) -> Self {
        ChainSummary {
            chains: d.chains,
            draws_per_chain: d.draws_per_chain,
            max_rhat: d.max_rhat(),
            min_ess_bulk: d.min_ess_bulk(),
            min_ess_tail: d.min_ess_tail(),
            evaluations: d.evaluations,
        }
    }
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
    /// last round, from the final samples), or `None` if the sampling budget ran out or the
    /// posterior is not direct (MCMC posteriors are inside the support by construction).
    pub acceptance_rate: Option<f64>,
    /// The MCMC diagnostics of the last round's final samples (NLE, NRE).
    #[serde(default)]
    pub mcmc: Option<ChainSummary>,
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

/// Runs `settings.method` on `task` at `x_o` with `simfer_inference::Inference`, the
/// estimator of `settings.estimator` with the reference's settings of its kind and the
/// reference's training settings (training passes in `settings.precision`), then draws the
/// posterior samples with the generator `derive_rng(seed, STREAM_SAMPLES)`.
///
/// # Errors
/// Bad settings, an observation of the wrong length, and anything the inference reports
/// (all-invalid simulations, a spent rejection or MCMC budget, ...).
pub fn infer(
    task: &dyn Task,
    x_o: &[f64],
    settings: &InferenceSettings,
) -> Result<InferenceOutcome> {
    let simulator: Box<dyn Simulator> = task.simulator();
    let training = simfer_snpe::TrainingConfig {
        max_num_epochs: settings.max_epochs,
        ..Default::default()
    };
    let mut inference = Inference::new(task.prior())
        .method(settings.method)
        .rounds(settings.rounds)
        .simulations_per_round(settings.simulations_per_round)
        .observation(x_o)
        .seed(settings.seed)
        .training(training)
        .precision(settings.precision)
        .sampling(simfer_inference::SamplingOptions {
            progress: settings.progress,
            ..Default::default()
        })
        .progress(settings.progress);
    if settings.method.uses_estimator() {
        inference = inference.estimator(settings.estimator);
    }
    let run = inference
        .run(simulator.as_ref())
        .with_context(|| format!("{} on {}", settings.method, task.name()))?;

    let start = Instant::now();
    let mut rng = derive_rng(settings.seed, STREAM_SAMPLES);
    let posterior = run.posterior();
    let (samples, final_rate) = match direct(posterior) {
        Some(direct) => {
            let (samples, stats) = direct
                .sample_with_stats(settings.samples, None, &mut rng)
                .context("sampling the posterior")?;
            (samples, Some(stats.acceptance_rate()))
        }
        None => (
            posterior
                .sample(settings.samples, None, &mut rng)
                .context("sampling the posterior")?,
            None,
        ),
    };
    let final_chains = posterior
        .mcmc_diagnostics()
        .as_ref()
        .map(ChainSummary::from);
    let seconds_sample = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let last = run.rounds.len().saturating_sub(1);
    let rounds: Vec<RoundSummary> = run
        .rounds
        .iter()
        .zip(&run.posteriors)
        .map(|(r, posterior)| RoundSummary {
            round: r.round,
            proposal: r.proposal.to_string(),
            simulations: r.simulations,
            invalid_nan: r.invalid.nan.len(),
            invalid_inf: r.invalid.inf.len(),
            epochs: r.history.epochs_trained,
            best_epoch: r.history.best_epoch,
            best_validation_loss: r.history.best_validation_loss,
            stop_reason: r.history.stop_reason.to_string(),
            acceptance_rate: if r.round == last {
                final_rate
            } else {
                let mut rng = derive_rng(settings.seed, STREAM_ACCEPTANCE + r.round as u64);
                direct(posterior.as_ref()).and_then(|d| {
                    d.sample_with_stats(ACCEPTANCE_SAMPLES, None, &mut rng)
                        .ok()
                        .map(|(_, stats)| stats.acceptance_rate())
                })
            },
            mcmc: if r.round == last {
                final_chains.clone()
            } else {
                None
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
        acceptance_rate: final_rate.unwrap_or(1.0),
        seconds: PhaseSeconds {
            simulate,
            train,
            sample: seconds_sample,
            inference: simulate + train + seconds_sample,
            acceptance: seconds_acceptance,
        },
    })
}

/// The posterior as a direct one (NPE family), if it is.
fn direct(posterior: &dyn Posterior) -> Option<&DirectPosterior> {
    posterior.as_any().downcast_ref::<DirectPosterior>()
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
