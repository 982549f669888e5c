//! Neural posterior estimation: NPE (one round), SNPE-C / APT (Greenberg et al. 2019;
//! later rounds with the atomic loss, or its non-atomic form for mixture density
//! networks) and TSNPE (Deistler et al. 2022; truncated
//! proposals and maximum likelihood on all rounds), as the reference's
//! `sbi.inference.trainers.npe.npe_c` and its TSNPE recipe.

use std::sync::Arc;

use nalgebra::DMatrix;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use simfer_distributions::{Prior, SeededRng};
use simfer_flows::{
    ConditionalDensityEstimator, Estimator, EstimatorConfig, EstimatorKind, Maf, MafConfig, Mdn,
};
use simfer_snpe::{
    AtomicLoss, Batch, DataSplit, EpochReport, Loss, MaximumLikelihood, NonAtomicLoss, Trainer,
    TrainingConfig, TrainingData, TrainingHistory,
};

use crate::progress::TrainingProgress;
use crate::sequential::{
    InvalidPolicy, Method, PosteriorContext, ProposalSource, RunnerSettings, Sequential,
    TrainContext,
};
use crate::truncated::{TruncatedPrior, TruncationOptions};
use crate::{DirectPosterior, InferenceError, SamplingOptions};

/// Builds a fresh density estimator from the training split (whose statistics it may use
/// for standardization) and a seed. [`EstimatorConfig`] builds any kind of this
/// workspace's estimators (the default: the reference's MAF) and [`MafConfig`] a [`Maf`];
/// implement this to put another estimator behind the methods.
pub trait EstimatorBuilder: Send + Sync {
    /// The estimator built.
    type Estimator: ConditionalDensityEstimator + Clone + std::fmt::Debug + 'static;
    /// Builds an estimator of `input` (`d × n`) given `condition` (`c × n`).
    fn build(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Self::Estimator, InferenceError>;

    /// The estimator as self-describing bytes (to checkpoint a run). The default:
    /// [`InferenceError::Unsupported`].
    fn save(&self, estimator: &Self::Estimator) -> Result<Vec<u8>, InferenceError> {
        let _ = estimator;
        Err(InferenceError::Unsupported(
            "this estimator builder cannot save its estimators".into(),
        ))
    }

    /// An estimator saved by [`save`](Self::save). The default:
    /// [`InferenceError::Unsupported`].
    fn load(&self, bytes: &[u8]) -> Result<Self::Estimator, InferenceError> {
        let _ = bytes;
        Err(InferenceError::Unsupported(
            "this estimator builder cannot load estimators".into(),
        ))
    }
}

/// Checks that a loaded estimator is of the kind a configuration builds.
fn check_kind(expected: EstimatorKind, found: EstimatorKind) -> Result<(), InferenceError> {
    if expected != found {
        return Err(InferenceError::Format(format!(
            "the saved estimator is a `{found}`, but the configuration builds a `{expected}`"
        )));
    }
    Ok(())
}

impl EstimatorBuilder for EstimatorConfig {
    type Estimator = Estimator;
    fn build(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Estimator, InferenceError> {
        Ok(EstimatorConfig::build(self, input, condition, seed)?)
    }

    fn save(&self, estimator: &Estimator) -> Result<Vec<u8>, InferenceError> {
        Ok(estimator.to_bytes()?)
    }

    fn load(&self, bytes: &[u8]) -> Result<Estimator, InferenceError> {
        let estimator = Estimator::from_bytes(bytes)?;
        check_kind(self.kind(), estimator.estimator_kind())?;
        Ok(estimator)
    }
}

impl EstimatorBuilder for MafConfig {
    type Estimator = Maf;
    fn build(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Maf, InferenceError> {
        Ok(Maf::new(self, input, condition, seed)?)
    }

    fn save(&self, estimator: &Maf) -> Result<Vec<u8>, InferenceError> {
        Ok(simfer_flows::io::to_bytes(estimator)?)
    }

    fn load(&self, bytes: &[u8]) -> Result<Maf, InferenceError> {
        Ok(simfer_flows::io::from_bytes(bytes)?)
    }
}

/// How the rounds after the first draw their θ's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub enum NpeProposal {
    /// From the current posterior at x_o, trained on with the atomic loss (SNPE-C).
    #[default]
    Posterior,
    /// From the prior truncated to the current posterior's highest-density region,
    /// trained on with maximum likelihood on all rounds (TSNPE).
    Truncated(TruncationOptions),
}

/// Settings of NPE, SNPE-C and TSNPE. The defaults are the reference library's.
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
    /// How later rounds propose (SNPE-C's posterior, or TSNPE's truncated prior).
    #[serde(default)]
    pub proposal: NpeProposal,
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
            proposal: NpeProposal::default(),
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
            proposal: self.proposal,
            progress: self.progress,
        }
    }

    /// Checks the settings.
    pub fn check(&self) -> Result<(), InferenceError> {
        self.training.check()?;
        self.sampling.check()?;
        if self.num_atoms < 2 {
            return Err(InferenceError::InvalidConfig {
                name: "num_atoms",
                message: format!("expected at least 2, found {}", self.num_atoms),
            });
        }
        if let NpeProposal::Truncated(t) = &self.proposal {
            t.check()?;
        }
        Ok(())
    }
}

