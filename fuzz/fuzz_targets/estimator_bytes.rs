//! Binary estimator files (simfer-flows' `io`): `Estimator::from_bytes` (MAF, NSF, MDN)
//! and `RatioClassifier::from_bytes` on any bytes load or are an error, never a panic; what
//! loads writes back (`to_bytes`) to bytes that load and write the same bytes again. Every
//! input is also tried with its last 4 bytes replaced by the right CRC-32, so that changed
//! files reach the checks behind the checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simfer_flows::{Estimator, RatioClassifier};

fn check(bytes: &[u8]) {
    if let Ok(estimator) = Estimator::from_bytes(bytes) {
        let written = estimator.to_bytes().expect("a loaded estimator writes");
        let again = Estimator::from_bytes(&written)
            .unwrap_or_else(|e| panic!("a written estimator does not load: {e}"));
        assert_eq!(again.estimator_kind(), estimator.estimator_kind());
        assert_eq!(again.to_bytes().expect("writes"), written);
    }
    if let Ok(classifier) = RatioClassifier::from_bytes(bytes) {
        let written = classifier.to_bytes().expect("a loaded classifier writes");
        let again = RatioClassifier::from_bytes(&written)
            .unwrap_or_else(|e| panic!("a written classifier does not load: {e}"));
        assert_eq!(again.to_bytes().expect("writes"), written);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(fixed) = simfer_fuzz::with_binary_checksum(data) {
        if fixed != data {
            check(&fixed);
        }
    }
});
