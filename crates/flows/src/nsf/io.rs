//! The NSF in the self-describing estimator format (kind `nsf`): version 2 carries a
//! checksum; version 1, the same layout without one, still loads.

use std::io::{Read, Write};
use std::path::Path;

use super::{Nsf, NsfData};
use crate::error::FlowError;
use crate::io::{self, SavedModel};

impl SavedModel for Nsf {
    type Stored = NsfData;
    const KIND: &'static str = "nsf";
    const VERSION: u32 = 2;
    const OLDEST_VERSION: u32 = 1;
    const CHECKSUMMED_SINCE: u32 = 2;

    fn from_stored(data: NsfData) -> Result<Self, FlowError> {
        Nsf::from_data(data)
    }
}

impl Nsf {
    /// The flow in the binary format (see [`io`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>, FlowError> {
        io::to_bytes(self)
    }

    /// A flow from the binary format; a file of another kind is an error naming it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Nsf, FlowError> {
        io::from_bytes(bytes)
    }

    /// Writes the binary format to `writer`.
    pub fn write_to<W: Write>(&self, mut writer: W) -> Result<(), FlowError> {
        writer.write_all(&self.to_bytes()?)?;
        Ok(())
    }

    /// Reads the binary format from `reader`.
    pub fn read_from<R: Read>(mut reader: R) -> Result<Nsf, FlowError> {
        let mut buf = Vec::new();
        reader.read_to_end(&mut buf)?;
        Nsf::from_bytes(&buf)
    }

    /// Saves the flow to a file in the binary format.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), FlowError> {
        crate::io::write_file(path.as_ref(), &self.to_bytes()?)
    }

    /// Loads a flow saved with [`save`](Self::save).
    pub fn load(path: impl AsRef<Path>) -> Result<Nsf, FlowError> {
        let path = path.as_ref();
        Nsf::from_bytes(&crate::io::read_file(path)?).map_err(|e| e.in_file(path))
    }

    /// The flow as JSON, for reading by people and other tools. Numbers round-trip
    /// exactly.
    pub fn to_json(&self) -> Result<String, FlowError> {
        io::to_json(self)
    }

    /// A flow from [`to_json`](Self::to_json)'s output.
    pub fn from_json(json: &str) -> Result<Nsf, FlowError> {
        io::from_json(json)
    }
}
