//! Benchmark suites: every task × budget × rounds × observation is run, scored with C2ST
//! against reference samples (or, without a reference, with the posterior-predictive
//! distance) and timed; `report.json` has every run, `report.md` the summary tables.
//!
//! **Observations.** sbibm's fixed observation files are not available, so observation `k`
//! (1-based) of a task is made here: the generator `derive_rng(OBSERVATION_SEED, 1000·k + a)`
//! draws θ_true from the prior and then the seed of the one simulation that gives x_o
//! (`a` = 0, or the number of earlier attempts whose simulation was not finite). The
//! tutorial entry always uses x_o = 0 (as the tutorial), and its "observations" differ only
//! in the run's seed. θ_true and x_o are recorded in report.json.
//!
//! **Runs.** The run of observation `k` has seed `k`; `budget / rounds` simulations per
//! round; the reference library's default MAF and training settings; `samples` posterior
//! samples from `derive_rng(k, STREAM_SAMPLES)`.
//!
//! **Scores.** Reference samples of observation `k` come from [`reference_samples`] (the
//! task's exact sampler, or MCMC on the exact likelihood with its convergence diagnostics)
//! with the generator `derive_rng(OBSERVATION_SEED, 2⁴⁰ + k)`;
//! C2ST as the benchmark defines it (simfer-analysis' `c2st` with its defaults, seed `k`:
//! the stopping rule ends training, capped at 10,000 epochs as sbibm). Every run also gets the
//! posterior-predictive distance of [`crate::predictive`], the only score of tasks without
//! reference samples.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use nalgebra::DMatrix;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use simfer_analysis::{C2stOptions, c2st_with_details, write_samples_csv};
use simfer_benchmark::Task;
use simfer_distributions::derive_rng;
use simfer_flows::{EstimatorKind, Precision};
use simfer_inference::MethodKind;

use crate::cli::{BenchArgs, SuiteName};
use crate::infer::{
    InferenceSettings, PhaseSeconds, RoundSummary, STREAM_PREDICTIVE, derived_seed, infer,
    load_task, simulate_observation,
};
use crate::predictive::{Predictive, predictive_distance};
use crate::reference::{ReferenceInfo, reference_samples};

/// Seed of the benchmark observations and reference samples.
pub const OBSERVATION_SEED: u64 = 2021;
/// The name of the tutorial entry (linear_gaussian 3-D at x_o = 0, 2 rounds × 500).
pub const TUTORIAL: &str = "tutorial";
/// Attempts at an observation with a finite simulation before giving up.
const OBSERVATION_ATTEMPTS: u64 = 100;

/// A total simulation budget split evenly over a number of rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Total simulations.
    pub budget: usize,
    /// Rounds (1: NPE).
    pub rounds: usize,
}

impl Config {
    /// Simulations per round.
    pub fn simulations_per_round(&self) -> usize {
        self.budget / self.rounds
    }
}

/// One row of a suite: a task and the configurations it runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The row's name: the task's, or [`TUTORIAL`].
    pub name: String,
    /// The task.
    pub task: String,
    /// The budgets and rounds.
    pub configs: Vec<Config>,
}

impl Entry {
    /// Whether this is the tutorial entry (fixed x_o = 0).
    pub fn is_tutorial(&self) -> bool {
        self.name == TUTORIAL
    }
}

/// The entries of a suite, in the order of the published table (the tutorial first).
pub fn suite(name: SuiteName) -> Vec<Entry> {
    let tutorial = Entry {
        name: TUTORIAL.into(),
        task: "linear_gaussian".into(),
        configs: vec![Config {
            budget: 1000,
            rounds: 2,
        }],
    };
    let (tasks, budgets): (Vec<&str>, &[usize]) = match name {
        SuiteName::Quick => (
            vec!["gaussian_linear", "two_moons", "gaussian_mixture"],
            &[1000],
        ),
        SuiteName::Full => (crate::published::tasks().collect(), &[1000, 10_000]),
    };
    let configs: Vec<Config> = budgets
        .iter()
        .flat_map(|&budget| [1, 10].map(|rounds| Config { budget, rounds }))
        .collect();
    std::iter::once(tutorial)
        .chain(tasks.into_iter().map(|t| Entry {
            name: t.into(),
            task: t.into(),
            configs: configs.clone(),
        }))
        .collect()
}

