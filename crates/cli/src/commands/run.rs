//! `simfer run` and `simfer resume`: a durable run from a config, or continued from its run
//! directory, to its samples, summary and plots, or (`--no-simulate`) to the first round
//! that needs simulations.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use simfer_inference::{Inference, InferenceRun, SamplingOptions};
use simfer_simulators::Simulator;

use crate::config::{RunConfig, Settings};
use crate::log::FileLog;
use crate::outputs::{RoundSummary, mean_std, summarize, write_json, write_results};
use crate::rundir::RunDir;
use crate::simulator::{Refusing, x_dim};
use crate::{CliError, Result};

/// How `run` and `resume` go about it.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Stop (cleanly) where a round needs simulations, with its θ's saved.
    pub no_simulate: bool,
    /// Progress bars (only on a terminal).
    pub progress: bool,
}

/// A simulation the simulator failed to produce.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedSimulation {
    /// The round.
    pub round: usize,
    /// The simulation's index in the round.
    pub simulation: usize,
    /// Why.
    pub reason: String,
}

/// The observation and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservationSummary {
    /// `values`, or `file PATH`.
    pub source: String,
    /// The observation.
    pub x_o: Vec<f64>,
}

/// Seconds per phase of a run (this process's part of it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSeconds {
    /// The inference phases.
    #[serde(flatten)]
    pub inference: crate::outputs::PhaseSeconds,
    /// Writing samples.csv and the plots.
    pub write: f64,
    /// The whole command.
    pub total: f64,
}

/// The contents of summary.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The simulator (a task's name or the command line).
    pub simulator: String,
    /// The settings.
    pub settings: Settings,
    /// Threads of the rayon pool (the results do not depend on it).
    pub threads: usize,
    /// The observation.
    pub observation: ObservationSummary,
    /// What each round did.
    pub rounds: Vec<RoundSummary>,
    /// Acceptance rate of drawing the final samples (rejection to the prior's support).
    pub acceptance_rate: f64,
    /// Invalid simulations over all rounds (NaN or ±∞; the failed ones included).
    pub invalid: usize,
    /// Simulations the simulator failed to produce, over all rounds.
    pub failed: usize,
    /// The first failed simulations (at most 20), with their reasons.
    pub failures: Vec<FailedSimulation>,
    /// Posterior mean per dimension.
    pub posterior_mean: Vec<f64>,
    /// Posterior standard deviation per dimension.
    pub posterior_std: Vec<f64>,
    /// Seconds per phase.
    pub seconds: RunSeconds,
}

/// A round waiting for simulations (`--no-simulate`).
#[derive(Clone, Debug, PartialEq)]
pub struct Waiting {
    /// The run directory.
    pub dir: PathBuf,
    /// The round.
    pub round: usize,
    /// Simulations the round needs.
    pub total: usize,
    /// Those the log holds.
    pub have: usize,
    /// The round's θ's as CSV and as `.npy` (one θ per row).
    pub theta_files: Vec<PathBuf>,
}

/// How a run ended.
#[derive(Clone, Debug)]
pub enum RunOutcome {
    /// It finished: samples, summary and plots are written.
    Finished(Box<RunSummary>),
    /// It stopped where a round needs simulations.
    Waiting(Waiting),
}

/// Starts a run of the config at `config_path` in its output directory (`out` instead, if
/// given), simulating with `simulator` (`None`: the config's own simulator).
///
/// # Errors
/// A config with mistakes, an output directory that holds a run already, and everything
/// the run reports.
pub fn run(
    config_path: &Path,
    out: Option<&Path>,
    options: &RunOptions,
    simulator: Option<&dyn Simulator>,
) -> Result<RunOutcome> {
    let text = std::fs::read_to_string(config_path).map_err(|e| CliError::io(config_path, e))?;
    let mut config = RunConfig::load(config_path)?;
    if let Some(out) = out {
        config.output = out.to_path_buf();
    }
    // Settings that cannot run are refused before the run directory is made.
    inference(&config, false)?.check()?;
    let dir = RunDir::at(&config.output);
    dir.create(&config, &text)?;
    execute(&dir, &config, options, simulator)
}

