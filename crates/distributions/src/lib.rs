//! Priors for simulation-based inference: box-uniform, Gaussian (by covariance or by
//! precision), log-normal and products of independent priors, with support checks, seeded
//! batch sampling and serializable descriptions.
//!
//! - [`Prior`] is object safe (`Box<dyn Prior>`, `Arc<dyn Prior>` and `&dyn Prior` are priors
//!   too); batches hold one θ per column (`D × n`).
//! - [`Proposal`] is what a round of simulations draws θ from: every prior is one, and a
//!   posterior with a default observation can be one too.
//! - [`derive_rng`] gives the independent generator of stream `i` of a seed, so that parallel
//!   work does not depend on the number of threads.
//! - Supports are closed: a bounded prior's log-density is finite on its whole box,
//!   bounds included. [`UnconstrainedTransform`] maps a prior's support to ℝᴰ (for MCMC
//!   and MAP search), and [`Prior::grad_log_prob`] gives the log-density's gradient.
//!
//! ```
//! use simfer_distributions::{BoxUniform, Prior, Proposal, derive_rng};
//!
//! let prior = BoxUniform::uniform(3, -2.0, 2.0)?;
//! let mut rng = derive_rng(42, 0);
//! let theta = prior.sample_batch(1000, &mut rng); // 3 × 1000
//! let log_p = prior.log_prob_batch(&theta)?;
//! assert!(log_p.iter().all(|&lp| lp == -3.0 * 4f64.ln()));
//!
//! // Wrong dimensions are errors, not panics.
//! assert!(prior.log_prob(&[0.0, 0.0]).is_err());
//! assert!(BoxUniform::new(vec![1.0], vec![0.0]).is_err());
//!
//! // Any prior is a proposal.
//! let proposal: &dyn Proposal = &prior;
//! assert_eq!(proposal.propose(5, &mut rng)?.shape(), (3, 5));
//! # Ok::<(), simfer_distributions::DistributionError>(())
//! ```

mod box_uniform;
mod error;
mod independent;
mod lognormal;
mod normal;
mod prior;
mod rng;
mod spec;
mod support;
mod transform;

pub use box_uniform::BoxUniform;
pub use error::DistributionError;
pub use independent::Independent;
pub use lognormal::LogNormal;
pub use normal::MultivariateNormal;
pub use prior::{Prior, Proposal};
pub use rng::{SeededRng, derive_rng, rng_from_seed};
pub use spec::PriorSpec;
pub use support::Support;
pub use transform::{Coordinate, JacobianAt, UnconstrainedTransform};

/// `½ ln 2π`.
pub(crate) const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;
