//! The command line: subcommands and their arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use simfer_flows::EstimatorKind;
use simfer_inference::MethodKind;

/// Developer tasks for the simfer workspace.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Developer tasks for the simfer workspace: run a task, benchmark suites, \
             C2ST/MMD of sample files, CI, instruction counts"
)]
pub struct Cli {
    /// The task to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run NPE (--rounds 1) or multi-round SNPE-C on a benchmark task and write
    /// samples.csv, summary.json and pairplot.svg.
    Run(RunArgs),
    /// Run a benchmark suite: every task × budget × rounds × observation, scored with C2ST
    /// against reference samples and timed; writes report.json and report.md.
    Bench(BenchArgs),
    /// Print the C2ST score of two sample files (A is the reference, used for z-scoring).
    C2st(C2stArgs),
    /// Print the squared MMD (unbiased, Gaussian kernel) of two sample files.
    Mmd(MmdArgs),
    /// Run what `.ci/run` runs (format, clippy, tests, benches once, xtask smoke run).
    Ci,
    /// Count the instructions of each performance case under valgrind's callgrind, print
    /// them beside the committed baseline (.ci/perf-baseline.json) and fail when a case is
    /// more than 5 % above it.
    Perf(PerfArgs),
}

/// A comma-separated list of finite numbers (the one `simfer` parses).
pub use simfer_cli::cli::NumberList;

/// Where the observation x_o comes from (exactly one).
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct ObservationArgs {
    /// The observation x_o as comma-separated numbers (`--observation=-0.5,0.3` or
    /// `--observation -0.5,0.3`).
    #[arg(long, value_name = "V1,V2,...", allow_hyphen_values = true)]
    pub observation: Option<NumberList>,
    /// A CSV file with one row: the observation (with or without a header line).
    #[arg(long, value_name = "FILE")]
    pub observation_file: Option<PathBuf>,
    /// A true θ: x_o is simulated from it with the run's seed.
    #[arg(long, value_name = "V1,V2,...", allow_hyphen_values = true)]
    pub theta: Option<NumberList>,
}

/// Arguments of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The task (linear_gaussian, gaussian_linear, two_moons, slcp, ...).
    #[arg(long)]
    pub task: String,
    /// The observation.
    #[command(flatten)]
    pub observation: ObservationArgs,
    /// The method: npe, snpe, tsnpe, nle, snle, nre, snre (default: npe for one round,
    /// snpe for more).
    #[arg(long, value_parser = parse_method)]
    pub method: Option<MethodKind>,
    /// Rounds: 1 is one round; more focus the later rounds on x_o.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Simulations per round.
    #[arg(long, default_value_t = 1000)]
    pub simulations_per_round: usize,
    /// Seed of the whole run (observation from --theta, simulations, training, sampling).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Posterior samples to draw and write.
    #[arg(long, default_value_t = 10_000)]
    pub samples: usize,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Dimension of linear_gaussian (default 3, the tutorial's); other tasks have fixed
    /// dimensions.
    #[arg(long)]
    pub dim: Option<usize>,
    /// Cap on the training epochs per round (default: none, early stopping decides).
    #[arg(long)]
    pub max_epochs: Option<usize>,
    /// The density estimator (maf, the reference's default; or another kind), with the
    /// reference's settings of its kind.
    #[arg(long, default_value = "maf", value_parser = parse_estimator)]
    pub estimator: EstimatorKind,
    /// Precision of the training passes.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: PrecisionArg,
    /// Also score the samples with C2ST against the task's reference posterior, where
    /// one exists.
    #[arg(long)]
    pub c2st: bool,
    /// Show progress bars (on a terminal).
    #[arg(long)]
    pub progress: bool,
}

/// A method by name (`npe`, `snpe`, …).
fn parse_method(s: &str) -> Result<MethodKind, String> {
    s.parse()
        .map_err(|e: simfer_inference::InferenceError| e.to_string())
}

/// An estimator kind by name (`maf`, …).
fn parse_estimator(s: &str) -> Result<EstimatorKind, String> {
    s.parse()
        .map_err(|e: simfer_flows::FlowError| e.to_string())
}

/// Precision of the training passes of the estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// Single precision (the library's default; parameters stay f64).
    F32,
    /// Double precision throughout.
    F64,
}

impl From<PrecisionArg> for simfer_flows::Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => simfer_flows::Precision::F32,
            PrecisionArg::F64 => simfer_flows::Precision::F64,
        }
    }
}

/// The benchmark suites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SuiteName {
    /// The tutorial, gaussian_linear, two_moons and gaussian_mixture at 10³ simulations.
    Quick,
    /// All tasks at 10³ and 10⁴ simulations, 1 and 10 rounds, 3 observations each.
    Full,
}

