//! # simfer-flows: conditional density estimators
//!
//! Conditional density estimators q(input | condition) with hand-written backprop, built
//! on [`simfer_nn`], behind one object-safe interface, and usable on their own: no other
//! crate of the workspace but simfer-nn is in the build. For posterior estimation the
//! input is θ and the condition is x; for likelihood estimation, the other way round.
//!
//! * [`ConditionalDensityEstimator`]: the interface — log-densities, a forward/backward
//!   pair on a reusable [`Workspace`] whose backward pass adds gradients with respect to
//!   the parameters and, when asked, the input and the condition ([`Gradients`]),
//!   sampling;
//! * the estimators: [`Maf`] (the masked autoregressive flow as the reference library
//!   builds it; [`MafConfig`]'s defaults are the reference's), [`Nsf`] (the neural
//!   spline flow: rational-quadratic spline couplings; [`NsfConfig`]'s defaults are the
//!   reference's) and [`Mdn`] (the reference's mixture density network, [`MdnConfig`]; its
//!   [`Mixture`] at a condition and the backward pass of its raw outputs serve losses
//!   written on the mixture);
//! * run-time choice: [`EstimatorKind`] (a name such as `"maf"`), [`EstimatorConfig`] (a
//!   kind with its settings) and [`Estimator`] (any built estimator), which save and load
//!   in the self-describing format of [`io`] (kind, format version, architecture);
//! * [`classifier`]: the [`RatioClassifier`] of neural ratio estimation (a logit of θ and
//!   x on the same machinery);
//! * [`standardize`]: the z-scoring of input and condition;
//! * `testing` (feature `testing`): the conformance harness any estimator can run.
//!
//! Batches hold one sample per column (`D × n`). Every model keeps its parameters in one
//! flat `Vec<f64>`; gradients, the optimizer, clipping and save/load work on flat slices.
//! The passes run on simfer-nn's deterministic pass driver, so results are bit-identical
//! for any number of threads. The training passes run in single precision by default
//! ([`MafConfig::precision`], [`Precision`]); parameters, losses and gradients handed back
//! stay `f64`, and evaluation (`log_prob`, `sample`, …) is always `f64`.
//!
//! Features: `parallel` (rayon, default), `serde` (save/load, default), `testing`.
//!
//! One maximum-likelihood training step:
//! ```
//! use nalgebra::DMatrix;
//! use simfer_flows::{
//!     Adam, ConditionalDensityEstimator, Gradients, Maf, MafConfig, Parameterized, clip_grad_norm,
//! };
//!
//! // θ (2 × n) and the condition x (1 × n): θ ≈ (x, −x) + noise.
//! let n = 64;
//! let x = DMatrix::from_fn(1, n, |_, j| (j as f64 * 0.1).sin());
//! let theta = DMatrix::from_fn(2, n, |i, j| {
//!     let s = if i == 0 { 1.0 } else { -1.0 };
//!     s * x[(0, j)] + 0.1 * (j as f64 * 1.7 + i as f64).cos()
//! });
//! let mut maf = Maf::new(&MafConfig::default(), &theta, &x, 0)?;
//!
//! let mut adam = Adam::new(maf.num_params(), 5e-4);
//! let mut ws = maf.workspace();
//! let mut log_q = vec![0.0; n];
//! let mut grad = vec![0.0; maf.num_params()];
//! // The loss is −mean log q: weights −1/n give its gradient.
//! let weights = vec![-1.0 / n as f64; n];
//! maf.forward(&mut ws, theta.as_view(), x.as_view(), &mut log_q)?;
//! maf.backward(&mut ws, &weights, Gradients::params(&mut grad))?;
//! clip_grad_norm(&mut grad, 5.0);
//! adam.step(maf.params_mut(), &grad);
//!
//! let samples = maf.sample(100, &[0.5], &mut rand::rng())?;
//! assert_eq!(samples.shape(), (2, 100));
//! # Ok::<(), simfer_flows::FlowError>(())
//! ```

mod any;
pub mod classifier;
pub mod error;
pub mod estimator;
#[cfg(feature = "serde")]
pub mod io;
pub mod maf;
pub mod mdn;
pub mod nsf;
mod passes;
pub mod standardize;
#[cfg(feature = "testing")]
pub mod testing;

pub use any::{Estimator, EstimatorConfig, EstimatorKind, EstimatorSettings};
pub use classifier::{ClassifierConfig, RatioClassifier};
pub use error::FlowError;
pub use estimator::{ConditionalDensityEstimator, Gradients, Parameterized, Workspace};
pub use maf::{Maf, MafConfig};
pub use mdn::{Mdn, MdnConfig, Mixture};
pub use nsf::{Nsf, NsfConfig};
/// The numerical building blocks the estimators are made of.
pub use simfer_nn as nn;
pub use simfer_nn::{Activation, Adam, Optimizer, Precision, clip_grad_norm};
pub use standardize::Standardization;
