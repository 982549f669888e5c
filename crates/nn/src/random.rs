//! Random permutations drawn from an explicit generator.

use rand::{Rng, RngCore};

/// Fisher–Yates shuffle of `v` in place, driven by `rng` (one uniform draw per position,
/// from the last to the second), so a seeded generator gives the same order everywhere.
///
/// ```
/// use rand::SeedableRng;
/// let mut a: Vec<usize> = (0..10).collect();
/// let mut b = a.clone();
/// simfer_nn::shuffle(&mut a, &mut rand::rngs::StdRng::seed_from_u64(3));
/// simfer_nn::shuffle(&mut b, &mut rand::rngs::StdRng::seed_from_u64(3));
/// assert_eq!(a, b);
/// let mut sorted = a.clone();
/// sorted.sort();
/// assert_eq!(sorted, (0..10).collect::<Vec<_>>());
/// ```
pub fn shuffle<T, R: RngCore + ?Sized>(v: &mut [T], rng: &mut R) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_permutation_of_three_is_about_equally_likely() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut counts = std::collections::HashMap::new();
        let n = 60_000;
        for _ in 0..n {
            let mut v = [0, 1, 2];
            shuffle(&mut v, &mut rng);
            *counts.entry(v).or_insert(0usize) += 1;
        }
        assert_eq!(counts.len(), 6);
        for (perm, c) in counts {
            // Each has probability 1/6: 10,000 expected, sd ≈ 91; allow 5 sd.
            assert!((c as f64 - 10_000.0).abs() < 460.0, "{perm:?}: {c}");
        }
    }
}
