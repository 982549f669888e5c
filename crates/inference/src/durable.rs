//! Durable runs: a [`RunLog`] keeps what a run has done (each round's proposal before it
//! is simulated, each simulation as soon as it returns, each round's trained model), and
//! [`Inference::run_logged`](crate::Inference::run_logged) continues a run from what the
//! log holds. Because every random choice of a run comes from its seed
//! ([`streams`](crate::streams)) and every simulation from its own stream, a run killed at
//! any moment and continued from its log ends with the same posterior, bit for bit, as an
//! uninterrupted run: nothing saved is redone, nothing lost is redone differently.
//!
//! The log decides where and how things are kept: [`MemoryLog`] keeps them in memory (for
//! tests and for watching a run); the `simfer` command-line tool keeps them in
//! append-only files with a checksum per record.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};
use simfer_simulators::{SimulationOptions, SimulationSink, Simulator, simulate_batch_with};
use simfer_snpe::TrainingHistory;

use crate::InferenceError;
use crate::sequential::{Method, ProposalSource, RoundData, Sequential};

/// A round's θ's as proposed, saved before any of them is simulated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedProposal {
    /// The θ's, `theta_dim × n`.
    #[serde(deserialize_with = "checked_matrix")]
    pub theta: DMatrix<f64>,
    /// Where they came from.
    pub source: ProposalSource,
}

/// A matrix as nalgebra writes it, `(values, rows, columns)`, read with the number of
/// values checked against `rows × columns` without overflow: nalgebra's own reading
/// multiplies them unchecked, so that a corrupted size could wrap around to the number of
/// values (a matrix larger than its storage) or panic.
fn checked_matrix<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<DMatrix<f64>, D::Error> {
    let (values, rows, cols): (Vec<f64>, usize, usize) = Deserialize::deserialize(deserializer)?;
    if rows.checked_mul(cols) != Some(values.len()) {
        return Err(serde::de::Error::custom(format!(
            "a matrix of {rows} × {cols} with {} values",
            values.len()
        )));
    }
    Ok(DMatrix::from_vec(rows, cols, values))
}

/// A round's training: the model after it (as [`Sequential::save_model`] gives it) and its
/// history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedTraining {
    /// The trained model, self-describing bytes.
    pub model: Vec<u8>,
    /// The training's history.
    pub history: TrainingHistory,
}

/// Where a durable run keeps what it has done. Rounds are numbered from 0 in the order the
/// run makes them.
///
/// The `save_*` calls must not return before the thing is kept (e.g. written and flushed):
/// a run continued from the log trusts that what the log returns is all it has done.
/// [`save_simulations`](Self::save_simulations) is called from the threads that ran the
/// simulations, concurrently.
pub trait RunLog: Sync {
    /// Round `round`'s saved proposal, if any.
    ///
    /// # Errors
    /// The log could not be read.
    fn proposal(&self, round: usize) -> Result<Option<SavedProposal>, InferenceError>;

    /// Keeps round `round`'s proposal (before anything is simulated).
    ///
    /// # Errors
    /// The log could not keep it.
    fn save_proposal(&self, round: usize, proposal: &SavedProposal) -> Result<(), InferenceError>;

    /// Round `round`'s saved simulations: `(index, x)` for every simulation kept so far,
    /// in any order (an index at most once).
    ///
    /// # Errors
    /// The log could not be read.
    fn simulations(&self, round: usize) -> Result<Vec<(usize, Vec<f64>)>, InferenceError>;

    /// Keeps simulations `first..first + m` of round `round`: `x` holds `x_dim · m` values,
    /// simulation after simulation; those in `failed` (with the reason) could not be
    /// produced and are NaN.
    ///
    /// # Errors
    /// A message saying why they could not be kept (it stops the run).
    fn save_simulations(
        &self,
        round: usize,
        first: usize,
        x: &[f64],
        x_dim: usize,
        failed: &[(usize, String)],
    ) -> Result<(), String>;

    /// Round `round`'s saved training, if any.
    ///
    /// # Errors
    /// The log could not be read.
    fn training(&self, round: usize) -> Result<Option<SavedTraining>, InferenceError>;