/// Keeps the entries named in `tasks` and the configurations with a budget in `budgets`
/// and rounds in `rounds` (`None`: no restriction); drops entries left without any.
///
/// # Errors
/// A name in `tasks` that is not an entry of the suite; nothing left to run.
pub fn filter(
    entries: Vec<Entry>,
    tasks: Option<&[String]>,
    budgets: Option<&[usize]>,
    rounds: Option<&[usize]>,
) -> Result<Vec<Entry>> {
    if let Some(tasks) = tasks {
        for t in tasks {
            ensure!(
                entries.iter().any(|e| &e.name == t),
                "--tasks: {t:?} is not in this suite (its entries: {})",
                entries
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let kept: Vec<Entry> = entries
        .into_iter()
        .filter(|e| tasks.is_none_or(|t| t.contains(&e.name)))
        .map(|mut e| {
            e.configs.retain(|c| {
                budgets.is_none_or(|b| b.contains(&c.budget))
                    && rounds.is_none_or(|r| r.contains(&c.rounds))
            });
            e
        })
        .filter(|e| !e.configs.is_empty())
        .collect();
    ensure!(
        !kept.is_empty(),
        "nothing to run: no entry of the suite has the requested tasks, budgets and rounds"
    );
    Ok(kept)
}

/// Observation `k` (1-based) of an entry: θ_true (none for the tutorial) and x_o, and the
/// attempts it took (see the module documentation).
///
/// # Errors
/// No finite simulation within 100 attempts.
pub fn observation(
    entry: &Entry,
    task: &dyn Task,
    k: usize,
) -> Result<(Option<Vec<f64>>, Vec<f64>, u64)> {
    if entry.is_tutorial() {
        return Ok((None, vec![0.0; task.x_dim()], 0));
    }
    let prior = task.prior();
    let mut last = None;
    for attempt in 0..OBSERVATION_ATTEMPTS {
        let mut rng = derive_rng(OBSERVATION_SEED, 1000 * k as u64 + attempt);
        let theta: Vec<f64> = prior.sample(&mut rng).iter().copied().collect();
        match simulate_observation(task, &theta, rng.next_u64()) {
            Ok(x) => return Ok((Some(theta), x, attempt)),
            Err(e) => last = Some(e),
        }
    }
    bail!(
        "no finite observation {k} of {} in {OBSERVATION_ATTEMPTS} attempts; last: {}",
        task.name(),
        last.map_or_else(String::new, |e| e.to_string())
    )
}

/// The settings of a suite run, as recorded in report.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchSettings {
    /// Observations (and seeds) per entry.
    pub observations: usize,
    /// Reference and posterior samples per C2ST.
    pub samples: usize,
    /// Posterior samples simulated for the posterior-predictive distance.
    pub predictive_samples: usize,
    /// Cap on the training epochs per round.
    pub max_epochs: Option<usize>,
    /// Precision of the estimators' training passes.
    pub precision: Precision,
    /// Seed of observations and reference samples.
    pub observation_seed: u64,
    /// The C2ST options (the seed is replaced by each run's).
    pub c2st: C2stOptions,
    /// Threads of the rayon pool.
    pub threads: usize,
}

/// One observation of an entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservationRecord {
    /// The entry (row).
    pub entry: String,
    /// The task.
    pub task: String,
    /// Index (1-based).
    pub index: usize,
    /// The true θ (none for the tutorial).
    pub theta_true: Option<Vec<f64>>,
    /// The observation.
    pub x_o: Vec<f64>,
    /// Earlier attempts whose simulation was not finite.
    pub attempts: u64,
    /// Whether reference samples exist for this observation.
    pub reference: bool,
    /// How they were drawn (exact sampler, or MCMC and its diagnostics).
    pub reference_info: Option<ReferenceInfo>,
    /// Why the reference sampler failed, if it did.
    pub reference_error: Option<String>,
    /// Seconds drawing the reference samples.
    pub seconds_reference: f64,
}

/// Seconds of one run: the inference phases and the scoring.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSeconds {
    /// The inference (simulate, train, sample; their sum) and the acceptance diagnostics.
    #[serde(flatten)]
    pub phases: PhaseSeconds,
    /// C2ST.
    pub c2st: f64,
    /// Posterior-predictive distance.
    pub predictive: f64,
}

