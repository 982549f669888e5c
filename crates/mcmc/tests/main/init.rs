//! The initialisation strategies on a discrete toy case, where the pick probabilities are
//! known: SIR picks ∝ exp U / proposal per candidate, so an atom's probability tends to
//! ∝ exp U; resample picks ∝ exp U, so it tends to ∝ proposal × exp U.

use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngCore};
use simfer_distributions::{DistributionError, Prior, Support, derive_rng};
use simfer_mcmc::{InitStrategy, LogDensity, McmcError, from_fn};

/// A proposal on three atoms 0, 1, 2 with probabilities `q`.
#[derive(Debug)]
struct Atoms {
    q: [f64; 3],
}

impl Prior for Atoms {
    fn dim(&self) -> usize {
        1
    }
    fn sample(&self, rng: &mut dyn RngCore) -> DVector<f64> {
        let u: f64 = rng.random();
        let atom = if u < self.q[0] {
            0.0
        } else if u < self.q[0] + self.q[1] {
            1.0
        } else {
            2.0
        };
        DVector::from_element(1, atom)
    }
    fn log_prob(&self, theta: &[f64]) -> Result<f64, DistributionError> {
        if theta.len() != 1 {
            return Err(DistributionError::DimensionMismatch {
                what: "θ",
                expected: 1,
                found: theta.len(),
            });
        }
        Ok(match theta[0] {
            0.0 => self.q[0].ln(),
            1.0 => self.q[1].ln(),
            2.0 => self.q[2].ln(),
            _ => f64::NEG_INFINITY,
        })
    }
    fn support(&self) -> Vec<Support> {
        vec![Support::Real]
    }
}

/// The frequencies of the three atoms among the starting points.
fn frequencies(points: &DMatrix<f64>) -> [f64; 3] {
    let mut f = [0.0; 3];
    for &x in points.iter() {
        f[x as usize] += 1.0 / points.ncols() as f64;
    }
    f
}

fn assert_close(what: &str, found: [f64; 3], expected: [f64; 3], chains: usize) {
    for a in 0..3 {
        let se = (expected[a] * (1.0 - expected[a]) / chains as f64).sqrt();
        assert!(
            (found[a] - expected[a]).abs() < 5.0 * se,
            "{what}: atom {a} picked with frequency {}, expected {} (±{se})",
            found[a],
            expected[a]
        );
    }
}

#[test]
fn sir_picks_by_exp_u_over_the_proposal_and_resample_by_exp_u() {
    let proposal = Atoms { q: [0.6, 0.3, 0.1] };
    let e_u: [f64; 3] = [0.2, 0.3, 0.5];
    let target = from_fn(1, move |x: &[f64]| e_u[x[0] as usize].ln());
    let chains = 4000;
    let sir = InitStrategy::Sir { candidates: 400 }
        .initial_points(&target, Some(&proposal), chains, 1)
        .unwrap();
    let resample = InitStrategy::Resample { candidates: 400 }
        .initial_points(&target, Some(&proposal), chains, 1)
        .unwrap();
    // SIR: q·(e^U/q) ∝ e^U. Resample: ∝ q·e^U = (0.12, 0.09, 0.05)/0.26.
    let (fs, fr) = (frequencies(&sir), frequencies(&resample));
    assert_close("sir", fs, e_u, chains);
    assert_close(
        "resample",
        fr,
        [0.12 / 0.26, 0.09 / 0.26, 0.05 / 0.26],
        chains,
    );
    // Each is far from the other's law: the test tells them apart.
    assert!((fs[0] - fr[0]).abs() > 0.2);
    // Proposal: one draw per chain, the atoms as often as q.
    let direct = InitStrategy::Proposal
        .initial_points(&target, Some(&proposal), chains, 1)
        .unwrap();
    assert_close("proposal", frequencies(&direct), proposal.q, chains);
    // Chain c draws from derive_rng(seed, c): its candidates and its pick.
    for c in [0usize, 17] {
        assert_eq!(direct[c], proposal.sample(&mut derive_rng(1, c as u64))[0]);
    }
}

#[test]
fn one_candidate_of_finite_density_is_enough_and_none_is_an_error() {
    let proposal = Atoms {
        q: [0.5, 0.25, 0.25],
    };
    // Finite only at atom 2.
    let target = from_fn(
        1,
        |x: &[f64]| if x[0] == 2.0 { 0.0 } else { f64::NEG_INFINITY },
    );
    for strategy in [
        InitStrategy::Sir { candidates: 100 },
        InitStrategy::Resample { candidates: 100 },
    ] {
        let p = strategy
            .initial_points(&target, Some(&proposal), 50, 3)
            .unwrap();
        assert!(p.iter().all(|&x| x == 2.0), "{strategy:?}");
    }
    // A NaN density at atoms 0 and 1 too: NaN weights are 0.
    let nan = from_fn(1, |x: &[f64]| if x[0] == 2.0 { -1.0 } else { f64::NAN });
    let p = InitStrategy::Resample { candidates: 100 }
        .initial_points(&nan, Some(&proposal), 50, 3)
        .unwrap();
    assert!(p.iter().all(|&x| x == 2.0));
    // −∞ or NaN everywhere: no valid start, naming the chain and the candidates.
    for bad in [f64::NEG_INFINITY, f64::NAN] {
        let target = from_fn(1, move |_: &[f64]| bad);
        let err = InitStrategy::Resample { candidates: 100 }
            .initial_points(&target, Some(&proposal), 5, 3)
            .unwrap_err();
        assert!(
            matches!(
                err,
                McmcError::NoValidStart {
                    chain: 0,
                    candidates: 100,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("all 100 candidate(s)"), "{err}");
        let err = InitStrategy::Proposal
            .initial_points(&target, Some(&proposal), 5, 3)
            .unwrap_err();
        assert!(err.to_string().contains("InitStrategy::Resample"), "{err}");
    }
}

#[test]
fn given_points_are_the_starts_and_must_fit() {
    let target = from_fn(2, |x: &[f64]| -x[0].abs() - x[1].abs());
    let points = DMatrix::from_column_slice(2, 3, &[0.0, 1.0, 2.0, 3.0, -1.0, 0.5]);
    let given = InitStrategy::Given(points.clone());
    assert_eq!(given.initial_points(&target, None, 3, 0).unwrap(), points);
    assert!(matches!(
        given.initial_points(&target, None, 4, 0),
        Err(McmcError::DimensionMismatch {
            expected: 4,
            found: 3,
            ..
        })
    ));
    let wrong_rows = InitStrategy::Given(DMatrix::zeros(3, 3));
    assert!(matches!(
        wrong_rows.initial_points(&target, None, 3, 0),
        Err(McmcError::DimensionMismatch {
            expected: 2,
            found: 3,
            ..
        })
    ));
    let outside = from_fn(
        2,
        |x: &[f64]| if x[0] > 1.5 { f64::NEG_INFINITY } else { 0.0 },
    );
    assert!(matches!(
        given.initial_points(&outside, None, 3, 0),
        Err(McmcError::NoValidStart { chain: 1, .. })
    ));
    // A strategy with a proposal needs one, of the right dimension.
    assert!(matches!(
        InitStrategy::default().initial_points(&target, None, 3, 0),
        Err(McmcError::InvalidConfig(_))
    ));
    let one_d = Atoms { q: [0.2, 0.3, 0.5] };
    assert!(matches!(
        InitStrategy::default().initial_points(&target, Some(&one_d), 3, 0),
        Err(McmcError::DimensionMismatch {
            expected: 2,
            found: 1,
            ..
        })
    ));
    assert_eq!(target.dim(), 2);
}
