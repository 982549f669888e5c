//! Every failure of an external simulator through `simfer run`: the simulations it did not
//! produce are counted in summary.json (NaN answers as invalid simulations), the run
//! finishes, and nothing hangs.

use std::time::{Duration, Instant};

use rand::RngCore;
use simfer_distributions::derive_rng;
use simfer_inference::streams::simulation_seed;

use crate::common::{arg, flaky_config, have_python, ok, scratch, summary, write};

/// Simulations of round 0 of a run with `seed` whose row seed is divisible by 10 (those
/// the flaky simulator misbehaves on).
fn misbehaving(seed: u64, n: usize) -> usize {
    let s = simulation_seed(seed, 0);
    (0..n)
        .filter(|&i| derive_rng(s, i as u64).next_u64().is_multiple_of(10))
        .count()
}

fn run_mode(mode: &str) -> serde_json::Value {
    let dir = scratch(&format!("external-{mode}"));
    let config = write(
        &dir,
        "c.toml",
        &flaky_config(
            mode,
            "",
            "method = \"npe\"\nsimulations_per_round = 60\nseed = 4\nsamples = 50",
        ),
    );
    let start = Instant::now();
    ok(&["run", arg(&config), "--no-progress"]);
    let s = summary(&dir.join("run"));
    println!("{mode}: {:.1} s", start.elapsed().as_secs_f64());
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{mode} took too long"
    );
    s
}

#[test]
fn crashes_hangs_garbage_and_wrong_counts_are_failed_simulations() {
    if !have_python() {
        return;
    }
    let expected = misbehaving(4, 60);
    assert!(expected > 0, "the seed gives the test nothing to see");
    for mode in ["crash", "hang", "garbage", "count", "error"] {
        let s = run_mode(mode);
        assert_eq!(s["failed"], expected, "{mode}: {s:#}");
        assert_eq!(s["rounds"][0]["failed"], expected, "{mode}");
        // Failed simulations are NaN, so they are invalid (and excluded) too.
        assert_eq!(s["invalid"], expected, "{mode}");
        assert_eq!(s["rounds"][0]["simulations"], 60);
        let reasons = s["failures"].as_array().unwrap();
        assert_eq!(reasons.len(), expected.min(20));
        if mode == "error" {
            assert!(
                reasons[0]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("negative mass")
            );
        }
    }
}

#[test]
fn nan_answers_are_invalid_simulations() {
    if !have_python() {
        return;
    }
    let s = run_mode("nan");
    assert_eq!(s["invalid"], misbehaving(4, 60));
    assert_eq!(s["rounds"][0]["invalid_nan"], misbehaving(4, 60));
    assert_eq!(s["failed"], 0, "a NaN answer is an answer");
}
