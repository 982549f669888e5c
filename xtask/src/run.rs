//! `cargo xtask run`: NPE or multi-round SNPE-C on any task, with samples.csv,
//! summary.json, pairplot.svg and loss.svg (written by simfer-cli's `outputs`, as `simfer
//! run` writes them).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use simfer_analysis::{C2stOptions, c2st, read_samples_csv};
use simfer_cli::outputs::write_results;
use simfer_distributions::derive_rng;
use simfer_inference::MethodKind;

use crate::cli::RunArgs;
use crate::infer::{
    InferenceSettings, PhaseSeconds, RoundSummary, STREAM_OBSERVATION, derived_seed, infer,
    load_task, mean_std, simulate_observation,
};
use crate::reference::reference_samples;

/// Stream (of the run's seed) of the reference samples for `--c2st`.
const STREAM_REFERENCE: u64 = (1 << 40) + 4;

/// The observation of a run and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservationSummary {
    /// `observation`, `observation-file PATH` or `theta`.
    pub source: String,
    /// The true θ (`--theta` only).
    pub theta_true: Option<Vec<f64>>,
    /// The observation.
    pub x_o: Vec<f64>,
}

/// Seconds per phase of `run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunPhaseSeconds {
    /// The inference phases.
    #[serde(flatten)]
    pub inference: PhaseSeconds,
    /// The optional C2ST (reference sampling included).
    pub c2st: f64,
    /// Writing samples.csv and the plots.
    pub write: f64,
    /// The whole command.
    pub total: f64,
}

/// The contents of summary.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The task.
    pub task: String,
    /// The settings.
    pub settings: InferenceSettings,
    /// Threads of the rayon pool (the results do not depend on it).
    pub threads: usize,
    /// The observation.
    pub observation: ObservationSummary,
    /// What each round did.
    pub rounds: Vec<RoundSummary>,
    /// Acceptance rate of drawing the final samples (rejection to the prior's support).
    pub acceptance_rate: f64,
    /// Invalid simulations over all rounds.
    pub invalid: usize,
    /// Posterior mean per dimension.
    pub posterior_mean: Vec<f64>,
    /// Posterior standard deviation per dimension.
    pub posterior_std: Vec<f64>,
    /// C2ST against the task's reference samples (`--c2st`, where a reference exists).
    pub c2st: Option<f64>,
    /// Seconds per phase.
    pub seconds: RunPhaseSeconds,
}

/// Reads a one-row observation file (with or without a header).
///
/// # Errors
/// An unreadable or malformed file, or more than one row.
pub fn read_observation_file(path: &Path) -> Result<Vec<f64>> {
    let file = read_samples_csv(path)?;
    ensure!(
        file.samples.ncols() == 1,
        "{}: expected one row (the observation), found {}",
        path.display(),
        file.samples.ncols()
    );
    Ok(file.samples.iter().copied().collect())
}

