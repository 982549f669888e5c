//! Bad input gives clear errors, never a panic.

use nalgebra::DMatrix;
use simfer_analysis::{
    AnalysisError, Bins, C2stOptions, GaussianKde, MmdBandwidth, PairplotOptions, c2st,
    default_limits, histogram_1d, histogram_2d, kde_1d, mmd_squared, pairplot_data, summarize,
};

use crate::common::{normal, rng};

#[test]
fn sets_of_different_dimensions() {
    let a = normal(2, 50, 0.0, 1.0, &mut rng(50));
    let b = normal(3, 50, 0.0, 1.0, &mut rng(51));
    let e = c2st(&a, &b, &C2stOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            AnalysisError::DimensionMismatch {
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("expected dimension 2, found 3"),
        "{e}"
    );
    assert!(matches!(
        mmd_squared(&a, &b, MmdBandwidth::Median),
        Err(AnalysisError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        pairplot_data(&[("a", &a), ("b", &b)], &[], &PairplotOptions::default()),
        Err(AnalysisError::DimensionMismatch { .. })
    ));
    let e = pairplot_data(
        &[("a", &a)],
        &[("truth", &[1.0, 2.0, 3.0])],
        &PairplotOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("point 'truth'"), "{e}");
    assert!(default_limits(&[&a, &b], &[]).is_err());
    let opts = PairplotOptions {
        labels: Some(vec!["only one".into()]),
        ..Default::default()
    };
    assert!(pairplot_data(&[("a", &a)], &[], &opts).is_err());
}

#[test]
fn empty_sets() {
    let empty = DMatrix::<f64>::zeros(2, 0);
    let no_dims = DMatrix::<f64>::zeros(0, 10);
    let a = normal(2, 50, 0.0, 1.0, &mut rng(52));
    for e in [
        c2st(&a, &empty, &C2stOptions::default()).unwrap_err(),
        c2st(&no_dims, &no_dims, &C2stOptions::default()).unwrap_err(),
        mmd_squared(&empty, &a, MmdBandwidth::Median).unwrap_err(),
        summarize(&empty, &[0.5]).unwrap_err(),
        GaussianKde::new(&empty).unwrap_err(),
        pairplot_data(&[("e", &empty)], &[], &PairplotOptions::default()).unwrap_err(),
        pairplot_data(&[], &[], &PairplotOptions::default()).unwrap_err(),
        histogram_1d(&[], [0.0, 1.0], &Bins::Count(3)).unwrap_err(),
    ] {
        assert!(
            matches!(
                e,
                AnalysisError::TooFewSamples { .. } | AnalysisError::DimensionMismatch { .. }
            ),
            "{e}"
        );
    }
    let e = c2st(&a, &empty, &C2stOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("expected at least 2 sample(s), found 0"),
        "{e}"
    );
}

#[test]
fn non_finite_values() {
    let mut a = normal(2, 50, 0.0, 1.0, &mut rng(53));
    let b = normal(2, 50, 0.0, 1.0, &mut rng(54));
    a[(1, 7)] = f64::NAN;
    let e = c2st(&a, &b, &C2stOptions::default()).unwrap_err();
    match &e {
        AnalysisError::NonFinite { dim, sample, .. } => assert_eq!((*dim, *sample), (1, 7)),
        other => panic!("expected NonFinite, got {other}"),
    }
    assert!(e.to_string().contains("dimension 1, sample 7"), "{e}");
    a[(1, 7)] = f64::INFINITY;
    assert!(matches!(
        mmd_squared(&b, &a, MmdBandwidth::Median),
        Err(AnalysisError::NonFinite { .. })
    ));
    assert!(matches!(
        summarize(&a, &[0.5]),
        Err(AnalysisError::NonFinite { .. })
    ));
    assert!(matches!(
        pairplot_data(&[("a", &a)], &[], &PairplotOptions::default()),
        Err(AnalysisError::NonFinite { .. })
    ));
    assert!(matches!(
        pairplot_data(
            &[("b", &b)],
            &[("p", &[0.0, f64::NAN])],
            &PairplotOptions::default()
        ),
        Err(AnalysisError::NonFinite { .. })
    ));
    assert!(
        histogram_2d(
            &[0.0, f64::NAN],
            &[0.0, 1.0],
            [0.0, 1.0],
            [0.0, 1.0],
            (2, 2)
        )
        .is_err()
    );
    assert!(kde_1d(&[0.0, 1.0, f64::NEG_INFINITY], [0.0, 1.0], 10).is_err());
}

#[test]
fn bad_options_and_degenerate_data() {
    let a = normal(2, 50, 0.0, 1.0, &mut rng(55));
    let mut constant = a.clone();
    constant.row_mut(1).fill(3.0);
    assert!(matches!(
        c2st(&constant, &a, &C2stOptions::default()),
        Err(AnalysisError::Degenerate { dim: 1, .. })
    ));
    for o in [
        C2stOptions {
            folds: 1,
            ..Default::default()
        },
        C2stOptions {
            batch_size: 0,
            ..Default::default()
        },
        C2stOptions {
            learning_rate: -1.0,
            ..Default::default()
        },
    ] {
        assert!(matches!(
            c2st(&a, &a, &o),
            Err(AnalysisError::InvalidArgument { .. })
        ));
    }
    assert!(matches!(
        mmd_squared(&a, &a, MmdBandwidth::Fixed(0.0)),
        Err(AnalysisError::InvalidArgument { .. })
    ));
    assert!(histogram_1d(&[0.5], [1.0, 0.0], &Bins::Count(3)).is_err());
    assert!(histogram_1d(&[0.5], [0.0, 1.0], &Bins::Count(0)).is_err());
    assert!(histogram_1d(&[0.5], [0.0, 1.0], &Bins::Edges(vec![0.0, 0.0, 1.0])).is_err());
    assert!(summarize(&a, &[1.5]).is_err());
    // A constant marginal is fine for histograms, an error for KDEs.
    let opts = PairplotOptions::default();
    assert!(pairplot_data(&[("c", &constant)], &[], &opts).is_ok());
    let kde_opts = PairplotOptions {
        diag: simfer_analysis::DiagKind::Kde,
        ..Default::default()
    };
    assert!(matches!(
        pairplot_data(&[("c", &constant)], &[], &kde_opts),
        Err(AnalysisError::Degenerate { dim: 1, .. })
    ));
    let sub = PairplotOptions {
        subset: Some(vec![5]),
        ..Default::default()
    };
    assert!(matches!(
        pairplot_data(&[("a", &a)], &[], &sub),
        Err(AnalysisError::InvalidArgument { .. })
    ));
}
