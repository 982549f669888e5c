//! CSV sample files (`simfer_analysis::parse_samples_csv`, read by `simfer append`, for
//! observations and wherever samples are read): any text parses or is an error, never a
//! panic; what parses and is written back (`samples_to_csv`, where its names can be
//! written) parses to the same names and the same values, bit for bit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simfer_analysis::{parse_samples_csv, samples_to_csv};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = parse_samples_csv(text) else {
        return;
    };
    assert!(file.samples.nrows() > 0 && file.samples.ncols() > 0);
    if let Some(names) = &file.names {
        assert_eq!(names.len(), file.samples.nrows());
    }
    let Ok(written) = samples_to_csv(&file.samples, file.names.as_deref()) else {
        return;
    };
    let again = parse_samples_csv(&written)
        .unwrap_or_else(|e| panic!("a written sample file does not parse: {e}\n{written}"));
    assert_eq!(again.samples.shape(), file.samples.shape(), "{written}");
    assert!(
        simfer_fuzz::same_values(again.samples.as_slice(), file.samples.as_slice()),
        "values changed:\n{written}"
    );
    let default_names;
    let names = match &file.names {
        Some(n) => n,
        None => {
            default_names = simfer_analysis::default_column_names(file.samples.nrows());
            &default_names
        }
    };
    assert_eq!(
        again.names.as_ref(),
        Some(names),
        "names changed:\n{written}"
    );
});
