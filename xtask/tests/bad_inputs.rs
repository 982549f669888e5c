//! The catalogue of bad inputs of `cargo xtask` (see docs/BAD-INPUTS.md): one test each.
//! Every one exits non-zero with a message on stderr that names what was expected and what
//! was found, never panics, and leaves nothing half-written behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-bad-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs the xtask binary on one thread.
fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("the xtask binary runs")
}

/// Asserts that `args` fail cleanly (non-zero exit, no panic) and returns stderr.
fn fails(args: &[&str]) -> String {
    let out = xtask(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "xtask {args:?} succeeded but should have failed; stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "xtask {args:?} panicked:\n{stderr}"
    );
    assert!(!stderr.trim().is_empty(), "xtask {args:?}: no message");
    stderr
}

/// A quick `run` on linear_gaussian into `out`, with `extra` arguments.
fn run_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "--task",
        "linear_gaussian",
        "--simulations-per-round",
        "200",
        "--max-epochs",
        "5",
        "--samples",
        "100",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn unknown_task() {
    let e = fails(&[
        "run",
        "--task",
        "three_moons",
        "--observation",
        "0",
        "--out",
        "o",
    ]);
    assert!(e.contains("three_moons") && e.contains("two_moons"), "{e}");
}

#[test]
fn unknown_subcommand() {
    let e = fails(&["frobnicate"]);
    assert!(
        e.contains("unrecognized subcommand 'frobnicate'") && e.contains("--help"),
        "{e}"
    );
}

