//! Simulates a benchmark task in parallel (with a progress bar) and prints summary
//! statistics of the simulations: per-dimension mean and standard deviation of x, the
//! number of invalid (NaN/±∞) simulations and the simulation rate.
//!
//! ```sh
//! cargo run --release --example simulate                       # two_moons, 100,000 simulations
//! cargo run --release --example simulate -- --task sir -n 20000 --seed 3
//! RAYON_NUM_THREADS=1 cargo run --release --example simulate   # same numbers, one thread
//! ```

use std::time::Instant;

use anyhow::{Result, bail};
use clap::Parser;
use simfer::benchmark::{task, task_names};
use simfer::simulators::{SimulationOptions, check_sbi_inputs, simulate_for_sbi};

/// Simulate a benchmark task in parallel and print summary statistics of x.
#[derive(Parser, Debug)]
#[command(after_help = format!(
    "Tasks: {}.\nThe result depends only on --seed, not on the number of threads \
     (set RAYON_NUM_THREADS to choose it).",
    task_names().join(", ")
))]
struct Args {
    /// The benchmark task.
    #[arg(long, default_value = "two_moons")]
    task: String,
    /// Number of simulations (θ drawn from the task's prior).
    #[arg(short = 'n', long = "num-simulations", default_value_t = 100_000)]
    n: usize,
    /// Seed: simulation i uses its own generator derived from (seed, i).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print at most this many dimensions of x.
    #[arg(long, default_value_t = 20)]
    max_dims: usize,
    /// Hide the progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.n == 0 {
        bail!("-n must be at least 1");
    }
    let task = task(&args.task)?;
    let (prior, simulator) = (task.prior(), task.simulator());
    check_sbi_inputs(simulator.as_ref(), prior.as_ref())?;

    let opts = SimulationOptions::with_seed(args.seed).with_progress(!args.no_progress);
    let start = Instant::now();
    let sims = simulate_for_sbi(simulator.as_ref(), &prior, args.n, &opts)?;
    let seconds = start.elapsed().as_secs_f64();

    println!(
        "task {}: θ in {} dimensions ({}), x in {} dimensions",
        task.name(),
        task.theta_dim(),
        task.parameter_names().join(", "),
        task.x_dim()
    );
    println!("{} simulations, seed {}", args.n, args.seed);
    println!("{}", sims.invalid);

    let (_, x) = sims.valid();
    if x.ncols() > 0 {
        println!("\n{:>6} {:>14} {:>14}", "x dim", "mean", "std");
        let n = x.ncols() as f64;
        for (d, row) in x.row_iter().enumerate().take(args.max_dims) {
            let mean = row.sum() / n;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            println!("{d:>6} {mean:>14.6} {:>14.6}", var.sqrt());
        }
        if x.nrows() > args.max_dims {
            println!("   ... {} more (see --max-dims)", x.nrows() - args.max_dims);
        }
    }
    println!(
        "\n{:.3} s, {:.0} simulations per second (prior draws and checks included)",
        seconds,
        args.n as f64 / seconds
    );
    Ok(())
}
