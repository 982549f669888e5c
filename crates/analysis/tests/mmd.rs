//! MMD against its closed form for Gaussians.

use simfer_analysis::{MmdBandwidth, mmd_squared};

use crate::common::{normal, rng};

/// Population MMD² between N(0, I) and N(δ·1, I) in D dimensions with the kernel
/// exp(−‖a − b‖²/(2σ²)): 2·(σ²/(σ² + 2))^{D/2}·(1 − exp(−‖δ‖²/(2(σ² + 2)))).
fn exact(d: usize, delta: f64, sigma: f64) -> f64 {
    let s2 = sigma * sigma;
    let shift2 = d as f64 * delta * delta;
    2.0 * (s2 / (s2 + 2.0)).powf(d as f64 / 2.0) * (1.0 - (-shift2 / (2.0 * (s2 + 2.0))).exp())
}

#[test]
fn mmd_of_identical_distributions_is_about_zero() {
    let mut r = rng(20);
    let x = normal(2, 2_000, 0.0, 1.0, &mut r);
    let y = normal(2, 2_000, 0.0, 1.0, &mut r);
    let m = mmd_squared(&x, &y, MmdBandwidth::Median).unwrap();
    // Under the null the unbiased estimate has mean 0 and std ≈ 1e-3 at n = 2000.
    assert!(m.mmd2.abs() < 3e-3, "MMD² = {}", m.mmd2);
    // Median distance between two N(0, I₂) points: √(2·2·ln 2)·… ≈ 1.665.
    assert!(
        (m.bandwidth - 1.665).abs() < 0.08,
        "bandwidth {}",
        m.bandwidth
    );
}

#[test]
fn mmd_of_shifted_gaussians_matches_the_closed_form() {
    let mut r = rng(21);
    for (d, delta) in [(1, 1.0), (2, 0.5), (5, 0.3)] {
        let x = normal(d, 2_000, 0.0, 1.0, &mut r);
        let y = normal(d, 2_000, delta, 1.0, &mut r);
        for bw in [MmdBandwidth::Fixed(1.0), MmdBandwidth::Median] {
            let m = mmd_squared(&x, &y, bw).unwrap();
            let want = exact(d, delta, m.bandwidth);
            // Estimator std ≈ 0.1·want or less at these sizes.
            assert!(
                (m.mmd2 - want).abs() < 0.15 * want + 2e-3,
                "D={d}: {} vs {want}",
                m.mmd2
            );
        }
    }
}

#[test]
fn mmd_is_independent_of_the_thread_count() {
    let mut r = rng(22);
    let x = normal(3, 700, 0.0, 1.0, &mut r);
    let y = normal(3, 500, 0.2, 1.0, &mut r);
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| mmd_squared(&x, &y, MmdBandwidth::Median).unwrap())
    };
    assert_eq!(run(1), run(3));
}