#[test]
fn unknown_method() {
    let dir = temp_dir("method");
    let out = dir.join("out");
    let e = fails(&run_args(s(&out), &["--theta=0,0,0", "--method", "xpe"]));
    assert!(e.contains("xpe") && e.contains("snpe"), "{e}");
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn unknown_estimator() {
    let dir = temp_dir("estimator");
    let out = dir.join("out");
    let e = fails(&run_args(
        s(&out),
        &["--theta=0,0,0", "--estimator", "maff"],
    ));
    assert!(e.contains("maff") && e.contains("maf"), "{e}");
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn theta_of_the_wrong_length() {
    let dir = temp_dir("theta-len");
    let out = dir.join("out");
    let e = fails(&run_args(s(&out), &["--theta=0.1,0.2"]));
    assert!(e.contains("expected 3 values, found 2"), "{e}");
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn theta_that_is_not_a_number() {
    let e = fails(&run_args("o", &["--theta=0.1,abc,0"]));
    assert!(e.contains("\"abc\""), "{e}");
}

#[test]
fn observation_that_is_not_finite() {
    let dir = temp_dir("obs-nan");
    let out = dir.join("out");
    let e = fails(&run_args(s(&out), &["--observation=0,NaN,0"]));
    assert!(e.contains("finite") && e.contains("NaN"), "{e}");
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn rounds_zero() {
    let dir = temp_dir("rounds0");
    let out = dir.join("out");
    let e = fails(&run_args(s(&out), &["--theta=0,0,0", "--rounds", "0"]));
    assert!(e.contains("rounds") && e.contains("found 0"), "{e}");
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn one_simulation_per_round() {
    let dir = temp_dir("one-sim");
    let out = dir.join("out");
    let e = fails(&[
        "run",
        "--task",
        "linear_gaussian",
        "--theta=0,0,0",
        "--rounds",
        "3",
        "--simulations-per-round",
        "1",
        "--out",
        s(&out),
    ]);
    // SNPE-C's later rounds contrast rows of a batch: 2 in each of the training and the
    // validation set, which a validation fraction of 0.1 leaves from 11 simulations.
    assert!(e.contains("expected at least 11, found 1"), "{e}");
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn samples_below_two() {
    let e = fails(&[
        "run",
        "--task",
        "linear_gaussian",
        "--theta=0,0,0",
        "--samples",
        "1",
        "--out",
        "o",
    ]);
    assert!(e.contains("expected at least 2, found 1"), "{e}");
}

#[test]
fn dim_on_a_task_of_fixed_dimension() {
    let e = fails(&[
        "run",
        "--task",
        "two_moons",
        "--dim",
        "4",
        "--observation=0,0",
        "--out",
        "o",
    ]);
    assert!(e.contains("two_moons") && e.contains("--dim 4"), "{e}");
}

#[test]
fn out_that_cannot_be_created() {
    let dir = temp_dir("unwritable");
    let file = dir.join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let out = file.join("out");
    // A run long enough (10⁵ simulations, up to 10⁴ epochs) that refusing the directory only
    // after it would take minutes: it is refused before any simulation or training.
    let start = std::time::Instant::now();
    let e = fails(&[
        "run",
        "--task",
        "linear_gaussian",
        "--theta=0,0,0",
        "--simulations-per-round",
        "100000",
        "--max-epochs",
        "10000",
        "--out",
        s(&out),
    ]);
    assert!(e.contains(s(&out)), "{e}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(30),
        "refused only after {:?}",
        start.elapsed()
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
}

#[test]
fn unknown_bench_suite() {
    let e = fails(&["bench", "--suite", "medium", "--out", "o"]);
    assert!(
        e.contains("medium") && e.contains("quick") && e.contains("full"),
        "{e}"
    );
}

#[test]
fn bench_of_an_unknown_task() {
    let dir = temp_dir("bench-task");
    let out = dir.join("out");
    let e = fails(&[
        "bench",
        "--suite",
        "quick",
        "--tasks",
        "no_such_task",
        "--out",
        s(&out),
    ]);
    assert!(e.contains("no_such_task"), "{e}");
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn bench_with_too_few_samples() {
    let dir = temp_dir("bench-samples");
    let out = dir.join("out");
    let e = fails(&[
        "bench",
        "--suite",
        "quick",
        "--samples",
        "3",
        "--out",
        s(&out),
    ]);
    assert!(e.contains("expected at least 10, found 3"), "{e}");
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn c2st_of_a_missing_file() {
    let dir = temp_dir("c2st-missing");
    let a = dir.join("a.csv");
    std::fs::write(&a, "x,y\n1,2\n3,4\n").unwrap();
    let e = fails(&["c2st", s(&a), "/nonexistent/b.csv"]);
    assert!(e.contains("/nonexistent/b.csv"), "{e}");
}

#[test]
fn mmd_of_files_of_different_dimensions() {
    let dir = temp_dir("mmd-dims");
    let (a, b) = (dir.join("a.csv"), dir.join("b.csv"));
    std::fs::write(&a, "x,y\n1,2\n3,4\n5,6\n").unwrap();
    std::fs::write(&b, "x,y,z\n1,2,3\n3,4,5\n5,6,7\n").unwrap();
    let e = fails(&["mmd", s(&a), s(&b)]);
    assert!(e.contains('2') && e.contains('3'), "{e}");
}

#[test]
fn sample_file_with_a_non_numeric_cell() {
    let dir = temp_dir("csv-cell");
    let (a, b) = (dir.join("a.csv"), dir.join("b.csv"));
    std::fs::write(&a, "x,y\n1,2\n3,4\n5,6\n").unwrap();
    std::fs::write(&b, "x,y\n1,2\n3,oops\n5,6\n").unwrap();
    let e = fails(&["mmd", s(&a), s(&b)]);
    assert!(e.contains("oops") && e.contains(s(&b)), "{e}");
}

#[test]
fn bench_with_zero_observations() {
    let dir = temp_dir("bench-obs");
    let out = dir.join("out");
    let e = fails(&[
        "bench",
        "--suite",
        "quick",
        "--observations",
        "0",
        "--out",
        s(&out),
    ]);
    assert!(e.contains("expected at least 1, found 0"), "{e}");
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn mmd_with_a_negative_bandwidth() {
    let dir = temp_dir("mmd-bandwidth");
    let a = dir.join("a.csv");
    std::fs::write(&a, "x,y\n1,2\n3,4\n5,6\n").unwrap();
    let e = fails(&["mmd", s(&a), s(&a), "--bandwidth=-1"]);
    assert!(e.contains("bandwidth") && e.contains("-1"), "{e}");
}