/// One run of a suite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The entry (row).
    pub entry: String,
    /// The task.
    pub task: String,
    /// The method.
    #[serde(default = "default_method")]
    pub method: MethodKind,
    /// The density estimator (for NRE: none, reported as the default).
    #[serde(default = "default_estimator")]
    pub estimator: EstimatorKind,
    /// Total simulations.
    pub budget: usize,
    /// Rounds.
    pub rounds: usize,
    /// Simulations per round.
    pub simulations_per_round: usize,
    /// Observation index (1-based).
    pub observation: usize,
    /// Seed of the run.
    pub seed: u64,
    /// The C2ST score, where reference samples exist.
    pub c2st: Option<f64>,
    /// Held-out accuracy per C2ST fold.
    pub c2st_folds: Vec<f64>,
    /// Epochs of each C2ST fold's classifier.
    pub c2st_epochs: Vec<usize>,
    /// The posterior-predictive distance.
    pub predictive: Option<Predictive>,
    /// Epochs trained in each round.
    pub epochs: Vec<usize>,
    /// Acceptance rate of drawing the final samples.
    pub acceptance_rate: Option<f64>,
    /// What each round did.
    pub round_details: Vec<RoundSummary>,
    /// Seconds per phase.
    pub seconds: RunSeconds,
    /// Why the run (or its scoring) failed, if it did.
    pub error: Option<String>,
}

/// The estimator of reports written before the estimator was recorded.
fn default_estimator() -> EstimatorKind {
    EstimatorKind::Maf
}

/// The method of reports written before the method was recorded (fixed up by the number
/// of rounds when read).
fn default_method() -> MethodKind {
    MethodKind::Snpe
}

/// The (method, estimator) pairs to run on a configuration of `rounds` rounds: the
/// methods whose kind fits the rounds, each with every estimator (NRE once).
pub fn combinations(
    methods: &[MethodKind],
    estimators: &[EstimatorKind],
    rounds: usize,
) -> Vec<(MethodKind, EstimatorKind)> {
    let mut out = Vec::new();
    for &m in methods {
        if m.is_sequential() != (rounds > 1) {
            continue;
        }
        if m.uses_estimator() {
            out.extend(estimators.iter().map(|&e| (m, e)));
        } else if let Some(&e) = estimators.first() {
            out.push((m, e));
        }
    }
    out
}

impl RunRecord {
    /// The configuration of this run.
    pub fn config(&self) -> Config {
        Config {
            budget: self.budget,
            rounds: self.rounds,
        }
    }
}

/// Everything a suite run produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `quick` or `full` (with any filters applied).
    pub suite: String,
    /// The settings.
    pub settings: BenchSettings,
    /// Every observation.
    pub observations: Vec<ObservationRecord>,
    /// Every run.
    pub runs: Vec<RunRecord>,
    /// Wall-clock seconds of the whole suite so far.
    pub seconds_total: f64,
}

impl Report {
    /// Writes `report.json` and `report.md` into `dir`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = dir.join("report.json");
        std::fs::write(&json, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", json.display()))?;
        let md = dir.join("report.md");
        std::fs::write(&md, crate::report::markdown(self))
            .with_context(|| format!("writing {}", md.display()))?;
        Ok(())
    }
}

