//! The run's log on files: a [`RunLog`] whose simulations go to an append-only file of
//! checksummed records, one per `save_simulations` call, synced before the call returns, and
//! whose proposals and trainings are files of one record each, written atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use simfer_inference::{InferenceError, RunLog, SavedProposal, SavedTraining};

use crate::records::{RecordLog, read_records, read_single, warn_dropped, write_atomic};
use crate::{CliError, Result};

/// The record kind of the simulations file.
pub const SIMULATIONS_KIND: &str = "sims";
/// The record kind of a proposal file.
pub const PROPOSAL_KIND: &str = "proposal";
/// The record kind of a training file.
pub const TRAINING_KIND: &str = "training";

/// One `save_simulations` call: simulations `first..first + m` of a round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimRecord {
    /// The round.
    pub round: u32,
    /// The first simulation's index in the round.
    pub first: u32,
    /// Values per simulation.
    pub x_dim: u32,
    /// `x_dim · m` values, simulation after simulation (NaN for failed ones).
    pub x: Vec<f64>,
    /// Simulations the simulator could not produce (round indices) and why.
    pub failed: Vec<(u32, String)>,
    /// The θ's, `theta_dim · m` values (in shard files; empty in the run's log).
    pub theta: Vec<f64>,
}

impl SimRecord {
    /// The number of simulations in the record.
    pub fn len(&self) -> usize {
        self.x.len() / (self.x_dim.max(1) as usize)
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Decodes a record's payload, naming the file and record on failure.
pub fn decode<T: for<'de> Deserialize<'de>>(path: &Path, record: usize, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| CliError::Corrupted {
        path: path.to_path_buf(),
        record,
        what: format!("its checksum is right but it does not decode ({e})"),
    })
}

/// Encodes a record's payload.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain data to bytes in memory cannot fail.
    postcard::to_allocvec(value).unwrap_or_default()
}

/// What the log holds of one round's simulations.
#[derive(Clone, Debug, Default)]
pub struct RoundSimulations {
    /// x by simulation index.
    pub x: BTreeMap<usize, Vec<f64>>,
    /// The failed simulations and why.
    pub failed: BTreeMap<usize, String>,
}

/// Reads the simulations of a log file into rounds (a torn last record dropped with a
/// warning).
///
/// # Errors
/// A corrupted record that is not the last, or two records with different x for the same
/// simulation.
pub fn read_simulations(
    path: &Path,
    payloads: &[Vec<u8>],
) -> Result<BTreeMap<usize, RoundSimulations>> {
    let mut rounds: BTreeMap<usize, RoundSimulations> = BTreeMap::new();
    for (k, bytes) in payloads.iter().enumerate() {
        let rec: SimRecord = decode(path, k + 1, bytes)?;
        add_record(path, k + 1, &rec, &mut rounds)?;
    }
    Ok(rounds)
}

fn add_record(
    path: &Path,
    record: usize,
    rec: &SimRecord,
    rounds: &mut BTreeMap<usize, RoundSimulations>,
) -> Result<()> {
    let xd = rec.x_dim.max(1) as usize;
    let round = rounds.entry(rec.round as usize).or_default();
    for (j, x) in rec.x.chunks(xd).enumerate() {
        let i = rec.first as usize + j;
        match round.x.get(&i) {
            Some(old) if bits(old) != bits(x) => {
                return Err(CliError::Corrupted {
                    path: path.to_path_buf(),
                    record,
                    what: format!(
                        "it holds simulation {i} of round {} again with other values",
                        rec.round
                    ),
                });
            }
            Some(_) => {}
            None => {
                round.x.insert(i, x.to_vec());
            }
        }
    }
    for (i, why) in &rec.failed {
        round.failed.insert(*i as usize, why.clone());
    }
    Ok(())
}

/// The bits of some values (to compare NaN with NaN).
pub fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A [`RunLog`] on the files of a run directory.
#[derive(Debug)]
pub struct FileLog {
    rounds_dir: PathBuf,
    simulations: RecordLog,
    kept: Mutex<BTreeMap<usize, RoundSimulations>>,
}

impl FileLog {
    /// Opens (or starts) the log with its simulations in `simulations` and its proposals
    /// and trainings in `rounds_dir`.
    ///
    /// # Errors
    /// Unreadable or corrupted files.
    pub fn open(simulations: &Path, rounds_dir: &Path) -> Result<FileLog> {
        std::fs::create_dir_all(rounds_dir).map_err(|e| CliError::io(rounds_dir, e))?;
        let (log, payloads) = RecordLog::open(simulations, SIMULATIONS_KIND)?;
        let kept = read_simulations(simulations, &payloads)?;
        Ok(FileLog {
            rounds_dir: rounds_dir.to_path_buf(),
            simulations: log,
            kept: Mutex::new(kept),
        })
    }

