//! Files of checksummed records, the storage of a run directory (`simfer_cli::records`:
//! simulations.log, rounds/proposal-RRR.bin, rounds/training-RRR.bin): any bytes give the
//! intact records or an error, never a panic, and the records' payloads decode (simulation
//! records, proposals, trainings and the estimator a training holds) or are an error. The
//! records read, written back as the format says, read back the same. Every input is also
//! tried with its records' checksums made right, so that changed payloads reach the
//! decoders.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use simfer_cli::log::{PROPOSAL_KIND, SIMULATIONS_KIND, TRAINING_KIND, decode, read_simulations};
use simfer_cli::records::{HEADER_LEN, parse_records};
use simfer_flows::{Estimator, RatioClassifier};
use simfer_inference::{SavedProposal, SavedTraining};

/// A record file of `kind` holding `payloads`, as the module's docs describe it.
fn file_of(kind: &str, payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"simfer\x00\x01".to_vec();
    let mut name = [0u8; 8];
    for (d, s) in name.iter_mut().zip(kind.bytes()) {
        *d = s;
    }
    out.extend_from_slice(&name);
    for p in payloads {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(p).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// `bytes` with the checksum of every whole record after the header made right.
fn fixed(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut at = HEADER_LEN;
    while at + 8 <= out.len() {
        let len = u32::from_le_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|&e| e <= out.len()) else {
            break;
        };
        let crc = crc32fast::hash(&out[at + 8..end]);
        out[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
    out
}

fn check(bytes: &[u8]) {
    let path = Path::new("fuzz.log");
    for kind in [SIMULATIONS_KIND, PROPOSAL_KIND, TRAINING_KIND] {
        for tolerate_last in [true, false] {
            let Ok(records) = parse_records(bytes, path, kind, tolerate_last) else {
                continue;
            };
            assert!(records.intact_len as usize <= bytes.len());
            if !tolerate_last {
                assert!(records.dropped.is_none());
            }
            let again = parse_records(&file_of(kind, &records.payloads), path, kind, false)
                .unwrap_or_else(|e| panic!("records written do not read back: {e}"));
            assert_eq!(again.payloads, records.payloads);
            match kind {
                SIMULATIONS_KIND => {
                    let _ = read_simulations(path, &records.payloads);
                }
                PROPOSAL_KIND => {
                    for (k, p) in records.payloads.iter().enumerate() {
                        let _ = decode::<SavedProposal>(path, k + 1, p);
                    }
                }
                _ => {
                    for (k, p) in records.payloads.iter().enumerate() {
                        if let Ok(training) = decode::<SavedTraining>(path, k + 1, p) {
                            let _ = Estimator::from_bytes(&training.model);
                            let _ = RatioClassifier::from_bytes(&training.model);
                        }
                    }
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let fixed = fixed(data);
    if fixed != data {
        check(&fixed);
    }
});