/// Arguments of `bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Which suite.
    #[arg(long, value_enum)]
    pub suite: SuiteName,
    /// Output directory for report.json and report.md (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Only these tasks of the suite (comma-separated; `tutorial` names the tutorial entry).
    #[arg(long, value_delimiter = ',')]
    pub tasks: Option<Vec<String>>,
    /// Only these total simulation budgets (comma-separated, e.g. 1000).
    #[arg(long, value_delimiter = ',')]
    pub budgets: Option<Vec<usize>>,
    /// Only these numbers of rounds (comma-separated, e.g. 10).
    #[arg(long, value_delimiter = ',')]
    pub rounds: Option<Vec<usize>>,
    /// Observations (and seeds) per task.
    #[arg(long, default_value_t = 3)]
    pub observations: usize,
    /// Reference and posterior samples per C2ST (the benchmark uses 10,000 each).
    #[arg(long, default_value_t = 10_000)]
    pub samples: usize,
    /// Posterior samples simulated for the posterior-predictive distance.
    #[arg(long, default_value_t = 1000)]
    pub predictive_samples: usize,
    /// Cap on the training epochs per round (default: none, early stopping decides).
    #[arg(long)]
    pub max_epochs: Option<usize>,
    /// The methods to run (comma-separated): the one-round methods (npe, nle, nre) run the
    /// suite's one-round entries, the sequential ones (snpe, tsnpe, snle, snre) its
    /// multi-round entries; the report has a column per method and estimator.
    #[arg(long, value_delimiter = ',', default_value = "npe,snpe", value_parser = parse_method)]
    pub method: Vec<MethodKind>,
    /// The density estimators to run (comma-separated, e.g. `maf,nsf`): every run of
    /// the suite is made with each (NRE, which trains a classifier, once), and the report
    /// has a column per estimator.
    #[arg(long, value_delimiter = ',', default_value = "maf", value_parser = parse_estimator)]
    pub estimator: Vec<EstimatorKind>,
    /// Precision of the training passes.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: PrecisionArg,
    /// Also write each run's posterior samples and each observation's reference samples
    /// as CSV under DIR/samples/.
    #[arg(long)]
    pub keep_samples: bool,
}

/// Arguments of `c2st`.
#[derive(Debug, Clone, Args)]
pub struct C2stArgs {
    /// The reference sample file (its mean and std z-score both sets).
    pub reference: PathBuf,
    /// The sample file to compare.
    pub estimate: PathBuf,
    /// Seed of the folds, the initialization and the mini-batches.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also print the held-out accuracy and epochs of each fold (to stderr).
    #[arg(long)]
    pub details: bool,
}

/// Arguments of `mmd`.
#[derive(Debug, Clone, Args)]
pub struct MmdArgs {
    /// The first sample file.
    pub first: PathBuf,
    /// The second sample file.
    pub second: PathBuf,
    /// Kernel bandwidth σ (default: the median heuristic on the pooled samples).
    #[arg(long)]
    pub bandwidth: Option<f64>,
}

