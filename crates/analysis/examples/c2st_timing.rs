//! Times C2ST on 10,000 vs 10,000 samples in 2 and 10 dimensions.
//!
//! `cargo run -p simfer-analysis --release --example c2st_timing [DIMS...]` (default: 2 10)

use std::time::Instant;

use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use simfer_analysis::{C2stOptions, c2st_with_details};

fn normal(d: usize, n: usize, shift: f64, rng: &mut Xoshiro256PlusPlus) -> DMatrix<f64> {
    DMatrix::from_fn(d, n, |_, _| {
        let z: f64 = StandardNormal.sample(rng);
        z + shift
    })
}

fn main() {
    let n = 10_000;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2024);
    println!("threads: {}", rayon::current_num_threads());
    let dims: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let dims = if dims.is_empty() { vec![2, 10] } else { dims };
    for d in dims {
        for shift in [0.0, 0.5] {
            let a = normal(d, n, 0.0, &mut rng);
            let b = normal(d, n, shift, &mut rng);
            let t = Instant::now();
            let r = c2st_with_details(&a, &b, &C2stOptions::default()).expect("valid input");
            println!(
                "D = {d:2}, shift = {shift}: accuracy {:.4}, epochs {:?}, {:.2} s",
                r.accuracy,
                r.epochs,
                t.elapsed().as_secs_f64()
            );
        }
    }
}
