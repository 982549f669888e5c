//! Sample files: exact round trips, header detection, tolerated formatting, errors.

use nalgebra::DMatrix;
use rand::Rng;
use simfer_analysis::{
    AnalysisError, parse_samples_csv, read_samples_csv, samples_to_csv, write_samples_csv,
};

use crate::common::{normal, rng};

#[test]
fn round_trip_is_bit_exact_and_bytes_repeat() {
    let mut r = rng(11);
    let mut s = normal(3, 500, 0.0, 1.0, &mut r);
    // Values whose shortest form needs an exponent or many digits, and the extremes.
    s[(0, 0)] = 1e-300;
    s[(1, 0)] = -1.7976931348623157e308;
    s[(2, 0)] = f64::MIN_POSITIVE / 8.0; // subnormal
    s[(0, 1)] = 0.1 + 0.2;
    s[(1, 1)] = -0.0;
    s[(2, 1)] = r.random::<f64>() * 1e17;
    let csv = samples_to_csv(&s, None).unwrap();
    let back = parse_samples_csv(&csv).unwrap();
    assert_eq!(back.samples.shape(), (3, 500));
    for (a, b) in s.iter().zip(back.samples.iter()) {
        assert_eq!(a.to_bits(), b.to_bits(), "{a} read back as {b}");
    }
    assert_eq!(
        back.names,
        Some(vec!["theta_1".into(), "theta_2".into(), "theta_3".into()])
    );
    // Writing what was read gives the same bytes.
    assert_eq!(samples_to_csv(&back.samples, None).unwrap(), csv);
}

