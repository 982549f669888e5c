//! Saving and loading a trained posterior in a versioned JSON file.
//!
//! Version 2 stores the estimator self-describing (its kind, format version and model;
//! see `simfer_flows::io`); version 1 files, whose estimator is a bare MAF, still load.

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use simfer_distributions::{Prior, PriorSpec};
use simfer_flows::ConditionalDensityEstimator;
use simfer_snpe::TrainingHistory;

use crate::posterior::SamplingOptions;
use crate::{DirectPosterior, InferenceError};

/// The `format` field of a posterior file.
pub const POSTERIOR_FORMAT: &str = "simfer-posterior";
/// The version of the posterior file format this build writes (it also reads version 1).
pub const POSTERIOR_FORMAT_VERSION: u32 = 2;

/// The oldest version of the posterior file format this build reads.
const OLDEST_POSTERIOR_FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
}

#[derive(Serialize, Deserialize)]
struct PosteriorFile<E> {
    format: String,
    version: u32,
    estimator: E,
    prior: PriorSpec,
    default_x: Option<Vec<f64>>,
    sampling: SamplingOptions,
    seed: u64,
    history: Vec<TrainingHistory>,
}

impl<E> DirectPosterior<E>
where
    E: ConditionalDensityEstimator + Serialize + DeserializeOwned,
{
    /// The posterior as a JSON document: the estimator (architecture, weights,
    /// permutations, standardization statistics), the prior's description, the default x,
    /// the sampling options and every round's training history.
    pub fn to_json(&self) -> Result<String, InferenceError> {
        let file = PosteriorFile {
            format: POSTERIOR_FORMAT.into(),
            version: POSTERIOR_FORMAT_VERSION,
            estimator: &self.estimator,
            prior: self.prior.spec(),
            default_x: self.default_x().map(<[f64]>::to_vec),
            sampling: self.options.clone(),
            seed: self.seed,
            history: self.history.clone(),
        };
        serde_json::to_string(&file).map_err(|e| InferenceError::Format(e.to_string()))
    }

    /// Reads a posterior written by [`to_json`](Self::to_json). The prior is rebuilt from
    /// its description; a file of another format or version is a clear error.
    pub fn from_json(text: &str) -> Result<Self, InferenceError> {
        Self::from_json_inner(text, None)
    }

    /// Like [`from_json`](Self::from_json) with the prior given (for priors that cannot be
    /// rebuilt from a description, e.g. a user-defined one). Its dimension must match.
    pub fn from_json_with_prior(text: &str, prior: Arc<dyn Prior>) -> Result<Self, InferenceError> {
        Self::from_json_inner(text, Some(prior))
    }

    fn from_json_inner(text: &str, prior: Option<Arc<dyn Prior>>) -> Result<Self, InferenceError> {
        let header: Header = serde_json::from_str(text).map_err(|e| {
            InferenceError::Format(format!(
                "not a simfer posterior file (expected a JSON object with `format` and \
                 `version`): {e}"
            ))
        })?;
        if header.format != POSTERIOR_FORMAT {
            return Err(InferenceError::Format(format!(
                "expected format `{POSTERIOR_FORMAT}`, found `{}`",
                header.format
            )));
        }
        if !(OLDEST_POSTERIOR_FORMAT_VERSION..=POSTERIOR_FORMAT_VERSION).contains(&header.version) {
            return Err(InferenceError::Format(format!(
                "this build reads posterior files of versions {OLDEST_POSTERIOR_FORMAT_VERSION} \
                 to {POSTERIOR_FORMAT_VERSION}, the file has version {}",
                header.version
            )));
        }
        let file: PosteriorFile<E> = serde_json::from_str(text)
            .map_err(|e| InferenceError::Format(format!("malformed posterior file: {e}")))?;
        let prior = match prior {
            Some(p) => p,
            None => Arc::from(file.prior.build()?),
        };
        let mut posterior = DirectPosterior::new(file.estimator, prior, file.seed)?;
        posterior.set_sampling_options(file.sampling)?;
        posterior.history = file.history;
        if let Some(x) = file.default_x {
            posterior.set_default_x(&x)?;
        }
        Ok(posterior)
    }

    /// Writes [`to_json`](Self::to_json) to `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), InferenceError> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()?).map_err(|source| InferenceError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Reads a posterior saved with [`save`](Self::save).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, InferenceError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| InferenceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text)
    }
}
