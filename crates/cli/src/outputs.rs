//! What a finished run writes, shared by `simfer run` and `cargo xtask run`: the final
//! posterior samples (drawn from a stream of the run's seed), what each round did, and the
//! files `samples.csv`, `pairplot.svg` and `loss.svg`.

use std::path::Path;
use std::time::Instant;

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};
use simfer_analysis::{
    LossRound, LossStyle, PairplotOptions, PairplotStyle, pairplot_data, write_loss_curves_svg,
    write_pairplot_svg, write_samples_csv,
};
use simfer_distributions::derive_rng;
use simfer_inference::{DirectPosterior, InferenceRun, Posterior};
use simfer_snpe::TrainingHistory;

use crate::{CliError, Result};

// The random streams that the tools derive from a run's seed with `derive_rng(seed,
// stream)`, far from the streams the inference crate derives from the same seed (below
// 2⁴⁰).

/// Stream of the final posterior samples.
pub const STREAM_SAMPLES: u64 = (1 << 40) + 2;
/// Streams `STREAM_ACCEPTANCE + r` of the acceptance-rate estimate of round `r`.
pub const STREAM_ACCEPTANCE: u64 = (1 << 41) + (1 << 20);
/// Stream of the samples of `simfer sample` (at another observation) without `--seed`.
pub const STREAM_SAMPLE_COMMAND: u64 = (1 << 40) + 5;

/// Accepted samples behind the acceptance rate of each round but the last (enough for a
/// diagnostic: the standard error of a rate p is about p·√((1 − p)/1000)).
pub const ACCEPTANCE_SAMPLES: usize = 1000;

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
    /// Simulations with a NaN (excluded), the failed ones included.
    pub invalid_nan: usize,
    /// Simulations with ±∞ and no NaN (excluded).
    pub invalid_inf: usize,
    /// Simulations the simulator failed to produce (a crashed or hung worker, an answer
    /// that is not one, `error ...`): their x is NaN, so they are among `invalid_nan`.
    #[serde(default)]
    pub failed: usize,
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

/// A finished run's final samples and what each round did.
#[derive(Clone, Debug)]
pub struct InferenceOutcome {
    /// Posterior samples, `theta_dim × samples`.
    pub samples: DMatrix<f64>,
    /// One summary per round.
    pub rounds: Vec<RoundSummary>,
    /// Each round's training history.
    pub histories: Vec<TrainingHistory>,
    /// Acceptance rate of drawing the final samples (rejection to the prior's support).
    pub acceptance_rate: f64,
    /// Seconds per phase.
    pub seconds: PhaseSeconds,
}

/// Draws `n` samples from the run's last posterior at its observation with the generator
/// `derive_rng(seed, STREAM_SAMPLES)`, and summarizes each round (with the acceptance rate
/// of each round's posterior, from `derive_rng(seed, STREAM_ACCEPTANCE + round)`). The same
/// run and seed give the same samples, bit for bit.
///
/// # Errors
/// The posterior cannot be sampled (a spent rejection or MCMC budget).
pub fn summarize(run: &InferenceRun, seed: u64, n: usize) -> Result<InferenceOutcome> {
    let start = Instant::now();
    let mut rng = derive_rng(seed, STREAM_SAMPLES);
    let posterior = run.posterior();
    let (samples, final_rate) = match direct(posterior) {
        Some(direct) => {
            let (samples, stats) = direct.sample_with_stats(n, None, &mut rng)?;
            (samples, Some(stats.acceptance_rate()))
        }
        None => (posterior.sample(n, None, &mut rng)?, None),
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
            failed: 0,
            epochs: r.history.epochs_trained,
            best_epoch: r.history.best_epoch,
            best_validation_loss: r.history.best_validation_loss,
            stop_reason: r.history.stop_reason.to_string(),
            acceptance_rate: if r.round == last {
                final_rate
            } else {
                let mut rng = derive_rng(seed, STREAM_ACCEPTANCE + r.round as u64);
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
        histories: run.rounds.iter().map(|r| r.history.clone()).collect(),
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

/// The pairplot of the samples (with θ_true, if known) as SVG.
///
/// # Errors
/// Samples that cannot be plotted, or a file that cannot be written.
pub fn write_pairplot(
    path: &Path,
    samples: &DMatrix<f64>,
    labels: &[String],
    theta_true: Option<&[f64]>,
    title: &str,
) -> Result<()> {
    let points: Vec<(&str, &[f64])> = theta_true.map(|t| ("θ_true", t)).into_iter().collect();
    let options = PairplotOptions {
        labels: Some(labels.to_vec()),
        ..PairplotOptions::default()
    };
    let data = pairplot_data(&[("posterior", samples)], &points, &options)?;
    let style = PairplotStyle {
        title: Some(title.to_string()),
        ..PairplotStyle::default()
    };
    write_pairplot_svg(path, &data, &style)?;
    Ok(())
}

/// The training and validation loss per epoch, one panel per round, as SVG.
///
/// # Errors
/// No rounds, or a file that cannot be written.
pub fn write_loss_plot(path: &Path, histories: &[TrainingHistory]) -> Result<()> {
    let rounds: Vec<LossRound<'_>> = histories
        .iter()
        .map(|h| LossRound {
            train: &h.train_loss,
            val: &h.validation_loss,
            best_epoch: Some(h.best_epoch),
        })
        .collect();
    write_loss_curves_svg(path, &rounds, &LossStyle::default())?;
    Ok(())
}

/// Writes `samples.csv` (header: `csv_header`, or `theta_1,…` for `None`), `pairplot.svg`
/// (axes labelled `labels`) and `loss.svg` into `dir` (created if missing); returns the
/// seconds it took.
///
/// # Errors
/// Files that cannot be written.
pub fn write_results(
    dir: &Path,
    outcome: &InferenceOutcome,
    csv_header: Option<&[String]>,
    labels: &[String],
    theta_true: Option<&[f64]>,
    title: &str,
) -> Result<f64> {
    let start = Instant::now();
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, e))?;
    write_samples_csv(dir.join("samples.csv"), &outcome.samples, csv_header)?;
    write_pairplot(
        &dir.join("pairplot.svg"),
        &outcome.samples,
        labels,
        theta_true,
        title,
    )?;
    if !outcome.histories.is_empty() {
        write_loss_plot(&dir.join("loss.svg"), &outcome.histories)?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Writes `value` as pretty JSON to `path`.
///
/// # Errors
/// A file that cannot be written.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let json = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::format(path, format!("could not be written as JSON: {e}")))?;
    std::fs::write(path, json).map_err(|e| CliError::io(path, e))
}
