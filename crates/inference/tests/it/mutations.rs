//! Saved posteriors and estimators against changed and corrupted files: random seeded
//! mutations of a trained two_moons posterior's file (JSON) and of its estimator's files
//! (binary and JSON), each loaded; a load that panics, or that accepts a file which gives
//! another posterior or estimator than the one saved, fails. Also the checksum's errors
//! on a posterior file, files of the versions before checksums, and the checks after it.
//!
//! The full experiment (3,000 mutations of each file, with the counts printed):
//! `cargo test -p simfer-inference --release --test it mutations -- --ignored --nocapture`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use simfer_distributions::{Prior, rng_from_seed};
use simfer_flows::io::seal_json;
use simfer_flows::{Estimator, MafConfig, Parameterized};
use simfer_inference::{DirectPosterior, InferenceError, POSTERIOR_FORMAT_VERSION, SnpeConfig};
use simfer_snpe::TrainingConfig;

/// A small two_moons posterior, quickly trained (the weights need not be good, only
/// every part of the file must matter), with a default x.
fn two_moons_posterior() -> DirectPosterior {
    let task = simfer_benchmark::task("two_moons").unwrap();
    let prior: Arc<dyn Prior> = Arc::from(task.prior());
    let config = SnpeConfig {
        estimator: MafConfig {
            hidden_features: 10,
            num_transforms: 2,
            ..MafConfig::default()
        }
        .into(),
        training: TrainingConfig {
            max_num_epochs: Some(5),
            ..TrainingConfig::default()
        },
        ..SnpeConfig::default()
    };
    let run = crate::run_npe(
        prior,
        task.simulator().as_ref(),
        Some(&[0.05, -0.1]),
        1,
        400,
        3,
        config,
    )
    .unwrap();
    run.direct_posterior().unwrap().clone()
}

/// The fixed θ's at which a loaded posterior is compared with the saved one.
fn theta_grid() -> DMatrix<f64> {
    DMatrix::from_fn(2, 25, |i, j| -0.9 + 0.075 * j as f64 + 0.3 * i as f64)
}

fn bits(v: impl IntoIterator<Item = f64>) -> Vec<u64> {
    v.into_iter().map(f64::to_bits).collect()
}

/// What a mutation did.
#[derive(Clone, Copy, Debug)]
enum Mutation {
    Truncate,
    FlipBit,
    ReplaceByte,
    ExtremeNumber,
    ChangeDigit,
    DeleteSpan,
    DuplicateSpan,
}

const TEXT_NUMBERS: &[&str] = &[
    "1e308",
    "-1e308",
    "1e400",
    "-0",
    "-0.0",
    "0",
    "NaN",
    "Infinity",
    "-Infinity",
    "5e-324",
    "1e-320",
    "18446744073709551616",
    "-1",
    "4294967296",
];

const BINARY_NUMBERS: &[f64] = &[
    1e308,
    -1e308,
    -0.0,
    0.0,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    5e-324,
];

/// The spans of the numbers in a JSON text.
fn number_spans(text: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let starts = text[i].is_ascii_digit()
            || (text[i] == b'-' && text.get(i + 1).is_some_and(u8::is_ascii_digit));
        if starts && (i == 0 || !text[i - 1].is_ascii_alphanumeric()) {
            let mut j = i + 1;
            while j < text.len()
                && matches!(text[j], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
            {
                j += 1;
            }
            spans.push((i, j));
            i = j;
        } else {
            i += 1;
        }
    }
    spans
}

