//! C2ST at the benchmark's size (10,000 vs 10,000 samples) in 2 and 10 dimensions, and the
//! pairplot data of 10,000 samples.
//!
//! `cargo bench -p simfer-analysis --bench c2st`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use simfer_analysis::{C2stOptions, PairplotOptions, UpperKind, c2st, pairplot_data};

fn normal(d: usize, n: usize, shift: f64, seed: u64) -> DMatrix<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    DMatrix::from_fn(d, n, |_, _| {
        let z: f64 = StandardNormal.sample(&mut rng);
        z + shift
    })
}

fn bench_c2st(c: &mut Criterion) {
    let mut g = c.benchmark_group("c2st_10k_vs_10k");
    g.sample_size(10);
    for d in [2, 10] {
        let a = normal(d, 10_000, 0.0, 1);
        let b = normal(d, 10_000, 0.0, 2);
        g.bench_function(format!("D={d}"), |bench| {
            bench.iter(|| {
                c2st(black_box(&a), black_box(&b), &C2stOptions::default()).expect("valid input")
            })
        });
    }
    g.finish();
}

fn bench_pairplot(c: &mut Criterion) {
    let mut g = c.benchmark_group("pairplot_data_10k");
    g.sample_size(10);
    let s = normal(3, 10_000, 0.0, 3);
    for (name, upper) in [("hist", UpperKind::Hist), ("contour", UpperKind::Contour)] {
        let opts = PairplotOptions {
            upper,
            ..Default::default()
        };
        g.bench_function(format!("D=3 {name}"), |bench| {
            bench.iter(|| pairplot_data(&[("s", black_box(&s))], &[], &opts).expect("valid input"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_c2st, bench_pairplot);
criterion_main!(benches);
