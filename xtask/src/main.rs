//! `cargo xtask ...`: developer tasks for the simfer workspace.
//!
//! Invoked through the alias in `.cargo/config.toml`; subcommands are added as the
//! workspace grows.

use clap::{Parser, Subcommand};
use std::process::Command;

/// Developer tasks for the simfer workspace.
#[derive(Debug, Parser)]
#[command(name = "xtask", about = "Developer tasks for the simfer workspace")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// The available tasks.
#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run what `.ci/run` runs: format check, clippy, the test suite.
    Ci,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Ci => {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .ok_or_else(|| anyhow::anyhow!("xtask has no parent directory"))?;
            let status = Command::new("bash").arg(root.join(".ci/run")).status()?;
            anyhow::ensure!(status.success(), ".ci/run failed: {status}");
            Ok(())
        }
    }
}
