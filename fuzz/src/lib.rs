//! What the fuzz targets share: the checksums of saved files fixed up, so that changed
//! inputs get past the checksum to the checks behind it.

use serde_json::Value;

/// `bytes` with its last 4 bytes replaced by the CRC-32 of the rest, as a saved
/// estimator's binary file ends (`None` if shorter than that).
pub fn with_binary_checksum(bytes: &[u8]) -> Option<Vec<u8>> {
    let content = bytes.get(..bytes.len().checked_sub(4)?)?;
    let mut out = content.to_vec();
    out.extend_from_slice(&crc32fast::hash(content).to_le_bytes());
    Some(out)
}

/// The JSON document `text` sealed again (`simfer_flows::io::seal_json`): a nested
/// estimator (the `estimator` field of a posterior file) first, then the whole; `None` if
/// it is not a JSON object.
pub fn sealed_json(text: &str) -> Option<String> {
    let mut document: Value = serde_json::from_str(text).ok()?;
    if !document.is_object() {
        return None;
    }
    if let Some(estimator) = document.get_mut("estimator") {
        simfer_flows::io::seal_json(estimator);
    }
    simfer_flows::io::seal_json(&mut document);
    serde_json::to_string(&document).ok()
}

/// Whether two lists of numbers are the same bits (any NaN equal to any NaN: a NaN is
/// written as `NaN`, without its sign or payload).
pub fn same_values(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}
