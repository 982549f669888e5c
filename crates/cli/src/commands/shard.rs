//! `simfer simulate --shard` (part of the round a run waits for, into a shard file of its
//! own) and `simfer append` (θ and x simulated elsewhere into the run's log).
//!
//! Shard `i` of `n` takes the simulations `⌊i·N/n⌋ .. ⌊(i+1)·N/n⌋` of the round's `N`, each
//! with the random stream it has in a run in one process (the round's simulation seed,
//! stream = the simulation's index), so a run simulated in shards ends as one simulated in
//! one process, bit for bit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use simfer_inference::streams::simulation_seed;
use simfer_simulators::{SimulationOptions, SimulationSink, Simulator, simulate_batch_with};

use crate::data::{Table, read_table};
use crate::log::{SimRecord, bits, decode, encode};
use crate::records::{RecordLog, read_records, warn_dropped};
use crate::rundir::{CurrentRound, RunDir};
use crate::{CliError, Result};

/// The record kind of shard files.
pub const SHARD_KIND: &str = "shard";

/// The first record of a shard file: which part of which round it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardHeader {
    /// The round.
    pub round: u32,
    /// The shard, from 0.
    pub shard: u32,
    /// The number of shards.
    pub num_shards: u32,
    /// The round's simulations.
    pub simulations: u32,
    /// CRC-32 of the round's θ's (their bits), to tell its proposal from another.
    pub proposal_crc: u32,
}

/// The CRC-32 of a proposal's θ's.
pub fn proposal_crc(theta: &nalgebra::DMatrix<f64>) -> u32 {
    let bytes: Vec<u8> = theta
        .iter()
        .flat_map(|v| v.to_bits().to_le_bytes())
        .collect();
    crc32fast::hash(&bytes)
}

/// The simulations of shard `shard` of `num_shards` of a round of `n`.
pub fn shard_range(shard: usize, num_shards: usize, n: usize) -> std::ops::Range<usize> {
    shard * n / num_shards..(shard + 1) * n / num_shards
}

/// What `simulate --shard` did.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardReport {
    /// The round.
    pub round: usize,
    /// Its simulations in this shard.
    pub range: std::ops::Range<usize>,
    /// Those simulated now (the others were in the run's log or the shard file).
    pub simulated: usize,
    /// The shard file.
    pub path: PathBuf,
}

/// The run directory of `target`: a run directory itself, or a config whose output
/// directory holds the run (with the same settings).
///
/// # Errors
/// No run there, or a config whose settings differ from the run's.
pub fn run_dir_of(target: &Path) -> Result<RunDir> {
    if target.is_dir() {
        return Ok(RunDir::at(target));
    }
    let config = crate::config::RunConfig::load(target)?;
    let dir = RunDir::at(&config.output);
    let (_, info) = dir.config()?;
    if config.settings() != info.settings {
        return Err(CliError::ConfigChanged {
            path: target.to_path_buf(),
            changes: format!(
                "its settings are not those of the run in {}",
                dir.path().display()
            ),
        });
    }
    Ok(dir)
}

/// The shard file of `shard` of `num_shards` of round `round`.
pub fn shard_path(dir: &RunDir, round: usize, shard: usize, num_shards: usize) -> PathBuf {
    dir.shards_dir().join(format!(
        "round-{round:03}-shard-{shard:04}-of-{num_shards:04}.sims"
    ))
}

struct ShardSink<'a> {
    log: &'a RecordLog,
    round: u32,
    offset: usize,
    theta: &'a nalgebra::DMatrix<f64>,
    x_dim: usize,
}

impl SimulationSink for ShardSink<'_> {
    fn done(&self, first: usize, x: &[f64], failed: &[(usize, String)]) -> Result<(), String> {
        let first = first + self.offset;
        let m = x.len() / self.x_dim.max(1);
        let theta = self.theta.columns(first, m);
        let rec = SimRecord {
            round: self.round,
            first: first as u32,
            x_dim: self.x_dim as u32,
            x: x.to_vec(),
            failed: failed
                .iter()
                .map(|(i, w)| ((i + self.offset) as u32, w.clone()))
                .collect(),
            theta: theta.iter().copied().collect(),
        };
        self.log.append(&encode(&rec)).map_err(|e| e.to_string())
    }
}

