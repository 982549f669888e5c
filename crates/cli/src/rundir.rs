//! A run directory: what a run keeps, where, and the check that it is continued with the
//! settings it started with.
//!
//! ```text
//! DIR/config.toml          the config the run started with (a copy)
//! DIR/run.json             format, the settings' hash and the settings, the config's directory
//! DIR/simulations.log      every simulation, as it returned (checksummed records)
//! DIR/rounds/proposal-RRR.bin   round RRR's θ's, saved before they are simulated
//! DIR/rounds/training-RRR.bin   round RRR's trained model and its history
//! DIR/shards/              the files of `simfer simulate --shard`
//! DIR/pending/             θ's of a round waiting for simulations (CSV and .npy)
//! DIR/samples.csv, summary.json, pairplot.svg, loss.svg   the results
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{RunConfig, Settings};
use crate::log::{FileLog, read_proposal, read_simulations_file};
use crate::records::write_atomic_bytes;
use crate::{CliError, Result};

/// The `format` of run.json.
pub const RUN_FORMAT: &str = "simfer-run";
/// The version of the run directory's layout.
pub const RUN_VERSION: u32 = 1;

/// The contents of run.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Always [`RUN_FORMAT`].
    pub format: String,
    /// The layout's version ([`RUN_VERSION`]).
    pub version: u32,
    /// CRC-32 (hex) of the settings as JSON.
    pub settings_hash: String,
    /// The settings that decide the run's results.
    pub settings: Settings,
    /// The directory the config's relative paths start from.
    pub base_dir: PathBuf,
    /// The config file the run started from.
    pub config_file: PathBuf,
    /// The simfer version that started the run.
    pub simfer_version: String,
}

/// The hash of a run's settings.
pub fn settings_hash(settings: &Settings) -> String {
    let json = serde_json::to_string(settings).unwrap_or_default();
    format!("{:08x}", crc32fast::hash(json.as_bytes()))
}

/// A run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    dir: PathBuf,
}

impl RunDir {
    /// The run directory at `dir` (nothing is read).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        RunDir { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `DIR/name`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The config copy.
    pub fn config_path(&self) -> PathBuf {
        self.file("config.toml")
    }

    /// run.json.
    pub fn info_path(&self) -> PathBuf {
        self.file("run.json")
    }

    /// The simulations file.
    pub fn simulations_path(&self) -> PathBuf {
        self.file("simulations.log")
    }

    /// The directory of the proposals and trainings.
    pub fn rounds_dir(&self) -> PathBuf {
        self.file("rounds")
    }

    /// The directory of shard files.
    pub fn shards_dir(&self) -> PathBuf {
        self.file("shards")
    }

    /// The directory of θ's waiting for simulations.
    pub fn pending_dir(&self) -> PathBuf {
        self.file("pending")
    }

    /// Whether the directory holds a run.
    pub fn exists(&self) -> bool {
        self.info_path().exists()
    }

    /// Starts a run of `config` here: creates the directory and writes the config copy and
    /// run.json.
    ///
    /// # Errors
    /// A directory that already holds a run, or I/O errors.
    pub fn create(&self, config: &RunConfig, config_text: &str) -> Result<RunInfo> {
        if self.exists() {
            return Err(CliError::Usage(format!(
                "{} already holds a run: continue it with `simfer resume {}`, or give the run \
                 another output directory",
                self.dir.display(),
                self.dir.display()
            )));
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| CliError::io(&self.dir, e))?;
        let settings = config.settings();
        let info = RunInfo {
            format: RUN_FORMAT.into(),
            version: RUN_VERSION,
            settings_hash: settings_hash(&settings),
            settings,
            base_dir: config.base_dir.clone(),
            config_file: std::path::absolute(&config.path).unwrap_or(config.path.clone()),
            simfer_version: env!("CARGO_PKG_VERSION").into(),
        };
        write_atomic_bytes(&self.config_path(), config_text.as_bytes())?;
        let json = serde_json::to_string_pretty(&info)
            .map_err(|e| CliError::format(self.info_path(), e.to_string()))?;
        // run.json last: a directory with run.json has its config copy.
        write_atomic_bytes(&self.info_path(), json.as_bytes())?;
        Ok(info)
    }

