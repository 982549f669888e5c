//! The checksum of saved estimators and ratio classifiers: every change of a file is an
//! error, files of the versions before checksums still load, and values are checked after
//! the checksum.

use simfer_flows::io::{self, FORMAT_TAG, SavedModel};
use simfer_flows::{
    ClassifierConfig, ConditionalDensityEstimator as _, Estimator, EstimatorConfig, FlowError, Maf,
    MafConfig, Mdn, MdnConfig, Nsf, NsfConfig, Parameterized, RatioClassifier,
};

use crate::common::data;

/// One kind of saved model: its files and how to read them back (a loaded model is
/// encoded again, so that "the same model" is "the same bytes").
struct Case {
    kind: &'static str,
    version: u32,
    checksummed_since: u32,
    bytes: Vec<u8>,
    json: String,
    params: Vec<f64>,
    from_bytes: fn(&[u8]) -> Result<Vec<u8>, FlowError>,
    from_json: fn(&str) -> Result<Vec<u8>, FlowError>,
}

fn estimator_case<M: SavedModel>(config: EstimatorConfig) -> Case {
    let (theta, x) = data(2, 2, 64, 3);
    let estimator = config.build(&theta, &x, 5).unwrap();
    assert_eq!(estimator.kind(), M::KIND);
    Case {
        kind: M::KIND,
        version: M::VERSION,
        checksummed_since: M::CHECKSUMMED_SINCE,
        bytes: estimator.to_bytes().unwrap(),
        json: estimator.to_json().unwrap(),
        params: estimator.params().to_vec(),
        from_bytes: |b| Estimator::from_bytes(b).map(|e| e.to_bytes().unwrap()),
        from_json: |j| Estimator::from_json(j).map(|e| e.to_bytes().unwrap()),
    }
}

fn cases() -> Vec<Case> {
    let (theta, x) = data(2, 2, 64, 4);
    let classifier = RatioClassifier::new(
        &ClassifierConfig {
            hidden_features: 6,
            ..ClassifierConfig::default()
        },
        &theta,
        &x,
        6,
    )
    .unwrap();
    vec![
        estimator_case::<Maf>(
            MafConfig {
                hidden_features: 6,
                num_transforms: 2,
                ..MafConfig::default()
            }
            .into(),
        ),
        estimator_case::<Nsf>(
            NsfConfig {
                hidden_features: 6,
                num_transforms: 2,
                ..NsfConfig::default()
            }
            .into(),
        ),
        estimator_case::<Mdn>(
            MdnConfig {
                hidden_features: 6,
                num_components: 2,
                ..MdnConfig::default()
            }
            .into(),
        ),
        Case {
            kind: RatioClassifier::KIND,
            version: RatioClassifier::VERSION,
            checksummed_since: RatioClassifier::CHECKSUMMED_SINCE,
            bytes: classifier.to_bytes().unwrap(),
            json: classifier.to_json().unwrap(),
            params: classifier.params().to_vec(),
            from_bytes: |b| RatioClassifier::from_bytes(b).map(|c| c.to_bytes().unwrap()),
            from_json: |j| RatioClassifier::from_json(j).map(|c| c.to_bytes().unwrap()),
        },
    ]
}

/// Where the version is in a binary file: after the tag and the kind (each a one-byte
/// length and the text).
fn version_offset(kind: &str) -> usize {
    1 + FORMAT_TAG.len() + 1 + kind.len()
}

/// The file as the build before checksums wrote it: the previous version, no checksum.
fn previous_version_bytes(case: &Case) -> Vec<u8> {
    let mut old = case.bytes[..case.bytes.len() - 4].to_vec();
    old[version_offset(case.kind)] = u8::try_from(case.checksummed_since - 1).unwrap();
    old
}

fn previous_version_json(case: &Case) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(&case.json).unwrap();
    v.as_object_mut().unwrap().remove("checksum");
    v["version"] = serde_json::json!(case.checksummed_since - 1);
    v
}

fn position(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the parameter's bytes are in the file")
}