/// Runs the suite of `args`, printing one line per run and rewriting report.json and
/// report.md in `args.out` after each.
///
/// # Errors
/// Bad filters, an output directory that cannot be written, an observation that cannot be
/// made. A run that fails is recorded with its error and the suite goes on.
pub fn bench(args: &BenchArgs) -> Result<Report> {
    let entries = filter(
        suite(args.suite),
        args.tasks.as_deref(),
        args.budgets.as_deref(),
        args.rounds.as_deref(),
    )?;
    ensure!(
        args.observations >= 1,
        "--observations: expected at least 1, found 0"
    );
    ensure!(
        args.samples >= 10,
        "--samples: expected at least 10, found {}",
        args.samples
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let samples_dir = args.out.join("samples");
    if args.keep_samples {
        std::fs::create_dir_all(&samples_dir)
            .with_context(|| format!("creating {}", samples_dir.display()))?;
    }
    let filtered = args.tasks.is_some() || args.budgets.is_some() || args.rounds.is_some();
    let mut report = Report {
        suite: format!(
            "{}{}",
            match args.suite {
                SuiteName::Quick => "quick",
                SuiteName::Full => "full",
            },
            if filtered { " (filtered)" } else { "" }
        ),
        settings: BenchSettings {
            observations: args.observations,
            samples: args.samples,
            predictive_samples: args.predictive_samples,
            max_epochs: args.max_epochs,
            precision: args.precision.into(),
            observation_seed: OBSERVATION_SEED,
            c2st: C2stOptions::default(),
            threads: rayon::current_num_threads(),
        },
        observations: Vec::new(),
        runs: Vec::new(),
        seconds_total: 0.0,
    };
    ensure!(
        !args.estimator.is_empty() && !args.method.is_empty(),
        "--method and --estimator: expected at least one each"
    );
    let total: usize = entries
        .iter()
        .flat_map(|e| &e.configs)
        .map(|c| combinations(&args.method, &args.estimator, c.rounds).len())
        .sum::<usize>()
        * args.observations;
    let start = Instant::now();
    println!(
        "{} suite: {total} runs on {} threads; writing {}",
        report.suite,
        report.settings.threads,
        args.out.display()
    );
    for entry in &entries {
        let task = load_task(&entry.task, None)?;
        for k in 1..=args.observations {
            let (theta_true, x_o, attempts) = observation(entry, task.as_ref(), k)?;
            let t = Instant::now();
            let mut rng = derive_rng(OBSERVATION_SEED, (1 << 40) + k as u64);
            let reference = reference_samples(task.as_ref(), &x_o, args.samples, &mut rng);
            let seconds_reference = t.elapsed().as_secs_f64();
            let (reference, reference_info, reference_error) = match reference {
                None => (None, None, None),
                Some(Ok((r, info))) => (Some(r), Some(info), None),
                Some(Err(e)) => (None, None, Some(format!("{e:#}"))),
            };
            if let (true, Some(r)) = (args.keep_samples, &reference) {
                let path = samples_dir.join(format!("{}_obs{k}_reference.csv", entry.name));
                write_samples_csv(&path, r, None)?;
            }
            report.observations.push(ObservationRecord {
                entry: entry.name.clone(),
                task: entry.task.clone(),
                index: k,
                theta_true: theta_true.clone(),
                x_o: x_o.clone(),
                attempts,
                reference: reference.is_some(),
                reference_info,
                reference_error,
                seconds_reference,
            });
            for (config, (method, estimator)) in entry.configs.iter().flat_map(|c| {
                combinations(&args.method, &args.estimator, c.rounds)
                    .into_iter()
                    .map(move |me| (c, me))
            }) {
                let case = Case {
                    entry,
                    task: task.as_ref(),
                    config: *config,
                    method,
                    estimator,
                    k,
                    theta_true: theta_true.as_deref(),
                    x_o: &x_o,
                    reference: reference.as_ref(),
                };
                let (record, samples) = run_case(&case, args);
                if let (true, Some(s)) = (args.keep_samples, &samples) {
                    let path = samples_dir.join(format!(
                        "{}_{method}_{estimator}_n{}_r{}_obs{k}.csv",
                        entry.name, config.budget, config.rounds
                    ));
                    write_samples_csv(&path, s, None)?;
                }
                println!(
                    "[{}/{total}] {}",
                    report.runs.len() + 1,
                    progress_line(&record)
                );
                report.runs.push(record);
                report.seconds_total = start.elapsed().as_secs_f64();
                report.write(&args.out)?;
            }
        }
    }
    report.seconds_total = start.elapsed().as_secs_f64();
    report.write(&args.out)?;
    Ok(report)
}

/// What one run needs.
struct Case<'a> {
    entry: &'a Entry,
    task: &'a dyn Task,
    config: Config,
    method: MethodKind,
    estimator: EstimatorKind,
    k: usize,
    theta_true: Option<&'a [f64]>,
    x_o: &'a [f64],
    reference: Option<&'a DMatrix<f64>>,
}

