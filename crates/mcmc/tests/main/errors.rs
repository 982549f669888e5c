//! Clear errors instead of hangs or panics: potentials with no valid point, spent budgets of
//! evaluations and time, and settings or arguments that make no sense.

use std::time::Duration;

use nalgebra::DMatrix;
use simfer_distributions::BoxUniform;
use simfer_mcmc::{
    BudgetKind, ConvergenceCheck, InitStrategy, McmcError, SliceSampler, SliceSettings, from_fn,
};

fn prior(d: usize) -> BoxUniform {
    BoxUniform::uniform(d, -1.0, 1.0).unwrap()
}

#[test]
fn a_potential_without_valid_points_is_no_valid_start() {
    for (name, value) in [("−∞", f64::NEG_INFINITY), ("NaN", f64::NAN)] {
        let target = from_fn(2, move |_: &[f64]| value);
        for init in [
            InitStrategy::default(),
            InitStrategy::Sir { candidates: 50 },
            InitStrategy::Proposal,
            InitStrategy::Given(DMatrix::zeros(2, 20)),
        ] {
            let err = SliceSampler::new(SliceSettings::default().with_init(init.clone()))
                .unwrap()
                .sample(&target, Some(&prior(2)), 100, 1)
                .unwrap_err();
            assert!(
                matches!(err, McmcError::NoValidStart { chain: 0, .. }),
                "{name}, {init:?}: {err:?}"
            );
            assert!(err.to_string().contains("−∞ or NaN"), "{err}");
        }
    }
}

#[test]
fn a_flat_potential_spends_the_evaluation_budget() {
    // Flat on ℝ: the stepping out never ends.
    let flat = from_fn(1, |_: &[f64]| 0.0);
    let settings = SliceSettings::default()
        .with_chains(2)
        .with_init(InitStrategy::Given(DMatrix::zeros(1, 2)));
    let err = SliceSampler::new(settings.clone())
        .unwrap()
        .sample(&flat, None, 100, 1)
        .unwrap_err();
    // The automatic budget: 1000 evaluations per coordinate update.
    let updates = 2 * (50 + 200 + 50);
    match &err {
        McmcError::Budget {
            kind: BudgetKind::Evaluations,
            limit,
            evaluations,
            done,
            total,
            ..
        } => {
            assert_eq!(*limit, 2.0 + 1000.0 * updates as f64);
            assert!(*evaluations as f64 <= *limit && *evaluations as f64 > limit - 3.0);
            assert_eq!((*done, *total), (0, 300));
        }
        other => panic!("expected an evaluation budget error, found {other:?}"),
    }
    assert!(err.to_string().contains("does not fall off"), "{err}");
    // An explicit budget, on a target that is fine but needs more.
    let normal = from_fn(1, |x: &[f64]| -0.5 * x[0] * x[0]);
    let err = SliceSampler::new(settings.clone().with_max_evaluations(1000))
        .unwrap()
        .sample(&normal, None, 100, 1)
        .unwrap_err();
    assert!(
        matches!(
            err,
            McmcError::Budget {
                kind: BudgetKind::Evaluations,
                limit: 1000.0,
                ..
            }
        ),
        "{err:?}"
    );
    // The initialisation alone over the budget fails before it starts.
    let err = SliceSampler::new(SliceSettings::default().with_max_evaluations(100_000))
        .unwrap()
        .sample(&normal, Some(&prior(1)), 100, 1)
        .unwrap_err();
    assert!(
        matches!(err, McmcError::Budget { evaluations: 0, .. }),
        "{err:?}"
    );
    // A finite max_width ends the stepping out: the flat target samples (a random walk).
    let run = SliceSampler::new(settings.with_max_width(5.0))
        .unwrap()
        .sample(&flat, None, 100, 1)
        .unwrap();
    assert_eq!(run.samples.ncols(), 100);
}