/// One seeded random mutation of `original` (which differs from it).
fn mutate(
    original: &[u8],
    numbers: &[(usize, usize)],
    json: bool,
    rng: &mut Xoshiro256PlusPlus,
) -> (Mutation, Vec<u8>) {
    let n = original.len();
    let kinds: &[Mutation] = if json {
        &[
            Mutation::Truncate,
            Mutation::FlipBit,
            Mutation::ReplaceByte,
            Mutation::ExtremeNumber,
            Mutation::ChangeDigit,
            Mutation::DeleteSpan,
            Mutation::DuplicateSpan,
        ]
    } else {
        &[
            Mutation::Truncate,
            Mutation::FlipBit,
            Mutation::ReplaceByte,
            Mutation::ExtremeNumber,
            Mutation::DeleteSpan,
            Mutation::DuplicateSpan,
        ]
    };
    let kind = kinds[rng.random_range(0..kinds.len())];
    let mut out = original.to_vec();
    let span = |rng: &mut Xoshiro256PlusPlus| {
        let start = rng.random_range(0..n);
        let len = rng.random_range(1..=64.min(n - start));
        (start, start + len)
    };
    match kind {
        Mutation::Truncate => out.truncate(rng.random_range(0..n)),
        Mutation::FlipBit => out[rng.random_range(0..n)] ^= 1 << rng.random_range(0..8),
        Mutation::ReplaceByte => {
            let at = rng.random_range(0..n);
            out[at] = out[at].wrapping_add(rng.random_range(1..=255));
        }
        Mutation::ExtremeNumber if json => {
            let (a, b) = numbers[rng.random_range(0..numbers.len())];
            let old = &original[a..b];
            let new = loop {
                let candidate = TEXT_NUMBERS[rng.random_range(0..TEXT_NUMBERS.len())];
                if candidate.as_bytes() != old {
                    break candidate;
                }
            };
            out.splice(a..b, new.bytes());
        }
        Mutation::ExtremeNumber => {
            let at = rng.random_range(0..n - 8);
            let old: [u8; 8] = original[at..at + 8].try_into().unwrap();
            let new = loop {
                let candidate = BINARY_NUMBERS[rng.random_range(0..BINARY_NUMBERS.len())];
                if candidate.to_le_bytes() != old {
                    break candidate;
                }
            };
            out[at..at + 8].copy_from_slice(&new.to_le_bytes());
        }
        Mutation::ChangeDigit => {
            let digits: Vec<usize> = (0..n).filter(|&i| original[i].is_ascii_digit()).collect();
            let at = digits[rng.random_range(0..digits.len())];
            out[at] = b'0' + (out[at] - b'0' + rng.random_range(1..10)) % 10;
        }
        Mutation::DeleteSpan => {
            let (a, b) = span(rng);
            out.drain(a..b);
        }
        Mutation::DuplicateSpan => {
            let (a, b) = span(rng);
            let copy = original[a..b].to_vec();
            out.splice(b..b, copy);
        }
    }
    debug_assert_ne!(out, original);
    (kind, out)
}

/// What loading the mutated files gave.
#[derive(Debug, Default)]
struct Counts {
    mutations: usize,
    panics: usize,
    errors: usize,
    /// Errors that report the change itself (a checksum mismatch, a missing checksum,
    /// bytes after the end).
    corrupted: usize,
    accepted_identical: usize,
    accepted_changed: usize,
    /// The first accepted changes: the mutation and where.
    examples: Vec<String>,
}

impl Counts {
    fn print(&self, what: &str) {
        println!(
            "{what}: {} mutations: {} panics, {} errors ({} of them corruption errors: \
             checksum, missing checksum, bytes after the end), {} accepted identical, {} \
             accepted changed",
            self.mutations,
            self.panics,
            self.errors,
            self.corrupted,
            self.accepted_identical,
            self.accepted_changed
        );
    }

    fn assert_none_wrong(&self, what: &str) {
        assert_eq!(self.panics, 0, "{what}: {self:?}");
        assert_eq!(self.accepted_changed, 0, "{what}: {self:?}");
        assert_eq!(
            self.mutations,
            self.errors + self.accepted_identical,
            "{what}: {self:?}"
        );
    }
}

/// The outcome of one load: an error (and whether it is a corruption error), or the
/// loaded thing's fingerprint.
enum Loaded {
    Error { corrupted: bool },
    Fingerprint(Vec<u8>, Vec<u64>),
}

/// Applies `count` seeded mutations to `original` and loads each.
fn run_mutations(
    original: &[u8],
    json: bool,
    count: usize,
    seed: u64,
    load: impl Fn(&[u8]) -> Loaded,
) -> Counts {
    let Loaded::Fingerprint(expected_bytes, expected_bits) = load(original) else {
        panic!("the original file does not load");
    };
    let numbers = if json {
        number_spans(original)
    } else {
        Vec::new()
    };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut counts = Counts::default();
    for i in 0..count {
        let (kind, mutated) = mutate(original, &numbers, json, &mut rng);
        counts.mutations += 1;
        match catch_unwind(AssertUnwindSafe(|| load(&mutated))) {
            Err(_) => counts.panics += 1,
            Ok(Loaded::Error { corrupted }) => {
                counts.errors += 1;
                counts.corrupted += usize::from(corrupted);
            }
            Ok(Loaded::Fingerprint(bytes, bits)) => {
                if bytes == expected_bytes && bits == expected_bits {
                    counts.accepted_identical += 1;
                } else {
                    counts.accepted_changed += 1;
                    if counts.examples.len() < 5 {
                        counts.examples.push(format!("mutation {i}: {kind:?}"));
                    }
                }
            }
        }
    }
    counts
}