/// The NPE family as a [`Method`]: a density estimator of θ given x and its direct
/// posterior.
pub struct Npe<B: EstimatorBuilder = EstimatorConfig> {
    config: SnpeConfig<B>,
    trainer: Trainer,
    estimator: Option<B::Estimator>,
}

impl<B: EstimatorBuilder> Npe<B> {
    /// The method with checked settings.
    pub fn new(config: SnpeConfig<B>) -> Result<Self, InferenceError> {
        config.check()?;
        Ok(Npe {
            trainer: Trainer::new(config.training.clone())?,
            config,
            estimator: None,
        })
    }

    /// The settings.
    pub fn config(&self) -> &SnpeConfig<B> {
        &self.config
    }

    /// The current estimator, once trained.
    pub fn estimator(&self) -> Option<&B::Estimator> {
        self.estimator.as_ref()
    }

    fn truncated(&self) -> Option<&TruncationOptions> {
        match &self.config.proposal {
            NpeProposal::Truncated(t) => Some(t),
            NpeProposal::Posterior => None,
        }
    }

    /// The non-atomic loss for training on the latest round, if it applies (see
    /// [`Method::train`] for [`Npe`]): the round was proposed by a posterior whose
    /// estimator is an MDN, the current estimator is one, and the prior is supported.
    fn non_atomic_loss(
        &self,
        ctx: &TrainContext<'_>,
    ) -> Result<Option<NonAtomicLoss>, InferenceError> {
        let is_mdn = |e: &B::Estimator| e.as_any().downcast_ref::<Mdn>().is_some();
        if ctx.round == 0
            || self.truncated().is_some()
            || !NonAtomicLoss::supports_prior(ctx.prior.as_ref())
            || !self.estimator.as_ref().is_some_and(is_mdn)
        {
            return Ok(None);
        }
        let proposal = ctx
            .rounds
            .iter()
            .rfind(|r| r.round == ctx.round)
            .and_then(|r| r.proposer.as_ref())
            .and_then(|p| p.as_any().downcast_ref::<DirectPosterior<B::Estimator>>());
        let Some(posterior) = proposal else {
            return Ok(None);
        };
        let (Some(mdn), Some(x_o)) = (
            posterior.estimator().as_any().downcast_ref::<Mdn>(),
            posterior.default_x(),
        ) else {
            return Ok(None);
        };
        Ok(Some(NonAtomicLoss::from_proposal(
            mdn,
            x_o,
            ctx.prior.as_ref(),
        )?))
    }
}

/// Whether the non-atomic loss of `estimator` is finite on all of `data` (always, when no
/// proposal component is broader than the prior: [`NonAtomicLoss::proposal_within_prior`]).
/// The loss draws no random numbers; the generator it is handed is a fixed one, so the
/// run's streams are untouched.
fn starts_finite<E: ConditionalDensityEstimator>(
    loss: &mut NonAtomicLoss,
    estimator: &E,
    data: &TrainingData,
) -> Result<bool, InferenceError> {
    if loss.proposal_within_prior() || !estimator.as_any().is::<Mdn>() {
        return Ok(true);
    }
    let batch = Batch {
        theta: data.theta().as_view(),
        x: data.x().as_view(),
        prior_log_prob: data.prior_log_prob(),
        from_prior: data.from_prior(),
    };
    let mut rng = simfer_distributions::rng_from_seed(0);
    let value = Loss::<E>::evaluate(
        loss,
        estimator,
        &mut simfer_flows::Workspace::new(),
        &batch,
        &mut rng,
        None,
    )?;
    Ok(value.is_finite())
}

