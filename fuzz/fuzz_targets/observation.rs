//! Observation files (`[observation] file = "…"` of a run config, read by
//! `RunConfig::parse`): any file gives the observation or an error naming the config's
//! key, never a panic. An observation read has the simulator's `x_dim` finite values, those
//! of the file's one row.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use simfer_cli::config::RunConfig;

/// A directory of this process's own for the observation file.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("simfer-fuzz-obs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = dir();
    let file = dir.join("x_o.csv");
    std::fs::write(&file, data).expect("the observation file is written");
    // x_dim: the number of fields on the first line that is not blank or a comment, so
    // that most inputs reach the checks after the dimension's.
    let text = String::from_utf8_lossy(data);
    let x_dim = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map_or(1, |l| l.split(',').count());
    let config = format!(
        "[simulator]\nprogram = \"simulator\"\nx_dim = {x_dim}\n\n[prior]\na = {{ kind = \
         \"uniform\", low = 0, high = 1 }}\n\n[observation]\nfile = \"x_o.csv\"\n"
    );
    match RunConfig::parse(&config, &dir.join("fuzz.toml"), dir) {
        Ok(run) => {
            assert_eq!(run.x_o.len(), x_dim);
            assert!(run.x_o.iter().all(|v| v.is_finite()));
            let read = simfer_analysis::parse_samples_csv(&text)
                .expect("an observation read is a sample file");
            assert!(simfer_fuzz::same_values(&run.x_o, read.samples.as_slice()));
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("observation"), "{message}");
        }
    }
});
