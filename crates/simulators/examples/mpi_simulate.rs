//! The MPI check: simulates batches of two benchmark tasks, of a batch simulator that fails
//! on some rows, and of a simulator that errors or panics on some θ's, through an
//! `MpiSimulator` on every rank of the job, and compares each result with the one-process
//! result computed on rank 0 (x bit for bit, the invalid and failed rows, the errors).
//! Prints one line per check and exits non-zero on any difference.
//!
//! ```text
//! cargo build --release -p simfer-simulators --features mpi --example mpi_simulate
//! mpirun -np 3 target/release/examples/mpi_simulate      # as root: --allow-run-as-root
//! ```

use std::process::ExitCode;
use std::time::Instant;

use nalgebra::DMatrix;
use rand::{Rng, RngCore};
use simfer_benchmark::task;
use simfer_benchmark::tasks::{Slcp, TwoMoons};
use simfer_distributions::{Prior, rng_from_seed};
use simfer_simulators::mpi::{self, MpiSimulator, World};
use simfer_simulators::{
    BatchPlan, SimulationChunk, SimulationOptions, Simulations, Simulator, SimulatorError,
    check_chunk, check_lengths, simulate_batch,
};

/// A batch simulator: rows with θ₀ < −0.5 fail ("could not produce"), θ₁ > 0.6 gives NaN,
/// θ₁ < −0.6 gives +∞, and otherwise x = (θ₀ + u, θ₁·u, v) with u, v uniform.
struct Flaky;

impl Simulator for Flaky {
    fn theta_dim(&self) -> usize {
        2
    }
    fn x_dim(&self) -> usize {
        3
    }
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        check_lengths(self, theta, out)?;
        let u: f64 = rng.random();
        out[0] = theta[0] + u;
        out[1] = if theta[1] > 0.6 {
            f64::NAN
        } else if theta[1] < -0.6 {
            f64::INFINITY
        } else {
            theta[1] * u
        };
        out[2] = rng.random();
        Ok(())
    }
    fn batch_plan(&self) -> Option<BatchPlan> {
        Some(BatchPlan {
            batch_size: 16,
            concurrency: 2,
        })
    }
    fn simulate_many(
        &self,
        chunk: &SimulationChunk<'_>,
        out: &mut [f64],
        failed: &mut Vec<(usize, String)>,
    ) -> Result<(), SimulatorError> {
        check_chunk(self, chunk, out)?;
        for (k, row) in out.chunks_mut(3).enumerate() {
            let theta = chunk.theta(k);
            if theta[0] < -0.5 {
                failed.push((chunk.index(k), format!("θ₀ = {} is below -0.5", theta[0])));
                continue;
            }
            self.simulate(theta, &mut chunk.rng(k), row)?;
        }
        Ok(())
    }
}

/// θ₀ = 9 is an error (a wrong output length), θ₀ = 8 a panic; otherwise x = θ + u.
struct Touchy;

impl Simulator for Touchy {
    fn theta_dim(&self) -> usize {
        2
    }
    fn x_dim(&self) -> usize {
        2
    }
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        check_lengths(self, theta, out)?;
        if theta[0] == 9.0 {
            return Err(SimulatorError::OutputLength {
                expected: 2,
                found: 1,
            });
        }
        if theta[0] == 8.0 {
            panic!("deliberate panic at θ = {theta:?}");
        }
        for (o, t) in out.iter_mut().zip(theta) {
            *o = t + rng.random::<f64>();
        }
        Ok(())
    }
}

/// The phases, in the order every rank goes through them.
fn phases() -> Vec<(&'static str, Box<dyn Simulator>)> {
    vec![
        ("two_moons", Box::new(TwoMoons)),
        ("slcp", Box::new(Slcp)),
        ("flaky", Box::new(Flaky)),
        ("touchy", Box::new(Touchy)),
    ]
}

/// The shares of `rows` among `parts` ranks, as documented: contiguous, in rank order, the
/// first `rows % parts` one row longer.
fn owner(index: usize, rows: usize, parts: usize) -> usize {
    let (base, extra) = (rows / parts, rows % parts);
    let long = extra * (base + 1);
    if index < long {
        index / (base + 1)
    } else {
        extra + (index - long) / base.max(1)
    }
}

/// θ's for a phase: from the task's prior for the tasks, uniform on [−1, 1]² otherwise.
fn thetas(phase: &str, n: usize, seed: u64) -> Result<DMatrix<f64>, SimulatorError> {
    let mut rng = rng_from_seed(seed);
    match phase {
        "two_moons" | "slcp" => Ok(task(phase)
            .map_err(|e| SimulatorError::InvalidArgument(e.to_string()))?
            .prior()
            .sample_batch(n, &mut rng)),
        _ => Ok(DMatrix::from_fn(2, n, |_, _| rng.random_range(-1.0..1.0))),
    }
}

