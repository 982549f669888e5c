//! Saving and loading a trained posterior in a versioned, checksummed JSON file.
//!
//! A posterior file is one JSON object: `{"format": "simfer-posterior", "version": 3,
//! "checksum": "crc32:1a2b3c4d", "estimator": {…}, "prior": {…}, "default_x": […],
//! "sampling": {…}, "seed": …, "history": […]}`. The estimator is stored self-describing:
//! its kind, format version, its own checksum and the model (see `simfer_flows::io`).
//! The `checksum` is the CRC-32 of the document's canonical form without that field
//! (`simfer_flows::io::json_checksum`: no whitespace, every object's keys sorted, numbers
//! in their shortest exact form), so a file changed or corrupted after it was written is an
//! [`InferenceError::Corrupted`] naming the file, the checksum it records and the one its
//! content gives, never another posterior; indenting it or reordering its keys is harmless.
//! A file edited on purpose is sealed again with `simfer_flows::io::seal_json` (the
//! estimator first, then the whole file).
//!
//! Reading checks the format, then the version, then the checksum, then the content: the
//! estimator's own checks (architecture, finite parameters and statistics), the prior
//! rebuilt from its description, the estimator's dimensions against the prior's, the
//! sampling options and the default x (finite, of the right dimension).
//!
//! Versions 1 and 2, written before checksums, still load without one (a checksum, where
//! there is one, is checked whatever the version): version 2 stores the estimator
//! self-describing, version 1 as a bare MAF.

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use simfer_distributions::{Prior, PriorSpec};
use simfer_flows::ConditionalDensityEstimator;
use simfer_flows::io::{json_checksum, json_fields_checksum, verify_json_checksum};
use simfer_snpe::TrainingHistory;

use crate::posterior::SamplingOptions;
use crate::{DirectPosterior, InferenceError};

/// The `format` field of a posterior file.
pub const POSTERIOR_FORMAT: &str = "simfer-posterior";
/// The version of the posterior file format this build writes (it also reads versions 1
/// and 2, which have no checksum).
pub const POSTERIOR_FORMAT_VERSION: u32 = 3;

/// The oldest version of the posterior file format this build reads.
const OLDEST_POSTERIOR_FORMAT_VERSION: u32 = 1;

/// The first version of the posterior file format with a checksum.
const CHECKSUMMED_SINCE: u32 = 3;

/// What a posterior file holds (read from the checked document).
#[derive(Deserialize)]
struct PosteriorFile<E> {
    estimator: E,
    prior: PriorSpec,
    default_x: Option<Vec<f64>>,
    sampling: SamplingOptions,
    seed: u64,
    history: Vec<TrainingHistory>,
}

/// The document written: the header, the checksum, then the content as values, so that
/// what is written is what was checksummed.
#[derive(Serialize)]
struct PosteriorOut {
    format: &'static str,
    version: u32,
    checksum: String,
    estimator: Value,
    prior: Value,
    default_x: Value,
    sampling: Value,
    seed: Value,
    history: Value,
}

fn to_value(what: &str, value: impl Serialize) -> Result<Value, InferenceError> {
    serde_json::to_value(value)
        .map_err(|e| InferenceError::Format(format!("cannot write the posterior's {what}: {e}")))
}

impl<E> DirectPosterior<E>
where
    E: ConditionalDensityEstimator + Serialize + DeserializeOwned,
{
    /// The posterior as a JSON document: the estimator (architecture, weights,
    /// permutations, standardization statistics), the prior's description, the default x,
    /// the sampling options and every round's training history.
    pub fn to_json(&self) -> Result<String, InferenceError> {
        let mut out = PosteriorOut {
            format: POSTERIOR_FORMAT,
            version: POSTERIOR_FORMAT_VERSION,
            checksum: String::new(),
            estimator: to_value("estimator", &self.estimator)?,
            prior: to_value("prior", self.prior.spec())?,
            default_x: to_value("default x", self.default_x())?,
            sampling: to_value("sampling options", &self.options)?,
            seed: Value::from(self.seed),
            history: to_value("training history", &self.history)?,
        };
        let (format, version) = (Value::from(out.format), Value::from(out.version));
        out.checksum = json_fields_checksum([
            ("format", &format),
            ("version", &version),
            ("estimator", &out.estimator),
            ("prior", &out.prior),
            ("default_x", &out.default_x),
            ("sampling", &out.sampling),
            ("seed", &out.seed),
            ("history", &out.history),
        ]);
        serde_json::to_string(&out).map_err(|e| InferenceError::Format(e.to_string()))
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
        let not_a_posterior = |e: &dyn std::fmt::Display| {
            InferenceError::Format(format!(
                "not a simfer posterior file (expected a JSON object with `format` and \
                 `version`): {e}"
            ))
        };
        let mut document: Value = serde_json::from_str(text).map_err(|e| not_a_posterior(&e))?;
        let format = match document.get("format") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => return Err(not_a_posterior(&"no `format`")),
        };
        if format != POSTERIOR_FORMAT {
            return Err(InferenceError::Format(format!(
                "expected format `{POSTERIOR_FORMAT}`, found `{format}`"
            )));
        }
        let unsupported = |found: &dyn std::fmt::Display| {
            InferenceError::Format(format!(
                "this build reads posterior files of versions {OLDEST_POSTERIOR_FORMAT_VERSION} \
                 to {POSTERIOR_FORMAT_VERSION}, the file has version {found}"
            ))
        };
        let version = match document.get("version") {
            Some(v) => v
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| unsupported(v))?,
            None => return Err(not_a_posterior(&"no `version`")),
        };
        if !(OLDEST_POSTERIOR_FORMAT_VERSION..=POSTERIOR_FORMAT_VERSION).contains(&version) {
            return Err(unsupported(&version));
        }
        let computed = json_checksum(&document);
        let recorded = document
            .as_object_mut()
            .and_then(|map| map.remove("checksum"));
        verify_json_checksum(
            recorded.as_ref(),
            &computed,
            version,
            CHECKSUMMED_SINCE,
            &format!("a `{POSTERIOR_FORMAT}` file"),
        )
        .map_err(InferenceError::from)?;
        let file: PosteriorFile<E> = serde_json::from_value(document)
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

    /// Writes [`to_json`](Self::to_json) to `path`, atomically: to a temporary file beside
    /// it (`.NAME.tmp-PID`), then renamed over `path`, so that a save that fails (or is
    /// killed) leaves a file already at `path` as it was.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), InferenceError> {
        let path = path.as_ref();
        let json = self.to_json()?;
        simfer_flows::io::write_atomically(path, json.as_bytes()).map_err(|source| {
            InferenceError::Io {
                path: path.display().to_string(),
                source,
            }
        })
    }

    /// Reads a posterior saved with [`save`](Self::save); a changed or corrupted file is an
    /// [`InferenceError::Corrupted`] naming it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, InferenceError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| InferenceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text).map_err(|e| e.in_file(path))
    }
}
