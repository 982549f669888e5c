//! Conditional normalizing flows with hand-written backprop on nalgebra: dense and
//! masked layers, MADE, the masked autoregressive flow (MAF) as the reference library
//! builds it, Adam and gradient clipping. Usable on its own as a conditional density
//! estimator q(θ | x).
//!
//! Batches hold one sample per column (`D × n`). Every model keeps its parameters in one
//! flat `Vec<f64>`; gradients, the optimizer, clipping and save/load work on flat slices.
//!
//! ```
//! use simfer_flows::{Adam, clip_grad_norm};
//! let mut params = vec![1.0, -2.0];
//! let mut grad = vec![30.0, 40.0];
//! let norm = clip_grad_norm(&mut grad, 5.0);
//! assert_eq!(norm, 50.0);
//! let mut adam = Adam::new(params.len(), 5e-4);
//! adam.step(&mut params, &grad);
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

pub use error::FlowError;
pub use estimator::ConditionalDensityEstimator;
pub use layers::{Activation, Dense, MaskedDense};
pub use maf::{Maf, MafConfig, MafWorkspace, Standardization};
pub use optim::{Adam, clip_grad_norm};
