//! The runner's determinism as a property: for random seeds, stream offsets, batch sizes,
//! thread counts, batch plans and worker counts, every run gives the bits of the run on one
//! thread.

use std::time::Duration;

use nalgebra::DMatrix;
use proptest::prelude::*;
use rand::{Rng, RngCore};
use rand_distr::{Distribution, StandardNormal};
use simfer_benchmark::tasks::TwoMoons;
use simfer_distributions::{BoxUniform, Prior, rng_from_seed};
use simfer_simulators::{
    BatchPlan, ExternalSimulator, SimulationOptions, Simulations, Simulator, SliceSimulator,
    simulate_batch, simulate_for_sbi,
};

use crate::external::{Batched, bits, have_awk, repo_file};
use crate::runner::in_pool;

fn opts(seed: u64, offset: u64) -> SimulationOptions {
    SimulationOptions::with_seed(seed)
        .with_progress(false)
        .with_stream_offset(offset)
}

/// 2 → 3: draws a random number of values (so that a shared or misplaced generator
/// shows), and gives NaN for θ₁ > 0.8 and +∞ for θ₁ < −0.8 (so that the invalid rows are
/// compared too).
fn noisy() -> impl Simulator {
    SliceSimulator::new(
        2,
        3,
        |theta: &[f64], rng: &mut dyn RngCore, out: &mut [f64]| {
            let e: f64 = StandardNormal.sample(rng);
            out[0] = theta[0] + 0.1 * e;
            let k = 1 + rng.next_u64() % 5;
            out[1] = (0..k).map(|_| rng.random::<f64>()).sum::<f64>() * theta[1];
            out[2] = if theta[1] > 0.8 {
                f64::NAN
            } else if theta[1] < -0.8 {
                f64::INFINITY
            } else {
                rng.random::<f64>()
            };
        },
    )
}

fn thetas(n: usize, seed: u64) -> DMatrix<f64> {
    let prior = BoxUniform::uniform(2, -1.0, 1.0).unwrap();
    Prior::sample_batch(&prior, n, &mut rng_from_seed(seed))
}

/// Asserts that two runs are the same, bit for bit (NaN included).
fn assert_same(a: &Simulations, b: &Simulations, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(bits(&a.theta), bits(&b.theta), "θ, {}", what);
    prop_assert_eq!(bits(&a.x), bits(&b.x), "x, {}", what);
    prop_assert_eq!(&a.invalid, &b.invalid, "invalid rows, {}", what);
    Ok(())
}

proptest! {
    // Each case builds up to eight thread pools and runs up to 500 cheap simulations in
    // each; 64 cases keep the property well under a second.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_thread_count_and_batch_plan_gives_the_bits_of_one_thread(
        seed in any::<u64>(),
        offset in any::<u64>(),
        n in 0usize..500,
        theta_seed in any::<u64>(),
        batch_size in 1usize..80,
        concurrency in 1usize..5,
    ) {
        let sim = noisy();
        let theta = thetas(n, theta_seed);
        let o = opts(seed, offset);
        let reference = in_pool(1, || simulate_batch(&sim, &theta, &o)).unwrap();
        prop_assert_eq!(reference.x.shape(), (3, n));
        let plan = BatchPlan { batch_size, concurrency };
        let batched = Batched(noisy(), plan);
        for threads in 1..=4 {
            let per_theta = in_pool(threads, || simulate_batch(&sim, &theta, &o)).unwrap();
            assert_same(&reference, &per_theta, &format!("{threads} threads"))?;
            let chunked = in_pool(threads, || simulate_batch(&batched, &theta, &o)).unwrap();
            assert_same(&reference, &chunked, &format!("{threads} threads, {plan:?}"))?;
        }
    }

    #[test]
    fn simulate_for_sbi_gives_the_bits_of_one_thread_for_any_thread_count(
        seed in any::<u64>(), offset in 0u64..1000, n in 0usize..300, threads in 2usize..=4,
    ) {
        let prior = BoxUniform::uniform(2, -1.0, 1.0).unwrap();
        let o = opts(seed, offset);
        let one = in_pool(1, || simulate_for_sbi(&TwoMoons, &prior, n, &o)).unwrap();
        let many = in_pool(threads, || simulate_for_sbi(&TwoMoons, &prior, n, &o)).unwrap();
        assert_same(&one, &many, &format!("{threads} threads"))?;
        prop_assert!(one.theta.column_iter().all(|c| prior.in_support(c.as_slice())));
    }
}

proptest! {
    // Every case starts up to four worker processes of a shell simulator (a few
    // milliseconds each on an idle machine, far more on a loaded one), so 16 cases only.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn any_worker_count_and_batch_size_of_an_external_simulator_gives_the_bits_of_one_worker(
        seed in any::<u64>(),
        n in 1usize..80,
        workers in 1usize..=3,
        batch_size in 1usize..20,
        threads in 1usize..=3,
    ) {
        if !have_awk() {
            return Ok(());
        }
        let build = |workers: usize, batch_size: usize| {
            ExternalSimulator::builder("sh")
                .arg(repo_file("../../examples/simulators/linear_gaussian.sh"))
                .theta_dim(2)
                .x_dim(2)
                .workers(workers)
                .batch_size(batch_size)
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap()
        };
        let theta = thetas(n, seed ^ 1);
        let o = opts(seed, 0);
        let reference = simulate_batch(&build(1, 1), &theta, &o).unwrap();
        prop_assert!(reference.invalid.is_empty(), "{}", reference.invalid);
        let sim = build(workers, batch_size);
        let sims = in_pool(threads, || simulate_batch(&sim, &theta, &o)).unwrap();
        assert_same(
            &reference,
            &sims,
            &format!("{workers} workers, batches of {batch_size}, {threads} threads"),
        )?;
    }
}
