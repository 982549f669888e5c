//! The multi-round orchestrator: append simulations, train, build the posterior, and
//! propose the next round's θ's from it, recording which proposal produced which data.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use nalgebra::DMatrix;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use simfer_distributions::{Prior, SeededRng, derive_rng};
use simfer_flows::{ConditionalDensityEstimator, Estimator, EstimatorConfig, Maf, MafConfig};
use simfer_simulators::{SimulationOptions, Simulator, simulate_batch};
use simfer_snpe::{
    AtomicLoss, DataSplit, EpochReport, MaximumLikelihood, Trainer, TrainingConfig, TrainingData,
    TrainingHistory,
};

use crate::posterior::SamplingOptions;
use crate::progress::TrainingProgress;
use crate::{DirectPosterior, InferenceError};

/// Builds a fresh density estimator from the training split (whose statistics it may use
/// for standardization) and a seed. [`EstimatorConfig`] builds any kind of this
/// workspace's estimators (the default: the reference's MAF) and [`MafConfig`] a [`Maf`];
/// implement this to put another estimator behind the orchestrator.
pub trait EstimatorBuilder: Send + Sync {
    /// The estimator built.
    type Estimator: ConditionalDensityEstimator + Clone;
    /// Builds an estimator for θ (`theta_dim × n`) given x (`x_dim × n`).
    fn build(
        &self,
        theta: &DMatrix<f64>,
        x: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Self::Estimator, InferenceError>;
}

impl EstimatorBuilder for EstimatorConfig {
    type Estimator = Estimator;
    fn build(
        &self,
        theta: &DMatrix<f64>,
        x: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Estimator, InferenceError> {
        Ok(EstimatorConfig::build(self, theta, x, seed)?)
    }
}

impl EstimatorBuilder for MafConfig {
    type Estimator = Maf;
    fn build(
        &self,
        theta: &DMatrix<f64>,
        x: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Maf, InferenceError> {
        Ok(Maf::new(self, theta, x, seed)?)
    }
}

/// What to do with simulations that contain NaN or ±∞ (spec §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum InvalidPolicy {
    /// As the reference: exclude (and report) them in round 0; error in later rounds,
    /// where excluding them would bias the atomic loss.
    #[default]
    ExcludeFirstRoundOnly,
    /// Always exclude and report them (later rounds: the posterior may be biased).
    Exclude,
    /// Error in every round.
    Error,
}

/// Settings of multi-round SNPE-C. The defaults are the reference library's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnpeConfig<B = EstimatorConfig> {
    /// The density estimator (default: the MAF of the reference, 5 transforms of 50 units;
    /// any kind through [`EstimatorConfig`]).
    pub estimator: B,
    /// Training settings (batch 200, Adam 5e-4, clipping 5, patience 20, 10 % validation).
    pub training: TrainingConfig,
    /// Atoms per sample of the atomic loss (10).
    pub num_atoms: usize,
    /// Add the maximum-likelihood term on prior samples in later rounds (false).
    pub use_combined_loss: bool,
    /// Build a new network at every training call instead of continuing (false).
    pub retrain_from_scratch: bool,
    /// Leave out round-0 data in later rounds (false).
    pub discard_prior_samples: bool,
    /// What to do with invalid simulations.
    pub invalid: InvalidPolicy,
    /// How posteriors sample (rejection to the prior's support, with a budget).
    pub sampling: SamplingOptions,
    /// Show progress bars on simulation and training (only when stderr is a terminal).
    pub progress: bool,
}

impl Default for SnpeConfig {
    fn default() -> Self {
        Self {
            estimator: EstimatorConfig::default(),
            training: TrainingConfig::default(),
            num_atoms: 10,
            use_combined_loss: false,
            retrain_from_scratch: false,
            discard_prior_samples: false,
            invalid: InvalidPolicy::default(),
            sampling: SamplingOptions::default(),
            progress: false,
        }
    }
}

impl<B> SnpeConfig<B> {
    /// These settings with another estimator (e.g. a researcher's [`EstimatorBuilder`]).
    pub fn with_estimator<C>(self, estimator: C) -> SnpeConfig<C> {
        SnpeConfig {
            estimator,
            training: self.training,
            num_atoms: self.num_atoms,
            use_combined_loss: self.use_combined_loss,
            retrain_from_scratch: self.retrain_from_scratch,
            discard_prior_samples: self.discard_prior_samples,
            invalid: self.invalid,
            sampling: self.sampling,
            progress: self.progress,
        }
    }
}

/// Where a round's θ's came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProposalSource {
    /// The prior (round 0).
    Prior,
    /// The posterior trained on rounds up to `trained_on_round`, at the observation `x_o`.
    Posterior {
        /// The last round of data the proposal posterior was trained on.
        trained_on_round: usize,
        /// The observation it was conditioned on.
        x_o: Vec<f64>,
    },
}

