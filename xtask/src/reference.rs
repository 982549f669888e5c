//! Reference posterior samples for the benchmark: the tasks' exact samplers (closed form or
//! inversion) and, for slcp, slcp_distractors, bernoulli_glm and bernoulli_glm_raw,
//! simfer-mcmc's Metropolis on the exact likelihood, whose convergence diagnostics are kept.

use anyhow::Result;
use nalgebra::DMatrix;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use simfer_benchmark::BenchmarkError;
use simfer_benchmark::tasks::{BernoulliGlmPosterior, SlcpDistractors, SlcpPosterior};
use simfer_benchmark::{McmcDiagnostics, Task};

/// How reference samples were drawn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceInfo {
    /// `exact` (closed form, inversion or exact rejection) or `mcmc`.
    pub kind: String,
    /// The convergence diagnostics of an MCMC reference (the sampler only returns samples
    /// that passed its checks: split-R̂ ≤ 1.01 and ESS ≥ the number of samples).
    pub mcmc: Option<McmcSummary>,
}

/// The convergence diagnostics of an MCMC reference run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McmcSummary {
    /// Chains.
    pub chains: usize,
    /// Warm-up iterations per chain.
    pub warmup: usize,
    /// Sampling iterations per chain.
    pub iterations: usize,
    /// Acceptance rate of the sampling phase.
    pub acceptance_rate: f64,
    /// The largest rank-normalized (folded) split-R̂ over the coordinates.
    pub max_rhat: f64,
    /// The smallest bulk or tail effective sample size over the coordinates.
    pub min_ess: f64,
    /// The ESS the run had to reach.
    pub required_ess: f64,
}

impl From<&McmcDiagnostics> for McmcSummary {
    fn from(d: &McmcDiagnostics) -> Self {
        Self {
            chains: d.chains,
            warmup: d.warmup,
            iterations: d.iterations,
            acceptance_rate: d.acceptance_rate,
            max_rhat: d.max_rhat(),
            min_ess: d.min_ess(),
            // The benchmark's Metropolis references always have an ESS target.
            required_ess: d.required_ess.unwrap_or(0.0),
        }
    }
}

/// `n` reference samples of `task`'s posterior at `x_o`, or `None` if the task has no
/// reference sampler.
///
/// # Errors
/// An observation the sampler rejects, a spent rejection budget, MCMC chains that do not
/// pass the convergence checks.
pub fn reference_samples(
    task: &dyn Task,
    x_o: &[f64],
    n: usize,
    rng: &mut dyn RngCore,
) -> Option<Result<(DMatrix<f64>, ReferenceInfo)>> {
    Some(match task.name() {
        "slcp" => mcmc(SlcpPosterior::new(x_o).and_then(|p| p.sample_with_diagnostics(n, rng))),
        "slcp_distractors" => mcmc(
            SlcpDistractors::slcp_data(x_o)
                .and_then(|data| SlcpPosterior::new(&data))
                .and_then(|p| p.sample_with_diagnostics(n, rng)),
        ),
        "bernoulli_glm" => {
            mcmc(BernoulliGlmPosterior::new(x_o).and_then(|p| p.sample_with_diagnostics(n, rng)))
        }
        "bernoulli_glm_raw" => mcmc(
            BernoulliGlmPosterior::from_responses(x_o)
                .and_then(|p| p.sample_with_diagnostics(n, rng)),
        ),
        _ => {
            let exact = task.reference_posterior(x_o)?;
            exact
                .and_then(|p| p.sample(n, rng))
                .map_err(Into::into)
                .map(|s| {
                    let info = ReferenceInfo {
                        kind: "exact".into(),
                        mcmc: None,
                    };
                    (s, info)
                })
        }
    })
}

/// Samples and diagnostics of an MCMC reference run as samples and [`ReferenceInfo`].
fn mcmc(
    run: Result<(DMatrix<f64>, McmcDiagnostics), BenchmarkError>,
) -> Result<(DMatrix<f64>, ReferenceInfo)> {
    let (samples, diagnostics) = run?;
    let info = ReferenceInfo {
        kind: "mcmc".into(),
        mcmc: Some(McmcSummary::from(&diagnostics)),
    };
    Ok((samples, info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use simfer_benchmark::task;
    use simfer_distributions::rng_from_seed;

    fn observation(name: &str) -> Vec<f64> {
        let t = task(name).unwrap();
        let theta = t.prior().sample(&mut rng_from_seed(1));
        let mut x = vec![0.0; t.x_dim()];
        t.simulator()
            .simulate(theta.as_slice(), &mut rng_from_seed(2), &mut x)
            .unwrap();
        x
    }

    #[test]
    fn exact_mcmc_and_missing_references() {
        let mut rng = rng_from_seed(3);
        let two_moons = task("two_moons").unwrap();
        let (s, info) =
            reference_samples(two_moons.as_ref(), &observation("two_moons"), 300, &mut rng)
                .unwrap()
                .unwrap();
        assert_eq!(
            (s.shape(), info.kind.as_str(), info.mcmc),
            ((2, 300), "exact", None)
        );

        for name in ["bernoulli_glm", "slcp_distractors"] {
            let t = task(name).unwrap();
            let (s, info) = reference_samples(t.as_ref(), &observation(name), 500, &mut rng)
                .unwrap()
                .unwrap();
            assert_eq!((s.nrows(), s.ncols()), (t.theta_dim(), 500));
            assert_eq!(info.kind, "mcmc");
            let m = info.mcmc.unwrap();
            assert!(m.max_rhat <= 1.01 && m.min_ess >= 500.0, "{m:?}");
        }

        let sir = task("sir").unwrap();
        assert!(reference_samples(sir.as_ref(), &observation("sir"), 10, &mut rng).is_none());
        // A wrong-length observation is an error, not a panic.
        assert!(
            reference_samples(two_moons.as_ref(), &[0.0], 10, &mut rng).is_some_and(|r| r.is_err())
        );
    }
}
