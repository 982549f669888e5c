//! Save/load round trips and version/architecture errors.

use simfer_flows::io::{FORMAT_TAG, SavedModel};

const FORMAT_VERSION: u32 = <Maf as SavedModel>::VERSION;
use simfer_flows::{ConditionalDensityEstimator, FlowError, Maf, MafConfig, Precision};

use crate::common::{data, flow};

#[test]
fn save_then_load_gives_bit_identical_log_probs() {
    let (maf, theta, x) = flow(&MafConfig::default(), 3, 2, 1);
    let lp = maf.log_prob(&theta, &x).unwrap();
    let dir = std::env::temp_dir().join(format!("simfer-flows-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("maf.bin");
    maf.save(&path).unwrap();
    let loaded = Maf::load(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let lp2 = loaded.log_prob(&theta, &x).unwrap();
    assert!(
        lp.iter()
            .zip(lp2.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    assert_eq!(loaded.permutations(), maf.permutations());
    assert_eq!(loaded.input_standardization(), maf.input_standardization());
    assert_eq!(
        loaded.condition_standardization(),
        maf.condition_standardization()
    );
    assert_eq!(loaded.config(), maf.config());

    let from_json = Maf::from_json(&maf.to_json().unwrap()).unwrap();
    let lp3 = from_json.log_prob(&theta, &x).unwrap();
    assert!(
        lp.iter()
            .zip(lp3.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );

    let mut buf = Vec::new();
    maf.write_to(&mut buf).unwrap();
    let lp4 = Maf::read_from(buf.as_slice())
        .unwrap()
        .log_prob(&theta, &x)
        .unwrap();
    assert_eq!(lp, lp4);

    let (unc, t, _) = flow(&MafConfig::default(), 2, 0, 2);
    let back = Maf::from_bytes(&unc.to_bytes().unwrap()).unwrap();
    let e = nalgebra::DMatrix::zeros(0, t.ncols());
    assert_eq!(
        unc.log_prob(&t, &e).unwrap(),
        back.log_prob(&t, &e).unwrap()
    );
}

#[test]
fn another_version_or_architecture_is_a_clear_error() {
    let (maf, _, _) = flow(&MafConfig::default(), 2, 1, 3);
    // Another version number.
    let json = maf.to_json().unwrap().replacen(
        &format!("\"version\":{FORMAT_VERSION}"),
        &format!("\"version\":{}", FORMAT_VERSION + 1),
        1,
    );
    let err = Maf::from_json(&json).unwrap_err();
    assert!(
        matches!(err, FlowError::VersionMismatch { found_version, .. } if found_version == FORMAT_VERSION + 1)
    );
    assert!(err.to_string().contains(FORMAT_TAG), "{err}");
    let mut bytes = maf.to_bytes().unwrap();
    // The header is the tag and the kind (each length-prefixed), then the version as a
    // varint.
    bytes[1 + FORMAT_TAG.len() + 1 + "maf".len()] = 7;
    assert!(matches!(
        Maf::from_bytes(&bytes),
        Err(FlowError::VersionMismatch {
            found_version: 7,
            ..
        })
    ));
    // Not a saved flow at all.
    assert!(Maf::from_bytes(b"hello").is_err());
    // Parameters that do not fit the stored architecture.
    let mut v: serde_json::Value = serde_json::from_str(&maf.to_json().unwrap()).unwrap();
    v["model"]["config"]["hidden_features"] = serde_json::json!(49);
    // (Sealed again: a changed file fails its checksum first.)
    simfer_flows::io::seal_json(&mut v);
    let err = Maf::from_json(&v.to_string()).unwrap_err();
    assert!(matches!(err, FlowError::ArchitectureMismatch(_)), "{err}");
    assert!(err.to_string().contains("parameters"), "{err}");
    // Checking a loaded flow against the architecture a caller expects.
    let (theta, x) = data(2, 1, 10, 0);
    let other = Maf::new(
        &MafConfig {
            hidden_features: 20,
            ..MafConfig::default()
        },
        &theta,
        &x,
        0,
    )
    .unwrap();
    assert!(
        other
            .check_architecture(&MafConfig::default(), 2, 1)
            .is_err()
    );
    assert!(maf.check_architecture(&MafConfig::default(), 2, 1).is_ok());
}

/// Files written by version 1 of the format (before the training precision was part of
/// the configuration), both binary and JSON, load with the default precision and give
/// the log-densities the writing version computed.
#[test]
fn version_1_files_still_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let theta = nalgebra::DMatrix::from_fn(2, 4, |i, j| {
        ((3 * i + 7 * j) as f64 * 0.37).sin() + i as f64
    });
    let x = nalgebra::DMatrix::from_fn(1, 4, |_, j| (j as f64 * 0.21).cos());
    // Printed by the version that wrote the files.
    let expected = [
        -3.802255542427187,
        -3.1783916555063767,
        -3.9162007250405497,
        -3.3058357410563612,
    ];
    let bin = Maf::load(dir.join("maf_v1.bin")).unwrap();
    let json = Maf::from_json(&std::fs::read_to_string(dir.join("maf_v1.json")).unwrap()).unwrap();
    for maf in [bin, json] {
        assert_eq!(maf.config().hidden_features, 8);
        assert_eq!(maf.config().precision, Precision::default());
        let lp = maf.log_prob(&theta, &x).unwrap();
        for (a, b) in lp.iter().zip(expected) {
            // Not bit-exact across CPUs: tanh uses fused multiply-adds where available.
            assert!((a - b).abs() < 1e-12 * b.abs(), "{a} vs {b}");
        }
        // Saved again, it is a file of the current version.
        let again = Maf::from_bytes(&maf.to_bytes().unwrap()).unwrap();
        assert_eq!(again.log_prob(&theta, &x).unwrap(), lp);
    }
}

/// A save writes a temporary file beside its target and renames it over the target: a
/// save that fails leaves an estimator file already there as it was, and leaves no
/// temporary file behind.
#[test]
fn a_failed_overwrite_leaves_the_estimator_file_as_it_was() {
    let (maf, _, _) = flow(&MafConfig::default(), 2, 1, 3);
    let dir = std::env::temp_dir().join(format!("simfer-flows-overwrite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("maf.bin");
    maf.save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    // Where the temporary file cannot be created (a directory holds its name), the save
    // fails.
    let tmp = dir.join(format!(".maf.bin.tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let (other, _, _) = flow(&MafConfig::default(), 2, 1, 4);
    let err = other.save(&path).unwrap_err();
    assert!(
        matches!(&err, FlowError::File { path: p, .. } if p == &path),
        "{err:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // Once it can, the save replaces the file whole, with nothing left beside it.
    std::fs::remove_dir(&tmp).unwrap();
    other.save(&path).unwrap();
    assert_ne!(std::fs::read(&path).unwrap(), before);
    Maf::load(&path).unwrap();
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["maf.bin"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