impl<B: EstimatorBuilder> Method for Npe<B> {
    type Posterior = DirectPosterior<B::Estimator>;

    fn name(&self) -> &'static str {
        if self.truncated().is_some() {
            "tsnpe"
        } else {
            "snpe"
        }
    }

    /// Trains on the pooled data (all rounds, or all but round 0 with
    /// `discard_prior_samples`): maximum likelihood while all data come from the prior
    /// (always, for TSNPE, whose truncated proposals need no correction), the atomic loss
    /// once a round came from a posterior. The network is built at the first call
    /// (standardization from that call's training split) and then continues training,
    /// unless `retrain_from_scratch`.
    ///
    /// As the reference, SNPE-C trains a later round with the **non-atomic** loss
    /// ([`NonAtomicLoss`], "non-atomic (APT, MDN)" in the history) instead, on the latest
    /// round's data only, when the estimator is a mixture density network ([`Mdn`]), the
    /// posterior that proposed the round had one too, and the prior is Gaussian or
    /// box-uniform (or an independent product of box-uniforms), and the loss is finite on
    /// the round's data for the network training starts from. (With a Gaussian prior, a
    /// proposal component broader than the prior along some direction can make a product
    /// precision Λ_ik = P_i + Q_k − P₀ indefinite: that product is not normalizable and the
    /// loss is NaN from the first batch, where the reference library fails; the atomic
    /// loss, valid for any proposal, then trains the round. Once training starts from a
    /// finite loss, the loss grows without bound towards an indefinite Λ_ik, so training
    /// stays away from it; see [`NonAtomicLoss::proposal_within_prior`].) Whether the
    /// estimator is
    /// an MDN is judged by the current one, before `retrain_from_scratch` rebuilds it;
    /// should the rebuilt one not be an MDN, the atomic loss is used on the latest round's
    /// data.
    fn train(&mut self, ctx: &mut TrainContext<'_>) -> Result<TrainingHistory, InferenceError> {
        let round = ctx.round;
        let tsnpe = self.truncated().is_some();
        let pooled_start = usize::from(self.config.discard_prior_samples && round > 0 && !tsnpe);
        let mut non_atomic = self.non_atomic_loss(ctx)?;
        let mut data = ctx.pooled(if non_atomic.is_some() {
            round
        } else {
            pooled_start
        })?;
        let retrain = self.config.retrain_from_scratch;
        // The network training continues from must start at a finite non-atomic loss.
        if let (Some(loss), Some(estimator), false) =
            (non_atomic.as_mut(), self.estimator.as_ref(), retrain)
            && !starts_finite(loss, estimator, &data)?
        {
            non_atomic = None;
            data = ctx.pooled(pooled_start)?;
        }
        let mut split = DataSplit::random(
            data.len(),
            self.config.training.validation_fraction,
            ctx.rng,
        )?;
        if self.estimator.is_none() || retrain {
            let (theta_train, x_train) = data.gather(&split.train);
            let built = self
                .config
                .estimator
                .build(&theta_train, &x_train, ctx.build_seed)?;
            // A rebuilt network likewise; if it does not, the round is pooled for the
            // atomic loss and the network built on that.
            let infeasible = match non_atomic.as_mut() {
                Some(loss) if retrain => !starts_finite(loss, &built, &data)?,
                _ => false,
            };
            self.estimator = Some(if infeasible {
                non_atomic = None;
                data = ctx.pooled(pooled_start)?;
                split = DataSplit::random(
                    data.len(),
                    self.config.training.validation_fraction,
                    ctx.rng,
                )?;
                let (theta_train, x_train) = data.gather(&split.train);
                self.config
                    .estimator
                    .build(&theta_train, &x_train, ctx.build_seed)?
            } else {
                built
            });
        }
        let Some(estimator) = self.estimator.as_mut() else {
            unreachable!("built above")
        };
        let mut progress = TrainingProgress::new(ctx.progress, round);
        let mut observer = |r: &EpochReport| progress.epoch(r);
        let rng: &mut SeededRng = ctx.rng;
        let is_mdn = estimator.as_any().downcast_ref::<Mdn>().is_some();
        let history = if round == 0 || tsnpe {
            self.trainer.train(
                estimator,
                &mut MaximumLikelihood::new(),
                &data,
                &split,
                round,
                rng,
                Some(&mut observer),
            )
        } else if let (Some(loss), true) = (non_atomic.as_mut(), is_mdn) {
            self.trainer.train(
                estimator,
                loss,
                &data,
                &split,
                round,
                rng,
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
                rng,
                Some(&mut observer),
            )
        };
        progress.finish(history.as_ref().ok());
        Ok(history?)
    }

    fn is_trained(&self) -> bool {
        self.estimator.is_some()
    }

    fn save_model(&self) -> Result<Option<Vec<u8>>, InferenceError> {
        self.estimator
            .as_ref()
            .map(|e| self.config.estimator.save(e))
            .transpose()
    }

    fn load_model(&mut self, bytes: &[u8]) -> Result<(), InferenceError> {
        self.estimator = Some(self.config.estimator.load(bytes)?);
        Ok(())
    }

    fn posterior(
        &self,
        ctx: &PosteriorContext<'_>,
    ) -> Result<DirectPosterior<B::Estimator>, InferenceError> {
        let estimator = self.estimator.clone().ok_or_else(|| {
            InferenceError::OutOfOrder("no trained estimator: call `train` first".into())
        })?;
        let mut posterior = DirectPosterior::new(estimator, Arc::clone(ctx.prior), ctx.seed)?
            .with_history(ctx.histories.to_vec());
        posterior.set_sampling_options(self.config.sampling.clone())?;
        if let Some(x_o) = ctx.x_o {
            posterior.set_default_x(x_o)?;
        }
        Ok(posterior)
    }

    /// SNPE-C draws from the posterior; TSNPE from the prior truncated to the posterior's
    /// highest-density region.
    fn propose(
        &self,
        posterior: DirectPosterior<B::Estimator>,
        trained_on_round: usize,
        n: usize,
        rng: &mut SeededRng,
    ) -> Result<(DMatrix<f64>, ProposalSource), InferenceError> {
        let x_o = posterior
            .default_x()
            .ok_or(InferenceError::NoObservation)?
            .to_vec();
        match self.truncated() {
            None => Ok((
                posterior.sample(n, None, rng)?,
                ProposalSource::Posterior {
                    trained_on_round,
                    x_o,
                },
            )),
            Some(options) => {
                // The truncation's own randomness (the posterior samples behind the
                // threshold, the prior-mass estimate) is seeded by the proposal's stream.
                let seed = rng.next_u64();
                let truncated = TruncatedPrior::new(Box::new(posterior), options.clone(), seed)?;
                let theta = truncated.sample(n, rng)?;
                Ok((
                    theta,
                    ProposalSource::Truncated {
                        trained_on_round,
                        x_o,
                        quantile: options.quantile,
                        prior_mass: truncated.prior_mass(),
                    },
                ))
            }
        }
    }
}

/// Multi-round SNPE-C (APT), or TSNPE, with the reference's steps, where the runner itself
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
pub type Snpe<B = EstimatorConfig> = Sequential<Npe<B>>;

impl<B: EstimatorBuilder> Sequential<Npe<B>> {
    /// A new SNPE-C (or TSNPE) run for `prior` with checked settings; `seed` determines
    /// every random choice of the run, whatever the number of threads.
    pub fn new(
        prior: Arc<dyn Prior>,
        config: SnpeConfig<B>,
        seed: u64,
    ) -> Result<Self, InferenceError> {
        let settings = RunnerSettings {
            invalid: config.invalid,
            progress: config.progress,
        };
        Ok(Sequential::with_method(
            prior,
            Npe::new(config)?,
            settings,
            seed,
        ))
    }

    /// The settings.
    pub fn config(&self) -> &SnpeConfig<B> {
        self.method().config()
    }

    /// The current estimator, once trained.
    pub fn estimator(&self) -> Option<&B::Estimator> {
        self.method().estimator()
    }
}
