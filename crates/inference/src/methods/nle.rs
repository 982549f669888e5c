//! Neural likelihood estimation: NLE (one round) and SNLE (Papamakarios et al. 2019), as
//! the reference's `sbi.inference.trainers.nle.nle_a`: a density estimator of x given θ
//! trained by maximum likelihood on all rounds pooled, and a posterior ∝ q(x_o | θ) p(θ)
//! sampled by MCMC.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use simfer_distributions::Prior;
use simfer_flows::EstimatorConfig;
use simfer_mcmc::SliceSettings;
use simfer_snpe::{
    DataSplit, EpochReport, MaximumLikelihood, Trainer, TrainingConfig, TrainingHistory,
};

use crate::methods::npe::EstimatorBuilder;
use crate::progress::TrainingProgress;
use crate::sequential::{
    InvalidPolicy, Method, PosteriorContext, RunnerSettings, Sequential, TrainContext,
};
use crate::{InferenceError, LikelihoodModel, McmcPosterior};

/// Settings of NLE and SNLE; the defaults are the reference library's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NleConfig<B = EstimatorConfig> {
    /// The density estimator of x given θ (default: the reference's MAF).
    pub estimator: B,
    /// Training settings.
    pub training: TrainingConfig,
    /// The MCMC sampler of the posterior (default: the reference's slice sampler, 20
    /// chains, 200 warm-up sweeps, starts resampled among prior draws).
    pub mcmc: SliceSettings,
    /// What to do with invalid simulations.
    pub invalid: InvalidPolicy,
    /// Show progress bars (on a terminal).
    pub progress: bool,
}

impl Default for NleConfig {
    fn default() -> Self {
        NleConfig {
            estimator: EstimatorConfig::default(),
            training: TrainingConfig::default(),
            mcmc: SliceSettings::default(),
            invalid: InvalidPolicy::default(),
            progress: false,
        }
    }
}

/// NLE as a [`Method`].
pub struct Nle<B: EstimatorBuilder = EstimatorConfig> {
    config: NleConfig<B>,
    trainer: Trainer,
    estimator: Option<B::Estimator>,
}

impl<B: EstimatorBuilder> Nle<B> {
    /// The method with checked settings.
    pub fn new(config: NleConfig<B>) -> Result<Self, InferenceError> {
        config.mcmc.check()?;
        Ok(Nle {
            trainer: Trainer::new(config.training.clone())?,
            config,
            estimator: None,
        })
    }

    /// The settings.
    pub fn config(&self) -> &NleConfig<B> {
        &self.config
    }

    /// The likelihood estimator q(x | θ), once trained.
    pub fn estimator(&self) -> Option<&B::Estimator> {
        self.estimator.as_ref()
    }
}

impl<B: EstimatorBuilder> Method for Nle<B> {
    type Posterior = McmcPosterior<LikelihoodModel<B::Estimator>>;

    fn name(&self) -> &'static str {
        "snle"
    }

    /// Maximum likelihood of x given θ on all rounds pooled (no correction is needed for
    /// the proposals); the network is built at the first call and then continues.
    fn train(&mut self, ctx: &mut TrainContext<'_>) -> Result<TrainingHistory, InferenceError> {
        let data = ctx.pooled(0)?;
        let split = DataSplit::random(
            data.len(),
            self.config.training.validation_fraction,
            ctx.rng,
        )?;
        if self.estimator.is_none() {
            let (theta_train, x_train) = data.gather(&split.train);
            self.estimator = Some(self.config.estimator.build(
                &x_train,
                &theta_train,
                ctx.build_seed,
            )?);
        }
        let Some(estimator) = self.estimator.as_mut() else {
            unreachable!("built above")
        };
        let mut progress = TrainingProgress::new(ctx.progress, ctx.round);
        let mut observer = |r: &EpochReport| progress.epoch(r);
        let history = self.trainer.train(
            estimator,
            &mut MaximumLikelihood::for_likelihood(),
            &data,
            &split,
            ctx.round,
            ctx.rng,
            Some(&mut observer),
        );
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

    fn posterior(&self, ctx: &PosteriorContext<'_>) -> Result<Self::Posterior, InferenceError> {
        let estimator = self.estimator.clone().ok_or_else(|| {
            InferenceError::OutOfOrder("no trained estimator: call `train` first".into())
        })?;
        let mut posterior = McmcPosterior::new(
            LikelihoodModel(estimator),
            Arc::clone(ctx.prior),
            self.config.mcmc.clone(),
            ctx.seed,
        )?;
        if let Some(x_o) = ctx.x_o {
            crate::Posterior::set_default_x(&mut posterior, x_o)?;
        }
        Ok(posterior)
    }
}

/// Sequential NLE with the reference's steps.
pub type Snle<B = EstimatorConfig> = Sequential<Nle<B>>;

impl<B: EstimatorBuilder> Sequential<Nle<B>> {
    /// A new (S)NLE run for `prior` with checked settings.
    pub fn new(
        prior: Arc<dyn Prior>,
        config: NleConfig<B>,
        seed: u64,
    ) -> Result<Self, InferenceError> {
        let settings = RunnerSettings {
            invalid: config.invalid,
            progress: config.progress,
        };
        Ok(Sequential::with_method(
            prior,
            Nle::new(config)?,
            settings,
            seed,
        ))
    }

    /// The likelihood estimator, once trained.
    pub fn estimator(&self) -> Option<&B::Estimator> {
        self.method().estimator()
    }
}