/// Simulates shard `shard` of `num_shards` of the round the run in `dir` waits for, with
/// `simulator`, into the shard file (`out`, or the default in `DIR/shards/`); never writes
/// the run's own log. A shard file from an earlier, interrupted attempt is continued.
///
/// # Errors
/// A shard out of range, a run waiting for no round, a shard file of another round or
/// proposal, and everything the simulations report.
pub fn simulate_shard(
    dir: &RunDir,
    simulator: &dyn Simulator,
    shard: usize,
    num_shards: usize,
    out: Option<&Path>,
    progress: bool,
) -> Result<ShardReport> {
    if num_shards == 0 || shard >= num_shards {
        return Err(CliError::Usage(format!(
            "expected --shard from 0 to --num-shards − 1 and --num-shards of at least 1, \
             found --shard {shard} --num-shards {num_shards}"
        )));
    }
    let (config, _) = dir.config()?;
    let current = dir.current_round()?;
    let theta = &current.proposal.theta;
    let n = theta.ncols();
    let range = shard_range(shard, num_shards, n);
    let path = out.map_or_else(
        || shard_path(dir, current.round, shard, num_shards),
        Path::to_path_buf,
    );
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| CliError::io(parent, e))?;
    }
    let header = ShardHeader {
        round: current.round as u32,
        shard: shard as u32,
        num_shards: num_shards as u32,
        simulations: n as u32,
        proposal_crc: proposal_crc(theta),
    };
    let (log, payloads) = RecordLog::open(&path, SHARD_KIND)?;
    let mut done = vec![false; n];
    for i in current.simulations.x.keys() {
        if let Some(d) = done.get_mut(*i) {
            *d = true;
        }
    }
    match payloads.split_first() {
        None => log.append(&encode(&header))?,
        Some((first, rest)) => {
            let old: ShardHeader = decode(&path, 1, first)?;
            if old != header {
                return Err(CliError::format(
                    &path,
                    format!(
                        "this shard file holds shard {} of {} of round {} (proposal {:08x}), \
                         not shard {shard} of {num_shards} of round {} (proposal {:08x}): \
                         move it away, or append it first",
                        old.shard,
                        old.num_shards,
                        old.round,
                        old.proposal_crc,
                        current.round,
                        header.proposal_crc
                    ),
                ));
            }
            for (k, bytes) in rest.iter().enumerate() {
                let rec: SimRecord = decode(&path, k + 2, bytes)?;
                for i in rec.first as usize..rec.first as usize + rec.len() {
                    if let Some(d) = done.get_mut(i) {
                        *d = true;
                    }
                }
            }
        }
    }
    let seed = simulation_seed(config.seed, current.round);
    let mut simulated = 0;
    let mut i = range.start;
    while i < range.end {
        if done[i] {
            i += 1;
            continue;
        }
        let end = (i..range.end).find(|&j| done[j]).unwrap_or(range.end);
        let part = theta.columns(i, end - i).into_owned();
        let options = SimulationOptions {
            seed,
            progress,
            stream_offset: i as u64,
        };
        let sink = ShardSink {
            log: &log,
            round: current.round as u32,
            offset: i,
            theta,
            x_dim: simulator.x_dim(),
        };
        simulate_batch_with(simulator, &part, &options, Some(&sink))?;
        simulated += end - i;
        i = end;
    }
    Ok(ShardReport {
        round: current.round,
        range,
        simulated,
        path,
    })
}

/// What `append` did with one file (or θ/x pair of files).
#[derive(Clone, Debug, PartialEq)]
pub struct AppendedFile {
    /// The file (the θ file of a pair).
    pub path: PathBuf,
    /// Simulations it held.
    pub rows: usize,
    /// Those that were new to the log.
    pub new: usize,
}

