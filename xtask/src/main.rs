//! `cargo xtask ...`: see the library's documentation and `cargo xtask --help`.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use xtask::cli::{Cli, Command as Task};

/// Set to run `run`, `bench`, `c2st` and `mmd` in the current build even if it is a debug
/// build (the `cargo xtask` alias builds the dev profile).
const STAY_ENV: &str = "XTASK_NO_RELEASE";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The numeric tasks run 10–100× slower in the dev profile (the workspace crates at
/// opt-level 1), which would make timings meaningless: a debug build re-runs itself with
/// `cargo run --release`.
fn rerun_in_release() -> Result<ExitCode> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = xtask::workspace_root();
    eprintln!("xtask: running the release build (set {STAY_ENV}=1 to stay in this debug build)");
    let status = Command::new(cargo)
        .current_dir(std::env::current_dir()?)
        .args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "xtask",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .arg("--")
        .args(std::env::args_os().skip(1))
        .env(STAY_ENV, "1")
        .status()
        .context("running cargo")?;
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .map_or(ExitCode::FAILURE, ExitCode::from))
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let numeric = !matches!(cli.command, Task::Ci);
    if numeric && cfg!(debug_assertions) && std::env::var_os(STAY_ENV).is_none() {
        return rerun_in_release();
    }
    match cli.command {
        Task::Run(args) => {
            let summary = xtask::run::run(&args)?;
            xtask::run::print_summary(&summary, &args.out);
        }
        Task::Bench(args) => {
            let report = xtask::bench::bench(&args)?;
            println!(
                "{} runs in {:.0} s; wrote {} and {}",
                report.runs.len(),
                report.seconds_total,
                args.out.join("report.json").display(),
                args.out.join("report.md").display()
            );
        }
        Task::C2st(args) => {
            let r = xtask::files::c2st_files(&args.reference, &args.estimate, args.seed)?;
            if args.details {
                eprintln!(
                    "fold accuracies {:?}, epochs {:?}",
                    r.fold_accuracies, r.epochs
                );
            }
            println!("{}", r.accuracy);
        }
        Task::Mmd(args) => {
            let m = xtask::files::mmd_files(&args.first, &args.second, args.bandwidth)?;
            eprintln!("bandwidth {}", m.bandwidth);
            println!("{}", m.mmd2);
        }
        Task::Ci => {
            let script = xtask::workspace_root().join(".ci").join("run");
            let status = Command::new("bash")
                .arg(&script)
                .status()
                .with_context(|| format!("running {}", script.display()))?;
            ensure!(status.success(), "{} failed: {status}", script.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
