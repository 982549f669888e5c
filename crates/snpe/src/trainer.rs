//! The training loop of spec §4: minibatches, validation, early stopping, clipping, Adam.

use std::time::Instant;

use nalgebra::DMatrix;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use simfer_flows::{Adam, Parameterized, Workspace, clip_grad_norm};

use crate::SnpeError;
use crate::data::{DataSplit, TrainingData, shuffle};
use crate::loss::{Batch, Loss};

/// Training settings; the defaults are the reference library's (spec §1.2, §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingConfig {
    /// Minibatch size (200). Batches are `min(batch_size, n)` and the last partial batch
    /// of an epoch is dropped.
    pub batch_size: usize,
    /// Adam's learning rate (5e-4).
    pub learning_rate: f64,
    /// Fraction of the data held out for validation (0.1).
    pub validation_fraction: f64,
    /// Stop after this many epochs without a strict improvement of the validation loss (20).
    pub stop_after_epochs: usize,
    /// At most this many epochs (`None`: no cap). The reference runs one epoch more than
    /// its `max_num_epochs`; here the cap is exact.
    pub max_num_epochs: Option<usize>,
    /// Clip the global L2 norm of the gradient to this value (`Some(5.0)`; `None`: no clipping).
    pub clip_max_norm: Option<f64>,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            batch_size: 200,
            learning_rate: 5e-4,
            validation_fraction: 0.1,
            stop_after_epochs: 20,
            max_num_epochs: None,
            clip_max_norm: Some(5.0),
        }
    }
}

impl TrainingConfig {
    /// Checks every setting, with a message naming the one that is wrong.
    pub fn check(&self) -> Result<(), SnpeError> {
        let bad = |name, message: String| Err(SnpeError::InvalidConfig { name, message });
        if self.batch_size == 0 {
            return bad("batch_size", "expected at least 1, found 0".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(
                "learning_rate",
                format!("expected a positive number, found {}", self.learning_rate),
            );
        }
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) {
            return bad(
                "validation_fraction",
                format!(
                    "expected a number in (0, 1), found {}",
                    self.validation_fraction
                ),
            );
        }
        if self.stop_after_epochs == 0 {
            return bad("stop_after_epochs", "expected at least 1, found 0".into());
        }
        if self.max_num_epochs == Some(0) {
            return bad("max_num_epochs", "expected at least 1, found 0".into());
        }
        if let Some(c) = self.clip_max_norm
            && !(c.is_finite() && c > 0.0)
        {
            return bad(
                "clip_max_norm",
                format!("expected a positive number, found {c}"),
            );
        }
        Ok(())
    }
}

/// Why training stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// The validation loss did not improve for `stop_after_epochs` epochs.
    Converged,
    /// The epoch cap was reached first.
    MaxEpochs,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopReason::Converged => "converged",
            StopReason::MaxEpochs => "reached the epoch cap",
        })
    }
}

/// What one `train` call did, epoch by epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingHistory {
    /// The round this training belongs to (0-based).
    pub round: usize,
    /// The loss that was minimized.
    pub loss: String,
    /// Mean training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Mean validation loss per epoch.
    pub validation_loss: Vec<f64>,
    /// Seconds per epoch.
    pub epoch_seconds: Vec<f64>,
    /// The epoch (1-based) whose weights were kept; 0 would mean the initial weights.
    pub best_epoch: usize,
    /// The validation loss of the kept weights.
    pub best_validation_loss: f64,
    /// Epochs trained.
    pub epochs_trained: usize,
    /// Why training stopped.
    pub stop_reason: StopReason,
    /// Training samples and validation samples used.
    pub num_train: usize,
    /// Validation samples used.
    pub num_validation: usize,
    /// Wall-clock seconds of the whole call.
    pub seconds: f64,
}

impl TrainingHistory {
    /// The history as CSV: `epoch,train_loss,validation_loss,seconds`, one row per epoch.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("epoch,train_loss,validation_loss,seconds\n");
        for e in 0..self.epochs_trained {
            s.push_str(&format!(
                "{},{},{},{}\n",
                e + 1,
                self.train_loss[e],
                self.validation_loss[e],
                self.epoch_seconds[e]
            ));
        }
        s
    }
}

/// Progress of one epoch, handed to an observer.
#[derive(Debug, Clone, Copy)]
pub struct EpochReport {
    /// Round (0-based).
    pub round: usize,
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean training loss of the epoch.
    pub train_loss: f64,
    /// Mean validation loss of the epoch.
    pub validation_loss: f64,
    /// Best validation loss so far.
    pub best_validation_loss: f64,
    /// Epochs since the last improvement.
    pub epochs_since_improvement: usize,
}

/// Early stopping as in the reference (spec §4.4): an epoch improves only if its
/// validation loss is strictly lower than the best so far; after `patience` epochs without
/// improvement training stops and the best weights are restored. Epoch 0 (the initial
/// weights) counts as the first best, with loss +∞.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    patience: usize,
    best: f64,
    best_epoch: usize,
    since: usize,
}

