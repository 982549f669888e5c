//! Bad input gives clear errors, and nothing is lost.

use nalgebra::DMatrix;
use simfer_flows::Maf;
use simfer_inference::{InferenceError, InvalidPolicy, Snpe, SnpeConfig};
use simfer_simulators::FnSimulator;

use crate::{prior, quick};

/// x = θ, except NaN where θ_0 > `nan_above`.
fn sim(
    nan_above: f64,
) -> FnSimulator<impl Fn(&[f64], &mut dyn rand::RngCore) -> Vec<f64> + Send + Sync> {
    FnSimulator::new(2, 2, move |t: &[f64], _rng: &mut dyn rand::RngCore| {
        if t[0] > nan_above {
            vec![f64::NAN, 0.0]
        } else {
            t.to_vec()
        }
    })
}

#[test]
fn observations_of_the_wrong_length_or_non_finite_are_errors() {
    let s = sim(10.0);
    let err = crate::run_npe(prior(), &s, Some(&[0.0; 3]), 2, 100, 1, quick()).unwrap_err();
    assert!(err.to_string().contains("expected 2, found 3"), "{err}");
    let err = crate::run_npe(prior(), &s, Some(&[0.0, f64::NAN]), 2, 100, 1, quick()).unwrap_err();
    assert!(
        matches!(err, InferenceError::NonFiniteObservation { index: 1, .. }),
        "{err}"
    );
    let err = crate::run_npe(prior(), &s, None, 2, 100, 1, quick()).unwrap_err();
    assert!(matches!(err, InferenceError::NoObservation), "{err}");
    let run = crate::run_npe(prior(), &s, None, 1, 100, 1, quick()).unwrap();
    let p = run.posterior();
    assert!(matches!(
        p.sample(1, None, &mut simfer_distributions::rng_from_seed(0)),
        Err(InferenceError::NoObservation)
    ));
    let err = p
        .sample(1, Some(&[0.0]), &mut simfer_distributions::rng_from_seed(0))
        .unwrap_err();
    assert!(err.to_string().contains("expected 2, found 1"), "{err}");
}

#[test]
fn invalid_simulations_are_excluded_in_round_zero_and_an_error_later_with_nothing_lost() {
    // Round 0: about a quarter of the prior's θ's give NaN; they are excluded and reported.
    let s = sim(0.5);
    let mut snpe = Snpe::new(prior(), quick(), 3).unwrap();
    snpe.set_default_x(&[0.2, 0.2]).unwrap();
    let r0 = snpe.simulate_round(&s, 400).unwrap();
    let nan = r0.invalid.nan.len();
    assert!(nan > 50 && nan < 150, "{nan}");
    assert_eq!(r0.theta.ncols(), 400 - nan);
    snpe.train().unwrap();
    // Round 1 proposes from the posterior at x_o; some of its θ's give NaN -> error.
    let s1 = sim(0.2);
    let err = snpe.simulate_round(&s1, 400).unwrap_err();
    let InferenceError::InvalidSimulations {
        round,
        nan,
        total,
        proposed,
        x,
        ..
    } = err
    else {
        panic!("unexpected error");
    };
    assert_eq!((round, total), (1, 400));
    assert!(nan > 0);
    assert_eq!(snpe.rounds().len(), 1, "the failed round was not appended");
    // Nothing is lost: repair the values and append the same proposal.
    let mut x = *x;
    x.iter_mut().filter(|v| v.is_nan()).for_each(|v| *v = 10.0);
    let r1 = snpe.append_proposed(*proposed, x).unwrap();
    assert_eq!((r1.round, r1.theta.ncols()), (1, 400));
    snpe.train().unwrap();
    assert_eq!(snpe.histories().len(), 2);
}

#[test]
fn the_exclude_policy_drops_invalid_simulations_in_later_rounds() {
    let config = SnpeConfig {
        invalid: InvalidPolicy::Exclude,
        ..quick()
    };
    let mut snpe = Snpe::new(prior(), config, 3).unwrap();
    snpe.set_default_x(&[0.2, 0.2]).unwrap();
    snpe.simulate_round(&sim(0.5), 300).unwrap();
    snpe.train().unwrap();
    let r1 = snpe.simulate_round(&sim(0.2), 300).unwrap();
    assert_eq!(r1.theta.ncols() + r1.invalid.total(), 300);
}

