//! Properties of every prior over random parameters, points and seeds: draws lie in the
//! support with a finite log-density, points outside it have −∞, batches agree with single
//! evaluations, seeded sampling is reproducible, and a prior rebuilt from its spec is the
//! same distribution.

use nalgebra::DMatrix;
use proptest::prelude::*;
use simfer_distributions::{Prior, Support, rng_from_seed};

use crate::arbitrary::any_prior;

fn bits(m: &DMatrix<f64>) -> Vec<u64> {
    m.iter().map(|v| v.to_bits()).collect()
}

proptest! {
    #[test]
    fn draws_lie_in_the_support_with_finite_log_prob_and_batches_agree(
        params in any_prior(), seed in any::<u64>(), n in 1usize..20,
    ) {
        let p = params.build();
        let s = p.sample_batch(n, &mut rng_from_seed(seed));
        prop_assert_eq!(s.shape(), (p.dim(), n));
        let lp = p.log_prob_batch(&s).unwrap();
        for (j, col) in s.column_iter().enumerate() {
            let theta = col.as_slice();
            prop_assert!(p.in_support(theta), "{:?} outside the support of {:?}", theta, p);
            let single = p.log_prob(theta).unwrap();
            prop_assert!(single.is_finite(), "log_prob {} at {:?}", single, theta);
            prop_assert!(
                (lp[j] - single).abs() <= 1e-12 * single.abs().max(1.0),
                "batch {} vs single {}", lp[j], single
            );
        }
    }

    #[test]
    fn points_outside_the_support_have_log_prob_minus_infinity(
        params in any_prior(),
        seed in any::<u64>(),
        pick in any::<prop::sample::Index>(),
        beyond in 1e-6f64..10.0,
        side in any::<bool>(),
        special in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)],
    ) {
        let p = params.build();
        let inside = p.sample(&mut rng_from_seed(seed));
        let i = pick.index(p.dim());
        let support = p.support();
        prop_assert_eq!(support.len(), p.dim());
        // A finite point just outside the support in coordinate i, where there is one.
        let outside = match support[i] {
            Support::Interval { low, high } => {
                let width = high - low;
                Some(if side { high + beyond * width } else { low - beyond * width })
            }
            Support::Positive => Some(if side { 0.0 } else { -beyond }),
            Support::Real => None,
        };
        for v in outside.into_iter().chain([special]) {
            let mut theta = inside.as_slice().to_vec();
            theta[i] = v;
            prop_assert_eq!(p.log_prob(&theta).unwrap(), f64::NEG_INFINITY, "{:?}", theta);
            prop_assert!(!p.in_support(&theta), "{:?}", theta);
            let batch = DMatrix::from_column_slice(p.dim(), 1, &theta);
            prop_assert_eq!(p.log_prob_batch(&batch).unwrap()[0], f64::NEG_INFINITY);
        }
    }

    #[test]
    fn seeded_sampling_is_reproducible_and_batches_are_repeated_draws(
        params in any_prior(), seed in any::<u64>(), n in 1usize..10,
    ) {
        let p = params.build();
        let a = p.sample_batch(n, &mut rng_from_seed(seed));
        let b = p.sample_batch(n, &mut rng_from_seed(seed));
        prop_assert_eq!(bits(&a), bits(&b));
        let mut rng = rng_from_seed(seed);
        for j in 0..n {
            let single = p.sample(&mut rng);
            prop_assert_eq!(
                a.column(j).iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                single.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "column {}", j
            );
        }
        let other = p.sample_batch(n, &mut rng_from_seed(seed.wrapping_add(1)));
        prop_assert_ne!(bits(&a), bits(&other));
    }

    #[test]
    fn a_prior_rebuilt_from_its_spec_is_the_same_distribution(
        params in any_prior(), seed in any::<u64>(),
    ) {
        let p = params.build();
        let q = p.spec().build().unwrap();
        prop_assert_eq!(q.dim(), p.dim());
        prop_assert_eq!(q.support(), p.support());
        let s = p.sample_batch(5, &mut rng_from_seed(seed));
        prop_assert_eq!(
            bits(&s),
            bits(&q.sample_batch(5, &mut rng_from_seed(seed)))
        );
        for col in s.column_iter() {
            let (a, b) = (p.log_prob(col.as_slice()).unwrap(), q.log_prob(col.as_slice()).unwrap());
            prop_assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0), "{} vs {}", a, b);
        }
    }
}