#[test]
fn every_file_carries_its_checksum_and_reads_back_to_the_same_bits() {
    for case in cases() {
        let v: serde_json::Value = serde_json::from_str(&case.json).unwrap();
        assert_eq!(
            v["version"],
            serde_json::json!(case.version),
            "{}",
            case.kind
        );
        assert_eq!(case.version, case.checksummed_since, "{}", case.kind);
        let checksum = v["checksum"].as_str().unwrap();
        assert!(
            checksum.starts_with("crc32:") && checksum.len() == 14,
            "{checksum}"
        );
        assert_eq!(checksum, io::json_checksum(&v));
        // The header comes first, in this order (the model after it).
        let keys: Vec<usize> = ["\"format\"", "\"kind\"", "\"version\"", "\"checksum\""]
            .iter()
            .map(|k| case.json.find(k).unwrap())
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "{}",
            &case.json[..120]
        );
        assert_eq!((case.from_bytes)(&case.bytes).unwrap(), case.bytes);
        assert_eq!((case.from_json)(&case.json).unwrap(), case.bytes);
    }
}

#[test]
fn every_flipped_bit_of_a_binary_file_is_an_error() {
    for case in cases() {
        for pos in 0..case.bytes.len() {
            let mut bytes = case.bytes.clone();
            bytes[pos] ^= 1 << (pos % 8);
            assert!(
                (case.from_bytes)(&bytes).is_err(),
                "{}: a flipped bit at byte {pos} of {} loaded",
                case.kind,
                bytes.len()
            );
        }
        // Cut short anywhere, or with a byte more.
        for len in 0..case.bytes.len() {
            assert!(
                (case.from_bytes)(&case.bytes[..len]).is_err(),
                "{}",
                case.kind
            );
        }
        let mut longer = case.bytes.clone();
        longer.push(0);
        assert!((case.from_bytes)(&longer).is_err(), "{}", case.kind);
    }
}