/// θ's drawn by [`Snpe::propose`], to be simulated and handed back with
/// [`Snpe::append_proposed`]. It carries its proposal, so the data cannot be appended with
/// the wrong one.
#[derive(Debug, Clone)]
pub struct Proposed {
    owner: u64,
    round: usize,
    source: ProposalSource,
    theta: DMatrix<f64>,
}

impl Proposed {
    /// The θ's to simulate, `theta_dim × n`.
    pub fn theta(&self) -> &DMatrix<f64> {
        &self.theta
    }

    /// The round the simulations will belong to.
    pub fn round(&self) -> usize {
        self.round
    }

    /// Where the θ's came from.
    pub fn source(&self) -> &ProposalSource {
        &self.source
    }
}

/// The invalid simulations of a round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InvalidCounts {
    /// Indices (in the round's simulation order) of simulations with a NaN.
    pub nan: Vec<usize>,
    /// Indices of simulations with ±∞ and no NaN.
    pub inf: Vec<usize>,
}

impl InvalidCounts {
    /// Scans the columns of x.
    pub fn scan(x: &DMatrix<f64>) -> Self {
        let mut counts = Self::default();
        for (j, col) in x.column_iter().enumerate() {
            if col.iter().any(|v| v.is_nan()) {
                counts.nan.push(j);
            } else if col.iter().any(|v| v.is_infinite()) {
                counts.inf.push(j);
            }
        }
        counts
    }

    /// Number of invalid simulations.
    pub fn total(&self) -> usize {
        self.nan.len() + self.inf.len()
    }
}

/// One round's data and what happened to it.
#[derive(Debug, Clone)]
pub struct RoundData {
    /// The round (0 for prior data).
    pub round: usize,
    /// Where the θ's came from.
    pub proposal: ProposalSource,
    /// Valid θ's, `theta_dim × n_valid`.
    pub theta: DMatrix<f64>,
    /// Valid x's, `x_dim × n_valid`.
    pub x: DMatrix<f64>,
    /// Simulations appended, valid or not.
    pub simulated: usize,
    /// The invalid simulations, which were excluded.
    pub invalid: InvalidCounts,
    /// Seconds spent proposing and simulating (0 for data simulated elsewhere).
    pub seconds_simulate: f64,
}

static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// Stream numbers of the generators derived from the run's seed.
const STREAM_PROPOSE: u64 = 1 << 32;
const STREAM_SIMULATE: u64 = 2 << 32;
const STREAM_TRAIN: u64 = 3 << 32;
const STREAM_BUILD: u64 = 4 << 32;
const STREAM_POSTERIOR: u64 = 5 << 32;

/// Multi-round SNPE-C (APT) with the reference's steps, where the orchestrator itself
/// records which proposal produced each round's data.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use simfer_distributions::BoxUniform;
/// # use simfer_inference::{Snpe, SnpeConfig};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let simulator = simfer_benchmark::task("linear_gaussian")?.simulator();
/// let prior = Arc::new(BoxUniform::uniform(3, -2.0, 2.0)?);
/// let mut snpe = Snpe::new(prior, SnpeConfig::default(), 42)?;
/// snpe.set_default_x(&[0.0, 0.0, 0.0])?;
/// for _ in 0..2 {
///     snpe.simulate_round(simulator.as_ref(), 500)?; // from the prior, then the posterior
///     snpe.train()?;
/// }
/// let posterior = snpe.build_posterior()?;
/// # Ok(()) }
/// ```
pub struct Snpe<B: EstimatorBuilder = EstimatorConfig> {
    prior: Arc<dyn Prior>,
    config: SnpeConfig<B>,
    trainer: Trainer,
    seed: u64,
    owner: u64,
    x_o: Option<Vec<f64>>,
    rounds: Vec<RoundData>,
    estimator: Option<B::Estimator>,
    /// The last round of data the current estimator was trained on.
    trained_on_round: Option<usize>,
    histories: Vec<TrainingHistory>,
    proposals_drawn: u64,
    train_calls: u64,
}

