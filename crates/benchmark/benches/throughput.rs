//! Simulation throughput of the parallel runner on two_moons, slcp and lotka_volterra, on 1
//! and 2 threads (rayon pools built here). Criterion reports elements/s = simulations/s.
//!
//! `cargo bench -p simfer-benchmark --bench throughput`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use simfer_benchmark::task;
use simfer_distributions::{Prior, rng_from_seed};
use simfer_simulators::{SimulationOptions, simulate_batch};

fn throughput(c: &mut Criterion) {
    let opts = SimulationOptions::with_seed(0).with_progress(false);
    // Batch sizes chosen so that one batch takes a few milliseconds or more.
    for (name, n) in [
        ("two_moons", 100_000),
        ("slcp", 100_000),
        ("lotka_volterra", 500),
    ] {
        let task = task(name).expect("known task");
        let (sim, prior) = (task.simulator(), task.prior());
        let theta = Prior::sample_batch(&prior, n, &mut rng_from_seed(1));
        let mut group = c.benchmark_group(format!("simulate/{name}"));
        group.throughput(Throughput::Elements(n as u64));
        group.sample_size(20);
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a rayon pool");
            group.bench_with_input(BenchmarkId::new("threads", threads), &theta, |b, theta| {
                b.iter(|| {
                    pool.install(|| simulate_batch(sim.as_ref(), black_box(theta), &opts))
                        .expect("simulation succeeds")
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, throughput);
criterion_main!(benches);
