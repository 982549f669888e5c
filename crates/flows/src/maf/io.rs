//! The MAF in the self-describing estimator format (kind `maf`): version 4 carries a
//! checksum; version 3, the same layout without one, wrote the neutral field names
//! (`input_dim`, `condition_dim`, …); versions 1 and 2 (format tag `simfer-maf`, θ/x field
//! names) still load. Version 2 added the training
//! [`precision`](super::MafConfig::precision); files of version 1 load with the default.

use std::io::{Read, Write};
use std::path::Path;

use serde::Deserialize;
use simfer_nn::{Activation, Precision};

use super::{Maf, MafConfig, MafData};
use crate::error::FlowError;
use crate::io::{self, SavedModel};
use crate::standardize::Standardization;

impl SavedModel for Maf {
    type Stored = MafData;
    const KIND: &'static str = "maf";
    const VERSION: u32 = 4;
    const OLDEST_VERSION: u32 = 1;
    const CHECKSUMMED_SINCE: u32 = 4;

    fn from_binary_body(version: u32, body: &[u8]) -> Result<Self, FlowError> {
        let data: MafData = if version == 1 {
            io::decode_exact::<MafDataV1>(body)?.into()
        } else {
            io::decode_exact(body)?
        };
        Maf::from_data(data)
    }

    fn from_stored(data: MafData) -> Result<Self, FlowError> {
        Maf::from_data(data)
    }
}

impl Maf {
    /// The flow in the binary format (see [`io`](crate::io)).
    pub fn to_bytes(&self) -> Result<Vec<u8>, FlowError> {
        io::to_bytes(self)
    }

    /// A flow from the binary format; a file of another kind is an error naming it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Maf, FlowError> {
        io::from_bytes(bytes)
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
        crate::io::write_file(path.as_ref(), &self.to_bytes()?)
    }

    /// Loads a flow saved with [`save`](Self::save).
    pub fn load(path: impl AsRef<Path>) -> Result<Maf, FlowError> {
        let path = path.as_ref();
        Maf::from_bytes(&crate::io::read_file(path)?).map_err(|e| e.in_file(path))
    }

    /// The flow as JSON, for reading by people and other tools. Numbers round-trip
    /// exactly.
    pub fn to_json(&self) -> Result<String, FlowError> {
        io::to_json(self)
    }

    /// A flow from [`to_json`](Self::to_json)'s output (or a file of an earlier version).
    pub fn from_json(json: &str) -> Result<Maf, FlowError> {
        io::from_json(json)
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
                standardize_input: c.standardize_theta,
                standardize_condition: c.standardize_x,
                precision: Precision::default(),
            },
            input_dim: v.theta_dim,
            condition_dim: v.context_dim,
            input_stats: v.theta_stats,
            condition_stats: v.x_stats,
            params: v.params,
            permutations: v.permutations,
        }
    }
}