/// What `append` did.
#[derive(Clone, Debug, PartialEq)]
pub struct AppendReport {
    /// The round.
    pub round: usize,
    /// Per file.
    pub files: Vec<AppendedFile>,
    /// The round's simulations in the log now.
    pub have: usize,
    /// The round's simulations.
    pub total: usize,
}

/// θ's of the round by their bits, to simulation indices.
struct Matcher<'a> {
    current: &'a CurrentRound,
    by_bits: HashMap<Vec<u64>, Vec<usize>>,
}

impl<'a> Matcher<'a> {
    fn new(current: &'a CurrentRound) -> Self {
        let mut by_bits: HashMap<Vec<u64>, Vec<usize>> = HashMap::new();
        for (i, col) in current.proposal.theta.column_iter().enumerate() {
            by_bits.entry(bits(col.as_slice())).or_default().push(i);
        }
        Matcher { current, by_bits }
    }

    /// The simulation of θ (the first of several equal θ's not taken yet).
    fn index(&self, theta: &[f64], taken: &mut HashMap<Vec<u64>, usize>) -> Option<usize> {
        let key = bits(theta);
        let all = self.by_bits.get(&key)?;
        let k = taken.entry(key).or_insert(0);
        let i = all.get(*k).or(all.last()).copied();
        *k += 1;
        i
    }

    fn no_match(&self, path: &Path, row: usize, theta: &[f64]) -> CliError {
        CliError::Append {
            path: path.to_path_buf(),
            message: format!(
                "row {row}: θ = {theta:?} is none of round {}'s {} proposed θ's (they must \
                 match bit for bit: write them with every digit, as the files in pending/ \
                 have them)",
                self.current.round,
                self.current.proposal.theta.ncols()
            ),
        }
    }
}

/// Appends the simulations in `files` to the run in `dir`: shard files of `simfer
/// simulate`, and CSV or `.npy` tables of θ and x (one simulation per row: θ's columns
/// then x's in one file, or a file of θ's followed by a file of x's). Every θ must be one
/// of the round's proposed θ's, bit for bit.
///
/// # Errors
/// A θ that matches none (naming the file and row), files of the wrong shape, shard files
/// of another round, and a simulation that the log holds with other values.
pub fn append(dir: &RunDir, files: &[PathBuf]) -> Result<AppendReport> {
    if files.is_empty() {
        return Err(CliError::Usage(
            "expected files to append (shard files, CSV or .npy), found none".into(),
        ));
    }
    let (config, _) = dir.config()?;
    let (log, _lock) = dir.open_log()?;
    let current = dir.current_round()?;
    let d = config.parameters.len();
    let c = crate::simulator::x_dim(&config)?;
    let matcher = Matcher::new(&current);
    let mut report = AppendReport {
        round: current.round,
        files: Vec::new(),
        have: 0,
        total: current.proposal.theta.ncols(),
    };
    let mut k = 0;
    while k < files.len() {
        let path = &files[k];
        k += 1;
        if is_record_file(path) {
            report.files.push(append_shard(&log, &matcher, path, c)?);
            continue;
        }
        let table = read_table(path)?;
        let (theta, x) = if table.cols == d + c {
            (table, None)
        } else if table.cols == d {
            let Some(x_path) = files.get(k) else {
                return Err(CliError::Append {
                    path: path.clone(),
                    message: format!(
                        "it has {d} columns (θ), so a file of x ({c} columns) must follow it"
                    ),
                });
            };
            k += 1;
            let x = read_table(x_path)?;
            if x.cols != c || x.rows != table.rows {
                return Err(CliError::Append {
                    path: x_path.clone(),
                    message: format!(
                        "expected the x's of {}: {} rows of {c} columns, found {} rows of {}",
                        path.display(),
                        table.rows,
                        x.rows,
                        x.cols
                    ),
                });
            }
            (table, Some(x))
        } else {
            return Err(CliError::Append {
                path: path.clone(),
                message: format!(
                    "expected {} columns (θ's {d}, then x's {c}) or {d} (θ's, with the x's \
                     in the next file), found {}",
                    d + c,
                    table.cols
                ),
            });
        };
        report
            .files
            .push(append_table(&log, &matcher, &theta, x.as_ref(), d, c)?);
    }
    report.have = log.round_simulations(current.round).x.len();
    Ok(report)
}

