//! A method whose settings can change between training calls, as the reference's
//! `train(...)` takes its training arguments at every call: new settings are requested
//! with [`Adjustable::request`] and applied at the next training by building the method
//! anew from them and handing it the model trained so far (`Method::save_model` /
//! `Method::load_model`, which restore the method as it was).

use std::sync::Mutex;

use nalgebra::DMatrix;
use simfer_distributions::SeededRng;
use simfer_inference::{
    InferenceError, Method, Nle, NleConfig, Npe, Nre, NreConfig, PosteriorContext, ProposalSource,
    SnpeConfig, TrainContext,
};
use simfer_snpe::TrainingHistory;

/// A method built from settings of type [`Config`](Self::Config).
pub trait Configured: Method + Sized {
    /// The settings.
    type Config: Clone + PartialEq + Send + Sync;
    /// The settings it was built with.
    fn settings(&self) -> &Self::Config;
    /// A new method with these settings (checked).
    fn build(config: Self::Config) -> Result<Self, InferenceError>;
}

impl Configured for Npe {
    type Config = SnpeConfig;
    fn settings(&self) -> &SnpeConfig {
        self.config()
    }
    fn build(config: SnpeConfig) -> Result<Self, InferenceError> {
        Npe::new(config)
    }
}

impl Configured for Nle {
    type Config = NleConfig;
    fn settings(&self) -> &NleConfig {
        self.config()
    }
    fn build(config: NleConfig) -> Result<Self, InferenceError> {
        Nle::new(config)
    }
}

impl Configured for Nre {
    type Config = NreConfig;
    fn settings(&self) -> &NreConfig {
        self.config()
    }
    fn build(config: NreConfig) -> Result<Self, InferenceError> {
        Nre::new(config)
    }
}

/// `M` with settings that may change before each training.
pub struct Adjustable<M: Configured> {
    inner: M,
    requested: Mutex<Option<M::Config>>,
}

impl<M: Configured> Adjustable<M> {
    /// The method, unchanged until a request.
    pub fn new(inner: M) -> Self {
        Adjustable {
            inner,
            requested: Mutex::new(None),
        }
    }

    /// The settings the next training will use.
    pub fn next_settings(&self) -> M::Config {
        self.requested
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| self.inner.settings().clone())
    }

    /// Asks for `config` from the next training on (checked when applied).
    pub fn request(&self, config: M::Config) {
        if let Ok(mut r) = self.requested.lock() {
            *r = Some(config);
        }
    }

    fn apply(&mut self) -> Result<(), InferenceError> {
        let requested = self.requested.lock().ok().and_then(|mut r| r.take());
        let Some(config) = requested else {
            return Ok(());
        };
        if &config == self.inner.settings() {
            return Ok(());
        }
        let model = self.inner.save_model()?;
        let mut fresh = M::build(config)?;
        if let Some(bytes) = model {
            fresh.load_model(&bytes)?;
        }
        self.inner = fresh;
        Ok(())
    }
}

impl<M: Configured> Method for Adjustable<M> {
    type Posterior = M::Posterior;

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn train(&mut self, ctx: &mut TrainContext<'_>) -> Result<TrainingHistory, InferenceError> {
        self.apply()?;
        self.inner.train(ctx)
    }

    fn is_trained(&self) -> bool {
        self.inner.is_trained()
    }

    fn posterior(&self, ctx: &PosteriorContext<'_>) -> Result<M::Posterior, InferenceError> {
        self.inner.posterior(ctx)
    }

    fn save_model(&self) -> Result<Option<Vec<u8>>, InferenceError> {
        self.inner.save_model()
    }

    fn load_model(&mut self, bytes: &[u8]) -> Result<(), InferenceError> {
        self.inner.load_model(bytes)
    }

    fn propose(
        &self,
        posterior: M::Posterior,
        trained_on_round: usize,
        n: usize,
        rng: &mut SeededRng,
    ) -> Result<(DMatrix<f64>, ProposalSource), InferenceError> {
        self.inner.propose(posterior, trained_on_round, n, rng)
    }
}
