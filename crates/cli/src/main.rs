//! `simfer`: see the library's documentation, the README and `simfer --help`.

use std::process::ExitCode;

use clap::Parser;
use simfer_cli::Result;
use simfer_cli::cli::{Cli, Command};
use simfer_cli::commands::run::{RunOptions, RunOutcome, summary_message, waiting_message};
use simfer_cli::commands::{run, sample, shard};
use simfer_simulators::Simulator;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // No panic leaves the process as a panic: it becomes an error exit.
    match std::panic::catch_unwind(|| dispatch(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("error: simfer stopped on an internal error (the message is above)");
            ExitCode::from(70)
        }
    }
}

fn print_outcome(outcome: &RunOutcome, dir: &std::path::Path) {
    match outcome {
        RunOutcome::Finished(summary) => println!("{}", summary_message(summary, dir)),
        RunOutcome::Waiting(w) => eprintln!("{}", waiting_message(w)),
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => {
            let options = RunOptions {
                no_simulate: args.common.no_simulate,
                progress: !args.common.no_progress,
            };
            let outcome = with_simulator(Target::Config(&args.config), |sim| {
                run::run(&args.config, args.out.as_deref(), &options, sim)
            })?;
            if let Some(outcome) = outcome {
                let dir = match &outcome {
                    RunOutcome::Waiting(w) => w.dir.clone(),
                    RunOutcome::Finished(_) => match &args.out {
                        Some(out) => out.clone(),
                        None => simfer_cli::config::RunConfig::load(&args.config)?.output,
                    },
                };
                print_outcome(&outcome, &dir);
            }
        }
        Command::Resume(args) => {
            let options = RunOptions {
                no_simulate: args.common.no_simulate,
                progress: !args.common.no_progress,
            };
            let outcome = with_simulator(Target::Dir(&args.dir), |sim| {
                run::resume(&args.dir, &options, sim)
            })?;
            if let Some(outcome) = outcome {
                print_outcome(&outcome, &args.dir);
            }
        }
        Command::Sample(args) => {
            let path =
                sample::sample(&args.dir, &args.x.0, args.n, args.seed, args.out.as_deref())?;
            println!(
                "wrote {} samples at x = {:?} to {}",
                args.n,
                args.x.0,
                path.display()
            );
        }
        Command::Plot(args) => {
            for path in sample::plot(&args.dir)? {
                println!("wrote {}", path.display());
            }
        }
        Command::Simulate(args) => {
            let dir = shard::run_dir_of(&args.target)?;
            let (config, _) = dir.config()?;
            let simulator = simfer_cli::simulator::build_simulator(&config)?;
            let report = shard::simulate_shard(
                &dir,
                simulator.as_ref(),
                args.shard,
                args.num_shards,
                args.out.as_deref(),
                !args.no_progress,
            )?;
            println!(
                "round {}, shard {} of {}: simulations {}..{} ({} simulated now) in {}",
                report.round,
                args.shard,
                args.num_shards,
                report.range.start,
                report.range.end,
                report.simulated,
                report.path.display()
            );
        }
        Command::Append(args) => {
            let dir = simfer_cli::rundir::RunDir::at(&args.dir);
            let report = shard::append(&dir, &args.files)?;
            for f in &report.files {
                println!(
                    "{}: {} simulations, {} new",
                    f.path.display(),
                    f.rows,
                    f.new
                );
            }
            println!(
                "round {}: {} of {} simulations in the log{}",
                report.round,
                report.have,
                report.total,
                if report.have == report.total {
                    format!("; continue with `simfer resume {}`", args.dir.display())
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}

/// Where a command's config comes from (read by the ranks that serve, under MPI).
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
enum Target<'a> {
    Config(&'a std::path::Path),
    Dir(&'a std::path::Path),
}

/// Runs `f` with the simulator to use: without MPI (or on one rank), `None` (the config's
/// own simulator). Under MPI with several ranks, rank 0 runs `f` with an `MpiSimulator`
/// and every other rank serves its shares, returning `Ok(None)`.
#[cfg(not(feature = "mpi"))]
fn with_simulator<T>(
    _target: Target<'_>,
    f: impl FnOnce(Option<&dyn Simulator>) -> Result<T>,
) -> Result<Option<T>> {
    f(None).map(Some)
}

#[cfg(feature = "mpi")]
fn with_simulator<T>(
    target: Target<'_>,
    f: impl FnOnce(Option<&dyn Simulator>) -> Result<T>,
) -> Result<Option<T>> {
    use simfer_simulators::mpi::{self, MpiSimulator};
    let universe = mpi::init()?;
    let world = universe.world();
    if world.size() == 1 {
        return f(None).map(Some);
    }
    let config = match target {
        Target::Config(path) => simfer_cli::config::RunConfig::load(path)?,
        Target::Dir(dir) => simfer_cli::rundir::RunDir::at(dir).config()?.0,
    };
    let simulator = simfer_cli::simulator::build_simulator(&config)?;
    if world.rank() == 0 {
        let rows = world.size() * simfer_cli::simulator::IN_PROCESS_CHUNK;
        let sim = MpiSimulator::new(world, simulator)?.with_batch_size(rows);
        let result = f(Some(&sim));
        sim.finish()?;
        result.map(Some)
    } else {
        let served = mpi::serve(world, &simulator)?;
        eprintln!(
            "rank {}: simulated {} simulations for rank 0",
            world.rank(),
            served.rows
        );
        Ok(None)
    }
}