fn posterior_loader(theta: &DMatrix<f64>) -> impl Fn(&[u8]) -> Loaded + '_ {
    move |bytes| {
        // As `DirectPosterior::load` reads a file: text, then the posterior.
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Loaded::Error { corrupted: false };
        };
        match DirectPosterior::<Estimator>::from_json(text) {
            Err(e) => Loaded::Error {
                corrupted: matches!(e, InferenceError::Corrupted { .. }),
            },
            Ok(p) => {
                let mut fingerprint = bits(p.log_prob(theta, None).unwrap().iter().copied());
                fingerprint.extend(bits(
                    p.sample(10, None, &mut rng_from_seed(5))
                        .unwrap()
                        .iter()
                        .copied(),
                ));
                Loaded::Fingerprint(p.to_json().unwrap().into_bytes(), fingerprint)
            }
        }
    }
}

fn estimator_fingerprint(
    e: Result<Estimator, simfer_flows::FlowError>,
    theta: &DMatrix<f64>,
    x: &DMatrix<f64>,
) -> Loaded {
    use simfer_flows::ConditionalDensityEstimator as _;
    match e {
        Err(e) => Loaded::Error {
            corrupted: matches!(e, simfer_flows::FlowError::Corrupted { .. }),
        },
        Ok(e) => {
            let mut fingerprint = bits(e.params().iter().copied());
            // Any density the loaded estimator computes (an error is a difference too).
            match e.log_prob(theta, x) {
                Ok(lp) => fingerprint.extend(bits(lp.iter().copied())),
                Err(_) => fingerprint.clear(),
            }
            Loaded::Fingerprint(e.to_bytes().unwrap(), fingerprint)
        }
    }
}