fn is_record_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 6];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"simfer"
}

fn append_shard(
    log: &crate::log::FileLog,
    matcher: &Matcher<'_>,
    path: &Path,
    c: usize,
) -> Result<AppendedFile> {
    let records = read_records(path, SHARD_KIND, true)?;
    warn_dropped(path, &records);
    let Some((first, rest)) = records.payloads.split_first() else {
        return Err(CliError::format(
            path,
            "expected a shard header, found nothing",
        ));
    };
    let header: ShardHeader = decode(path, 1, first)?;
    let round = matcher.current.round;
    if header.round as usize != round
        || header.proposal_crc != proposal_crc(&matcher.current.proposal.theta)
    {
        return Err(CliError::Append {
            path: path.to_path_buf(),
            message: format!(
                "it holds simulations of round {} (proposal {:08x}), but the run waits for \
                 round {round} (proposal {:08x})",
                header.round,
                header.proposal_crc,
                proposal_crc(&matcher.current.proposal.theta)
            ),
        });
    }
    let d = matcher.current.proposal.theta.nrows();
    let mut out = AppendedFile {
        path: path.to_path_buf(),
        rows: 0,
        new: 0,
    };
    for (k, bytes) in rest.iter().enumerate() {
        let mut rec: SimRecord = decode(path, k + 2, bytes)?;
        if rec.x_dim as usize != c || rec.theta.len() != rec.len() * d {
            return Err(CliError::Corrupted {
                path: path.to_path_buf(),
                record: k + 2,
                what: format!(
                    "expected simulations of {c} values with θ's of {d}, found x_dim {} and {} \
                     θ values for {} simulations",
                    rec.x_dim,
                    rec.theta.len(),
                    rec.len()
                ),
            });
        }
        for j in 0..rec.len() {
            let theta = &rec.theta[j * d..(j + 1) * d];
            let i = rec.first as usize + j;
            let column = matcher
                .current
                .proposal
                .theta
                .column(i.min(matcher.current.proposal.theta.ncols().saturating_sub(1)));
            if i >= matcher.current.proposal.theta.ncols() || bits(column.as_slice()) != bits(theta)
            {
                return Err(matcher.no_match(path, out.rows + j + 1, theta));
            }
        }
        out.rows += rec.len();
        rec.theta.clear();
        out.new += log.add(&rec)?;
    }
    Ok(out)
}

fn append_table(
    log: &crate::log::FileLog,
    matcher: &Matcher<'_>,
    theta: &Table,
    x: Option<&Table>,
    d: usize,
    c: usize,
) -> Result<AppendedFile> {
    let mut taken = HashMap::new();
    let mut found: Vec<(usize, Vec<f64>)> = Vec::with_capacity(theta.rows);
    for r in 0..theta.rows {
        let row = theta.row(r);
        let (t, xr) = match x {
            Some(x) => (row, x.row(r)),
            None => (&row[..d], &row[d..d + c]),
        };
        let i = matcher
            .index(t, &mut taken)
            .ok_or_else(|| matcher.no_match(&theta.path, r + 1, t))?;
        found.push((i, xr.to_vec()));
    }
    found.sort_by_key(|(i, _)| *i);
    let mut new = 0;
    // One record per run of consecutive simulations.
    let mut k = 0;
    while k < found.len() {
        let mut end = k + 1;
        while end < found.len() && found[end].0 == found[end - 1].0 + 1 {
            end += 1;
        }
        let rec = SimRecord {
            round: matcher.current.round as u32,
            first: found[k].0 as u32,
            x_dim: c as u32,
            x: found[k..end]
                .iter()
                .flat_map(|(_, x)| x.iter().copied())
                .collect(),
            failed: Vec::new(),
            theta: Vec::new(),
        };
        new += log.add(&rec)?;
        k = end;
    }
    Ok(AppendedFile {
        path: theta.path.clone(),
        rows: theta.rows,
        new,
    })
}
