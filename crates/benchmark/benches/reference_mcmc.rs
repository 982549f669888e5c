//! Time to draw 10 000 reference posterior samples by MCMC (warm-up, convergence checks
//! and thinning included) for slcp, slcp_distractors, bernoulli_glm and
//! bernoulli_glm_raw, one observation each (simulated from a prior draw, seed 1), on 1 and
//! 2 threads (rayon pools built here).
//!
//! `cargo bench -p simfer-benchmark --bench reference_mcmc`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use simfer_benchmark::task;
use simfer_distributions::{Prior, rng_from_seed};

fn reference_mcmc(c: &mut Criterion) {
    let n = 10_000;
    for name in [
        "slcp",
        "slcp_distractors",
        "bernoulli_glm",
        "bernoulli_glm_raw",
    ] {
        let t = task(name).expect("known task");
        let theta = t.prior().sample(&mut rng_from_seed(1));
        let mut x_o = vec![0.0; t.x_dim()];
        t.simulator()
            .simulate(theta.as_slice(), &mut rng_from_seed(2), &mut x_o)
            .expect("simulation succeeds");
        let posterior = t
            .reference_posterior(&x_o)
            .expect("the task has a reference posterior")
            .expect("a valid observation");
        let mut group = c.benchmark_group(format!("reference_mcmc_10k/{name}"));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(10));
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a rayon pool");
            group.bench_function(BenchmarkId::new("threads", threads), |b| {
                b.iter(|| {
                    pool.install(|| posterior.sample(black_box(n), &mut rng_from_seed(3)))
                        .expect("the chains converge")
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, reference_mcmc);
criterion_main!(benches);
