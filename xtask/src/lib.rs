//! `cargo xtask ...`: developer tasks for the simfer workspace.
//!
//! - `run`: NPE (`--rounds 1`) or multi-round SNPE-C on any benchmark task, at a given
//!   observation, one from a file, or one simulated from a true θ; writes `samples.csv`,
//!   `summary.json` and `pairplot.svg` ([`run`]).
//! - `bench --suite quick|full`: the benchmark suites, scored with C2ST against reference
//!   samples (or the posterior-predictive distance where there are none) and timed, with
//!   `report.json` and `report.md` beside the published numbers ([`bench`], [`report`]).
//! - `c2st A.csv B.csv`, `mmd A.csv B.csv`: two-sample scores of sample files ([`files`]).
//! - `ci`: what `.ci/run` runs.
//! - `perf [--update]`: instruction counts of the performance cases under callgrind
//!   against the committed baseline, failing on a rise of more than 5 % ([`perf`]).
//!
//! It calls the workspace's crates (simfer-inference's `run_snpe`, simfer-analysis' C2ST,
//! MMD, pairplot and sample files, simfer-simulators' tasks); see the README's xtask section.
//!
//! ```
//! use xtask::published::{Method, published};
//! use xtask::report::fmt3;
//! assert_eq!(published("slcp", Method::SnpeNsf, 10_000).map(fmt3), Some(".845".into()));
//! ```

pub mod bench;
pub mod cli;
pub mod files;
pub mod infer;
pub mod perf;
pub mod predictive;
pub mod published;
pub mod reference;
pub mod report;
pub mod run;

use std::path::PathBuf;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}