    /// Reads run.json.
    ///
    /// # Errors
    /// No run here, or a run.json of another format or version.
    pub fn info(&self) -> Result<RunInfo> {
        let path = self.info_path();
        if !path.exists() {
            return Err(CliError::Usage(format!(
                "{} holds no run (no run.json): start one with `simfer run CONFIG.toml`",
                self.dir.display()
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| CliError::io(&path, e))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| CliError::format(&path, format!("expected JSON, found: {e}")))?;
        let format = value.get("format").and_then(|f| f.as_str());
        let version = value.get("version").and_then(serde_json::Value::as_u64);
        if format != Some(RUN_FORMAT) || version != Some(u64::from(RUN_VERSION)) {
            return Err(CliError::format(
                &path,
                format!(
                    "expected format {RUN_FORMAT:?} version {RUN_VERSION}, found {format:?} \
                     version {version:?}"
                ),
            ));
        }
        serde_json::from_value(value).map_err(|e| CliError::format(&path, e.to_string()))
    }

    /// Reads the run's config copy and checks that its settings are those the run started
    /// with.
    ///
    /// # Errors
    /// No run here, a config with mistakes, or [`CliError::ConfigChanged`] naming the
    /// settings that changed.
    pub fn config(&self) -> Result<(RunConfig, RunInfo)> {
        let info = self.info()?;
        let path = self.config_path();
        let text = std::fs::read_to_string(&path).map_err(|e| CliError::io(&path, e))?;
        let mut config = RunConfig::parse(&text, &path, &info.base_dir)?;
        // The output is this directory, wherever it has moved.
        config.output = self.dir.clone();
        let settings = config.settings();
        if settings_hash(&settings) != info.settings_hash || settings != info.settings {
            return Err(CliError::ConfigChanged {
                path,
                changes: changes(&info.settings, &settings),
            });
        }
        Ok((config, info))
    }

    /// Opens the run's log for writing, holding the directory's lock.
    ///
    /// # Errors
    /// Another process holds the lock, or the log's files are unreadable or corrupted.
    pub fn open_log(&self) -> Result<(FileLog, DirLock)> {
        let lock = DirLock::acquire(&self.file(".lock"))?;
        let log = FileLog::open(&self.simulations_path(), &self.rounds_dir())?;
        Ok((log, lock))
    }

    /// The round the run is at: the last round with a saved proposal, with its θ's, and the
    /// simulations the log holds for it (read only).
    ///
    /// # Errors
    /// No proposal saved yet, or unreadable or corrupted files.
    pub fn current_round(&self) -> Result<CurrentRound> {
        let rounds = self.rounds_dir();
        let mut round = None;
        let mut r = 0;
        while let Some(p) = read_proposal(&rounds, r)? {
            round = Some((r, p));
            r += 1;
        }
        let Some((round, proposal)) = round else {
            return Err(CliError::Usage(format!(
                "{} has no round's θ's yet: start the run with `simfer run --no-simulate` \
                 first",
                self.dir.display()
            )));
        };
        let mut sims = read_simulations_file(&self.simulations_path())?;
        Ok(CurrentRound {
            round,
            proposal,
            simulations: sims.remove(&round).unwrap_or_default(),
        })
    }
}

/// The last round with a proposal: its θ's and what the log holds of its simulations.
#[derive(Debug, Clone)]
pub struct CurrentRound {
    /// The round.
    pub round: usize,
    /// Its proposal.
    pub proposal: simfer_inference::SavedProposal,
    /// Its simulations in the log.
    pub simulations: crate::log::RoundSimulations,
}

/// The settings that differ, by name (`seed: 1 → 2`).
fn changes(old: &Settings, new: &Settings) -> String {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return "the settings differ".into();
    };
    let mut out = Vec::new();
    for (key, va) in &a {
        let vb = b.get(key).unwrap_or(&serde_json::Value::Null);
        if va != vb {
            let short = |v: &serde_json::Value| {
                let s = v.to_string();
                if s.chars().count() > 60 {
                    format!("{}…", s.chars().take(60).collect::<String>())
                } else {
                    s
                }
            };
            out.push(format!("{key}: {} → {}", short(va), short(vb)));
        }
    }
    if out.is_empty() {
        "the settings differ".into()
    } else {
        out.join("; ")
    }
}

/// An exclusive lock on a run directory (released when dropped), so that two processes
/// never write one run's log at once.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of the file at `path`, or fails at once if another process has it.
    ///
    /// # Errors
    /// The lock is held elsewhere, or the file cannot be opened.
    pub fn acquire(path: &Path) -> Result<DirLock> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| CliError::io(path, e))?;
        lock_exclusive(&file).map_err(|_| {
            CliError::Usage(format!(
                "another simfer process is writing the run in {} (it holds {}): wait for it \
                 to finish",
                path.parent().unwrap_or(path).display(),
                path.display()
            ))
        })?;
        Ok(DirLock { _file: file })
    }
}

#[cfg(unix)]
fn lock_exclusive(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this File owns; the lock ends when the file is closed.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn lock_exclusive(_file: &File) -> std::io::Result<()> {
    Ok(())
}