impl<B: EstimatorBuilder> Snpe<B> {
    /// A new orchestrator for `prior` with checked settings; `seed` determines every random
    /// choice of the run (proposals, simulations, splits, atoms, initializations), whatever
    /// the number of threads.
    pub fn new(
        prior: Arc<dyn Prior>,
        config: SnpeConfig<B>,
        seed: u64,
    ) -> Result<Self, InferenceError> {
        let trainer = Trainer::new(config.training.clone())?;
        config.sampling.check()?;
        if config.num_atoms < 2 {
            return Err(InferenceError::InvalidConfig {
                name: "num_atoms",
                message: format!("expected at least 2, found {}", config.num_atoms),
            });
        }
        Ok(Self {
            prior,
            config,
            trainer,
            seed,
            owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
            x_o: None,
            rounds: Vec::new(),
            estimator: None,
            trained_on_round: None,
            histories: Vec::new(),
            proposals_drawn: 0,
            train_calls: 0,
        })
    }

    /// The prior.
    pub fn prior(&self) -> &Arc<dyn Prior> {
        &self.prior
    }

    /// The settings.
    pub fn config(&self) -> &SnpeConfig<B> {
        &self.config
    }

    /// Every round's data.
    pub fn rounds(&self) -> &[RoundData] {
        &self.rounds
    }

    /// The training history of every `train` call.
    pub fn histories(&self) -> &[TrainingHistory] {
        &self.histories
    }

    /// The current estimator, once trained.
    pub fn estimator(&self) -> Option<&B::Estimator> {
        self.estimator.as_ref()
    }

    /// The observation the later rounds focus on.
    pub fn default_x(&self) -> Option<&[f64]> {
        self.x_o.as_deref()
    }

    fn x_dim(&self) -> Option<usize> {
        self.rounds.first().map(|r| r.x.nrows())
    }

