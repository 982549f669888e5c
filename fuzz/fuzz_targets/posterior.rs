//! Posterior files (`DirectPosterior::from_json`, simfer-inference's `persist`): any text
//! loads or is an error, never a panic; what loads writes back (`to_json`) to a file that
//! loads and writes the same bytes again. Every input is also tried with its checksums
//! sealed again, so that changed files reach the checks behind the checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simfer_flows::Estimator;
use simfer_inference::DirectPosterior;

fn check(text: &str) {
    let Ok(posterior) = DirectPosterior::<Estimator>::from_json(text) else {
        return;
    };
    let written = posterior.to_json().expect("a loaded posterior writes");
    let again = DirectPosterior::<Estimator>::from_json(&written)
        .unwrap_or_else(|e| panic!("a written posterior does not load: {e}\n{written}"));
    assert_eq!(
        again.to_json().expect("a loaded posterior writes"),
        written,
        "a posterior written, loaded and written again changed"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(text);
    if let Some(sealed) = simfer_fuzz::sealed_json(text) {
        check(&sealed);
    }
});
