//! `cargo xtask ...`: see the library's documentation and `cargo xtask --help`.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use xtask::cli::{Cli, Command as Task};

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

fn dispatch(cli: Cli) -> Result<ExitCode> {
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
        Task::Perf(args) => {
            let report = xtask::perf::perf(&args)?;
            if !report.updated {
                println!(
                    "no case more than {} % above the baseline",
                    xtask::perf::TOLERANCE_PERCENT
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
