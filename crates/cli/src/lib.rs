//! # simfer-cli: `simfer`, the command-line tool
//!
//! Simulation-based inference for a simulator in any language, from a TOML config:
//!
//! ```text
//! simfer run CONFIG.toml [--out DIR] [--no-simulate]   start a run in its output directory
//! simfer resume DIR [--no-simulate]                    continue it (after a kill, or a pause)
//! simfer sample DIR --x V1,V2,… [--n N] [--seed S]     samples at another observation
//! simfer plot DIR                                      the plots again
//! simfer simulate CONFIG|DIR --shard I --num-shards N  part of the waiting round (job arrays)
//! simfer append DIR FILES…                             θ and x simulated elsewhere
//! ```
//!
//! A run keeps everything in its directory as it happens ([`rundir`]): each round's θ's
//! before they are simulated, each simulation as soon as it returns (an append-only file of
//! checksummed records, synced to disk, [`records`]), and each round's trained model. A
//! run killed at any moment and continued with `simfer resume` redoes nothing it saved and
//! ends with the same `samples.csv`, byte for byte, as an uninterrupted run with the same
//! seed: every random choice comes from the seed, and each simulation from its own stream,
//! however the work is split (threads, worker processes, shards of a job array, MPI ranks
//! with the cargo feature `mpi`).
//!
//! The config ([`config`]) names the prior (per parameter), the simulator (a built-in task
//! or an external program speaking the batch protocol of `simfer_simulators::external`),
//! the observation, the method and estimator of `simfer_inference::Inference`, the rounds,
//! simulations, seed and output. A mistake in it is an error naming the file, line,
//! column and key, and what was expected.
//!
//! The same as a library: every command is a function in [`commands`].
//!
//! ```
//! use simfer_cli::commands::run::{RunOptions, RunOutcome, run};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("simfer-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let config = dir.join("two_moons.toml");
//! std::fs::write(
//!     &config,
//!     r#"
//! method = "npe"
//! simulations_per_round = 300
//! seed = 3
//! samples = 200
//! output = "run"
//!
//! [simulator]
//! task = "two_moons"          # a built-in task; or program = "...", args = [...], x_dim = 2
//!
//! [prior]
//! theta_1 = { kind = "uniform", low = -1, high = 1 }
//! theta_2 = { kind = "uniform", low = -1, high = 1 }
//!
//! [observation]
//! values = [0.1, 0.2]
//!
//! [training]
//! max_epochs = 5
//! "#,
//! )?;
//! let RunOutcome::Finished(summary) = run(&config, None, &RunOptions::default(), None)? else {
//!     panic!("the run simulates, so it finishes");
//! };
//! assert_eq!(summary.rounds.len(), 1);
//! assert!(dir.join("run/samples.csv").exists());
//! // Done before: a second `run` into the same directory is refused (use `resume`).
//! assert!(run(&config, None, &RunOptions::default(), None).is_err());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```

pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
mod error;
pub mod log;
pub mod outputs;
pub mod records;
pub mod rundir;
pub mod simulator;

pub use error::{CliError, Result};