/// Runs, scores and times one case; failures are recorded in the record.
fn run_case(case: &Case<'_>, args: &BenchArgs) -> (RunRecord, Option<DMatrix<f64>>) {
    let seed = case.k as u64;
    let settings = InferenceSettings {
        method: case.method,
        rounds: case.config.rounds,
        simulations_per_round: case.config.simulations_per_round(),
        seed,
        samples: args.samples,
        max_epochs: args.max_epochs,
        estimator: case.estimator,
        precision: args.precision.into(),
        progress: false,
    };
    let mut record = RunRecord {
        entry: case.entry.name.clone(),
        task: case.entry.task.clone(),
        method: case.method,
        estimator: case.estimator,
        budget: case.config.budget,
        rounds: case.config.rounds,
        simulations_per_round: settings.simulations_per_round,
        observation: case.k,
        seed,
        c2st: None,
        c2st_folds: Vec::new(),
        c2st_epochs: Vec::new(),
        predictive: None,
        epochs: Vec::new(),
        acceptance_rate: None,
        round_details: Vec::new(),
        seconds: RunSeconds::default(),
        error: None,
    };
    let outcome = match infer(case.task, case.x_o, &settings) {
        Ok(o) => o,
        Err(e) => {
            record.error = Some(format!("{e:#}"));
            return (record, None);
        }
    };
    record.epochs = outcome.rounds.iter().map(|r| r.epochs).collect();
    record.acceptance_rate = Some(outcome.acceptance_rate);
    record.round_details = outcome.rounds;
    record.seconds.phases = outcome.seconds;
    let mut errors = Vec::new();
    if let Some(reference) = case.reference {
        let t = Instant::now();
        let options = C2stOptions {
            seed,
            ..C2stOptions::default()
        };
        match c2st_with_details(reference, &outcome.samples, &options) {
            Ok(r) => {
                record.c2st = Some(r.accuracy);
                record.c2st_folds = r.fold_accuracies;
                record.c2st_epochs = r.epochs;
            }
            Err(e) => errors.push(format!("C2ST: {e}")),
        }
        record.seconds.c2st = t.elapsed().as_secs_f64();
    }
    let t = Instant::now();
    match predictive_distance(
        case.task,
        &outcome.samples,
        case.x_o,
        case.theta_true,
        args.predictive_samples,
        derived_seed(seed, STREAM_PREDICTIVE),
    ) {
        Ok(p) => record.predictive = Some(p),
        Err(e) => errors.push(format!("posterior-predictive distance: {e:#}")),
    }
    record.seconds.predictive = t.elapsed().as_secs_f64();
    if !errors.is_empty() {
        record.error = Some(errors.join("; "));
    }
    (record, Some(outcome.samples))
}

