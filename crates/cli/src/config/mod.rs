//! The run config (`simfer run CONFIG.toml`): what it may hold, how a mistake is reported
//! (file, line, column, key, what was expected and found), and the settings it resolves to.
//!
//! Relative paths in a config (the observation file, the output directory, the simulator's
//! working directory) are relative to the config file's directory, and an external
//! simulator runs in that directory unless `dir` says otherwise.

mod locate;
mod prior;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use simfer_distributions::{Prior, PriorSpec};
use simfer_flows::{EstimatorKind, Precision};
use simfer_inference::{InvalidPolicy, MethodKind};
use simfer_mcmc::SliceSettings;
use simfer_snpe::TrainingConfig;
use toml::Spanned;

pub(crate) use self::locate::error_at;
use self::prior::ParamEntry;
use crate::{CliError, Result};

/// A config file as written. Every table refuses keys it does not know.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    method: Option<Spanned<String>>,
    estimator: Option<Spanned<String>>,
    rounds: Option<usize>,
    simulations_per_round: Option<usize>,
    seed: Option<u64>,
    samples: Option<usize>,
    output: Option<String>,
    precision: Option<Spanned<String>>,
    invalid_simulations: Option<Spanned<String>>,
    prior: Option<Spanned<BTreeMap<String, Spanned<ParamEntry>>>>,
    simulator: Spanned<SimulatorSection>,
    observation: Option<Spanned<ObservationSection>>,
    training: Option<TrainingSection>,
    mcmc: Option<McmcSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulatorSection {
    task: Option<String>,
    program: Option<String>,
    args: Option<Vec<String>>,
    x_dim: Option<usize>,
    workers: Option<usize>,
    batch_size: Option<usize>,
    timeout: Option<f64>,
    startup_timeout: Option<f64>,
    max_restarts: Option<usize>,
    env: Option<BTreeMap<String, String>>,
    dir: Option<String>,
    forward_stderr: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObservationSection {
    values: Option<Vec<f64>>,
    file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingSection {
    max_epochs: Option<usize>,
    batch_size: Option<usize>,
    learning_rate: Option<f64>,
    validation_fraction: Option<f64>,
    stop_after_epochs: Option<usize>,
    clip_max_norm: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct McmcSection {
    chains: Option<usize>,
    warmup: Option<usize>,
    thin: Option<usize>,
    tuning: Option<usize>,
    init_width: Option<f64>,
    max_seconds: Option<f64>,
}

/// The simulator of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimulatorConfig {
    /// A built-in benchmark task's simulator, by name.
    Task {
        /// The task (`simfer_benchmark::task_names()`).
        name: String,
    },
    /// A program speaking the batch protocol of `simfer_simulators::external`.
    External(ExternalConfig),
}

/// An external simulator's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExternalConfig {
    /// The program (a path, or a name looked up on `PATH`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The dimension of x.
    pub x_dim: usize,
    /// Environment variables for it, besides those it inherits.
    pub env: BTreeMap<String, String>,
    /// Its working directory (absolute).
    pub dir: PathBuf,
    /// Worker processes.
    pub workers: usize,
    /// θ's per request.
    pub batch_size: usize,
    /// Seconds a worker may take for a request.
    pub timeout: f64,
    /// Extra seconds for a new worker's first request.
    pub startup_timeout: f64,
    /// Worker failures in a row before the run stops.
    pub max_restarts: usize,
    /// Copy the workers' stderr to ours.
    pub forward_stderr: bool,
}

/// A config, checked and resolved: everything a run needs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The config file.
    pub path: PathBuf,
    /// The directory its relative paths start from.
    pub base_dir: PathBuf,
    /// The parameter names, in θ's order.
    pub parameters: Vec<String>,
    /// The prior.
    pub prior: PriorSpec,
    /// The simulator.
    pub simulator: SimulatorConfig,
    /// The observation.
    pub x_o: Vec<f64>,
    /// Where the observation came from (`values`, or `file PATH`).
    pub observation_source: String,
    /// The method.
    pub method: MethodKind,
    /// The density estimator (`None`: the method's default, or NRE's classifier).
    pub estimator: Option<EstimatorKind>,
    /// Rounds.
    pub rounds: usize,
    /// Simulations per round.
    pub simulations_per_round: usize,
    /// The run's seed.
    pub seed: u64,
    /// Posterior samples drawn at the end.
    pub samples: usize,
    /// Precision of the training passes (`None`: the estimator's default).
    pub precision: Option<Precision>,
    /// What to do with invalid simulations.
    pub invalid: InvalidPolicy,
    /// Training settings.
    pub training: TrainingConfig,
    /// NLE's and NRE's MCMC.
    pub mcmc: SliceSettings,
    /// The output (run) directory.
    pub output: PathBuf,
}

