//! Draws reference posterior samples by MCMC for slcp, slcp_distractors, bernoulli_glm
//! and bernoulli_glm_raw (one observation each, simulated from a prior draw), and prints
//! the wall-clock time and the convergence diagnostics of each run.
//!
//! `cargo run --release -p simfer-benchmark --example mcmc_reference -- [n] [seed]`
//! (defaults: n = 10000, seed = 1).

use std::time::Instant;

use simfer_benchmark::tasks::{BernoulliGlmPosterior, SlcpDistractors, SlcpPosterior};
use simfer_benchmark::{BenchmarkError, McmcDiagnostics, task};
use simfer_distributions::{Prior, rng_from_seed};

fn main() -> Result<(), BenchmarkError> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    println!(
        "n = {n}, seed = {seed}, {} rayon threads",
        rayon::current_num_threads()
    );
    for name in [
        "slcp",
        "slcp_distractors",
        "bernoulli_glm",
        "bernoulli_glm_raw",
    ] {
        let t = task(name)?;
        let theta = t.prior().sample(&mut rng_from_seed(seed));
        let mut x_o = vec![0.0; t.x_dim()];
        t.simulator()
            .simulate(theta.as_slice(), &mut rng_from_seed(seed + 1), &mut x_o)?;
        let mut rng = rng_from_seed(seed + 2);
        let start = Instant::now();
        let (samples, diagnostics) = match name {
            "slcp" => SlcpPosterior::new(&x_o)?.sample_with_diagnostics(n, &mut rng)?,
            "slcp_distractors" => SlcpPosterior::new(&SlcpDistractors::slcp_data(&x_o)?)?
                .sample_with_diagnostics(n, &mut rng)?,
            "bernoulli_glm" => {
                BernoulliGlmPosterior::new(&x_o)?.sample_with_diagnostics(n, &mut rng)?
            }
            _ => {
                BernoulliGlmPosterior::from_responses(&x_o)?.sample_with_diagnostics(n, &mut rng)?
            }
        };
        let elapsed = start.elapsed();
        println!(
            "{name:18} θ_true = {:.3?}\n  {} samples in {:.3} s; {}",
            theta.as_slice(),
            samples.ncols(),
            elapsed.as_secs_f64(),
            summary(&diagnostics)
        );
    }
    Ok(())
}

fn summary(d: &McmcDiagnostics) -> String {
    format!(
        "{} chains × ({} warm-up + {} iterations), stride {}, {} kept per chain, \
         acceptance {:.3}, max R̂ {:.4}, min ESS {:.0} (bulk {:.0?}, tail {:.0?}), {} evaluations",
        d.chains,
        d.warmup,
        d.iterations,
        d.thin,
        d.draws_per_chain,
        d.acceptance_rate,
        d.max_rhat(),
        d.min_ess(),
        d.ess_bulk,
        d.ess_tail,
        d.evaluations
    )
}
