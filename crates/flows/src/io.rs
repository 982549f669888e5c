//! Saving and loading estimators in a self-describing format.
//!
//! Every saved estimator starts with the format tag [`FORMAT_TAG`], its **kind** (`maf`,
//! …) and the version of that kind's layout, followed by the model: its architecture
//! (configuration and dimensions), standardization statistics and parameters. Two
//! encodings hold the same content:
//!
//! * binary (postcard): a header `(format, kind, version)` then the model; it stores the
//!   bits of every number, so a loaded estimator computes bit-identical results;
//! * JSON: `{"format": "simfer-estimator", "kind": "maf", "version": 3, "model": {…}}`,
//!   for people and other tools (numbers round-trip exactly).
//!
//! A file of an unknown kind is a [`FlowError::UnknownKind`]; a known kind in a version
//! this build does not read is a [`FlowError::VersionMismatch`]; a model whose
//! parameters do not fit its stored architecture is a
//! [`FlowError::ArchitectureMismatch`]. Files written by earlier versions of the MAF
//! (format tag `simfer-maf`, versions 1 and 2) still load.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::FlowError;

/// The format tag at the start of every saved estimator.
pub const FORMAT_TAG: &str = "simfer-estimator";

/// The format tag of the MAF files of earlier versions (read, not written).
pub const LEGACY_MAF_TAG: &str = "simfer-maf";

/// A model of this crate that saves in the self-describing format.
pub trait SavedModel: Serialize + Sized {
    /// What a file holds (the model's serde form), checked by
    /// [`from_stored`](Self::from_stored) when it is read.
    type Stored: DeserializeOwned;
    /// The kind recorded in the file (e.g. `"maf"`).
    const KIND: &'static str;
    /// The version of this kind's layout that this build writes.
    const VERSION: u32;
    /// The oldest version of this kind's layout that this build reads.
    const OLDEST_VERSION: u32;

    /// Decodes a binary body of an older `version` (between
    /// [`OLDEST_VERSION`](Self::OLDEST_VERSION) and [`VERSION`](Self::VERSION)); the
    /// default reads the current layout.
    fn from_binary_body(version: u32, body: &[u8]) -> Result<Self, FlowError> {
        let _ = version;
        let stored =
            postcard::from_bytes(body).map_err(|e| FlowError::Serialization(e.to_string()))?;
        Self::from_stored(stored)
    }

    /// The model from what a file holds, with its consistency checked (e.g. the number of
    /// parameters against the architecture).
    fn from_stored(stored: Self::Stored) -> Result<Self, FlowError>;
}

/// The binary header.
#[derive(Serialize, Deserialize)]
pub(crate) struct Header {
    pub(crate) format: String,
    pub(crate) kind: String,
    pub(crate) version: u32,
}

/// The header of the legacy MAF format: `(format, version)`.
#[derive(Deserialize)]
struct LegacyHeader {
    format: String,
    version: u32,
}

/// The kind and version of a binary file, and the body after the header. Legacy MAF
/// files report kind `maf` with their own version (1 or 2).
pub(crate) fn read_header(bytes: &[u8]) -> Result<(String, u32, &[u8]), FlowError> {
    if let Ok((h, rest)) = postcard::take_from_bytes::<LegacyHeader>(bytes) {
        if h.format == LEGACY_MAF_TAG {
            return Ok(("maf".into(), h.version, rest));
        }
    }
    let (h, rest) = postcard::take_from_bytes::<Header>(bytes).map_err(|e| {
        FlowError::Serialization(format!(
            "not a saved estimator (no `{FORMAT_TAG}` header): {e}"
        ))
    })?;
    if h.format != FORMAT_TAG {
        return Err(FlowError::Serialization(format!(
            "not a saved estimator: expected the format tag `{FORMAT_TAG}`, found `{}`",
            h.format
        )));
    }
    Ok((h.kind, h.version, rest))
}

/// Checks that `version` of `M`'s kind can be read.
pub(crate) fn check_version<M: SavedModel>(version: u32) -> Result<(), FlowError> {
    if !(M::OLDEST_VERSION..=M::VERSION).contains(&version) {
        return Err(FlowError::VersionMismatch {
            expected_format: format!("{FORMAT_TAG} `{}`", M::KIND),
            oldest_version: M::OLDEST_VERSION,
            expected_version: M::VERSION,
            found_format: format!("{FORMAT_TAG} `{}`", M::KIND),
            found_version: version,
        });
    }
    Ok(())
}