#[test]
fn all_invalid_training_data_is_an_error() {
    let mut snpe = Snpe::new(prior(), quick(), 3).unwrap();
    snpe.simulate_round(&sim(-10.0), 100).unwrap();
    let err = snpe.train().unwrap_err();
    assert!(
        matches!(err, InferenceError::NoValidSimulations { total: 100 }),
        "{err}"
    );
}

#[test]
fn proposals_cannot_be_mixed_up() {
    let mut a = Snpe::new(prior(), quick(), 1).unwrap();
    let mut b = Snpe::new(prior(), quick(), 1).unwrap();
    let p = a.propose(50).unwrap();
    let x = p.theta().clone();
    let err = b.append_proposed(p, x).unwrap_err();
    assert!(err.to_string().contains("proposed by another run"), "{err}");
    // Training before any data is out of order.
    assert!(matches!(a.train(), Err(InferenceError::OutOfOrder(_))));
    assert!(a.build_posterior().is_err());
    // A later round needs x_o.
    let p = a.propose(100).unwrap();
    let x = p.theta().clone();
    a.append_proposed(p, x).unwrap();
    a.train().unwrap();
    assert!(matches!(a.propose(10), Err(InferenceError::NoObservation)));
    // A stale proposal (another round was appended since) is refused.
    a.set_default_x(&[0.0, 0.0]).unwrap();
    let p1 = a.propose(100).unwrap();
    let p2 = a.propose(100).unwrap();
    let x1 = p1.theta().clone();
    a.append_proposed(p1, x1).unwrap();
    let x2 = p2.theta().clone();
    let err = a.append_proposed(p2, x2).unwrap_err();
    assert!(err.to_string().contains("propose again"), "{err}");
    // Data of the wrong shape.
    let err = a
        .append_prior_simulations(DMatrix::zeros(2, 10), DMatrix::zeros(3, 10))
        .unwrap_err();
    assert!(err.to_string().contains("expected 2, found 3"), "{err}");
}

/// Two rounds (300 from the prior, 200 from the posterior) with the given settings.
fn two_rounds(config: SnpeConfig) -> Snpe {
    let mut snpe = Snpe::new(prior(), config, 11).unwrap();
    snpe.set_default_x(&[0.2, -0.1]).unwrap();
    snpe.simulate_round(&sim(10.0), 300).unwrap();
    snpe.train().unwrap();
    snpe.simulate_round(&sim(10.0), 200).unwrap();
    snpe.train().unwrap();
    snpe
}

#[test]
fn options_discard_prior_samples_retrain_and_combined_loss_take_effect() {
    // Default: all rounds pooled (500 → 450 training samples → 2 batches of 200), the
    // network continues with its round-0 standardization, the plain atomic loss.
    let plain = two_rounds(quick());
    let h = &plain.histories()[1];
    assert_eq!((h.num_train, h.loss.as_str()), (400, "atomic (APT)"));
    let theta_std = |s: &Snpe| {
        let maf: &Maf = s.estimator().unwrap().downcast_ref().unwrap();
        maf.input_standardization().clone()
    };
    let round0 = {
        let mut s = Snpe::new(prior(), quick(), 11).unwrap();
        s.set_default_x(&[0.2, -0.1]).unwrap();
        s.simulate_round(&sim(10.0), 300).unwrap();
        s.train().unwrap();
        theta_std(&s)
    };
    assert_eq!(
        theta_std(&plain),
        round0,
        "statistics are frozen after round 0"
    );

    // Discarding prior samples: only the 200 of round 1 (180 train → one batch of 180).
    let discard = two_rounds(SnpeConfig {
        discard_prior_samples: true,
        ..quick()
    });
    assert_eq!(discard.histories()[1].num_train, 180);

    // Retraining from scratch rebuilds the network, with statistics of the new split.
    let retrain = two_rounds(SnpeConfig {
        retrain_from_scratch: true,
        ..quick()
    });
    assert_ne!(theta_std(&retrain), round0);

    let combined = two_rounds(SnpeConfig {
        use_combined_loss: true,
        ..quick()
    });
    assert!(
        combined.histories()[1]
            .loss
            .contains("maximum likelihood on prior samples")
    );
    assert_eq!(combined.histories()[0].loss, "maximum likelihood");
}