/// Arguments of `perf`.
#[derive(Debug, Clone, Args)]
pub struct PerfArgs {
    /// Rewrite the baseline with this run's counts (only the selected cases with
    /// `--cases`) instead of comparing.
    #[arg(long)]
    pub update: bool,
    /// Only these cases (comma-separated; `perf-case --list` lists them all).
    #[arg(long, value_delimiter = ',')]
    pub cases: Option<Vec<String>>,
    /// Cases run at once, each under its own valgrind (default: the number of cores);
    /// the counts do not depend on it.
    #[arg(long)]
    pub jobs: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
    }

    fn run_args(args: &[&str]) -> RunArgs {
        match parse(args).map(|c| c.command) {
            Ok(Command::Run(r)) => r,
            other => panic!("expected a run command, got {other:?}"),
        }
    }

    #[test]
    fn number_lists_parse_negative_and_exponent_forms() {
        assert_eq!(
            "-0.5, 0.3,1e-2,-2E1".parse::<NumberList>(),
            Ok(NumberList(vec![-0.5, 0.3, 0.01, -20.0]))
        );
        assert_eq!("7".parse::<NumberList>(), Ok(NumberList(vec![7.0])));
        for bad in ["", "1,,2", "1,x", "nan", "1,inf", "1;2"] {
            let e = bad.parse::<NumberList>();
            assert!(e.is_err(), "{bad:?} parsed as {e:?}");
        }
        let e = "1,x".parse::<NumberList>().unwrap_err();
        assert!(e.contains("value 2") && e.contains("\"x\""), "{e}");
    }

    #[test]
    fn run_with_negative_observation_in_both_spellings() {
        for obs in [
            vec!["--observation=-0.5,0.3"],
            vec!["--observation", "-0.5,0.3"],
        ] {
            let mut args = vec!["run", "--task", "two_moons", "--out", "o"];
            args.extend(obs);
            let r = run_args(&args);
            assert_eq!(r.observation.observation, Some(NumberList(vec![-0.5, 0.3])));
            assert_eq!(r.observation.theta, None);
            assert_eq!(r.observation.observation_file, None);
            // The defaults.
            assert_eq!(
                (r.rounds, r.simulations_per_round, r.seed, r.samples),
                (1, 1000, 1, 10_000)
            );
            assert_eq!(r.out, PathBuf::from("o"));
        }
    }

    #[test]
    fn run_with_theta_file_and_every_setting() {
        let r = run_args(&[
            "run",
            "--task",
            "linear_gaussian",
            "--theta",
            "-1,-2e-1,3",
            "--rounds",
            "10",
            "--simulations-per-round",
            "100",
            "--seed",
            "42",
            "--samples",
            "500",
            "--out",
            "/tmp/x",
            "--dim",
            "3",
            "--max-epochs",
            "5",
            "--precision",
            "f64",
            "--c2st",
        ]);
        assert_eq!(r.observation.theta, Some(NumberList(vec![-1.0, -0.2, 3.0])));
        assert_eq!(
            (r.rounds, r.simulations_per_round, r.seed, r.samples),
            (10, 100, 42, 500)
        );
        assert_eq!((r.dim, r.max_epochs, r.c2st), (Some(3), Some(5), true));
        assert_eq!(r.precision, PrecisionArg::F64);

        let r = run_args(&[
            "run",
            "--task",
            "sir",
            "--observation-file",
            "x_o.csv",
            "--out",
            "o",
        ]);
        assert_eq!(
            r.observation.observation_file,
            Some(PathBuf::from("x_o.csv"))
        );
    }

    #[test]
    fn run_needs_exactly_one_observation_source() {
        let base = ["run", "--task", "two_moons", "--out", "o"];
        assert!(parse(&base).is_err(), "no observation");
        let mut two = base.to_vec();
        two.extend(["--observation", "1,2", "--theta", "0,0"]);
        assert!(parse(&two).is_err(), "two observations");
        let mut bad = base.to_vec();
        bad.extend(["--observation", "1,abc"]);
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.contains("\"abc\""), "{e}");
        // A missing value after the flag is not taken from the next flag.
        assert!(parse(&["run", "--task", "two_moons", "--theta", "--out", "o"]).is_err());
    }

    #[test]
    fn bench_c2st_mmd_and_ci_parse() {
        match parse(&[
            "bench",
            "--suite",
            "full",
            "--out",
            "r",
            "--tasks",
            "slcp,sir",
            "--budgets",
            "1000",
            "--rounds",
            "1,10",
        ])
        .map(|c| c.command)
        {
            Ok(Command::Bench(b)) => {
                assert_eq!(b.suite, SuiteName::Full);
                assert_eq!(b.tasks, Some(vec!["slcp".to_string(), "sir".to_string()]));
                assert_eq!(b.budgets, Some(vec![1000]));
                assert_eq!(b.rounds, Some(vec![1, 10]));
                assert_eq!((b.observations, b.samples), (3, 10_000));
                assert_eq!(b.precision, PrecisionArg::F32);
            }
            other => panic!("expected bench, got {other:?}"),
        }
        assert!(parse(&["bench", "--suite", "medium", "--out", "r"]).is_err());
        match parse(&["c2st", "a.csv", "b.csv", "--seed", "3"]).map(|c| c.command) {
            Ok(Command::C2st(c)) => {
                assert_eq!(c.reference, PathBuf::from("a.csv"));
                assert_eq!(c.estimate, PathBuf::from("b.csv"));
                assert_eq!(c.seed, 3);
            }
            other => panic!("expected c2st, got {other:?}"),
        }
        match parse(&["mmd", "a.csv", "b.csv"]).map(|c| c.command) {
            Ok(Command::Mmd(m)) => assert_eq!(m.bandwidth, None),
            other => panic!("expected mmd, got {other:?}"),
        }
        assert!(matches!(parse(&["ci"]).map(|c| c.command), Ok(Command::Ci)));
        match parse(&["perf"]).map(|c| c.command) {
            Ok(Command::Perf(p)) => assert!(!p.update && p.cases.is_none() && p.jobs.is_none()),
            other => panic!("expected perf, got {other:?}"),
        }
        match parse(&[
            "perf",
            "--update",
            "--cases",
            "maf_sample_10k,nsf_sample_10k",
        ])
        .map(|c| c.command)
        {
            Ok(Command::Perf(p)) => {
                assert!(p.update);
                assert_eq!(
                    p.cases,
                    Some(vec![
                        "maf_sample_10k".to_string(),
                        "nsf_sample_10k".to_string()
                    ])
                );
            }
            other => panic!("expected perf, got {other:?}"),
        }
    }
}