#[test]
fn non_finite_values_round_trip() {
    let s = DMatrix::from_column_slice(3, 1, &[f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
    let csv = samples_to_csv(&s, None).unwrap();
    assert_eq!(csv.lines().nth(1), Some("NaN,inf,-inf"));
    let back = parse_samples_csv(&csv).unwrap().samples;
    assert!(back[0].is_nan());
    assert_eq!((back[1], back[2]), (f64::INFINITY, f64::NEG_INFINITY));
    // As other tools write them.
    let other = parse_samples_csv("nan,Infinity,-INF").unwrap().samples;
    assert!(other[0].is_nan() && other[1] == f64::INFINITY && other[2] == f64::NEG_INFINITY);
}

#[test]
fn one_sample_per_row_in_column_order() {
    let s = DMatrix::from_column_slice(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let names = vec!["a".to_string(), "b".to_string()];
    assert_eq!(
        samples_to_csv(&s, Some(&names)).unwrap(),
        "a,b\n1.0,2.0\n3.0,4.0\n5.0,6.0\n"
    );
}

#[test]
fn header_is_optional_and_formatting_is_tolerated() {
    // A one-row observation file without a header, negative numbers, no final newline.
    let f = parse_samples_csv("-0.5,0.3,1e-3").unwrap();
    assert_eq!(f.names, None);
    assert_eq!(f.samples.as_slice(), &[-0.5, 0.3, 1e-3]);
    // A pandas-style header with quotes, CRLF line ends, padding, blank and comment lines.
    let text = "# written by hand\r\n\r\n\"x1\", \"x2\"\r\n 1.5 , -2\r\n\r\n3,4\r\n";
    let f = parse_samples_csv(text).unwrap();
    assert_eq!(f.names, Some(vec!["x1".to_string(), "x2".to_string()]));
    assert_eq!(
        f.samples,
        DMatrix::from_column_slice(2, 2, &[1.5, -2.0, 3.0, 4.0])
    );
    // One column.
    let f = parse_samples_csv("theta\n1\n2\n3\n").unwrap();
    assert_eq!(f.samples.shape(), (1, 3));
}

#[test]
fn errors_name_line_column_and_counts() {
    // A sample line with a field that is not a number: line 3, column 2.
    match parse_samples_csv("a,b\n1,2\n3,x\n") {
        Err(AnalysisError::InvalidArgument { name, found, .. }) => {
            assert!(name.contains("line 3, column 2"), "{name}");
            assert_eq!(found, "\"x\"");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    // A ragged line.
    match parse_samples_csv("1,2\n3,4,5\n") {
        Err(AnalysisError::DimensionMismatch {
            what,
            expected,
            found,
        }) => {
            assert!(what.contains("line 2"), "{what}");
            assert_eq!((expected, found), (2, 3));
        }
        other => panic!("expected DimensionMismatch, got {other:?}"),
    }
    // An empty field is not a number.
    match parse_samples_csv("a,b\n1,\n") {
        Err(AnalysisError::InvalidArgument { name, found, .. }) => {
            assert!(name.contains("line 2, column 2"), "{name}");
            assert_eq!(found, "\"\"");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    // No samples: empty, only a header, only comments.
    for text in ["", "\n\n", "a,b\n", "# nothing\n"] {
        assert!(
            matches!(
                parse_samples_csv(text),
                Err(AnalysisError::TooFewSamples { found: 0, .. })
            ),
            "{text:?}"
        );
    }
}

#[test]
fn bad_names_are_rejected_when_writing() {
    let s = DMatrix::zeros(2, 1);
    let one = vec!["a".to_string()];
    assert!(matches!(
        samples_to_csv(&s, Some(&one)),
        Err(AnalysisError::DimensionMismatch {
            expected: 2,
            found: 1,
            ..
        })
    ));
    for bad in ["", "a,b", "a\"", "a\nb"] {
        let names = vec!["ok".to_string(), bad.to_string()];
        assert!(
            matches!(
                samples_to_csv(&s, Some(&names)),
                Err(AnalysisError::InvalidArgument { .. })
            ),
            "{bad:?}"
        );
    }
}

/// Found by the fuzz target `samples_csv` (fuzz/corpus/samples_csv/crash-*): names read
/// from a file (quotes removed) that, written back, would read as other names, or as no
/// header at all. The writer refuses them instead.
#[test]
fn names_that_would_not_read_back_are_rejected_when_writing() {
    let s = DMatrix::zeros(2, 1);
    // A quoted name of tabs: written unquoted, the header line is blank and is skipped.
    let tabs = parse_samples_csv("\"\t\t\"\n1\n").unwrap();
    assert_eq!(tabs.names, Some(vec!["\t\t".to_string()]));
    assert!(samples_to_csv(&tabs.samples, tabs.names.as_deref()).is_err());
    for bad in [" a", "a ", "\tb", "#a"] {
        let names = vec![bad.to_string(), "ok".to_string()];
        assert!(
            matches!(
                samples_to_csv(&s, Some(&names)),
                Err(AnalysisError::InvalidArgument { .. })
            ),
            "{bad:?}"
        );
    }
    // A header of numbers would read as a sample; one name that is not a number is enough.
    let numbers = vec!["1".to_string(), "nan".to_string()];
    assert!(samples_to_csv(&s, Some(&numbers)).is_err());
    let mixed = vec!["1".to_string(), "b".to_string()];
    let csv = samples_to_csv(&s, Some(&mixed)).unwrap();
    assert_eq!(parse_samples_csv(&csv).unwrap().names, Some(mixed));
}

#[test]
fn files_round_trip_and_errors_name_the_path() {
    let dir = std::env::temp_dir().join(format!("simfer-analysis-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("samples.csv");
    let s = normal(2, 10, 1.0, 2.0, &mut rng(3));
    let names = vec!["mu".to_string(), "sigma".to_string()];
    write_samples_csv(&path, &s, Some(&names)).unwrap();
    let f = read_samples_csv(&path).unwrap();
    assert_eq!((f.names, f.samples), (Some(names), s));

    std::fs::write(&path, "1,2\n3\n").unwrap();
    let e = read_samples_csv(&path).unwrap_err().to_string();
    assert!(e.contains("samples.csv") && e.contains("line 2"), "{e}");
    let missing = dir.join("missing.csv");
    let e = read_samples_csv(&missing).unwrap_err().to_string();
    assert!(e.contains("missing.csv") && e.contains("readable"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