/// The settings that decide a run's results, hashed into the run directory: a run is only
/// continued with the same ones. The simulator's workers, batch size and timeouts are not
/// among them (they change no result).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Parameter names.
    pub parameters: Vec<String>,
    /// The prior.
    pub prior: PriorSpec,
    /// The simulator: a task's name, or the program, arguments, x dimension, environment
    /// and working directory.
    pub simulator: serde_json::Value,
    /// The observation.
    pub x_o: Vec<f64>,
    /// The method.
    pub method: MethodKind,
    /// The estimator.
    pub estimator: Option<EstimatorKind>,
    /// Rounds.
    pub rounds: usize,
    /// Simulations per round.
    pub simulations_per_round: usize,
    /// The seed.
    pub seed: u64,
    /// Final posterior samples.
    pub samples: usize,
    /// Training precision.
    pub precision: Option<Precision>,
    /// Invalid simulations.
    pub invalid: InvalidPolicy,
    /// Training.
    pub training: TrainingConfig,
    /// MCMC.
    pub mcmc: SliceSettings,
}

impl RunConfig {
    /// Reads and checks the config file at `path`.
    ///
    /// # Errors
    /// [`CliError::Io`] if it cannot be read; [`CliError::Config`] (file, line, column,
    /// key, what was expected and found) for any mistake in it.
    pub fn load(path: &Path) -> Result<RunConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| CliError::io(path, e))?;
        let base_dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."));
        let base_dir = std::path::absolute(base_dir).map_err(|e| CliError::io(base_dir, e))?;
        Self::parse(&text, path, &base_dir)
    }

    /// Checks config `text` (read from `path`), resolving relative paths against
    /// `base_dir`.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn parse(text: &str, path: &Path, base_dir: &Path) -> Result<RunConfig> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| {
            let message = e.message().to_string();
            error_at(path, text, e.span(), None, message)
        })?;
        let err = |span: Range<usize>, key: &str, message: String| {
            error_at(path, text, Some(span), Some(key), message)
        };
        let resolve = |p: &str| {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base_dir.join(p)
            }
        };

        // The simulator.
        let sim_span = file.simulator.span();
        let sim = file.simulator.into_inner();
        let simulator = match (&sim.task, &sim.program) {
            (Some(task), None) => {
                let external_only = [
                    ("args", sim.args.is_some()),
                    ("x_dim", sim.x_dim.is_some()),
                    ("workers", sim.workers.is_some()),
                    ("batch_size", sim.batch_size.is_some()),
                    ("timeout", sim.timeout.is_some()),
                    ("startup_timeout", sim.startup_timeout.is_some()),
                    ("max_restarts", sim.max_restarts.is_some()),
                    ("env", sim.env.is_some()),
                    ("dir", sim.dir.is_some()),
                    ("forward_stderr", sim.forward_stderr.is_some()),
                ];
                if let Some((key, _)) = external_only.iter().find(|(_, given)| *given) {
                    return Err(err(
                        sim_span,
                        &format!("simulator.{key}"),
                        format!(
                            "`{key}` applies to an external program (`program = ...`), but \
                             this simulator is the built-in task {task:?}"
                        ),
                    ));
                }
                if !simfer_benchmark::task_names().contains(&task.as_str()) {
                    return Err(err(
                        sim_span,
                        "simulator.task",
                        format!(
                            "expected a built-in task ({}), found {task:?}",
                            simfer_benchmark::task_names().join(", ")
                        ),
                    ));
                }
                SimulatorConfig::Task { name: task.clone() }
            }
            (None, Some(program)) => {
                let x_dim = sim.x_dim.ok_or_else(|| {
                    err(
                        sim_span.clone(),
                        "simulator.x_dim",
                        "an external simulator needs `x_dim`, the number of values it \
                         writes per simulation; found none"
                            .into(),
                    )
                })?;
                let positive = |v: Option<usize>, key: &str, default: usize| match v {
                    Some(0) => Err(err(
                        sim_span.clone(),
                        &format!("simulator.{key}"),
                        format!("expected `{key}` of at least 1, found 0"),
                    )),
                    Some(v) => Ok(v),
                    None => Ok(default),
                };
                let seconds = |v: Option<f64>, key: &str, default: f64| match v {
                    Some(s) if !(s >= 0.0 && s.is_finite() && s < 1e9) => Err(err(
                        sim_span.clone(),
                        &format!("simulator.{key}"),
                        format!("expected `{key}` in seconds (0 or more), found {s}"),
                    )),
                    Some(s) => Ok(s),
                    None => Ok(default),
                };
                SimulatorConfig::External(ExternalConfig {
                    program: program.clone(),
                    args: sim.args.clone().unwrap_or_default(),
                    x_dim: positive(Some(x_dim), "x_dim", 1)?,
                    env: sim.env.clone().unwrap_or_default(),
                    dir: sim.dir.as_deref().map_or(base_dir.to_path_buf(), resolve),
                    workers: positive(sim.workers, "workers", 1)?,
                    batch_size: positive(sim.batch_size, "batch_size", 100)?,
                    timeout: seconds(sim.timeout, "timeout", 3600.0)?,
                    startup_timeout: seconds(sim.startup_timeout, "startup_timeout", 60.0)?,
                    max_restarts: sim.max_restarts.unwrap_or(3),
                    forward_stderr: sim.forward_stderr.unwrap_or(false),
                })
            }
            _ => {
                return Err(err(
                    sim_span,
                    "simulator",
                    "expected exactly one of `task` (a built-in task) and `program` (an \
                     external simulator)"
                        .into(),
                ));
            }
        };

        // The prior.
        let (prior, parameters) = match (file.prior, &simulator) {
            (Some(entries), _) => {
                let span = entries.span();
                let mut entries: Vec<(String, Spanned<ParamEntry>)> =
                    entries.into_inner().into_iter().collect();
                if entries.is_empty() {
                    return Err(err(
                        span,
                        "prior",
                        "expected at least one parameter, found none".into(),
                    ));
                }
                // The parameters in the order of the file.
                entries.sort_by_key(|(_, e)| e.span().start);
                let mut specs = Vec::new();
                let mut names = Vec::new();
                for (name, entry) in &entries {
                    let (spec, n) = entry
                        .get_ref()
                        .resolve(name)
                        .map_err(|m| err(entry.span(), &format!("prior.{name}"), m))?;
                    spec.build()
                        .map_err(|e| err(entry.span(), &format!("prior.{name}"), e.to_string()))?;
                    // Neighbouring uniform entries make one box (as BoxUniform(low,
                    // high) of the reference library), other kinds a component each.
                    match (specs.last_mut(), spec) {
                        (
                            Some(PriorSpec::BoxUniform { low, high }),
                            PriorSpec::BoxUniform { low: l, high: h },
                        ) => {
                            low.extend(l);
                            high.extend(h);
                        }
                        (_, spec) => specs.push(spec),
                    }
                    names.extend(n);
                }
                let spec = if specs.len() == 1 {
                    specs.remove(0)
                } else {
                    PriorSpec::Independent { components: specs }
                };
                (spec, names)
            }
            (None, SimulatorConfig::Task { name }) => {
                let task = simfer_benchmark::task(name)?;
                (task.prior().spec(), task.parameter_names())
            }
            (None, SimulatorConfig::External(_)) => {
                return Err(err(
                    0..0,
                    "prior",
                    "an external simulator needs a `[prior]` table (one entry per \
                     parameter); found none"
                        .into(),
                ));
            }
        };
        if let Some(dup) = parameters
            .iter()
            .enumerate()
            .find(|(i, n)| parameters[..*i].contains(n))
        {
            return Err(err(
                0..0,
                "prior",
                format!("expected distinct parameter names, found {:?} twice", dup.1),
            ));
        }
        // The names head the columns of samples.csv, which must read back with them.
        simfer_analysis::check_column_names(&parameters).map_err(|e| {
            err(
                0..0,
                "prior",
                format!("the parameter names are the columns of samples.csv: {e}"),
            )
        })?;

        // The observation.
        let Some(observation) = file.observation else {
            return Err(err(
                0..0,
                "observation",
                "expected an `[observation]` table with `values = [...]` or `file = \"...\"`; \
                 found none"
                    .into(),
            ));
        };
        let obs_span = observation.span();
        let observation = observation.into_inner();
        let (x_o, observation_source) = match (observation.values, observation.file) {
            (Some(values), None) => (values, "values".to_string()),
            (None, Some(file)) => {
                let full = resolve(&file);
                let read = simfer_analysis::read_samples_csv(&full)
                    .map_err(|e| err(obs_span.clone(), "observation.file", e.to_string()))?;
                if read.samples.ncols() != 1 {
                    return Err(err(
                        obs_span,
                        "observation.file",
                        format!(
                            "expected {} to hold one row (the observation), found {}",
                            full.display(),
                            read.samples.ncols()
                        ),
                    ));
                }
                (
                    read.samples.iter().copied().collect(),
                    format!("file {}", full.display()),
                )
            }
            _ => {
                return Err(err(
                    obs_span,
                    "observation",
                    "expected exactly one of `values` and `file`".into(),
                ));
            }
        };
        if let Some(v) = x_o.iter().find(|v| !v.is_finite()) {
            return Err(err(
                obs_span,
                "observation",
                format!("expected finite values, found {v}"),
            ));
        }
        let x_dim = match &simulator {
            SimulatorConfig::External(e) => Some(e.x_dim),
            SimulatorConfig::Task { name } => {
                Some(simfer_benchmark::task(name)?.simulator().x_dim())
            }
        };
        if let Some(d) = x_dim.filter(|d| *d != x_o.len()) {
            return Err(err(
                obs_span,
                "observation",
                format!(
                    "expected {d} values (the simulator's x_dim), found {}",
                    x_o.len()
                ),
            ));
        }

        // The method and its settings.
        let rounds = file.rounds.unwrap_or(1);
        let method = match &file.method {
            Some(m) => m
                .get_ref()
                .parse::<MethodKind>()
                .map_err(|e| err(m.span(), "method", e.to_string()))?,
            None if rounds > 1 => MethodKind::Snpe,
            None => MethodKind::Npe,
        };
        let estimator = match &file.estimator {
            Some(e) => Some(
                e.get_ref()
                    .parse::<EstimatorKind>()
                    .map_err(|x| err(e.span(), "estimator", x.to_string()))?,
            ),
            None => None,
        };
        let precision = match &file.precision {
            Some(p) => Some(match p.get_ref().as_str() {
                "f32" => Precision::F32,
                "f64" => Precision::F64,
                other => {
                    return Err(err(
                        p.span(),
                        "precision",
                        format!("expected \"f32\" or \"f64\", found {other:?}"),
                    ));
                }
            }),
            None => None,
        };
        let invalid = match &file.invalid_simulations {
            Some(p) => match p.get_ref().as_str() {
                "exclude_first_round_only" => InvalidPolicy::ExcludeFirstRoundOnly,
                "exclude" => InvalidPolicy::Exclude,
                "error" => InvalidPolicy::Error,
                other => {
                    return Err(err(
                        p.span(),
                        "invalid_simulations",
                        format!(
                            "expected \"exclude_first_round_only\", \"exclude\" or \"error\", \
                             found {other:?}"
                        ),
                    ));
                }
            },
            None => InvalidPolicy::default(),
        };
        let mut training = TrainingConfig::default();
        if let Some(t) = file.training {
            training.max_num_epochs = t.max_epochs.or(training.max_num_epochs);
            training.batch_size = t.batch_size.unwrap_or(training.batch_size);
            training.learning_rate = t.learning_rate.unwrap_or(training.learning_rate);
            training.validation_fraction = t
                .validation_fraction
                .unwrap_or(training.validation_fraction);
            training.stop_after_epochs = t.stop_after_epochs.unwrap_or(training.stop_after_epochs);
            if let Some(c) = t.clip_max_norm {
                training.clip_max_norm = (c > 0.0).then_some(c);
            }
            training
                .check()
                .map_err(|e| err(0..0, "training", e.to_string()))?;
        }
        let mut mcmc = SliceSettings::default();
        if let Some(m) = file.mcmc {
            mcmc.chains = m.chains.unwrap_or(mcmc.chains);
            mcmc.warmup = m.warmup.unwrap_or(mcmc.warmup);
            mcmc.thin = m.thin.unwrap_or(mcmc.thin);
            mcmc.tuning = m.tuning.unwrap_or(mcmc.tuning);
            mcmc.init_width = m.init_width.unwrap_or(mcmc.init_width);
            mcmc.max_seconds = m.max_seconds.or(mcmc.max_seconds);
        }
        let samples = file.samples.unwrap_or(10_000);
        if samples < 2 {
            return Err(err(
                0..0,
                "samples",
                format!("expected at least 2 samples, found {samples}"),
            ));
        }
        let output = match &file.output {
            Some(o) => resolve(o),
            None => {
                let stem = path
                    .file_stem()
                    .map_or("run".into(), |s| s.to_string_lossy());
                base_dir.join(format!("{stem}.run"))
            }
        };
        // The prior's dimension must be the simulator's θ dimension.
        if let SimulatorConfig::Task { name } = &simulator {
            let d = simfer_benchmark::task(name)?.simulator().theta_dim();
            if d != parameters.len() {
                return Err(err(
                    0..0,
                    "prior",
                    format!(
                        "the task {name} has {d} parameters, but the prior has {}",
                        parameters.len()
                    ),
                ));
            }
        }
        Ok(RunConfig {
            path: path.to_path_buf(),
            base_dir: base_dir.to_path_buf(),
            parameters,
            prior,
            simulator,
            x_o,
            observation_source,
            method,
            estimator,
            rounds,
            simulations_per_round: file.simulations_per_round.unwrap_or(1000),
            seed: file.seed.unwrap_or(1),
            samples,
            precision,
            invalid,
            training,
            mcmc,
            output,
        })
    }

    /// The prior.
    ///
    /// # Errors
    /// A prior that cannot be built (checked when the config was read).
    pub fn build_prior(&self) -> Result<Box<dyn Prior>> {
        Ok(self.prior.build()?)
    }

    /// The settings that decide the run's results.
    pub fn settings(&self) -> Settings {
        let simulator = match &self.simulator {
            SimulatorConfig::Task { name } => serde_json::json!({ "task": name }),
            SimulatorConfig::External(e) => serde_json::json!({
                "program": e.program,
                "args": e.args,
                "x_dim": e.x_dim,
                "env": e.env,
            }),
        };
        Settings {
            parameters: self.parameters.clone(),
            prior: self.prior.clone(),
            simulator,
            x_o: self.x_o.clone(),
            method: self.method,
            estimator: self.estimator,
            rounds: self.rounds,
            simulations_per_round: self.simulations_per_round,
            seed: self.seed,
            samples: self.samples,
            precision: self.precision,
            invalid: self.invalid,
            training: self.training.clone(),
            mcmc: self.mcmc.clone(),
        }
    }

    /// The plots' title: simulator, rounds, simulations and seed.
    pub fn title(&self) -> String {
        format!(
            "{}: {} round(s) × {} simulations, seed {}",
            self.simulator_label(),
            self.rounds,
            self.simulations_per_round,
            self.seed
        )
    }

    /// A short description of the simulator, for messages and the summary.
    pub fn simulator_label(&self) -> String {
        match &self.simulator {
            SimulatorConfig::Task { name } => name.clone(),
            SimulatorConfig::External(e) => std::iter::once(e.program.as_str())
                .chain(e.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

impl ExternalConfig {
    /// The timeout per request.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }
}
