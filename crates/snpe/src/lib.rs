//! # simfer-snpe: losses and the trainer for neural posterior estimation
//!
//! This crate turns simulated (θ, x) pairs into a trained conditional density estimator
//! q(θ | x), as the reference library's NPE-C trainer does (spec §1.3, §4):
//!
//! - [`Loss`]: the interface a loss implements over minibatches; [`MaximumLikelihood`]
//!   for round 0 (and of x given θ, for NLE) and [`AtomicLoss`] (APT) for later rounds,
//!   with the combined-loss option; [`NreLoss`] for the ratio classifier of NRE (NRE-A,
//!   NRE-B, NRE-C, BNRE); [`NonAtomicLoss`], APT's closed-form proposal correction for
//!   mixture density networks;
//! - [`TrainingData`] and [`DataSplit`]: pooled data with the true prior's log-densities,
//!   and the random 90/10 split drawn anew for each training call;
//! - [`Trainer`]: minibatches of 200 reshuffled every epoch (last partial batch dropped),
//!   Adam at 5e-4, global-norm clipping at 5.0, early stopping after 20 epochs without
//!   strict improvement, best weights restored; it returns a [`TrainingHistory`];
//! - [`with_interrupt_check`]: stop a training from outside (e.g. on Ctrl-C) between
//!   minibatches, with the best weights so far restored.
//!
//! The estimator is any [`simfer_flows::ConditionalDensityEstimator`]; results do not
//! depend on the number of threads.
//!
//! ```
//! use nalgebra::DMatrix;
//! use simfer_distributions::{BoxUniform, Prior, rng_from_seed};
//! use simfer_flows::{Maf, MafConfig};
//! use simfer_snpe::{DataSplit, MaximumLikelihood, Trainer, TrainingConfig, TrainingData};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = rng_from_seed(1);
//! let prior = BoxUniform::uniform(1, -1.0, 1.0)?;
//! let theta = prior.sample_batch(300, &mut rng);
//! let x = theta.map(|t| 2.0 * t);
//! let data = TrainingData::with_prior(theta, x, &prior, vec![true; 300])?;
//! let split = DataSplit::random(data.len(), 0.1, &mut rng)?;
//! let (theta_train, x_train) = data.gather(&split.train);
//! let config = MafConfig { hidden_features: 8, num_transforms: 1, ..MafConfig::default() };
//! let mut maf = Maf::new(&config, &theta_train, &x_train, 7)?;
//! let trainer = Trainer::new(TrainingConfig { max_num_epochs: Some(3), ..Default::default() })?;
//! let history = trainer.train(&mut maf, &mut MaximumLikelihood::new(), &data, &split, 0, &mut rng, None)?;
//! assert_eq!(history.epochs_trained, 3);
//! # Ok(()) }
//! ```

mod data;
mod error;
mod interrupt;
mod loss;
mod non_atomic;
mod nre;
mod trainer;

pub use data::{DataSplit, TrainingData};
pub use error::SnpeError;
pub use interrupt::{interrupt_requested, with_interrupt_check};
pub use loss::{AtomicLoss, Batch, Loss, MaximumLikelihood};
pub use non_atomic::{NonAtomicLoss, PriorTerm};
pub use nre::{NreLoss, NreVariant};
pub use trainer::{
    EarlyStopping, EpochReport, Progress, StopReason, Trainer, TrainingConfig, TrainingHistory,
};