/// The mutation experiment on the three files of one posterior.
fn experiment(count: usize) -> [(&'static str, Counts); 3] {
    let posterior = two_moons_posterior();
    let theta = theta_grid();
    let x = DMatrix::from_fn(2, theta.ncols(), |i, _| if i == 0 { 0.05 } else { -0.1 });
    let json = posterior.to_json().unwrap();
    let estimator = posterior.estimator();
    let estimator_bytes = estimator.to_bytes().unwrap();
    let estimator_json = estimator.to_json().unwrap();

    let posterior_counts = run_mutations(json.as_bytes(), true, count, 1, posterior_loader(&theta));
    let binary_counts = run_mutations(&estimator_bytes, false, count, 2, |b| {
        estimator_fingerprint(Estimator::from_bytes(b), &theta, &x)
    });
    let estimator_json_counts =
        run_mutations(
            estimator_json.as_bytes(),
            true,
            count,
            3,
            |b| match std::str::from_utf8(b) {
                Ok(text) => estimator_fingerprint(Estimator::from_json(text), &theta, &x),
                Err(_) => Loaded::Error { corrupted: false },
            },
        );
    [
        ("posterior file (JSON)", posterior_counts),
        ("estimator file (binary)", binary_counts),
        ("estimator file (JSON)", estimator_json_counts),
    ]
}

#[test]
fn no_mutation_of_a_saved_posterior_panics_or_loads_as_another_posterior() {
    for (what, counts) in experiment(300) {
        counts.print(what);
        counts.assert_none_wrong(what);
        // Nearly all are caught by the checksum or cannot be read at all; a few change
        // nothing that matters (a digit past a number's 17th, which reads back to the
        // same value; a key repeated with its value).
        assert!(counts.errors >= 280, "{what}: {counts:?}");
    }
}

/// The full experiment: 3,000 mutations of each file.
#[test]
#[ignore = "the full experiment; run with --ignored --nocapture to see the counts"]
fn three_thousand_mutations_of_each_file() {
    for (what, counts) in experiment(3000) {
        counts.print(what);
        counts.assert_none_wrong(what);
    }
}

#[test]
fn a_corrupted_posterior_file_is_an_error_naming_the_file_and_both_checksums() {
    let posterior = two_moons_posterior();
    let dir = std::env::temp_dir().join(format!("simfer-mutations-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("posterior.json");
    posterior.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let recorded = v["checksum"].as_str().unwrap().to_owned();
    assert!(text.starts_with(&format!(
        "{{\"format\":\"simfer-posterior\",\"version\":{POSTERIOR_FORMAT_VERSION},\"checksum\":\"crc32:"
    )));
    // The seed changed by one: a different posterior, caught.
    let seed = v["seed"].as_u64().unwrap();
    let changed = text.replacen(
        &format!("\"seed\":{seed}"),
        &format!("\"seed\":{}", seed + 1),
        1,
    );
    std::fs::write(&path, &changed).unwrap();
    let err = DirectPosterior::<Estimator>::load(&path).unwrap_err();
    assert!(
        matches!(&err, InferenceError::Corrupted { path: Some(p), .. } if p == &path),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "{}: checksum mismatch: the file says {recorded}, its content gives crc32:",
            path.display()
        )) && message.ends_with("; the file was changed or corrupted"),
        "{message}"
    );
    // Re-indented, it is the same posterior.
    let pretty = serde_json::to_string_pretty(&v).unwrap();
    std::fs::write(&path, &pretty).unwrap();
    let loaded = DirectPosterior::<Estimator>::load(&path).unwrap();
    assert_eq!(loaded.to_json().unwrap(), text);
    // Without its checksum, a file of this version is an error.
    let mut bare = v.clone();
    bare.as_object_mut().unwrap().remove("checksum");
    let err = DirectPosterior::<Estimator>::from_json(&bare.to_string()).unwrap_err();
    assert!(
        matches!(err, InferenceError::Corrupted { .. })
            && err.to_string().contains(&format!(
                "no checksum, where a `simfer-posterior` file of version \
                 {POSTERIOR_FORMAT_VERSION} carries one"
            )),
        "{err}"
    );
    // Another version number with the checksum still there is caught by it.
    let mut older = v.clone();
    older["version"] = serde_json::json!(2);
    assert!(matches!(
        DirectPosterior::<Estimator>::from_json(&older.to_string()),
        Err(InferenceError::Corrupted { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}

/// A file of version 2 (written before checksums: the estimator self-describing, of its
/// kind's version before checksums, and no checksum) still loads, to the same posterior.
#[test]
fn posterior_files_of_version_2_still_load() {
    let posterior = two_moons_posterior();
    let text = posterior.to_json().unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("checksum");
    v["version"] = serde_json::json!(2);
    v["estimator"].as_object_mut().unwrap().remove("checksum");
    v["estimator"]["version"] = serde_json::json!(3);
    let old = DirectPosterior::<Estimator>::from_json(&v.to_string()).unwrap();
    assert_eq!(old.to_json().unwrap(), text);
    let theta = theta_grid();
    assert_eq!(
        bits(old.log_prob(&theta, None).unwrap().iter().copied()),
        bits(posterior.log_prob(&theta, None).unwrap().iter().copied())
    );
}

/// Past the checksum the content is still checked: a sealed file (e.g. edited by hand and
/// sealed again) with a default x of the wrong dimension, estimator parameters that do not
/// fit its architecture, or invalid sampling options is an error.
#[test]
fn a_sealed_file_with_invalid_values_is_an_error() {
    let posterior = two_moons_posterior();
    let v: serde_json::Value = serde_json::from_str(&posterior.to_json().unwrap()).unwrap();
    let load = |mut v: serde_json::Value| {
        seal_json(&mut v);
        DirectPosterior::<Estimator>::from_json(&v.to_string())
    };
    let mut w = v.clone();
    w["default_x"] = serde_json::json!([0.1, 0.2, 0.3]);
    assert!(load(w).is_err());
    let mut w = v.clone();
    w["estimator"]["model"]["params"]
        .as_array_mut()
        .unwrap()
        .pop();
    seal_json(&mut w["estimator"]);
    let err = load(w).unwrap_err();
    assert!(err.to_string().contains("parameters"), "{err}");
    let mut w = v.clone();
    w["sampling"]["max_sampling_batch_size"] = serde_json::json!(0);
    assert!(load(w).is_err());
    // And a sealed posterior around an estimator changed without sealing it is still
    // caught by the estimator's own checksum.
    let mut w = v.clone();
    w["estimator"]["model"]["params"][0] = serde_json::json!(0.25);
    let err = load(w).unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}
