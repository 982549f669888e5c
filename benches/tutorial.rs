//! The whole multi-round tutorial as one benchmark: 3-D linear Gaussian, BoxUniform(−2, 2),
//! x_o = 0, 2 rounds × 500 simulations with the default MAF and training settings, then
//! 10,000 posterior samples (what `examples/multiround.rs` does, without the files).
//!
//! The reference library takes about 11 s for this on a 2-core machine.
//!
//! ```sh
//! cargo bench --bench tutorial
//! ```

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use simfer::prelude::*;

fn tutorial(seed: u64) -> nalgebra::DMatrix<f64> {
    let t = task("linear_gaussian").expect("a known task");
    let run = Inference::new(t.prior())
        .method("snpe")
        .rounds(2)
        .simulations_per_round(500)
        .observation(&[0.0; 3])
        .seed(seed)
        .run(t.simulator().as_ref())
        .expect("the tutorial runs");
    run.posterior()
        .sample(10_000, None, &mut rng_from_seed(seed))
        .expect("sampling succeeds")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("tutorial");
    group.sample_size(10);
    for seed in [1u64, 2] {
        group.bench_function(format!("2 rounds x 500, seed {seed}"), |b| {
            b.iter(|| black_box(tutorial(black_box(seed))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