/// Runs `cargo xtask run` and returns what it wrote to summary.json.
///
/// # Errors
/// Bad arguments (unknown task, observation of the wrong length or not finite, θ outside
/// the prior), inference failures, files that cannot be written.
pub fn run(args: &RunArgs) -> Result<RunSummary> {
    let start = Instant::now();
    let task = load_task(&args.task, args.dim)?;
    let obs = &args.observation;
    let observation = match (&obs.observation, &obs.observation_file, &obs.theta) {
        (Some(x), None, None) => ObservationSummary {
            source: "observation".into(),
            theta_true: None,
            x_o: x.0.clone(),
        },
        (None, Some(path), None) => ObservationSummary {
            source: format!("observation-file {}", path.display()),
            theta_true: None,
            x_o: read_observation_file(path)?,
        },
        (None, None, Some(theta)) => ObservationSummary {
            source: "theta".into(),
            theta_true: Some(theta.0.clone()),
            x_o: simulate_observation(
                task.as_ref(),
                &theta.0,
                derived_seed(args.seed, STREAM_OBSERVATION),
            )?,
        },
        _ => bail!("give exactly one of --observation, --observation-file and --theta"),
    };
    ensure!(
        observation.x_o.len() == task.x_dim(),
        "the observation of {}: expected {} values, found {}",
        task.name(),
        task.x_dim(),
        observation.x_o.len()
    );
    ensure!(
        observation.x_o.iter().all(|v| v.is_finite()),
        "the observation must be finite, found {:?}",
        observation.x_o
    );
    ensure!(
        args.samples >= 2,
        "--samples: expected at least 2, found {}",
        args.samples
    );
    let settings = InferenceSettings {
        method: args.method.unwrap_or(crate::infer::method_for_rounds(
            MethodKind::Npe,
            args.rounds,
        )),
        rounds: args.rounds,
        simulations_per_round: args.simulations_per_round,
        seed: args.seed,
        samples: args.samples,
        max_epochs: args.max_epochs,
        estimator: args.estimator,
        precision: args.precision.into(),
        progress: args.progress,
    };
    // Refuse what cannot run, and an output directory that cannot be made, before any
    // simulation or training.
    crate::infer::check_settings(task.as_ref(), &observation.x_o, &settings)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating the output directory {}", args.out.display()))?;
    let outcome = infer(task.as_ref(), &observation.x_o, &settings)?;

    let t = Instant::now();
    let c2st_score = if args.c2st {
        let mut rng = derive_rng(args.seed, STREAM_REFERENCE);
        match reference_samples(task.as_ref(), &observation.x_o, args.samples, &mut rng) {
            None => {
                eprintln!("no reference posterior for {}: C2ST skipped", task.name());
                None
            }
            Some(reference) => {
                let (reference, _) = reference?;
                let options = C2stOptions {
                    seed: args.seed,
                    ..C2stOptions::default()
                };
                Some(c2st(&reference, &outcome.samples, &options)?)
            }
        }
    } else {
        None
    };
    let seconds_c2st = t.elapsed().as_secs_f64();

    let seconds_write = write_results(
        &args.out,
        &outcome,
        None,
        &task.parameter_names(),
        observation.theta_true.as_deref(),
        &format!(
            "{}: {} round(s) × {} simulations, seed {}",
            task.name(),
            args.rounds,
            args.simulations_per_round,
            args.seed
        ),
    )?;

    let (posterior_mean, posterior_std) = mean_std(&outcome.samples);
    let summary = RunSummary {
        task: task.name().into(),
        settings,
        threads: rayon::current_num_threads(),
        observation,
        invalid: outcome
            .rounds
            .iter()
            .map(|r| r.invalid_nan + r.invalid_inf)
            .sum(),
        rounds: outcome.rounds,
        acceptance_rate: outcome.acceptance_rate,
        posterior_mean,
        posterior_std,
        c2st: c2st_score,
        seconds: RunPhaseSeconds {
            inference: outcome.seconds,
            c2st: seconds_c2st,
            write: seconds_write,
            total: start.elapsed().as_secs_f64(),
        },
    };
    let path = args.out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(summary)
}

/// The lines `run` prints.
pub fn print_summary(s: &RunSummary, out: &Path) {
    println!(
        "{}: {} round(s) × {} simulations, seed {}, x_o = {:?}",
        s.task,
        s.settings.rounds,
        s.settings.simulations_per_round,
        s.settings.seed,
        s.observation.x_o
    );
    println!(
        "round  proposal                  invalid  epochs  best val. loss  acceptance  \
         seconds (simulate + train)"
    );
    for r in &s.rounds {
        println!(
            "{:>5}  {:<24}  {:>7}  {:>6}  {:>14.4}  {:>10}  {:.3} + {:.3}",
            r.round,
            r.proposal,
            r.invalid_nan + r.invalid_inf,
            r.epochs,
            r.best_validation_loss,
            r.acceptance_rate
                .map_or("—".to_string(), |a| format!("{a:.3}")),
            r.seconds_simulate,
            r.seconds_train
        );
    }
    for (d, (m, sd)) in s.posterior_mean.iter().zip(&s.posterior_std).enumerate() {
        println!("  theta_{}: mean {m:+.4}  std {sd:.4}", d + 1);
    }
    if let Some(c) = s.c2st {
        println!("C2ST against the reference posterior: {c:.4}");
    }
    println!(
        "{} samples (acceptance rate {:.3}); wrote samples.csv, summary.json, pairplot.svg, loss.svg to {} \
         ({:.2} s in all, {:.2} s inference)",
        s.settings.samples,
        s.acceptance_rate,
        out.display(),
        s.seconds.total,
        s.seconds.inference.inference
    );
}
