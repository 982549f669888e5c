//! Neural ratio estimation: NRE and SNRE (Hermans et al. 2020, Durkan et al. 2020, Miller
//! et al. 2022, Delaunoy et al. 2022), as the reference's `sbi.inference.trainers.nre`: a
//! classifier of (θ, x) pairs trained with a contrastive loss on all rounds pooled, and a
//! posterior ∝ exp(f(θ, x_o)) p(θ) sampled by MCMC.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use simfer_distributions::Prior;
use simfer_flows::{ClassifierConfig, RatioClassifier};
use simfer_mcmc::SliceSettings;
use simfer_snpe::{
    DataSplit, EpochReport, NreLoss, NreVariant, Trainer, TrainingConfig, TrainingHistory,
};

use crate::progress::TrainingProgress;
use crate::sequential::{
    InvalidPolicy, Method, PosteriorContext, RunnerSettings, Sequential, TrainContext,
};
use crate::{InferenceError, McmcPosterior, RatioModel};

/// Settings of NRE and SNRE; the defaults are the reference library's (NRE-B with 10
/// atoms, a residual-net classifier of 50 units, the slice sampler).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NreConfig {
    /// The classifier.
    pub classifier: ClassifierConfig,
    /// The loss (NRE-A, NRE-B, NRE-C, BNRE).
    pub variant: NreVariant,
    /// Training settings.
    pub training: TrainingConfig,
    /// The MCMC sampler of the posterior.
    pub mcmc: SliceSettings,
    /// What to do with invalid simulations.
    pub invalid: InvalidPolicy,
    /// Show progress bars (on a terminal).
    pub progress: bool,
}

/// NRE as a [`Method`].
pub struct Nre {
    config: NreConfig,
    trainer: Trainer,
    classifier: Option<RatioClassifier>,
}

impl Nre {
    /// The method with checked settings.
    pub fn new(config: NreConfig) -> Result<Self, InferenceError> {
        config.mcmc.check()?;
        config.variant.check()?;
        config.classifier.check()?;
        Ok(Nre {
            trainer: Trainer::new(config.training.clone())?,
            config,
            classifier: None,
        })
    }

    /// The settings.
    pub fn config(&self) -> &NreConfig {
        &self.config
    }

    /// The classifier, once trained.
    pub fn classifier(&self) -> Option<&RatioClassifier> {
        self.classifier.as_ref()
    }
}

impl Method for Nre {
    type Posterior = McmcPosterior<RatioModel>;

    fn name(&self) -> &'static str {
        "snre"
    }

    /// The contrastive loss on all rounds pooled; the classifier is built at the first
    /// call and then continues.
    fn train(&mut self, ctx: &mut TrainContext<'_>) -> Result<TrainingHistory, InferenceError> {
        let data = ctx.pooled(0)?;
        let split = DataSplit::random(
            data.len(),
            self.config.training.validation_fraction,
            ctx.rng,
        )?;
        if self.classifier.is_none() {
            let (theta_train, x_train) = data.gather(&split.train);
            self.classifier = Some(RatioClassifier::new(
                &self.config.classifier,
                &theta_train,
                &x_train,
                ctx.build_seed,
            )?);
        }
        let Some(classifier) = self.classifier.as_mut() else {
            unreachable!("built above")
        };
        let mut progress = TrainingProgress::new(ctx.progress, ctx.round);
        let mut observer = |r: &EpochReport| progress.epoch(r);
        let mut loss = NreLoss::new(self.config.variant)?;
        let history = self.trainer.train(
            classifier,
            &mut loss,
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
        self.classifier.is_some()
    }

    fn save_model(&self) -> Result<Option<Vec<u8>>, InferenceError> {
        Ok(self
            .classifier
            .as_ref()
            .map(RatioClassifier::to_bytes)
            .transpose()?)
    }

    fn load_model(&mut self, bytes: &[u8]) -> Result<(), InferenceError> {
        self.classifier = Some(RatioClassifier::from_bytes(bytes)?);
        Ok(())
    }

    fn posterior(&self, ctx: &PosteriorContext<'_>) -> Result<Self::Posterior, InferenceError> {
        let classifier = self.classifier.clone().ok_or_else(|| {
            InferenceError::OutOfOrder("no trained classifier: call `train` first".into())
        })?;
        let mut posterior = McmcPosterior::new(
            RatioModel(classifier),
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

/// Sequential NRE with the reference's steps.
pub type Snre = Sequential<Nre>;

impl Sequential<Nre> {
    /// A new (S)NRE run for `prior` with checked settings.
    pub fn new(
        prior: Arc<dyn Prior>,
        config: NreConfig,
        seed: u64,
    ) -> Result<Self, InferenceError> {
        let settings = RunnerSettings {
            invalid: config.invalid,
            progress: config.progress,
        };
        Ok(Sequential::with_method(
            prior,
            Nre::new(config)?,
            settings,
            seed,
        ))
    }

    /// The classifier, once trained.
    pub fn classifier(&self) -> Option<&RatioClassifier> {
        self.method().classifier()
    }
}