    /// Sets the observation x_o that later rounds focus on (checked: finite, and of the
    /// simulations' dimension once there are any).
    pub fn set_default_x(&mut self, x_o: &[f64]) -> Result<&mut Self, InferenceError> {
        if let Some((index, &value)) = x_o.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(InferenceError::NonFiniteObservation { index, value });
        }
        if let Some(d) = self.x_dim() {
            if d != x_o.len() {
                return Err(InferenceError::DimensionMismatch {
                    what: "length of the observation x_o, to match the simulations".into(),
                    expected: d,
                    found: x_o.len(),
                });
            }
        }
        self.x_o = Some(x_o.to_vec());
        Ok(self)
    }

    fn next_round(&self, source: &ProposalSource) -> usize {
        match source {
            ProposalSource::Prior => 0,
            ProposalSource::Posterior { .. } => self
                .rounds
                .iter()
                .map(|r| r.round)
                .max()
                .map_or(1, |m| m + 1),
        }
    }

    /// Draws `n` θ's from the current proposal: the prior before any training, afterwards
    /// the current posterior at x_o (which must be set).
    pub fn propose(&mut self, n: usize) -> Result<Proposed, InferenceError> {
        let mut rng = derive_rng(self.seed, STREAM_PROPOSE + self.proposals_drawn);
        self.proposals_drawn += 1;
        let (theta, source) = match (&self.estimator, self.trained_on_round) {
            (Some(_), Some(trained_on_round)) => {
                let posterior = self.build_posterior()?;
                let x_o = posterior
                    .default_x()
                    .ok_or(InferenceError::NoObservation)?
                    .to_vec();
                let theta = posterior.sample(n, None, &mut rng)?;
                (
                    theta,
                    ProposalSource::Posterior {
                        trained_on_round,
                        x_o,
                    },
                )
            }
            _ => (self.prior.sample_batch(n, &mut rng), ProposalSource::Prior),
        };
        let round = self.next_round(&source);
        Ok(Proposed {
            owner: self.owner,
            round,
            source,
            theta,
        })
    }

    /// Appends the simulations `x` (`x_dim × n`) of θ's drawn by [`propose`](Self::propose).
    /// Invalid simulations are handled by the [`InvalidPolicy`].
    pub fn append_proposed(
        &mut self,
        proposed: Proposed,
        x: DMatrix<f64>,
    ) -> Result<&RoundData, InferenceError> {
        self.append_inner(proposed, x, 0.0)
    }

    /// Appends simulations of θ's that the caller drew **from the prior** itself
    /// (round-0 data).
    pub fn append_prior_simulations(
        &mut self,
        theta: DMatrix<f64>,
        x: DMatrix<f64>,
    ) -> Result<&RoundData, InferenceError> {
        let proposed = Proposed {
            owner: self.owner,
            round: 0,
            source: ProposalSource::Prior,
            theta,
        };
        self.append_inner(proposed, x, 0.0)
    }

    /// Proposes `n` θ's, simulates them in parallel (seeded) and appends them: one round.
    pub fn simulate_round(
        &mut self,
        simulator: &dyn Simulator,
        n: usize,
    ) -> Result<&RoundData, InferenceError> {
        let start = Instant::now();
        let proposed = self.propose(n)?;
        let sim_seed = derive_rng(self.seed, STREAM_SIMULATE + proposed.round as u64).next_u64();
        let options = SimulationOptions {
            seed: sim_seed,
            progress: self.config.progress,
            ..SimulationOptions::default()
        };
        let sims = simulate_batch(simulator, proposed.theta(), &options)?;
        let seconds = start.elapsed().as_secs_f64();
        self.append_inner(proposed, sims.x, seconds)
    }

    fn append_inner(
        &mut self,
        proposed: Proposed,
        x: DMatrix<f64>,
        seconds_simulate: f64,
    ) -> Result<&RoundData, InferenceError> {
        if proposed.owner != self.owner {
            return Err(InferenceError::OutOfOrder(
                "these θ's were proposed by another orchestrator".into(),
            ));
        }
        let expected_round = self.next_round(&proposed.source);
        if proposed.round != expected_round {
            return Err(InferenceError::OutOfOrder(format!(
                "these θ's were proposed for round {}, but the next round is {expected_round}: \
                 propose again",
                proposed.round
            )));
        }
        let theta = &proposed.theta;
        if theta.nrows() != self.prior.dim() {
            return Err(InferenceError::DimensionMismatch {
                what: "rows of θ (one sample per column), to match the prior".into(),
                expected: self.prior.dim(),
                found: theta.nrows(),
            });
        }
        if x.ncols() != theta.ncols() {
            return Err(InferenceError::DimensionMismatch {
                what: "number of simulations (columns of x), to match the θ's".into(),
                expected: theta.ncols(),
                found: x.ncols(),
            });
        }
        if let Some(d) = self.x_dim().or(self.x_o.as_ref().map(Vec::len)) {
            if x.nrows() != d {
                return Err(InferenceError::DimensionMismatch {
                    what: "rows of x (the simulation's output dimension)".into(),
                    expected: d,
                    found: x.nrows(),
                });
            }
        }
        if let Some((j, _)) = theta
            .column_iter()
            .enumerate()
            .find(|(_, c)| c.iter().any(|v| !v.is_finite()))
        {
            return Err(InferenceError::Training(
                simfer_snpe::SnpeError::NonFiniteData { what: "θ", row: j },
            ));
        }
        let invalid = InvalidCounts::scan(&x);
        let round = proposed.round;
        let exclude = match self.config.invalid {
            InvalidPolicy::Exclude => true,
            InvalidPolicy::ExcludeFirstRoundOnly => round == 0,
            InvalidPolicy::Error => false,
        };
        if invalid.total() > 0 && !exclude {
            return Err(InferenceError::InvalidSimulations {
                round,
                nan: invalid.nan.len(),
                inf: invalid.inf.len(),
                total: x.ncols(),
                proposed: Box::new(proposed),
                x: Box::new(x),
            });
        }
        let keep: Vec<usize> = (0..x.ncols())
            .filter(|j| {
                invalid.nan.binary_search(j).is_err() && invalid.inf.binary_search(j).is_err()
            })
            .collect();
        let simulated = x.ncols();
        let (theta, x) = if keep.len() == simulated {
            (proposed.theta, x)
        } else {
            (
                proposed.theta.select_columns(&keep),
                x.select_columns(&keep),
            )
        };
        self.rounds.push(RoundData {
            round,
            proposal: proposed.source,
            theta,
            x,
            simulated,
            invalid,
            seconds_simulate,
        });
        Ok(self.rounds.last().expect("just pushed"))
    }

    /// Trains on the pooled data (all rounds, or all but round 0 with
    /// `discard_prior_samples`): maximum likelihood while all data come from the prior,
    /// the atomic loss once a round came from a posterior. The network is built at the
    /// first call (standardization from that call's training split) and then continues
    /// training, unless `retrain_from_scratch`.
    pub fn train(&mut self) -> Result<&TrainingHistory, InferenceError> {
        let round = self.rounds.iter().map(|r| r.round).max().ok_or_else(|| {
            InferenceError::OutOfOrder(
                "no simulations to train on: append or simulate a round first".into(),
            )
        })?;
        let start_round = usize::from(self.config.discard_prior_samples && round > 0);
        let used: Vec<&RoundData> = self
            .rounds
            .iter()
            .filter(|r| r.round >= start_round)
            .collect();
        let n: usize = used.iter().map(|r| r.theta.ncols()).sum();
        if n == 0 {
            let total = used.iter().map(|r| r.simulated).sum();
            return Err(InferenceError::NoValidSimulations { total });
        }
        let d = self.prior.dim();
        let c = used[0].x.nrows();
        let mut theta = DMatrix::zeros(d, n);
        let mut x = DMatrix::zeros(c, n);
        let mut from_prior = Vec::with_capacity(n);
        let mut at = 0;
        for r in &used {
            let k = r.theta.ncols();
            theta.columns_mut(at, k).copy_from(&r.theta);
            x.columns_mut(at, k).copy_from(&r.x);
            from_prior.extend(std::iter::repeat_n(r.proposal == ProposalSource::Prior, k));
            at += k;
        }
        let data = TrainingData::with_prior(theta, x, self.prior.as_ref(), from_prior)?;
        let mut rng: SeededRng = derive_rng(self.seed, STREAM_TRAIN + self.train_calls);
        let build_seed = derive_rng(self.seed, STREAM_BUILD + self.train_calls).next_u64();
        self.train_calls += 1;
        let split = DataSplit::random(
            data.len(),
            self.config.training.validation_fraction,
            &mut rng,
        )?;
        if self.estimator.is_none() || self.config.retrain_from_scratch {
            let (theta_train, x_train) = data.gather(&split.train);
            self.estimator = Some(self.config.estimator.build(
                &theta_train,
                &x_train,
                build_seed,
            )?);
        }
        let estimator = self.estimator.as_mut().expect("built above");
        let mut progress = TrainingProgress::new(self.config.progress, round);
        let mut observer = |r: &EpochReport| progress.epoch(r);
        let history = if round == 0 {
            self.trainer.train(
                estimator,
                &mut MaximumLikelihood::new(),
                &data,
                &split,
                round,
                &mut rng,
                Some(&mut observer),
            )
        } else {
            let mut loss = AtomicLoss::new(self.config.num_atoms, self.config.use_combined_loss)?;
            self.trainer.train(
                estimator,
                &mut loss,
                &data,
                &split,
                round,
                &mut rng,
                Some(&mut observer),
            )
        };
        progress.finish(history.as_ref().ok());
        let history = history?;
        self.trained_on_round = Some(round);
        self.histories.push(history);
        Ok(self.histories.last().expect("just pushed"))
    }

    /// The posterior of the current estimator (a copy), with x_o as its default x if set,
    /// the sampling options of the settings and the training history so far.
    pub fn build_posterior(&self) -> Result<DirectPosterior<B::Estimator>, InferenceError> {
        let estimator = self.estimator.clone().ok_or_else(|| {
            InferenceError::OutOfOrder("no trained estimator: call `train` first".into())
        })?;
        let seed = derive_rng(self.seed, STREAM_POSTERIOR + self.train_calls).next_u64();
        let mut posterior = DirectPosterior::new(estimator, Arc::clone(&self.prior), seed)?
            .with_history(self.histories.clone());
        posterior.set_sampling_options(self.config.sampling.clone())?;
        if let Some(x_o) = &self.x_o {
            posterior.set_default_x(x_o)?;
        }
        Ok(posterior)
    }
}
