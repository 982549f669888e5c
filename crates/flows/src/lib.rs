//! Conditional normalizing flows with hand-written backprop on nalgebra: dense and
//! masked layers, MADE, the masked autoregressive flow (MAF) as the reference library
//! builds it, Adam and gradient clipping. Usable on its own as a conditional density
//! estimator q(θ | x); it depends on no other crate of the workspace.
//!
//! Batches hold one sample per column (`D × n`). Every model keeps its parameters in one
//! flat `Vec<f64>`; gradients, the optimizer, clipping and save/load work on flat slices.
//! Batches are split into column chunks whose boundaries depend only on the batch size
//! and are processed in parallel with rayon, with gradients summed in a fixed order, so
//! results are bit-identical for any number of threads.
//!
//! The training passes ([`ConditionalDensityEstimator::forward`] and
//! [`backward`](ConditionalDensityEstimator::backward)) run in single precision by
//! default ([`MafConfig::precision`], [`Precision`]): parameters, losses and gradients
//! handed back stay `f64`, and evaluation (`log_prob`, `sample`, …) is always `f64`.
//!
//! * [`layers`]: [`Dense`] and [`MaskedDense`] layers, [`Activation`]s, forward and
//!   backward on column batches;
//! * [`made`], [`maf`]: the MADE and the [`Maf`] (its [`MafConfig`] defaults are the
//!   reference's: 50 hidden units, 5 transforms, 2 blocks, tanh);
//! * [`estimator`]: the [`ConditionalDensityEstimator`] trait the training code uses;
//! * [`optim`]: [`Adam`] and [`clip_grad_norm`];
//! * [`io`]: versioned save/load; [`fastmath`], [`linalg`]: the numerical kernels,
//!   generic over the [`Real`] type (`f64`, `f32`) of [`precision`].
//!
//! One maximum-likelihood training step:
//! ```
//! use nalgebra::DMatrix;
//! use simfer_flows::{Adam, ConditionalDensityEstimator, Maf, MafConfig, clip_grad_norm};
//!
//! // θ (2 × n) and the context x (1 × n): θ ≈ (x, −x) + noise.
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
//! maf.backward(&mut ws, &weights, &mut grad)?;
//! clip_grad_norm(&mut grad, 5.0);
//! adam.step(maf.params_mut(), &grad);
//!
//! let samples = maf.sample(100, &[0.5], &mut rand::rng())?;
//! assert_eq!(samples.shape(), (2, 100));
//! # Ok::<(), simfer_flows::FlowError>(())
//! ```

pub mod error;
pub mod estimator;
pub mod fastmath;
pub mod io;
pub mod layers;
pub mod linalg;
pub mod made;
pub mod maf;
pub mod optim;
pub mod precision;
mod sgemm;

pub use error::FlowError;
pub use estimator::ConditionalDensityEstimator;
pub use layers::{Activation, Dense, MaskedDense};
pub use maf::{Maf, MafConfig, MafWorkspace, Standardization};
pub use optim::{Adam, clip_grad_norm};
pub use precision::{Precision, Real};