/// Compares two results; `None` if identical.
fn difference(one: &Simulations, many: &Simulations) -> Option<String> {
    if one.x.shape() != many.x.shape() {
        return Some(format!(
            "x is {:?} through MPI, {:?} in one process",
            many.x.shape(),
            one.x.shape()
        ));
    }
    for (j, (a, b)) in one.x.column_iter().zip(many.x.column_iter()).enumerate() {
        if a.iter()
            .zip(b.iter())
            .any(|(u, v)| u.to_bits() != v.to_bits())
        {
            return Some(format!(
                "x of simulation {j} is {:?} through MPI, {:?} in one process",
                b.as_slice(),
                a.as_slice()
            ));
        }
    }
    if one.invalid != many.invalid {
        return Some(format!(
            "the invalid rows differ: through MPI {:?}, in one process {:?}",
            many.invalid, one.invalid
        ));
    }
    None
}

struct Check {
    n: usize,
    seed: u64,
    offset: u64,
    batch_size: Option<usize>,
}

fn root(world: &World) -> Result<usize, String> {
    let size = world.size();
    let mut problems = Vec::new();
    let mut checks = 0;
    let cases = [
        Check {
            n: 10_000,
            seed: 1,
            offset: 0,
            batch_size: None,
        },
        Check {
            n: 1000,
            seed: 2,
            offset: 5000,
            batch_size: Some(64),
        },
        Check {
            n: 257,
            seed: 3,
            offset: u64::MAX - 100,
            batch_size: Some(10),
        },
        Check {
            n: 2,
            seed: 4,
            offset: 0,
            batch_size: None,
        },
        Check {
            n: 1,
            seed: 5,
            offset: 0,
            batch_size: None,
        },
        Check {
            n: 0,
            seed: 6,
            offset: 0,
            batch_size: None,
        },
        Check {
            n: 100,
            seed: 7,
            offset: 3,
            batch_size: Some(1),
        },
    ];
    for (phase, sim) in phases() {
        let start = Instant::now();
        let inner: &dyn Simulator = sim.as_ref();
        let mut mpi_sim = Some(MpiSimulator::new(world, inner).map_err(|e| e.to_string())?);
        for c in &cases {
            let this = mpi_sim
                .take()
                .ok_or("the MpiSimulator is gone")?
                .with_batch_size(c.batch_size.unwrap_or(usize::MAX));
            let theta = thetas(phase, c.n, c.seed).map_err(|e| e.to_string())?;
            let opts = SimulationOptions::with_seed(c.seed)
                .with_stream_offset(c.offset)
                .with_progress(false);
            let what = format!(
                "{phase}: n = {}, seed {}, stream offset {}, chunks of {}",
                c.n,
                c.seed,
                c.offset,
                c.batch_size
                    .map_or("the whole batch".to_string(), |b| b.to_string())
            );
            checks += 1;
            match (
                simulate_batch(inner, &theta, &opts),
                simulate_batch(&this, &theta, &opts),
            ) {
                (Ok(one), Ok(many)) => match difference(&one, &many) {
                    None => println!(
                        "OK   {what}: x bit-identical; {} NaN, {} ±∞, {} failed",
                        many.invalid.num_nan(),
                        many.invalid.num_inf(),
                        many.invalid.num_failed()
                    ),
                    Some(d) => problems.push(format!("{what}: {d}")),
                },
                (one, many) => problems.push(format!(
                    "{what}: one process gave {:?}, MPI gave {:?}",
                    one.map(|s| s.invalid),
                    many.map(|s| s.invalid)
                )),
            }
            mpi_sim = Some(this);
        }
        // Back to whole batches, so that the failures below land on the ranks they should.
        let sim = mpi_sim
            .take()
            .ok_or("the MpiSimulator is gone")?
            .with_batch_size(usize::MAX);
        if phase == "touchy" {
            checks += touchy_errors(&sim, size, &mut problems)?;
        }
        sim.finish().map_err(|e| e.to_string())?;
        println!(
            "     {phase}: done in {:.2} s",
            start.elapsed().as_secs_f64()
        );
    }
    if problems.is_empty() {
        Ok(checks)
    } else {
        for p in &problems {
            eprintln!("MISMATCH {p}");
        }
        Err(format!("{} of {checks} checks differ", problems.len()))
    }
}