#[test]
fn a_changed_value_is_a_checksum_error_giving_both_checksums() {
    for case in cases() {
        // A parameter changed in its last digit, in binary and in JSON.
        let k = case.params.len() / 2;
        let changed = f64::from_bits(case.params[k].to_bits() ^ 1);
        let mut bytes = case.bytes.clone();
        let at = position(&bytes, &case.params[k].to_le_bytes());
        bytes[at..at + 8].copy_from_slice(&changed.to_le_bytes());
        let err = (case.from_bytes)(&bytes).unwrap_err();
        assert!(matches!(err, FlowError::Corrupted { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.starts_with("checksum mismatch: the file says crc32:")
                && message.contains(", its content gives crc32:")
                && message.ends_with("the file was changed or corrupted"),
            "{message}"
        );
        let mut v: serde_json::Value = serde_json::from_str(&case.json).unwrap();
        v["model"]["params"][k] = serde_json::json!(changed);
        let err = (case.from_json)(&v.to_string()).unwrap_err();
        let recorded = v["checksum"].as_str().unwrap().to_owned();
        assert!(
            matches!(err, FlowError::Corrupted { .. })
                && err.to_string().contains(&format!(
                    "the file says {recorded}, its content gives crc32:"
                )),
            "{err}"
        );
        // A changed header is caught too (the kind and the version are covered).
        let mut v: serde_json::Value = serde_json::from_str(&case.json).unwrap();
        v["version"] = serde_json::json!(case.checksummed_since - 1);
        assert!(
            matches!(
                (case.from_json)(&v.to_string()),
                Err(FlowError::Corrupted { .. })
            ),
            "{}",
            case.kind
        );
    }
}

#[test]
fn a_loaded_file_names_itself_in_a_checksum_error() {
    let dir = std::env::temp_dir().join(format!("simfer-flows-integrity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (theta, x) = data(2, 1, 64, 1);
    let maf = Maf::new(&MafConfig::default(), &theta, &x, 2).unwrap();
    let path = dir.join("maf.bin");
    let mut bytes = maf.to_bytes().unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    for err in [
        Maf::load(&path).unwrap_err(),
        Estimator::load(&path).unwrap_err(),
    ] {
        match &err {
            FlowError::Corrupted { path: Some(p), .. } => assert_eq!(p, &path),
            other => panic!("{other}"),
        }
        assert!(
            err.to_string()
                .starts_with(&format!("{}: checksum mismatch", path.display())),
            "{err}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn reindented_or_reordered_json_reads_the_same() {
    for case in cases() {
        // Pretty-printing a parsed value also sorts every object's keys.
        let v: serde_json::Value = serde_json::from_str(&case.json).unwrap();
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        assert_ne!(pretty, case.json);
        assert_eq!(
            (case.from_json)(&pretty).unwrap(),
            case.bytes,
            "{}",
            case.kind
        );
    }
}

/// Files written before checksums (each kind's previous version, the same layout without
/// a checksum) still load, to the same model; saved again they carry a checksum.
#[test]
fn files_of_the_versions_before_checksums_still_load() {
    for case in cases() {
        let old = previous_version_bytes(&case);
        assert_eq!(
            (case.from_bytes)(&old).unwrap(),
            case.bytes,
            "{}",
            case.kind
        );
        let old = previous_version_json(&case).to_string();
        assert_eq!((case.from_json)(&old).unwrap(), case.bytes, "{}", case.kind);
    }
}

/// A corrupted version number does not make a checked file pass as an unchecked one, and a
/// current file without its checksum is an error.
#[test]
fn a_file_cannot_shed_its_checksum() {
    for case in cases() {
        let mut bytes = case.bytes.clone();
        bytes[version_offset(case.kind)] = u8::try_from(case.checksummed_since - 1).unwrap();
        let err = (case.from_bytes)(&bytes).unwrap_err();
        assert!(
            matches!(err, FlowError::Corrupted { .. })
                && err
                    .to_string()
                    .contains("4 bytes after the end of the model"),
            "{}: {err}",
            case.kind
        );
        let mut v: serde_json::Value = serde_json::from_str(&case.json).unwrap();
        v.as_object_mut().unwrap().remove("checksum");
        let err = (case.from_json)(&v.to_string()).unwrap_err();
        assert!(
            matches!(err, FlowError::Corrupted { .. })
                && err.to_string().contains(&format!(
                    "no checksum, where a `{}` estimator of version {} carries one",
                    case.kind, case.version
                )),
            "{err}"
        );
    }
}

/// Past the checksum (or in a file without one) the values are still checked: non-finite
/// parameters, statistics that are not positive, parameters that do not fit.
#[test]
fn values_are_checked_after_the_checksum() {
    for case in cases() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut old = previous_version_bytes(&case);
            let at = position(&old, &case.params[1].to_le_bytes());
            old[at..at + 8].copy_from_slice(&bad.to_le_bytes());
            let err = (case.from_bytes)(&old).unwrap_err();
            assert!(
                matches!(err, FlowError::NonFinite(what) if what.contains("parameters")),
                "{}: {err}",
                case.kind
            );
        }
        let mut v: serde_json::Value = serde_json::from_str(&case.json).unwrap();
        v["model"]["params"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!(0.5));
        io::seal_json(&mut v);
        let err = (case.from_json)(&v.to_string()).unwrap_err();
        assert!(matches!(err, FlowError::ArchitectureMismatch(_)), "{err}");
    }
}

/// Found by the fuzz target `estimator_bytes` (fuzz/corpus/estimator_bytes/crash-*): a
/// file whose architecture (hidden units, blocks, layers, transforms, components) is far
/// larger than its parameters was built before its parameters were counted, a panic
/// (capacity overflow) or an allocation of all memory. Every count of every kind, made
/// huge in a file sealed again, is an error.
#[test]
fn a_huge_architecture_in_a_file_is_an_error_not_a_crash() {
    for case in cases() {
        let v: serde_json::Value = serde_json::from_str(&case.json).unwrap();
        let config = v["model"]["config"].as_object().unwrap().clone();
        let counts: Vec<&String> = config
            .iter()
            // An NSF of input dimension 2 has no spline context (only dimension 1 does).
            .filter(|(key, value)| value.is_u64() && *key != "hidden_layers_spline_context")
            .map(|(key, _)| key)
            .collect();
        assert!(counts.len() >= 2, "{}: {config:?}", case.kind);
        for key in counts {
            for huge in [u64::MAX, 1 << 40, 1 << 20] {
                let mut bad = v.clone();
                bad["model"]["config"][key.as_str()] = serde_json::json!(huge);
                io::seal_json(&mut bad);
                let err = (case.from_json)(&bad.to_string()).unwrap_err();
                assert!(
                    matches!(
                        err,
                        FlowError::ArchitectureMismatch(_) | FlowError::InvalidConfig(_)
                    ),
                    "{} with {key} = {huge}: {err}",
                    case.kind
                );
            }
        }
    }
}