    /// Keeps round `round`'s training.
    ///
    /// # Errors
    /// The log could not keep it.
    fn save_training(&self, round: usize, training: &SavedTraining) -> Result<(), InferenceError>;
}

/// A [`RunLog`] in memory.
///
/// ```
/// use rand::RngCore;
/// use simfer_distributions::{BoxUniform, rng_from_seed};
/// use simfer_inference::{Inference, MemoryLog};
/// use simfer_simulators::FnSimulator;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let simulator = FnSimulator::new(1, 1, |t: &[f64], rng: &mut dyn RngCore| {
///     vec![t[0] + 0.1 * (rng.next_u32() as f64 / u32::MAX as f64 - 0.5)]
/// });
/// let inference = || {
///     Inference::new(BoxUniform::uniform(1, -1.0, 1.0).unwrap())
///         .method("snpe")
///         .rounds(2)
///         .simulations_per_round(200)
///         .observation(&[0.3])
///         .seed(7)
/// };
/// let log = MemoryLog::new();
/// let first = inference().run_logged(&simulator, &log)?;
/// assert_eq!(log.simulations_kept(), 400);
/// // Run again from the full log: nothing is simulated or trained again, and the
/// // posterior is the same.
/// let again = inference().run_logged(&simulator, &log)?;
/// let a = first.posterior().sample(5, None, &mut rng_from_seed(1))?;
/// let b = again.posterior().sample(5, None, &mut rng_from_seed(1))?;
/// assert_eq!(a, b);
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct MemoryLog {
    proposals: Mutex<BTreeMap<usize, SavedProposal>>,
    simulations: Mutex<BTreeMap<usize, BTreeMap<usize, Vec<f64>>>>,
    trainings: Mutex<BTreeMap<usize, SavedTraining>>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of simulations kept, over all rounds.
    pub fn simulations_kept(&self) -> usize {
        self.simulations
            .lock()
            .map(|s| s.values().map(BTreeMap::len).sum())
            .unwrap_or(0)
    }

    /// The number of trainings kept.
    pub fn trainings_kept(&self) -> usize {
        self.trainings.lock().map(|t| t.len()).unwrap_or(0)
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> InferenceError {
    InferenceError::OutOfOrder("the memory log's lock was poisoned by a panic".into())
}

impl RunLog for MemoryLog {
    fn proposal(&self, round: usize) -> Result<Option<SavedProposal>, InferenceError> {
        Ok(self
            .proposals
            .lock()
            .map_err(poisoned)?
            .get(&round)
            .cloned())
    }

    fn save_proposal(&self, round: usize, proposal: &SavedProposal) -> Result<(), InferenceError> {
        self.proposals
            .lock()
            .map_err(poisoned)?
            .insert(round, proposal.clone());
        Ok(())
    }

    fn simulations(&self, round: usize) -> Result<Vec<(usize, Vec<f64>)>, InferenceError> {
        Ok(self
            .simulations
            .lock()
            .map_err(poisoned)?
            .get(&round)
            .map(|m| m.iter().map(|(i, x)| (*i, x.clone())).collect())
            .unwrap_or_default())
    }

    fn save_simulations(
        &self,
        round: usize,
        first: usize,
        x: &[f64],
        x_dim: usize,
        _failed: &[(usize, String)],
    ) -> Result<(), String> {
        let mut all = self.simulations.lock().map_err(|e| e.to_string())?;
        let kept = all.entry(round).or_default();
        for (k, col) in x.chunks(x_dim.max(1)).enumerate() {
            kept.insert(first + k, col.to_vec());
        }
        Ok(())
    }

    fn training(&self, round: usize) -> Result<Option<SavedTraining>, InferenceError> {
        Ok(self
            .trainings
            .lock()
            .map_err(poisoned)?
            .get(&round)
            .cloned())
    }

    fn save_training(&self, round: usize, training: &SavedTraining) -> Result<(), InferenceError> {
        self.trainings
            .lock()
            .map_err(poisoned)?
            .insert(round, training.clone());
        Ok(())
    }
}

/// Hands a batch's simulations to the log, shifting batch indices to round indices.
struct LogSink<'a> {
    log: &'a dyn RunLog,
    round: usize,
    offset: usize,
    x_dim: usize,
}

impl SimulationSink for LogSink<'_> {
    fn done(&self, first: usize, x: &[f64], failed: &[(usize, String)]) -> Result<(), String> {
        let failed: Vec<(usize, String)> = failed
            .iter()
            .map(|(i, why)| (i + self.offset, why.clone()))
            .collect();
        self.log
            .save_simulations(self.round, first + self.offset, x, self.x_dim, &failed)
    }
}