/// Errors and panics, on rank 0's share and on the last rank's, and a clean batch after
/// them.
fn touchy_errors(
    sim: &MpiSimulator<'_, &dyn Simulator>,
    size: usize,
    problems: &mut Vec<String>,
) -> Result<usize, String> {
    let n = 30;
    let opts = SimulationOptions::with_seed(9).with_progress(false);
    let mut checks = 0;
    for (index, marker, kind) in [
        (n - 2, 9.0, "error"),
        (n - 1, 8.0, "panic"),
        (1, 9.0, "error"),
        (0, 8.0, "panic"),
    ] {
        checks += 1;
        let mut theta = thetas("touchy", n, 11).map_err(|e| e.to_string())?;
        theta[(0, index)] = marker;
        let what = format!("touchy: a simulation that {kind}s at index {index} of {n}");
        let one = simulate_batch(&Touchy, &theta, &opts);
        let many = simulate_batch(sim, &theta, &opts);
        let rank = owner(index, n, size);
        let outcome = match (&one, &many) {
            (Err(one), Err(many)) if rank == 0 => {
                if one.to_string() == many.to_string() {
                    Ok(format!("the one-process error on rank 0: {many}"))
                } else {
                    Err(format!("one process: {one}; MPI: {many}"))
                }
            }
            (Err(_), Err(SimulatorError::MpiRank { rank: r, message })) => {
                let word = if kind == "panic" {
                    "panicked"
                } else {
                    "failed"
                };
                if *r == rank
                    && message.contains(&format!("simulation {index} "))
                    && message.contains(word)
                {
                    Ok(format!("rank {r} reported it: {message}"))
                } else {
                    Err(format!(
                        "expected an error of rank {rank} naming simulation {index}, found rank {r}: {message}"
                    ))
                }
            }
            _ => Err(format!(
                "one process gave {:?}, MPI gave {:?}",
                one.as_ref().map(|s| s.len()).map_err(ToString::to_string),
                many.as_ref().map(|s| s.len()).map_err(ToString::to_string)
            )),
        };
        match outcome {
            Ok(how) => println!("OK   {what}: {}", first_line(&how)),
            Err(d) => problems.push(format!("{what}: {d}")),
        }
    }
    // The ranks are still in step: a clean batch is the one-process batch.
    checks += 1;
    let theta = thetas("touchy", n, 12).map_err(|e| e.to_string())?;
    match (
        simulate_batch(&Touchy, &theta, &opts),
        simulate_batch(sim, &theta, &opts),
    ) {
        (Ok(one), Ok(many)) => match difference(&one, &many) {
            None => println!("OK   touchy: a clean batch after the failures: x bit-identical"),
            Some(d) => problems.push(format!("touchy: a clean batch after the failures: {d}")),
        },
        (one, many) => problems.push(format!(
            "touchy: a clean batch after the failures: one process {:?}, MPI {:?}",
            one.err().map(|e| e.to_string()),
            many.err().map(|e| e.to_string())
        )),
    }
    Ok(checks)
}

fn first_line(s: &str) -> String {
    const MAX: usize = 150;
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > MAX {
        format!("{}…", line.chars().take(MAX).collect::<String>())
    } else {
        line.to_string()
    }
}

fn worker(world: &World) -> Result<(), String> {
    let mut summary = Vec::new();
    for (phase, sim) in phases() {
        let served = mpi::serve(world, sim.as_ref()).map_err(|e| e.to_string())?;
        summary.push(format!(
            "{phase} {} rows in {} shares",
            served.rows, served.batches
        ));
    }
    println!(
        "     rank {} simulated {}",
        world.rank(),
        summary.join(", ")
    );
    Ok(())
}

fn main() -> ExitCode {
    // The deliberate panics of `Touchy` are expected; any other panic is reported as usual.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if !message.starts_with("deliberate panic") {
            default_hook(info);
        }
    }));
    let universe = match mpi::init() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("mpi_simulate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let world = universe.world();
    let start = Instant::now();
    if world.rank() == 0 {
        match root(world) {
            Ok(checks) => {
                println!(
                    "mpi_simulate: {} ranks, {checks} checks, all OK in {:.2} s",
                    world.size(),
                    start.elapsed().as_secs_f64()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mpi_simulate: FAILED on {} ranks: {e}", world.size());
                ExitCode::FAILURE
            }
        }
    } else {
        match worker(world) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mpi_simulate: rank {} FAILED: {e}", world.rank());
                ExitCode::FAILURE
            }
        }
    }
}
