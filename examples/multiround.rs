//! The multi-round inference tutorial (the reference library's `02_multiround_inference`):
//! a 3-D linear Gaussian, BoxUniform(−2, 2) prior, x = θ + 1 + 0.1·ε, observation x_o = 0,
//! two rounds of 500 simulations with the default MAF and training settings, then 10,000
//! posterior samples. The exact posterior is N(−1, 0.1²·I).
//!
//! ```sh
//! cargo run --release --example multiround -- --out results/
//! ```
//!
//! Prints each round (simulations, invalid ones, epochs, best validation loss, seconds) and
//! the posterior mean and std per dimension; writes `samples.csv`, `summary.json`,
//! `pairplot.svg` (the posterior, limits [−2, 2] as in the tutorial) and `loss.svg`
//! (training and validation loss per epoch, one panel per round) into `--out` (default:
//! the current directory).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use rand_distr::{Distribution, StandardNormal};
use simfer::analysis;
use simfer::prelude::*;

/// Multi-round SNPE-C on the tutorial's 3-D linear Gaussian.
#[derive(Debug, Parser)]
struct Args {
    /// Directory for samples.csv and summary.json.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Seed of the whole run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of rounds.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Simulations per round.
    #[arg(long, default_value_t = 500)]
    simulations: usize,
    /// Posterior samples to draw at the end.
    #[arg(long, default_value_t = 10_000)]
    samples: usize,
    /// Show progress bars.
    #[arg(long)]
    progress: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let start = Instant::now();
    let num_dim = 3;
    let x_o = vec![0.0; num_dim];
    let prior: Arc<dyn Prior> = Arc::new(BoxUniform::uniform(num_dim, -2.0, 2.0)?);
    let simulator = FnSimulator::new(
        num_dim,
        num_dim,
        |theta: &[f64], rng: &mut dyn rand::RngCore| {
            theta
                .iter()
                .map(|t| {
                    t + 1.0
                        + 0.1 * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng)
                })
                .collect::<Vec<f64>>()
        },
    );
    check_sbi_inputs(&simulator, prior.as_ref())?;

    let config = SnpeConfig {
        progress: args.progress,
        sampling: SamplingOptions {
            progress: args.progress,
            ..SamplingOptions::default()
        },
        ..SnpeConfig::default()
    };
    let mut inference = Snpe::new(Arc::clone(&prior), config, args.seed)?;
    inference.set_default_x(&x_o)?;

    println!("round  simulations  invalid  epochs  best val. loss  seconds (simulate + train)");
    let mut rounds = Vec::new();
    let mut histories = Vec::new();
    for _ in 0..args.rounds {
        // Round 0 draws from the prior, later rounds from the posterior at x_o: the
        // orchestrator tracks the proposal.
        let data = inference.simulate_round(&simulator, args.simulations)?;
        let (round, simulated, invalid, seconds_simulate) = (
            data.round,
            data.simulated,
            data.invalid.total(),
            data.seconds_simulate,
        );
        let history = inference.train()?.clone();
        println!(
            "{round:>5}  {simulated:>11}  {invalid:>7}  {:>6}  {:>14.4}  {:.3} + {:.3}",
            history.epochs_trained, history.best_validation_loss, seconds_simulate, history.seconds
        );
        rounds.push(serde_json::json!({
            "round": round,
            "simulations": simulated,
            "invalid": invalid,
            "epochs": history.epochs_trained,
            "best_epoch": history.best_epoch,
            "best_validation_loss": history.best_validation_loss,
            "stop_reason": history.stop_reason.to_string(),
            "seconds_simulate": seconds_simulate,
            "seconds_train": history.seconds,
        }));
        histories.push(history);
    }

    let posterior = inference.build_posterior()?;
    let sample_start = Instant::now();
    let mut rng = rng_from_seed(args.seed.wrapping_add(1));
    let (samples, stats) = posterior.sample_with_stats(args.samples, None, &mut rng)?;
    let seconds_sample = sample_start.elapsed().as_secs_f64();

    println!(
        "\nposterior at x_o = {x_o:?} ({} samples; exact: mean −1, std 0.1)",
        args.samples
    );
    let mut means = Vec::new();
    let mut stds = Vec::new();
    for (d, row) in samples.row_iter().enumerate() {
        let mean = row.mean();
        let std =
            row.variance().sqrt() * (args.samples as f64 / (args.samples as f64 - 1.0)).sqrt();
        println!("  theta_{}: mean {mean:+.4}  std {std:.4}", d + 1);
        means.push(mean);
        stds.push(std);
    }

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let csv = args.out.join("samples.csv");
    analysis::write_samples_csv(&csv, &samples, None)?;

    let plot_start = Instant::now();
    let labels: Vec<String> = (1..=num_dim).map(|d| format!("θ{d}")).collect();
    let pairplot = analysis::pairplot_data(
        &[("posterior", &samples)],
        &[],
        &analysis::PairplotOptions {
            limits: Some(vec![[-2.0, 2.0]]),
            labels: Some(labels),
            ..Default::default()
        },
    )?;
    let pairplot_path = args.out.join("pairplot.svg");
    analysis::write_pairplot_svg(
        &pairplot_path,
        &pairplot,
        &analysis::PairplotStyle::default(),
    )?;
    let loss_rounds: Vec<analysis::LossRound> = histories
        .iter()
        .map(|h| analysis::LossRound {
            train: &h.train_loss,
            val: &h.validation_loss,
            best_epoch: Some(h.best_epoch),
        })
        .collect();
    let loss_path = args.out.join("loss.svg");
    analysis::write_loss_curves_svg(&loss_path, &loss_rounds, &analysis::LossStyle::default())?;
    let seconds_plot = plot_start.elapsed().as_secs_f64();

    let total = start.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "task": "linear_gaussian (3-D tutorial)",
        "seed": args.seed,
        "x_o": x_o,
        "rounds": rounds,
        "samples": args.samples,
        "acceptance_rate": stats.acceptance_rate(),
        "posterior_mean": means,
        "posterior_std": stds,
        "seconds": {
            "simulate": rounds.iter().map(|r| r["seconds_simulate"].as_f64().unwrap_or(0.0)).sum::<f64>(),
            "train": rounds.iter().map(|r| r["seconds_train"].as_f64().unwrap_or(0.0)).sum::<f64>(),
            "sample": seconds_sample,
            "plot": seconds_plot,
            "total": total,
        },
    });
    let path = args.out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!(
        "\nacceptance rate {:.3}; wrote samples.csv, summary.json, pairplot.svg and loss.svg \
         to {} ({total:.2} s in all)",
        stats.acceptance_rate(),
        args.out.display()
    );
    Ok(())
}