/// Continues the run in `dir` (which must have been started with the same settings).
///
/// # Errors
/// No run in `dir`, a changed config, corrupted files, and everything the run reports.
pub fn resume(
    dir: &Path,
    options: &RunOptions,
    simulator: Option<&dyn Simulator>,
) -> Result<RunOutcome> {
    let dir = RunDir::at(dir);
    let (config, _) = dir.config()?;
    execute(&dir, &config, options, simulator)
}

/// The inference of a config (every setting but the simulator).
///
/// # Errors
/// A prior that cannot be built.
pub fn inference(config: &RunConfig, progress: bool) -> Result<Inference> {
    let mut inference = Inference::new(config.build_prior()?)
        .method(config.method)
        .rounds(config.rounds)
        .simulations_per_round(config.simulations_per_round)
        .observation(&config.x_o)
        .seed(config.seed)
        .training(config.training.clone())
        .mcmc(config.mcmc.clone())
        .invalid(config.invalid)
        .sampling(SamplingOptions {
            progress,
            ..SamplingOptions::default()
        })
        .progress(progress);
    if let Some(e) = config.estimator {
        inference = inference.estimator(e);
    }
    if let Some(p) = config.precision {
        inference = inference.precision(p);
    }
    Ok(inference)
}

/// Runs (or restores) every round of the run in `dir` from its log; with `refuse`, with a
/// simulator that simulates nothing, so that the run stops at the first round that needs
/// simulations (`Ok(None)`).
///
/// # Errors
/// Everything the run reports.
pub fn restore(
    config: &RunConfig,
    log: &FileLog,
    simulator: Option<&dyn Simulator>,
    progress: bool,
) -> Result<Option<InferenceRun>> {
    let inference = inference(config, progress)?;
    match simulator {
        Some(sim) => Ok(Some(inference.run_logged(sim, log)?)),
        None => {
            let refusing = Refusing::new(config.parameters.len(), x_dim(config)?);
            match inference.run_logged(&refusing, log) {
                Ok(run) => Ok(Some(run)),
                Err(_) if refusing.was_asked() => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
    }
}

fn execute(
    dir: &RunDir,
    config: &RunConfig,
    options: &RunOptions,
    simulator: Option<&dyn Simulator>,
) -> Result<RunOutcome> {
    let start = Instant::now();
    let (log, _lock) = dir.open_log()?;
    let own;
    let simulator = match (options.no_simulate, simulator) {
        (true, _) => None,
        (false, Some(s)) => Some(s),
        (false, None) => {
            own = crate::simulator::build_simulator(config)?;
            Some(own.as_ref())
        }
    };
    let Some(run) = restore(config, &log, simulator, options.progress)? else {
        return Ok(RunOutcome::Waiting(waiting(dir, config, &log)?));
    };
    let mut outcome = summarize(&run, config.seed, config.samples)?;
    let mut failures = Vec::new();
    let mut failed_total = 0;
    for r in &mut outcome.rounds {
        let kept = log.round_simulations(r.round);
        r.failed = kept.failed.len();
        failed_total += r.failed;
        for (i, why) in kept.failed {
            if failures.len() < 20 {
                failures.push(FailedSimulation {
                    round: r.round,
                    simulation: i,
                    reason: why,
                });
            }
        }
    }
    let title = config.title();
    let seconds_write = write_results(
        dir.path(),
        &outcome,
        Some(&config.parameters),
        &config.parameters,
        None,
        &title,
    )?;
    let (posterior_mean, posterior_std) = mean_std(&outcome.samples);
    let summary = RunSummary {
        simulator: config.simulator_label(),
        settings: config.settings(),
        threads: rayon::current_num_threads(),
        observation: ObservationSummary {
            source: config.observation_source.clone(),
            x_o: config.x_o.clone(),
        },
        invalid: outcome
            .rounds
            .iter()
            .map(|r| r.invalid_nan + r.invalid_inf)
            .sum(),
        failed: failed_total,
        failures,
        rounds: outcome.rounds,
        acceptance_rate: outcome.acceptance_rate,
        posterior_mean,
        posterior_std,
        seconds: RunSeconds {
            inference: outcome.seconds,
            write: seconds_write,
            total: start.elapsed().as_secs_f64(),
        },
    };
    write_json(&dir.file("summary.json"), &summary)?;
    Ok(RunOutcome::Finished(Box::new(summary)))
}

/// The round the run waits for, with its θ's written to `DIR/pending/` for simulating
/// elsewhere.
fn waiting(dir: &RunDir, config: &RunConfig, log: &FileLog) -> Result<Waiting> {
    let current = dir.current_round()?;
    let have = log.round_simulations(current.round).x.len();
    let theta = &current.proposal.theta;
    let pending = dir.pending_dir();
    std::fs::create_dir_all(&pending).map_err(|e| CliError::io(&pending, e))?;
    let csv = pending.join(format!("round-{:03}-theta.csv", current.round));
    simfer_analysis::write_samples_csv(&csv, theta, Some(&config.parameters))?;
    let npy = pending.join(format!("round-{:03}-theta.npy", current.round));
    crate::data::write_npy(&npy, theta)?;
    Ok(Waiting {
        dir: dir.path().to_path_buf(),
        round: current.round,
        total: theta.ncols(),
        have,
        theta_files: vec![csv, npy],
    })
}

/// The instructions printed when a run waits for simulations.
pub fn waiting_message(w: &Waiting) -> String {
    let dir = w.dir.display();
    format!(
        "round {round} waits for simulations: {have} of {total} are in the log, and its θ's \
         are saved.\n\
         To simulate them in parts (e.g. one per job of an array), run for I = 0 … N−1\n\
         \x20   simfer simulate {dir} --shard I --num-shards N\n\
         and then\n\
         \x20   simfer append {dir} {dir}/shards/round-{round:03}-*.sims\n\
         Or simulate the θ's in {theta} with your own tools and append θ and x as CSV (θ \
         columns, then x columns) or as a pair of .npy files (θ, then x).\n\
         Then continue with\n\
         \x20   simfer resume {dir} [--no-simulate]\n\
         (`simfer resume {dir}` without --no-simulate simulates whatever is missing itself.)",
        round = w.round,
        have = w.have,
        total = w.total,
        theta = w
            .theta_files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" or "),
    )
}

/// The lines printed when a run finished.
pub fn summary_message(s: &RunSummary, dir: &Path) -> String {
    let mut out = format!(
        "{}: {} round(s) × {} simulations of {}, seed {}, x_o = {:?}\n",
        s.settings.method,
        s.settings.rounds,
        s.settings.simulations_per_round,
        s.simulator,
        s.settings.seed,
        s.observation.x_o
    );
    out.push_str(
        "round  proposal                  invalid  failed  epochs  best val. loss  seconds \
         (simulate + train)\n",
    );
    for r in &s.rounds {
        out.push_str(&format!(
            "{:>5}  {:<24}  {:>7}  {:>6}  {:>6}  {:>14.4}  {:.3} + {:.3}\n",
            r.round,
            r.proposal,
            r.invalid_nan + r.invalid_inf,
            r.failed,
            r.epochs,
            r.best_validation_loss,
            r.seconds_simulate,
            r.seconds_train
        ));
    }
    for (name, (m, sd)) in s
        .settings
        .parameters
        .iter()
        .zip(s.posterior_mean.iter().zip(&s.posterior_std))
    {
        out.push_str(&format!("  {name}: mean {m:+.4}  std {sd:.4}\n"));
    }
    out.push_str(&format!(
        "{} samples; wrote samples.csv, summary.json, pairplot.svg, loss.svg to {} ({:.2} s)",
        s.settings.samples,
        dir.display(),
        s.seconds.total
    ));
    out
}
