//! The command line of `simfer` (clap).

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};

/// simfer: simulation-based inference for a simulator in any language.
#[derive(Debug, Parser)]
#[command(
    name = "simfer",
    version,
    about = "Simulation-based inference for a simulator in any language: runs from a TOML \
             config into a run directory that survives kills, job arrays, MPI",
    after_help = "A run's files are described in the README's section on the command line; \
                  the config's keys in examples/cli/two_moons.toml."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a run from a config: simulate, train and sample, keeping everything in the
    /// output directory as it happens; writes samples.csv, summary.json, pairplot.svg and
    /// loss.svg there.
    Run(RunArgs),
    /// Continue a run from its directory (after a kill, or to go on after --no-simulate);
    /// nothing saved is done again, and it ends as an uninterrupted run would.
    Resume(ResumeArgs),
    /// Draw posterior samples of a finished run at another observation.
    Sample(SampleArgs),
    /// Draw a finished run's pairplot.svg and loss.svg again.
    Plot(PlotArgs),
    /// Simulate one shard of the round a run waits for (e.g. one job of an array), into a
    /// shard file of its own.
    Simulate(SimulateArgs),
    /// Add θ's and x's simulated elsewhere to the round a run waits for: shard files, CSV
    /// (θ columns then x columns) or pairs of .npy files (θ, then x).
    Append(AppendArgs),
}

/// Arguments of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The config file (TOML).
    pub config: PathBuf,
    /// The output (run) directory, instead of the config's `output`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// What `run` and `resume` share.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `resume`.
#[derive(Debug, Clone, Args)]
pub struct ResumeArgs {
    /// The run directory.
    pub dir: PathBuf,
    /// What `run` and `resume` share.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// What `run` and `resume` share.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Do not simulate: stop (with the round's θ's saved and instructions printed) where a
    /// round needs simulations, to simulate them elsewhere (`simulate`, `append`).
    #[arg(long)]
    pub no_simulate: bool,
    /// No progress bars (they are shown only on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

/// Arguments of `sample`.
#[derive(Debug, Clone, Args)]
pub struct SampleArgs {
    /// The run directory.
    pub dir: PathBuf,
    /// The observation, comma-separated (`--x=-0.5,0.3` or `--x -0.5,0.3`).
    #[arg(long, value_name = "V1,V2,...", allow_hyphen_values = true)]
    pub x: NumberList,
    /// Samples to draw.
    #[arg(long, default_value_t = 1000)]
    pub n: usize,
    /// Seed of the samples (default: from the run's seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The CSV file to write (default DIR/sample.csv).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Arguments of `plot`.
#[derive(Debug, Clone, Args)]
pub struct PlotArgs {
    /// The run directory.
    pub dir: PathBuf,
}

/// Arguments of `simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// The run directory, or the config whose output directory holds the run.
    pub target: PathBuf,
    /// Which shard, from 0 (e.g. $SLURM_ARRAY_TASK_ID).
    #[arg(long)]
    pub shard: usize,
    /// How many shards the round is split into.
    #[arg(long)]
    pub num_shards: usize,
    /// The shard file to write (default DIR/shards/round-RRR-shard-IIII-of-NNNN.sims).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Arguments of `append`.
#[derive(Debug, Clone, Args)]
pub struct AppendArgs {
    /// The run directory.
    pub dir: PathBuf,
    /// Shard files, CSV files, or .npy files (θ file then x file).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// A comma-separated list of finite numbers, e.g. `-0.5,0.3,1e-2`.
#[derive(Clone, Debug, PartialEq)]
pub struct NumberList(pub Vec<f64>);

impl FromStr for NumberList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("expected comma-separated numbers, found nothing".into());
        }
        s.split(',')
            .enumerate()
            .map(|(i, field)| {
                let field = field.trim();
                match field.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => Err(format!(
                        "expected a finite number as value {} of the list, found {field:?}",
                        i + 1
                    )),
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(NumberList)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("simfer").chain(args.iter().copied()))
    }

    #[test]
    fn commands_parse() {
        match parse(&["run", "c.toml", "--no-simulate"]).map(|c| c.command) {
            Ok(Command::Run(r)) => {
                assert_eq!(r.config, PathBuf::from("c.toml"));
                assert!(r.common.no_simulate && !r.common.no_progress);
            }
            other => panic!("expected run, got {other:?}"),
        }
        match parse(&["sample", "d", "--x=-0.5,1e-2", "--n", "7"]).map(|c| c.command) {
            Ok(Command::Sample(s)) => {
                assert_eq!(s.x, NumberList(vec![-0.5, 0.01]));
                assert_eq!((s.n, s.seed), (7, None));
            }
            other => panic!("expected sample, got {other:?}"),
        }
        match parse(&["simulate", "d", "--shard", "2", "--num-shards", "5"]).map(|c| c.command) {
            Ok(Command::Simulate(s)) => assert_eq!((s.shard, s.num_shards), (2, 5)),
            other => panic!("expected simulate, got {other:?}"),
        }
        assert!(parse(&["append", "d"]).is_err(), "append needs files");
        assert!(parse(&["sample", "d", "--x", "1,abc"]).is_err());
    }
}
