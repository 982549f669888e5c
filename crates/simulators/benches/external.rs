//! Throughput of external simulators: a trivial Python simulator (x = θ + 0.1·ε per row, the
//! standard library only) through the batch protocol, with 1 and 2 worker processes and
//! batches of 1 and 100 rows. Criterion reports elements/s = simulations/s.
//!
//! `cargo bench -p simfer-simulators --bench external`
//!
//! `benches/reference/simulate_for_sbi.py` at the repository root times the reference
//! library's `simulate_for_sbi` with the same simulator, for comparison.

use std::hint::black_box;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use simfer_distributions::{BoxUniform, Prior, rng_from_seed};
use simfer_simulators::external::ExternalSimulator;
use simfer_simulators::{SimulationOptions, simulate_batch};

/// The trivial simulator: reads a batch, answers each row with θ + 0.1·ε, ε ~ N(0, I) drawn
/// from `random.Random(row seed)`, then flushes.
const TRIVIAL: &str = r#"
import random, sys
readline, write, flush = sys.stdin.readline, sys.stdout.write, sys.stdout.flush
while True:
    header = readline()
    if not header:
        break
    lines = []
    for _ in range(int(header.split()[1])):
        fields = readline().split()
        gauss = random.Random(int(fields[0])).gauss
        lines.append(" ".join(repr(float(t) + 0.1 * gauss(0.0, 1.0)) for t in fields[1:]))
    write("\n".join(lines) + "\n")
    flush()
"#;

fn external(c: &mut Criterion) {
    let python = Command::new("python3")
        .args(["-c", "pass"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !python.is_ok_and(|s| s.success()) {
        println!("skipped: python3 is not available");
        return;
    }
    let opts = SimulationOptions::with_seed(0).with_progress(false);
    let prior = BoxUniform::uniform(3, -2.0, 2.0).expect("valid bounds");
    for (batch, n) in [(1, 2_000), (100, 20_000)] {
        let theta = Prior::sample_batch(&prior, n, &mut rng_from_seed(1));
        let mut group = c.benchmark_group(format!("external/python_batch_{batch}"));
        group.throughput(Throughput::Elements(n as u64));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(10));
        for workers in [1, 2] {
            let sim = ExternalSimulator::builder("python3")
                .args(["-c", TRIVIAL])
                .theta_dim(3)
                .x_dim(3)
                .workers(workers)
                .batch_size(batch)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("valid settings");
            sim.start().expect("python3 starts");
            group.bench_with_input(BenchmarkId::new("workers", workers), &theta, |b, theta| {
                b.iter(|| {
                    let sims =
                        simulate_batch(&sim, black_box(theta), &opts).expect("simulation succeeds");
                    assert!(sims.invalid.is_empty(), "{}", sims.invalid);
                    sims
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, external);
criterion_main!(benches);
