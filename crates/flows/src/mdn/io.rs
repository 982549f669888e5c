//! The MDN in the self-describing estimator format (kind `mdn`): the configuration,
//! dimensions, standardization statistics and parameters. Version 2 carries a checksum;
//! version 1, the same layout without one, still loads.

use std::io::{Read, Write};
use std::path::Path;

use super::{Mdn, MdnData};
use crate::error::FlowError;
use crate::io::{self, SavedModel};

impl SavedModel for Mdn {
    type Stored = MdnData;
    const KIND: &'static str = "mdn";
    const VERSION: u32 = 2;
    const OLDEST_VERSION: u32 = 1;
    const CHECKSUMMED_SINCE: u32 = 2;

    fn from_stored(data: MdnData) -> Result<Self, FlowError> {
        Mdn::from_data(data)
    }
}

impl Mdn {
    /// The MDN in the binary format (see [`io`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>, FlowError> {
        io::to_bytes(self)
    }

    /// An MDN from the binary format; a file of another kind is an error naming it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Mdn, FlowError> {
        io::from_bytes(bytes)
    }

    /// Writes the binary format to `writer`.
    pub fn write_to<W: Write>(&self, mut writer: W) -> Result<(), FlowError> {
        writer.write_all(&self.to_bytes()?)?;
        Ok(())
    }

    /// Reads the binary format from `reader`.
    pub fn read_from<R: Read>(mut reader: R) -> Result<Mdn, FlowError> {
        let mut buf = Vec::new();
        reader.read_to_end(&mut buf)?;
        Mdn::from_bytes(&buf)
    }

    /// Saves the MDN to a file in the binary format.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), FlowError> {
        crate::io::write_file(path.as_ref(), &self.to_bytes()?)
    }

    /// Loads an MDN saved with [`save`](Self::save).
    pub fn load(path: impl AsRef<Path>) -> Result<Mdn, FlowError> {
        let path = path.as_ref();
        Mdn::from_bytes(&crate::io::read_file(path)?).map_err(|e| e.in_file(path))
    }

    /// The MDN as JSON, for reading by people and other tools. Numbers round-trip
    /// exactly.
    pub fn to_json(&self) -> Result<String, FlowError> {
        io::to_json(self)
    }

    /// An MDN from [`to_json`](Self::to_json)'s output.
    pub fn from_json(json: &str) -> Result<Mdn, FlowError> {
        io::from_json(json)
    }
}
