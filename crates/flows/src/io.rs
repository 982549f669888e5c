//! Saving and loading a [`Maf`]: architecture, parameters, permutations and
//! standardization statistics, in a versioned binary format (postcard) or as JSON.
//!
//! Both formats start with the format tag [`FORMAT_TAG`] and the version
//! [`FORMAT_VERSION`]; reading data of another tag or version fails with
//! [`FlowError::VersionMismatch`], and data whose parameters do not fit the stored
//! architecture fail with [`FlowError::ArchitectureMismatch`]. The binary format stores
//! the bits of every number, so a loaded flow computes bit-identical log-densities.
//!
//! Version 2 added [`MafConfig::precision`](crate::MafConfig::precision) (the training
//! precision) to the architecture; files of version 1 still load, with the default
//! precision.

use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::FlowError;
use crate::layers::Activation;
use crate::maf::{Maf, MafConfig, MafData, Standardization};
use crate::precision::Precision;

/// The format tag at the start of every saved flow.
pub const FORMAT_TAG: &str = "simfer-maf";
/// The version of the saved-flow format this library writes. It also reads version 1.
pub const FORMAT_VERSION: u32 = 2;

/// The oldest version this library reads.
const OLDEST_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
}

fn check_header(format: &str, version: u32) -> Result<(), FlowError> {
    if format != FORMAT_TAG || !(OLDEST_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(FlowError::VersionMismatch {
            expected_format: FORMAT_TAG.into(),
            expected_version: FORMAT_VERSION,
            found_format: format.into(),
            found_version: version,
        });
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonOut<'a> {
    format: &'a str,
    version: u32,
    model: &'a Maf,
}

impl Maf {
    /// The flow in the binary format.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FlowError> {
        let mut out = postcard::to_allocvec(&Header {
            format: FORMAT_TAG.into(),
            version: FORMAT_VERSION,
        })
        .map_err(|e| FlowError::Serialization(e.to_string()))?;
        let body =
            postcard::to_allocvec(self).map_err(|e| FlowError::Serialization(e.to_string()))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// A flow from the binary format.
    pub fn from_bytes(bytes: &[u8]) -> Result<Maf, FlowError> {
        let (header, rest) = postcard::take_from_bytes::<Header>(bytes).map_err(|e| {
            FlowError::Serialization(format!("not a saved flow (no {FORMAT_TAG} header): {e}"))
        })?;
        check_header(&header.format, header.version)?;
        let data: MafData = if header.version == 1 {
            postcard::from_bytes::<MafDataV1>(rest)
                .map_err(|e| FlowError::Serialization(e.to_string()))?
                .into()
        } else {
            postcard::from_bytes(rest).map_err(|e| FlowError::Serialization(e.to_string()))?
        };
        Maf::from_data(data)
    }

    /// Writes the binary format to `writer`.
    pub fn write_to<W: Write>(&self, mut writer: W) -> Result<(), FlowError> {
        writer.write_all(&self.to_bytes()?)?;
        Ok(())
    }

    /// Reads the binary format from `reader`.
    pub fn read_from<R: Read>(mut reader: R) -> Result<Maf, FlowError> {
        let mut buf = Vec::new();
        reader.read_to_end(&mut buf)?;
        Maf::from_bytes(&buf)
    }

    /// Saves the flow to a file in the binary format.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), FlowError> {
        std::fs::write(path, self.to_bytes()?)?;
        Ok(())
    }

    /// Loads a flow saved with [`save`](Self::save).
    pub fn load(path: impl AsRef<Path>) -> Result<Maf, FlowError> {
        Maf::from_bytes(&std::fs::read(path)?)
    }

    /// The flow as JSON (`{"format", "version", "model"}`), for reading by people and
    /// other tools. Numbers round-trip exactly.
    pub fn to_json(&self) -> Result<String, FlowError> {
        serde_json::to_string(&JsonOut {
            format: FORMAT_TAG,
            version: FORMAT_VERSION,
            model: self,
        })
        .map_err(|e| FlowError::Serialization(e.to_string()))
    }

    /// A flow from [`to_json`](Self::to_json)'s output.
    pub fn from_json(json: &str) -> Result<Maf, FlowError> {
        let mut value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| FlowError::Serialization(e.to_string()))?;
        let format = value
            .get("format")
            .and_then(|v| v.as_str())
            .unwrap_or("(none)")
            .to_owned();
        let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        check_header(&format, u32::try_from(version).unwrap_or(u32::MAX))?;
        let model = value
            .get_mut("model")
            .map(serde_json::Value::take)
            .ok_or_else(|| FlowError::Serialization("no \"model\" field".into()))?;
        let data: MafData =
            serde_json::from_value(model).map_err(|e| FlowError::Serialization(e.to_string()))?;
        Maf::from_data(data)
    }
}

/// [`MafConfig`] as version 1 stored it (postcard stores fields by position, so the
/// binary format of version 1 needs its own layout; JSON of version 1 reads directly).
#[derive(Deserialize)]
struct MafConfigV1 {
    hidden_features: usize,
    num_transforms: usize,
    num_blocks: usize,
    activation: Activation,
    standardize_theta: bool,
    standardize_x: bool,
}

/// [`MafData`] as version 1 stored it.
#[derive(Deserialize)]
struct MafDataV1 {
    config: MafConfigV1,
    theta_dim: usize,
    context_dim: usize,
    theta_stats: Standardization,
    x_stats: Standardization,
    params: Vec<f64>,
    permutations: Vec<Vec<usize>>,
}

impl From<MafDataV1> for MafData {
    fn from(v: MafDataV1) -> Self {
        let c = v.config;
        MafData {
            config: MafConfig {
                hidden_features: c.hidden_features,
                num_transforms: c.num_transforms,
                num_blocks: c.num_blocks,
                activation: c.activation,
                standardize_theta: c.standardize_theta,
                standardize_x: c.standardize_x,
                precision: Precision::default(),
            },
            theta_dim: v.theta_dim,
            context_dim: v.context_dim,
            theta_stats: v.theta_stats,
            x_stats: v.x_stats,
            params: v.params,
            permutations: v.permutations,
        }
    }
}