/// The binary encoding of `model`.
pub fn to_bytes<M: SavedModel>(model: &M) -> Result<Vec<u8>, FlowError> {
    let mut out = postcard::to_allocvec(&Header {
        format: FORMAT_TAG.into(),
        kind: M::KIND.into(),
        version: M::VERSION,
    })
    .map_err(|e| FlowError::Serialization(e.to_string()))?;
    let body = postcard::to_allocvec(model).map_err(|e| FlowError::Serialization(e.to_string()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// A model of kind `M::KIND` from its binary encoding; another kind is an
/// [`UnknownKind`](FlowError::UnknownKind) error naming both.
pub fn from_bytes<M: SavedModel>(bytes: &[u8]) -> Result<M, FlowError> {
    let (kind, version, body) = read_header(bytes)?;
    if kind != M::KIND {
        return Err(FlowError::UnknownKind {
            expected: format!("`{}`", M::KIND),
            found: kind,
        });
    }
    check_version::<M>(version)?;
    M::from_binary_body(version, body)
}

/// The JSON envelope written.
#[derive(Serialize)]
struct JsonOut<'a, M> {
    format: &'a str,
    kind: &'a str,
    version: u32,
    model: &'a M,
}

/// The JSON encoding of `model`.
pub fn to_json<M: SavedModel>(model: &M) -> Result<String, FlowError> {
    serde_json::to_string(&JsonOut {
        format: FORMAT_TAG,
        kind: M::KIND,
        version: M::VERSION,
        model,
    })
    .map_err(|e| FlowError::Serialization(e.to_string()))
}

/// The kind, version and model of a JSON envelope (legacy MAF JSON reports kind `maf`).
pub(crate) fn read_json(json: &str) -> Result<(String, u32, serde_json::Value), FlowError> {
    let mut value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| FlowError::Serialization(format!("not a saved estimator: {e}")))?;
    read_json_value(&mut value)
}

/// As [`read_json`], from a parsed value.
pub(crate) fn read_json_value(
    value: &mut serde_json::Value,
) -> Result<(String, u32, serde_json::Value), FlowError> {
    let format = value
        .get("format")
        .and_then(|v| v.as_str())
        .unwrap_or("(none)")
        .to_owned();
    let version = value
        .get("version")
        .and_then(|v| v.as_u64())
        .map_or(u32::MAX, |v| u32::try_from(v).unwrap_or(u32::MAX));
    let kind = if format == LEGACY_MAF_TAG {
        "maf".to_owned()
    } else if format == FORMAT_TAG {
        value
            .get("kind")
            .and_then(|v| v.as_str())
            .ok_or_else(|| FlowError::Serialization("a saved estimator without a `kind`".into()))?
            .to_owned()
    } else {
        return Err(FlowError::Serialization(format!(
            "not a saved estimator: expected the format tag `{FORMAT_TAG}`, found `{format}`"
        )));
    };
    let model = value
        .get_mut("model")
        .map(serde_json::Value::take)
        .ok_or_else(|| FlowError::Serialization("a saved estimator without a `model`".into()))?;
    Ok((kind, version, model))
}

/// A model of kind `M::KIND` from its JSON encoding.
pub fn from_json<M: SavedModel>(json: &str) -> Result<M, FlowError> {
    let (kind, version, model) = read_json(json)?;
    model_from_json_parts(&kind, version, model)
}

/// A model of kind `M::KIND` from the parts of a JSON envelope.
pub(crate) fn model_from_json_parts<M: SavedModel>(
    kind: &str,
    version: u32,
    model: serde_json::Value,
) -> Result<M, FlowError> {
    if kind != M::KIND {
        return Err(FlowError::UnknownKind {
            expected: format!("`{}`", M::KIND),
            found: kind.into(),
        });
    }
    check_version::<M>(version)?;
    let stored =
        serde_json::from_value(model).map_err(|e| FlowError::Serialization(e.to_string()))?;
    M::from_stored(stored)
}
