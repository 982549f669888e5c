//! One call for a whole run: prior, simulator, observation, rounds → posteriors.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use simfer_distributions::Prior;
use simfer_simulators::Simulator;
use simfer_snpe::TrainingHistory;

use crate::orchestrator::{EstimatorBuilder, InvalidCounts, ProposalSource, Snpe, SnpeConfig};
use crate::{DirectPosterior, InferenceError};

/// What happened in one round of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundReport {
    /// The round (0-based).
    pub round: usize,
    /// Where its θ's came from.
    pub proposal: ProposalSource,
    /// Simulations run.
    pub simulations: usize,
    /// Invalid simulations (excluded).
    pub invalid: InvalidCounts,
    /// The training of this round.
    pub history: TrainingHistory,
    /// Seconds proposing and simulating.
    pub seconds_simulate: f64,
    /// Seconds training.
    pub seconds_train: f64,
}

/// The result of [`run_snpe`]: the posterior after each round and what each round did.
#[derive(Debug, Clone)]
pub struct SnpeRun<E: simfer_flows::ConditionalDensityEstimator> {
    /// The posterior after each round (the last one is the result), with x_o as default x.
    pub posteriors: Vec<DirectPosterior<E>>,
    /// One report per round.
    pub rounds: Vec<RoundReport>,
}

impl<E: simfer_flows::ConditionalDensityEstimator> SnpeRun<E> {
    /// The final posterior.
    pub fn posterior(&self) -> &DirectPosterior<E> {
        self.posteriors
            .last()
            .expect("a run has at least one round")
    }
}

/// Runs NPE (`rounds = 1`) or multi-round SNPE-C: round 0 simulates from the prior, each
/// later round from the previous posterior at `x_o`, and the network is trained after each.
///
/// `x_o` may be `None` only for a single round (amortized NPE). One `seed` reproduces the
/// run exactly, whatever the number of threads.
///
/// ```no_run
/// use std::sync::Arc;
/// use simfer_inference::{SnpeConfig, run_snpe};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let task = simfer_benchmark::task("linear_gaussian")?;
/// let prior: Arc<dyn simfer_distributions::Prior> = Arc::from(task.prior());
/// let run = run_snpe(prior, task.simulator().as_ref(), Some(&[0.0; 3]), 2, 500, 1, SnpeConfig::default())?;
/// let samples = run.posterior().sample(1000, None, &mut simfer_distributions::rng_from_seed(0))?;
/// # Ok(()) }
/// ```
pub fn run_snpe<B: EstimatorBuilder>(
    prior: Arc<dyn Prior>,
    simulator: &dyn Simulator,
    x_o: Option<&[f64]>,
    rounds: usize,
    simulations_per_round: usize,
    seed: u64,
    config: SnpeConfig<B>,
) -> Result<SnpeRun<B::Estimator>, InferenceError> {
    if rounds == 0 {
        return Err(InferenceError::InvalidConfig {
            name: "rounds",
            message: "expected at least 1 round, found 0".into(),
        });
    }
    if simulations_per_round == 0 {
        return Err(InferenceError::InvalidConfig {
            name: "simulations_per_round",
            message: "expected at least 1, found 0".into(),
        });
    }
    if simulator.theta_dim() != prior.dim() {
        return Err(InferenceError::DimensionMismatch {
            what: "the simulator's θ dimension, to match the prior".into(),
            expected: prior.dim(),
            found: simulator.theta_dim(),
        });
    }
    match x_o {
        Some(x) if x.len() != simulator.x_dim() => {
            return Err(InferenceError::DimensionMismatch {
                what: "length of the observation x_o, to match the simulator's output".into(),
                expected: simulator.x_dim(),
                found: x.len(),
            });
        }
        None if rounds > 1 => return Err(InferenceError::NoObservation),
        _ => {}
    }
    let mut snpe = Snpe::new(prior, config, seed)?;
    if let Some(x) = x_o {
        snpe.set_default_x(x)?;
    }
    let mut posteriors = Vec::with_capacity(rounds);
    let mut reports = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let data = snpe.simulate_round(simulator, simulations_per_round)?;
        let (round, proposal, simulations, invalid, seconds_simulate) = (
            data.round,
            data.proposal.clone(),
            data.simulated,
            data.invalid.clone(),
            data.seconds_simulate,
        );
        let start = Instant::now();
        let history = snpe.train()?.clone();
        let seconds_train = start.elapsed().as_secs_f64();
        posteriors.push(snpe.build_posterior()?);
        reports.push(RoundReport {
            round,
            proposal,
            simulations,
            invalid,
            history,
            seconds_simulate,
            seconds_train,
        });
    }
    Ok(SnpeRun {
        posteriors,
        rounds: reports,
    })
}
