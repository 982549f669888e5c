//! JSON estimator files (simfer-flows' `io`): `Estimator::from_json` (MAF, NSF, MDN) and
//! `RatioClassifier::from_json` on any text load or are an error, never a panic; what loads
//! writes back (`to_json`) to text that loads and writes the same text again. Every input
//! is also tried sealed again (`seal_json`), so that changed files reach the checks behind
//! the checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simfer_flows::{Estimator, RatioClassifier};

fn check(text: &str) {
    if let Ok(estimator) = Estimator::from_json(text) {
        let written = estimator.to_json().expect("a loaded estimator writes");
        let again = Estimator::from_json(&written)
            .unwrap_or_else(|e| panic!("a written estimator does not load: {e}\n{written}"));
        assert_eq!(again.estimator_kind(), estimator.estimator_kind());
        assert_eq!(again.to_json().expect("writes"), written);
        // The binary encoding of the same model loads too.
        let bytes = estimator
            .to_bytes()
            .expect("a loaded estimator writes bytes");
        Estimator::from_bytes(&bytes)
            .unwrap_or_else(|e| panic!("the bytes of a loaded estimator do not load: {e}"));
    }
    if let Ok(classifier) = RatioClassifier::from_json(text) {
        let written = classifier.to_json().expect("a loaded classifier writes");
        let again = RatioClassifier::from_json(&written)
            .unwrap_or_else(|e| panic!("a written classifier does not load: {e}\n{written}"));
        assert_eq!(again.to_json().expect("writes"), written);
    }
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