#[test]
fn a_slow_potential_spends_the_time_budget() {
    let slow = from_fn(1, |x: &[f64]| {
        std::thread::sleep(Duration::from_millis(2));
        -0.5 * x[0] * x[0]
    });
    let settings = SliceSettings::default()
        .with_chains(2)
        .with_init(InitStrategy::Given(DMatrix::zeros(1, 2)))
        .with_max_seconds(Some(0.2));
    let start = std::time::Instant::now();
    let err = SliceSampler::new(settings)
        .unwrap()
        .sample(&slow, None, 100, 1)
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    match &err {
        McmcError::Budget {
            kind: BudgetKind::Seconds,
            limit,
            seconds,
            done,
            total,
            ..
        } => {
            assert_eq!(*limit, 0.2);
            assert!(*seconds > 0.2 && *done < *total);
        }
        other => panic!("expected a time budget error, found {other:?}"),
    }
    assert!(err.to_string().contains("max_seconds"), "{err}");
}

#[test]
fn bad_settings_and_arguments_are_rejected() {
    let d = SliceSettings::default;
    let bad = [
        d().with_chains(0),
        d().with_thin(0),
        d().with_init_width(0.0),
        d().with_init_width(-1.0),
        d().with_init_width(f64::NAN),
        d().with_init_width(f64::INFINITY),
        d().with_max_width(0.0),
        d().with_max_width(f64::NAN),
        d().with_max_evaluations(0),
        d().with_max_seconds(Some(0.0)),
        d().with_max_seconds(Some(f64::NAN)),
        d().with_init(InitStrategy::Sir { candidates: 0 }),
        d().with_init(InitStrategy::Resample { candidates: 0 }),
        d().with_convergence(ConvergenceCheck {
            max_rhat: 1.0,
            min_ess: 100.0,
        }),
        d().with_convergence(ConvergenceCheck {
            max_rhat: 1.01,
            min_ess: -1.0,
        }),
    ];
    for s in bad {
        let err = SliceSampler::new(s.clone()).unwrap_err();
        assert!(matches!(err, McmcError::InvalidConfig(_)), "{s:?}: {err:?}");
    }
    let nan_start = DMatrix::from_element(1, 20, f64::NAN);
    assert!(matches!(
        SliceSampler::new(d().with_init(InitStrategy::Given(nan_start))),
        Err(McmcError::NonFinite { .. })
    ));
    // Limits that are fine: none at all, or infinite width.
    assert!(
        d().with_max_seconds(None)
            .with_max_width(f64::INFINITY)
            .check()
            .is_ok()
    );

    let sampler = SliceSampler::new(d()).unwrap();
    let target = from_fn(2, |x: &[f64]| -x[0] * x[0] - x[1] * x[1]);
    let cases: Vec<(&str, Result<_, McmcError>)> = vec![
        ("n = 0", sampler.sample(&target, Some(&prior(2)), 0, 1)),
        ("no proposal", sampler.sample(&target, None, 10, 1)),
        (
            "a 3-D proposal",
            sampler.sample(&target, Some(&prior(3)), 10, 1),
        ),
        (
            "dimension 0",
            sampler.sample(&from_fn(0, |_: &[f64]| 0.0), Some(&prior(1)), 10, 1),
        ),
        (
            "three names",
            sampler
                .clone()
                .with_parameter_names(vec!["a".into(), "b".into(), "c".into()])
                .sample(&target, Some(&prior(2)), 10, 1),
        ),
        (
            "given starts for 19 chains",
            SliceSampler::new(d().with_init(InitStrategy::Given(DMatrix::zeros(2, 19))))
                .unwrap()
                .sample(&target, None, 10, 1),
        ),
    ];
    for (what, result) in cases {
        let err = result.err().unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(
            matches!(
                err,
                McmcError::InvalidConfig(_) | McmcError::DimensionMismatch { .. }
            ),
            "{what}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("expected") || msg.contains("found") || msg.contains("none"),
            "{what}: {msg}"
        );
    }
}

#[test]
fn settings_round_trip_through_json() {
    let s = SliceSettings::default()
        .with_init(InitStrategy::Given(DMatrix::from_column_slice(
            2,
            2,
            &[0.0, 1.0, 2.0, 3.0],
        )))
        .with_convergence(ConvergenceCheck::default());
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<SliceSettings>(&json).unwrap(), s);
    let d = SliceSettings::default();
    let back: SliceSettings = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
    assert_eq!(back, d);
}
