//! The vectorized slice sampler on a 5-D correlated Gaussian (equicorrelation 0.5), 1000
//! samples with the default settings (20 chains, 50 tuning + 200 warm-up + 50 sweeps,
//! resample initialisation with 10 000 candidates per chain), and the same run from given
//! starting points (the sampling alone). Criterion's throughput unit is one log-density
//! evaluation: elements/s = potential evaluations per second.
//!
//! `cargo bench -p simfer-mcmc --bench slice`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nalgebra::{DMatrix, DVector};
use simfer_distributions::BoxUniform;
use simfer_mcmc::{InitStrategy, LogDensity, SliceSampler, SliceSettings};

const D: usize = 5;

/// `−½ xᵀ Σ⁻¹ x` with `Σ = ½ I + ½ 11ᵀ`, evaluated per batch as one matrix product.
struct Gaussian {
    precision: DMatrix<f64>,
}

impl LogDensity for Gaussian {
    fn dim(&self) -> usize {
        D
    }
    fn log_density(&self, x: &[f64]) -> f64 {
        let v = DVector::from_column_slice(x);
        -0.5 * v.dot(&(&self.precision * &v))
    }
    fn log_density_batch(&self, xs: &DMatrix<f64>, out: &mut [f64]) {
        let px = &self.precision * xs;
        for (j, o) in out.iter_mut().enumerate() {
            *o = -0.5 * xs.column(j).dot(&px.column(j));
        }
    }
}

fn slice(c: &mut Criterion) {
    let cov = DMatrix::from_fn(D, D, |i, j| if i == j { 1.0 } else { 0.5 });
    let target = Gaussian {
        precision: cov.try_inverse().expect("positive definite"),
    };
    let prior = BoxUniform::uniform(D, -5.0, 5.0).expect("a box");
    let n = 1000;
    let default = SliceSampler::new(SliceSettings::default()).expect("valid settings");
    let first = default
        .sample(&target, Some(&prior), n, 1)
        .expect("the run succeeds");
    let given = SliceSampler::new(
        SliceSettings::default().with_init(InitStrategy::Given(first.final_states.clone())),
    )
    .expect("valid settings");

    let mut group = c.benchmark_group("slice_gaussian_5d_1000");
    group.sample_size(20);
    // The runs are deterministic, so each iteration makes the same evaluations.
    group.throughput(Throughput::Elements(first.diagnostics.evaluations));
    group.bench_function("default", |b| {
        b.iter(|| default.sample(&target, Some(&prior), black_box(n), 1))
    });
    let evaluations = given
        .sample(&target, None, n, 1)
        .expect("the run succeeds")
        .diagnostics
        .evaluations;
    group.throughput(Throughput::Elements(evaluations));
    group.bench_function("given_starts", |b| {
        b.iter(|| given.sample(&target, None, black_box(n), 1))
    });
    group.finish();
}

criterion_group!(benches, slice);
criterion_main!(benches);