    /// What the log holds of round `round`'s simulations.
    pub fn round_simulations(&self, round: usize) -> RoundSimulations {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&round)
            .cloned()
            .unwrap_or_default()
    }

    /// Appends simulations made elsewhere (e.g. by `simfer simulate`), skipping those the
    /// log already holds; returns how many were new.
    ///
    /// # Errors
    /// The write failed, or a simulation the log holds with other values.
    pub fn add(&self, rec: &SimRecord) -> Result<usize> {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let round = kept.entry(rec.round as usize).or_default();
        let xd = rec.x_dim.max(1) as usize;
        let mut new = 0;
        for (j, x) in rec.x.chunks(xd).enumerate() {
            let i = rec.first as usize + j;
            match round.x.get(&i) {
                Some(old) if bits(old) != bits(x) => {
                    return Err(CliError::Usage(format!(
                        "simulation {i} of round {} is in the log already with other values",
                        rec.round
                    )));
                }
                Some(_) => {}
                None => new += 1,
            }
        }
        if new == 0 {
            return Ok(0);
        }
        self.simulations.append(&encode(rec))?;
        add_record(self.simulations.path(), 0, rec, &mut kept)?;
        Ok(new)
    }

    fn file(&self, what: &str, round: usize) -> PathBuf {
        round_file(&self.rounds_dir, what, round)
    }
}

/// The file of round `round`'s proposal (`what = "proposal"`) or training.
pub fn round_file(rounds_dir: &Path, what: &str, round: usize) -> PathBuf {
    rounds_dir.join(format!("{what}-{round:03}.bin"))
}

/// Reads round `round`'s saved proposal from `rounds_dir`, if there is one.
///
/// # Errors
/// An unreadable or corrupted file.
pub fn read_proposal(rounds_dir: &Path, round: usize) -> Result<Option<SavedProposal>> {
    read_round_file(&round_file(rounds_dir, PROPOSAL_KIND, round), PROPOSAL_KIND)
}

/// Reads round `round`'s saved training from `rounds_dir`, if there is one.
///
/// # Errors
/// An unreadable or corrupted file.
pub fn read_training(rounds_dir: &Path, round: usize) -> Result<Option<SavedTraining>> {
    read_round_file(&round_file(rounds_dir, TRAINING_KIND, round), TRAINING_KIND)
}

fn read_round_file<T: for<'de> Deserialize<'de>>(path: &Path, kind: &str) -> Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = read_single(path, kind)?;
    decode(path, 1, &bytes).map(Some)
}

/// Reads a simulations file read-only (a torn last record dropped with a warning).
///
/// # Errors
/// As [`read_simulations`]; a missing file holds nothing.
pub fn read_simulations_file(path: &Path) -> Result<BTreeMap<usize, RoundSimulations>> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let records = read_records(path, SIMULATIONS_KIND, true)?;
    warn_dropped(path, &records);
    read_simulations(path, &records.payloads)
}

fn to_inference(e: CliError) -> InferenceError {
    InferenceError::Format(e.to_string())
}

impl RunLog for FileLog {
    fn proposal(&self, round: usize) -> Result<Option<SavedProposal>, InferenceError> {
        read_proposal(&self.rounds_dir, round).map_err(to_inference)
    }

    fn save_proposal(&self, round: usize, proposal: &SavedProposal) -> Result<(), InferenceError> {
        write_atomic(
            &self.file(PROPOSAL_KIND, round),
            PROPOSAL_KIND,
            &encode(proposal),
        )
        .map_err(to_inference)
    }

    fn simulations(&self, round: usize) -> Result<Vec<(usize, Vec<f64>)>, InferenceError> {
        Ok(self.round_simulations(round).x.into_iter().collect())
    }

    fn save_simulations(
        &self,
        round: usize,
        first: usize,
        x: &[f64],
        x_dim: usize,
        failed: &[(usize, String)],
    ) -> Result<(), String> {
        let rec = SimRecord {
            round: round as u32,
            first: first as u32,
            x_dim: x_dim as u32,
            x: x.to_vec(),
            failed: failed.iter().map(|(i, w)| (*i as u32, w.clone())).collect(),
            theta: Vec::new(),
        };
        self.simulations
            .append(&encode(&rec))
            .map_err(|e| e.to_string())?;
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        add_record(self.simulations.path(), 0, &rec, &mut kept).map_err(|e| e.to_string())
    }

    fn training(&self, round: usize) -> Result<Option<SavedTraining>, InferenceError> {
        read_training(&self.rounds_dir, round).map_err(to_inference)
    }

    fn save_training(&self, round: usize, training: &SavedTraining) -> Result<(), InferenceError> {
        write_atomic(
            &self.file(TRAINING_KIND, round),
            TRAINING_KIND,
            &encode(training),
        )
        .map_err(to_inference)
    }
}