/// What [`EarlyStopping::update`] decided for an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The epoch improved on the best: snapshot its weights.
    Improved,
    /// No improvement, keep going.
    NoImprovement,
    /// No improvement for `patience` epochs: restore the best weights and stop.
    Converged,
}

impl EarlyStopping {
    /// Early stopping with the given patience (the reference uses 20).
    pub fn new(patience: usize) -> Self {
        Self {
            patience,
            best: f64::INFINITY,
            best_epoch: 0,
            since: 0,
        }
    }

    /// Records the validation loss of `epoch` (1-based).
    pub fn update(&mut self, epoch: usize, validation_loss: f64) -> Progress {
        if validation_loss < self.best {
            self.best = validation_loss;
            self.best_epoch = epoch;
            self.since = 0;
            Progress::Improved
        } else {
            self.since += 1;
            if self.since >= self.patience {
                Progress::Converged
            } else {
                Progress::NoImprovement
            }
        }
    }

    /// The best validation loss so far.
    pub fn best(&self) -> f64 {
        self.best
    }

    /// The epoch of the best validation loss (0: none yet).
    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }

    /// Epochs since the last improvement.
    pub fn since(&self) -> usize {
        self.since
    }
}

/// Reusable batch buffers.
struct BatchBuffers {
    theta: DMatrix<f64>,
    x: DMatrix<f64>,
    prior_log_prob: Vec<f64>,
    from_prior: Vec<bool>,
}

impl BatchBuffers {
    fn new(theta_dim: usize, x_dim: usize, size: usize) -> Self {
        Self {
            theta: DMatrix::zeros(theta_dim, size),
            x: DMatrix::zeros(x_dim, size),
            prior_log_prob: vec![0.0; size],
            from_prior: vec![false; size],
        }
    }

    fn fill(&mut self, data: &TrainingData, indices: &[usize]) -> Batch<'_> {
        let b = indices.len();
        if self.theta.ncols() != b {
            *self = Self::new(data.theta().nrows(), data.x().nrows(), b);
        }
        for (j, &i) in indices.iter().enumerate() {
            self.theta.column_mut(j).copy_from(&data.theta().column(i));
            self.x.column_mut(j).copy_from(&data.x().column(i));
            self.prior_log_prob[j] = data.prior_log_prob()[i];
            self.from_prior[j] = data.from_prior()[i];
        }
        Batch {
            theta: self.theta.as_view(),
            x: self.x.as_view(),
            prior_log_prob: &self.prior_log_prob,
            from_prior: &self.from_prior,
        }
    }
}

/// Where in training a loss was evaluated.
struct Where {
    round: usize,
    epoch: usize,
    batch: usize,
    phase: &'static str,
    best_epoch: usize,
}

/// Passes a finite loss through. Otherwise restores the best weights so far and returns
/// the error, turning a non-finite loss (or gradient) into one that names where it
/// happened.
fn guard<E: Parameterized + ?Sized>(
    estimator: &mut E,
    best: &[f64],
    evaluated: Result<f64, SnpeError>,
    finite_grad: bool,
    at: Where,
) -> Result<f64, SnpeError> {
    let error = match evaluated {
        Ok(value) if value.is_finite() && finite_grad => return Ok(value),
        Ok(value) => SnpeError::NonFiniteLoss {
            value,
            round: at.round,
            epoch: at.epoch,
            batch: at.batch,
            phase: at.phase,
            best_epoch: at.best_epoch,
        },
        Err(e) => e,
    };
    estimator.params_mut().copy_from_slice(best);
    Err(error)
}

/// Trains an estimator with a loss on a data split (spec §4).
#[derive(Debug, Clone, Default)]
pub struct Trainer {
    config: TrainingConfig,
}

impl Trainer {
    /// A trainer with checked settings.
    pub fn new(config: TrainingConfig) -> Result<Self, SnpeError> {
        config.check()?;
        Ok(Self { config })
    }

    /// The settings.
    pub fn config(&self) -> &TrainingConfig {
        &self.config
    }

