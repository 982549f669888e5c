//! Amortized inference: single-round NPE on two_moons, then posteriors for several
//! observations from one trained network, without retraining.
//!
//! ```sh
//! cargo run --release --example amortized
//! ```
//!
//! For each observation it prints the posterior mean and std next to those of exact
//! reference samples (two_moons' posterior is known by inverting the simulator).

use std::time::Instant;

use clap::Parser;
use nalgebra::DMatrix;
use simfer::prelude::*;

/// Single-round NPE on two_moons, evaluated at several observations.
#[derive(Debug, Parser)]
struct Args {
    /// Simulations for training.
    #[arg(long, default_value_t = 10_000)]
    simulations: usize,
    /// Posterior samples per observation.
    #[arg(long, default_value_t = 10_000)]
    samples: usize,
    /// Seed of the whole run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn summary(s: &DMatrix<f64>) -> String {
    s.row_iter()
        .map(|r| {
            let n = r.len() as f64;
            format!(
                "{:+.3} ± {:.3}",
                r.mean(),
                (r.variance() * n / (n - 1.0)).sqrt()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let task = task("two_moons")?;
    let simulator = task.simulator();

    let start = Instant::now();
    // One round from the prior: the posterior is amortized over x.
    let run = Inference::new(task.prior())
        .method("npe")
        .simulations_per_round(args.simulations)
        .seed(args.seed)
        .run(simulator.as_ref())?;
    let h = &run.rounds[0].history;
    println!(
        "trained on {} simulations: {} epochs (best {}), validation loss {:.4}, {:.2} s",
        args.simulations,
        h.epochs_trained,
        h.best_epoch,
        h.best_validation_loss,
        start.elapsed().as_secs_f64()
    );

    // Observations: simulations at a few parameter values.
    let thetas = DMatrix::from_column_slice(2, 4, &[0.0, 0.0, 0.5, 0.5, -0.3, 0.6, 0.8, -0.7]);
    let sims = simulate_batch(
        simulator.as_ref(),
        &thetas,
        &SimulationOptions::with_seed(args.seed).with_progress(false),
    )?;
    let start = Instant::now();
    let estimates = run
        .direct_posterior()
        .ok_or_else(|| anyhow::anyhow!("NPE gives a direct posterior"))?
        .sample_batched(args.samples, &sims.x, args.seed)?;
    println!(
        "sampled {} × {} posterior samples from the one network in {:.3} s\n",
        sims.x.ncols(),
        args.samples,
        start.elapsed().as_secs_f64()
    );
    for (j, estimate) in estimates.iter().enumerate() {
        let x_o: Vec<f64> = sims.x.column(j).iter().copied().collect();
        println!(
            "x_o = ({:+.3}, {:+.3}) from θ = ({:+.2}, {:+.2})",
            x_o[0],
            x_o[1],
            thetas[(0, j)],
            thetas[(1, j)]
        );
        println!("  estimate:  {}", summary(estimate));
        if let Some(reference) = task.reference_posterior(&x_o) {
            let samples =
                reference?.sample(args.samples, &mut rng_from_seed(args.seed + j as u64))?;
            println!("  reference: {}", summary(&samples));
        }
    }
    Ok(())
}