/// The line printed for a run.
pub fn progress_line(r: &RunRecord) -> String {
    let head = format!(
        "{:<23} {:<5} {:<3} {:>6} sims  R={:<2}  obs {}",
        r.entry, r.method, r.estimator, r.budget, r.rounds, r.observation
    );
    if r.round_details.is_empty() {
        return format!(
            "{head}  FAILED: {}",
            r.error.as_deref().unwrap_or("unknown")
        );
    }
    let score = match (r.c2st, &r.predictive) {
        (Some(c), _) => format!("C2ST {c:.3}"),
        (None, Some(p)) => format!("pred. dist. {:.2}", p.median_distance),
        (None, None) => "no score".into(),
    };
    let s = &r.seconds;
    let mut line = format!(
        "{head}  {score}  {:.1} s (sim {:.1} + train {:.1} + sample {:.1}; c2st {:.1} s)",
        s.phases.inference, s.phases.simulate, s.phases.train, s.phases.sample, s.c2st
    );
    if let Some(e) = &r.error {
        line.push_str(&format!("  [{e}]"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_have_the_documented_runs() {
        let quick = suite(SuiteName::Quick);
        let names: Vec<&str> = quick.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "tutorial",
                "gaussian_linear",
                "two_moons",
                "gaussian_mixture"
            ]
        );
        assert_eq!(
            quick[0].configs,
            [Config {
                budget: 1000,
                rounds: 2
            }]
        );
        assert_eq!(quick[0].configs[0].simulations_per_round(), 500);
        for e in &quick[1..] {
            assert_eq!(
                e.configs,
                [
                    Config {
                        budget: 1000,
                        rounds: 1
                    },
                    Config {
                        budget: 1000,
                        rounds: 10
                    }
                ]
            );
        }
        let full = suite(SuiteName::Full);
        assert_eq!(full.len(), 11);
        for e in &full[1..] {
            assert_eq!(e.configs.len(), 4, "{e:?}");
            assert!(e.configs.iter().all(|c| c.budget % c.rounds == 0));
        }
    }

    #[test]
    fn filters_select_and_reject() {
        let only = filter(
            suite(SuiteName::Full),
            Some(&["slcp".to_string(), "sir".to_string()]),
            Some(&[1000]),
            Some(&[10]),
        )
        .unwrap();
        assert_eq!(only.len(), 2);
        assert!(only.iter().all(|e| e.configs
            == [Config {
                budget: 1000,
                rounds: 10
            }]));
        // The tutorial has 2 rounds: asking for 1 and 10 rounds leaves it out.
        let no_tutorial = filter(suite(SuiteName::Quick), None, None, Some(&[1, 10])).unwrap();
        assert!(no_tutorial.iter().all(|e| !e.is_tutorial()));
        let e = filter(
            suite(SuiteName::Quick),
            Some(&["slcp".to_string()]),
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not in this suite"), "{e}");
        assert!(filter(suite(SuiteName::Quick), None, Some(&[7]), None).is_err());
    }

    #[test]
    fn observations_are_reproducible_and_simulated_from_theta_true() {
        let entries = suite(SuiteName::Full);
        let two_moons = entries.iter().find(|e| e.name == "two_moons").unwrap();
        let task = load_task("two_moons", None).unwrap();
        let (theta, x, attempts) = observation(two_moons, task.as_ref(), 1).unwrap();
        let theta = theta.unwrap();
        assert_eq!(attempts, 0);
        assert_eq!(
            observation(two_moons, task.as_ref(), 1).unwrap(),
            (Some(theta.clone()), x.clone(), 0)
        );
        assert_ne!(observation(two_moons, task.as_ref(), 2).unwrap().1, x);
        // Within the prior box, and x_o is the documented simulation of θ_true.
        assert!(theta.iter().all(|t| (-1.0..=1.0).contains(t)));
        let mut rng = derive_rng(OBSERVATION_SEED, 1000);
        let _ = task.prior().sample(&mut rng);
        assert_eq!(
            simulate_observation(task.as_ref(), &theta, rng.next_u64()).unwrap(),
            x
        );
        // The tutorial: x_o = 0, no θ_true.
        let tutorial = &entries[0];
        let lg = load_task("linear_gaussian", None).unwrap();
        assert_eq!(
            observation(tutorial, lg.as_ref(), 2).unwrap(),
            (None, vec![0.0; 3], 0)
        );
    }
}
