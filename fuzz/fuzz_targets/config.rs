//! Run configs (`RunConfig::parse`, the TOML of `simfer run CONFIG.toml`): any text gives a
//! config or an error (naming file, line and column), never a panic. The settings of a
//! config read are what run.json keeps and `simfer resume` compares: written as JSON and
//! read back, they are the same settings with the same hash.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use simfer_cli::config::{RunConfig, Settings};
use simfer_cli::rundir::settings_hash;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A base directory that does not exist: an observation file is never found.
    let base = Path::new("/nonexistent/simfer-fuzz");
    match RunConfig::parse(text, &base.join("fuzz.toml"), base) {
        Ok(config) => {
            let settings = config.settings();
            let json = serde_json::to_string_pretty(&settings).expect("settings write as JSON");
            let again: Settings = serde_json::from_str(&json)
                .unwrap_or_else(|e| panic!("settings written do not read back: {e}\n{json}"));
            assert!(again == settings, "settings changed through JSON:\n{json}");
            assert_eq!(settings_hash(&again), settings_hash(&settings));
            let _ = config.build_prior();
            let _ = config.title();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
