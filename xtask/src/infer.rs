//! The pipeline shared by `run` and `bench`: a task by name, an observation, one run of any
//! method through `simfer_inference::Inference`, posterior samples, and what each round did.

use anyhow::{Context, Result, bail, ensure};
use nalgebra::DMatrix;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use simfer_benchmark::tasks::LinearGaussian;
use simfer_benchmark::{Task, task};
use simfer_distributions::{Prior, derive_rng};
use simfer_flows::{EstimatorKind, Precision};
use simfer_inference::{Inference, MethodKind};
use simfer_simulators::{SimulationOptions, Simulator, simulate_batch};

// The random streams that xtask derives from a run's seed with `derive_rng(seed, stream)`,
// far from the streams the inference crate derives from the same seed (below 2⁴⁰).

/// Stream of the seed that simulates x_o from a given θ (`run --theta`).
pub const STREAM_OBSERVATION: u64 = (1 << 40) + 1;
pub use simfer_cli::outputs::{
    ACCEPTANCE_SAMPLES, ChainSummary, InferenceOutcome, PhaseSeconds, RoundSummary,
    STREAM_ACCEPTANCE, STREAM_SAMPLES, mean_std,
};

/// Stream of the seed of the posterior-predictive simulations.
pub const STREAM_PREDICTIVE: u64 = (1 << 40) + 3;

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
    let run = inference_of(task, x_o, settings)
        .run(simulator.as_ref())
        .with_context(|| format!("{} on {}", settings.method, task.name()))?;

    Ok(simfer_cli::outputs::summarize(
        &run,
        settings.seed,
        settings.samples,
    )?)
}

/// Checks the settings of [`infer`] that need no simulation (the rounds, the simulations
/// per round against what training needs), so that they are refused before anything runs.
///
/// # Errors
/// The setting that is wrong, with what was expected and what was found.
pub fn check_settings(task: &dyn Task, x_o: &[f64], settings: &InferenceSettings) -> Result<()> {
    inference_of(task, x_o, settings)
        .check()
        .with_context(|| format!("{} on {}", settings.method, task.name()))
}

/// The inference [`infer`] runs.
fn inference_of(task: &dyn Task, x_o: &[f64], settings: &InferenceSettings) -> Inference {
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
    inference
}

/// A `u64` seed drawn from stream `stream` of `seed`.
pub fn derived_seed(seed: u64, stream: u64) -> u64 {
    derive_rng(seed, stream).next_u64()
}