    /// Trains `estimator` on `split.train` until early stopping (or the epoch cap), then
    /// restores the weights with the best validation loss.
    ///
    /// A new Adam state is created per call; batches are reshuffled every epoch with `rng`,
    /// which also draws the atoms of the atomic loss. `observer` is called after every
    /// epoch. On a non-finite loss the best weights so far are restored and an error
    /// naming the round, epoch and batch is returned; likewise, with
    /// [`SnpeError::Interrupted`], when an interruption check installed on this thread
    /// ([`with_interrupt_check`](crate::with_interrupt_check)) asks to stop before a
    /// minibatch.
    #[allow(clippy::too_many_arguments)]
    pub fn train<E, L>(
        &self,
        estimator: &mut E,
        loss: &mut L,
        data: &TrainingData,
        split: &DataSplit,
        round: usize,
        rng: &mut dyn RngCore,
        mut observer: Option<&mut dyn FnMut(&EpochReport)>,
    ) -> Result<TrainingHistory, SnpeError>
    where
        E: Parameterized + ?Sized,
        L: Loss<E>,
    {
        let start = Instant::now();
        let cfg = &self.config;
        self.check_inputs(data, split)?;
        loss.check(estimator, data)?;
        let n_train = split.train.len();
        let n_val = split.validation.len();
        let train_bs = cfg.batch_size.min(n_train);
        let val_bs = cfg.batch_size.min(n_val);
        let (train_batches, val_batches) = (n_train / train_bs, n_val / val_bs);

        let mut adam = Adam::new(estimator.num_params(), cfg.learning_rate);
        let mut grad = vec![0.0; estimator.num_params()];
        let mut best_params = estimator.params().to_vec();
        let mut ws = Workspace::new();
        let mut buffers = BatchBuffers::new(data.theta().nrows(), data.x().nrows(), train_bs);
        let mut train_idx = split.train.clone();
        let mut val_idx = split.validation.clone();
        let mut stopping = EarlyStopping::new(cfg.stop_after_epochs);
        let mut history = TrainingHistory {
            round,
            loss: loss.name().to_string(),
            train_loss: Vec::new(),
            validation_loss: Vec::new(),
            epoch_seconds: Vec::new(),
            best_epoch: 0,
            best_validation_loss: f64::INFINITY,
            epochs_trained: 0,
            stop_reason: StopReason::MaxEpochs,
            num_train: train_batches * train_bs,
            num_validation: val_batches * val_bs,
            seconds: 0.0,
        };

        let mut epoch = 0;
        loop {
            if cfg.max_num_epochs.is_some_and(|m| epoch >= m) {
                history.stop_reason = StopReason::MaxEpochs;
                break;
            }
            epoch += 1;
            let epoch_start = Instant::now();
            shuffle(&mut train_idx, rng);
            let mut train_sum = 0.0;
            for b in 0..train_batches {
                if crate::interrupt_requested() {
                    estimator.params_mut().copy_from_slice(&best_params);
                    return Err(SnpeError::Interrupted {
                        round,
                        epoch,
                        best_epoch: stopping.best_epoch(),
                    });
                }
                let batch = buffers.fill(data, &train_idx[b * train_bs..(b + 1) * train_bs]);
                grad.iter_mut().for_each(|g| *g = 0.0);
                let evaluated = loss.evaluate(estimator, &mut ws, &batch, rng, Some(&mut grad));
                let finite_grad = grad.iter().all(|g| g.is_finite());
                let at = Where {
                    round,
                    epoch,
                    batch: b,
                    phase: "training",
                    best_epoch: stopping.best_epoch(),
                };
                let value = guard(estimator, &best_params, evaluated, finite_grad, at)?;
                if let Some(max) = cfg.clip_max_norm {
                    clip_grad_norm(&mut grad, max);
                }
                // Adam minimizes: the gradient is of the loss.
                adam.step(estimator.params_mut(), &grad);
                train_sum += value;
            }
            let train_loss = train_sum / train_batches as f64;

            shuffle(&mut val_idx, rng);
            let mut val_sum = 0.0;
            for b in 0..val_batches {
                let batch = buffers.fill(data, &val_idx[b * val_bs..(b + 1) * val_bs]);
                let evaluated = loss.evaluate(estimator, &mut ws, &batch, rng, None);
                let at = Where {
                    round,
                    epoch,
                    batch: b,
                    phase: "validation",
                    best_epoch: stopping.best_epoch(),
                };
                let value = guard(estimator, &best_params, evaluated, true, at)?;
                val_sum += value;
            }
            let val_loss = val_sum / val_batches as f64;

            history.train_loss.push(train_loss);
            history.validation_loss.push(val_loss);
            history
                .epoch_seconds
                .push(epoch_start.elapsed().as_secs_f64());
            let progress = stopping.update(epoch, val_loss);
            if progress == Progress::Improved {
                best_params.copy_from_slice(estimator.params());
            }
            if let Some(obs) = observer.as_mut() {
                obs(&EpochReport {
                    round,
                    epoch,
                    train_loss,
                    validation_loss: val_loss,
                    best_validation_loss: stopping.best(),
                    epochs_since_improvement: stopping.since(),
                });
            }
            if progress == Progress::Converged {
                history.stop_reason = StopReason::Converged;
                break;
            }
        }
        estimator.params_mut().copy_from_slice(&best_params);
        history.best_epoch = stopping.best_epoch();
        history.best_validation_loss = stopping.best();
        history.epochs_trained = epoch;
        history.seconds = start.elapsed().as_secs_f64();
        Ok(history)
    }

    fn check_inputs(&self, data: &TrainingData, split: &DataSplit) -> Result<(), SnpeError> {
        if split.train.is_empty() || split.validation.is_empty() {
            return Err(SnpeError::NotEnoughData {
                found: data.len(),
                needed: 2,
                reason: "training needs at least one training and one validation sample".into(),
            });
        }
        if let Some(&i) = split
            .train
            .iter()
            .chain(&split.validation)
            .find(|&&i| i >= data.len())
        {
            return Err(SnpeError::DimensionMismatch {
                what: format!("split index {i}: the number of samples must exceed it"),
                expected: data.len(),
                found: i,
            });
        }
        Ok(())
    }
}
