//! Samples a banana-shaped density (`x ~ N(0, 1)`, `y | x ~ N(x² − 1, 1)`) with the slice
//! sampler's default settings, starting from a box prior, and prints the moments and the
//! diagnostics of the run.
//!
//! `cargo run --release -p simfer-mcmc --example slice_banana -- [n] [seed]`
//! (defaults: n = 10000, seed = 1).

use simfer_distributions::BoxUniform;
use simfer_mcmc::{McmcError, SliceSampler, SliceSettings, from_fn};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let banana = from_fn(2, |p: &[f64]| {
        let z = p[1] - (p[0] * p[0] - 1.0);
        -0.5 * p[0] * p[0] - 0.5 * z * z
    });
    let prior = BoxUniform::uniform(2, -5.0, 5.0)?;
    let run = SliceSampler::new(SliceSettings::default())?
        .with_parameter_names(vec!["x".into(), "y".into()])
        .sample(&banana, Some(&prior), n, seed)
        .map_err(|e: McmcError| Box::new(e) as Box<dyn std::error::Error>)?;
    let mean = run.samples.column_mean();
    let var = run.samples.column_variance();
    let d = &run.diagnostics;
    println!("{n} samples, seed {seed}: {:.2} s", d.seconds);
    println!(
        "  mean {:.3?} (exact [0, 0]), variance {:.3?} (exact [1, 3])",
        mean.as_slice(),
        var.as_slice()
    );
    println!(
        "  {} chains × ({} tuning + {} warm-up + {} sweeps), {} draws per chain",
        d.chains, d.tuning, d.warmup, d.iterations, d.draws_per_chain
    );
    println!(
        "  R̂ {:.4?}, bulk ESS {:.0?}, tail ESS {:.0?}",
        d.rhat, d.ess_bulk, d.ess_tail
    );
    let updates = (d.chains * (d.tuning + d.warmup + d.iterations) * 2) as f64;
    let init = (d.chains * 10_000) as f64;
    println!(
        "  {} evaluations ({:.0} for the initialisation, {:.2} per coordinate update after it), \
         shrinkage acceptance {:.3}, {} invalid",
        d.evaluations,
        init,
        (d.evaluations as f64 - init) / updates,
        d.acceptance_rate,
        d.invalid_evaluations
    );
    Ok(())
}