/// What a durable round did: its data, and whether its training was restored.
pub(crate) struct DurableRound<'a> {
    pub data: &'a RoundData,
    pub seconds_train: f64,
}

/// Round `round` of a durable run: the proposal (restored or drawn and kept), the
/// simulations (those kept, and the rest simulated and kept as they return), then the
/// training (restored or trained and kept).
pub(crate) fn durable_round<'s, M: Method>(
    seq: &'s mut Sequential<M>,
    simulator: &dyn Simulator,
    n: usize,
    round: usize,
    log: &dyn RunLog,
    progress: bool,
) -> Result<DurableRound<'s>, InferenceError> {
    let start = Instant::now();
    let proposed = match log.proposal(round)? {
        Some(saved) => {
            if saved.theta.ncols() != n {
                return Err(InferenceError::Format(format!(
                    "the log holds {} θ's for round {round}, but the run asks for {n} \
                     simulations per round: continue a run with the settings it started with",
                    saved.theta.ncols()
                )));
            }
            seq.restore_proposal(saved.theta, saved.source)?
        }
        None => {
            let proposed = seq.propose(n)?;
            log.save_proposal(
                round,
                &SavedProposal {
                    theta: proposed.theta().clone(),
                    source: proposed.source().clone(),
                },
            )?;
            proposed
        }
    };
    let x_dim = simulator.x_dim();
    let mut x = DMatrix::from_element(x_dim, n, f64::NAN);
    let mut have = vec![false; n];
    for (i, values) in log.simulations(round)? {
        if i >= n || values.len() != x_dim {
            return Err(InferenceError::Format(format!(
                "the log holds simulation {i} of round {round} with {} values; expected an \
                 index below {n} and {x_dim} values",
                values.len()
            )));
        }
        x.column_mut(i).copy_from_slice(&values);
        have[i] = true;
    }
    // Simulate what is missing, in runs of consecutive indices, each simulation with the
    // stream it has in an uninterrupted run.
    let seed = seq.simulation_seed(proposed.round());
    let mut i = 0;
    while i < n {
        if have[i] {
            i += 1;
            continue;
        }
        let end = (i..n).find(|&j| have[j]).unwrap_or(n);
        let theta = proposed.theta().columns(i, end - i).into_owned();
        let options = SimulationOptions {
            seed,
            progress,
            stream_offset: i as u64,
        };
        let sink = LogSink {
            log,
            round,
            offset: i,
            x_dim,
        };
        let sims = simulate_batch_with(simulator, &theta, &options, Some(&sink))?;
        x.columns_mut(i, end - i).copy_from(&sims.x);
        i = end;
    }
    let seconds_simulate = start.elapsed().as_secs_f64();
    seq.append_proposed_timed(proposed, x, seconds_simulate)?;
    let start = Instant::now();
    let seconds_train = match log.training(round)? {
        Some(saved) => {
            let seconds: f64 = saved.history.epoch_seconds.iter().sum();
            seq.restore_training(&saved.model, saved.history)?;
            seconds
        }
        None => {
            let history = seq.train()?.clone();
            let model = seq.save_model()?.ok_or_else(|| {
                InferenceError::OutOfOrder("the method has no model after training".into())
            })?;
            log.save_training(round, &SavedTraining { model, history })?;
            start.elapsed().as_secs_f64()
        }
    };
    let data = seq
        .rounds()
        .last()
        .ok_or_else(|| InferenceError::OutOfOrder("the round's data was not kept".into()))?;
    Ok(DurableRound {
        data,
        seconds_train,
    })
}
