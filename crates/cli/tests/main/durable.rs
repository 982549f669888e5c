//! Durable runs through the binary: a run killed with SIGKILL at random moments and resumed
//! each time ends with the same samples.csv, byte for byte, as an uninterrupted one; a torn
//! or corrupted last record is dropped with a warning; a corrupted record elsewhere is an
//! error naming the file and record; a changed config is refused.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rand::Rng;
use simfer_distributions::rng_from_seed;

use crate::common::{arg, fails, flaky_config, have_python, ok, scratch, simfer, write};

/// Two rounds of 60 simulations that take about 0.3 s each (5 ms a row, 2 workers).
fn slow_config() -> String {
    flaky_config(
        "slow",
        ", \"0.01\"",
        "method = \"snpe\"\nrounds = 2\nsimulations_per_round = 60\nseed = 11\nsamples = 300",
    )
}

#[test]
fn a_run_killed_ten_times_ends_byte_identical_to_an_uninterrupted_one() {
    if !have_python() {
        return;
    }
    let start = Instant::now();
    let plain_dir = scratch("kill-plain");
    let config = write(&plain_dir, "c.toml", &slow_config());
    let t0 = Instant::now();
    ok(&["run", arg(&config), "--no-progress"]);
    let plain_seconds = t0.elapsed().as_secs_f64();
    let expected = std::fs::read(plain_dir.join("run/samples.csv")).unwrap();

    let dir = scratch("kill-killed");
    let config = write(&dir, "c.toml", &slow_config());
    let run_dir = dir.join("run");
    let mut rng = rng_from_seed(2024);
    let mut kills = 0;
    let mut attempts = 0;
    let mut killed_at = Vec::new();
    let mut phases = std::collections::BTreeSet::new();
    while kills < 10 {
        attempts += 1;
        assert!(attempts < 40, "the run makes no progress");
        let mut cmd = simfer();
        if run_dir.join("run.json").exists() {
            cmd.args(["resume", arg(&run_dir)]);
        } else {
            cmd.args(["run", arg(&config)]);
        }
        let mut child = cmd
            .arg("--no-progress")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // A moment within the uninterrupted run's time (a resumed run has less to do, so
        // later moments let it finish, which is fine: it then is resumed from scratch).
        let mut wait = rng.random_range(0.02..plain_seconds * 0.8);
        if kills % 2 == 1 {
            // Every other kill waits for a training phase (training is short beside the
            // simulations, so a random moment alone rarely lands in one).
            let t = Instant::now();
            while t.elapsed().as_secs_f64() < wait + plain_seconds
                && child.try_wait().unwrap().is_none()
                && !state(&run_dir).starts_with("training")
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            wait = t.elapsed().as_secs_f64();
        } else {
            std::thread::sleep(Duration::from_secs_f64(wait));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
            let state = state(&run_dir);
            killed_at.push(format!("{wait:.2} s ({state})"));
            phases.insert(state.split(':').next().unwrap_or("").to_string());
        }
        child.wait().unwrap();
        if run_dir.join("samples.csv").exists() {
            // It finished before the kill: start over, so that every kill lands in a run.
            std::fs::remove_dir_all(&run_dir).unwrap();
        }
    }
    // A kill before run.json was written leaves no run to resume: the user starts it again.
    if run_dir.join("run.json").exists() {
        ok(&["resume", arg(&run_dir), "--no-progress"]);
    } else {
        ok(&["run", arg(&config), "--no-progress"]);
    }
    let got = std::fs::read(run_dir.join("samples.csv")).unwrap();
    println!(
        "uninterrupted run {plain_seconds:.1} s; killed at {killed_at:?}; whole test {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert!(got == expected, "the resumed run's samples.csv differs");
    // The kills landed while simulating and while training.
    assert!(
        phases.contains("simulating") && phases.contains("training"),
        "{killed_at:?}"
    );
}

/// What the run in `dir` was doing when it stopped: `simulating` (a round's simulations
/// incomplete), `training` (a round's simulations complete, its training not saved), or
/// `between` (before anything, or after a round).
fn state(dir: &Path) -> String {
    let sims = simfer_cli::log::read_simulations_file(&dir.join("simulations.log"))
        .map(|rounds| rounds.values().map(|r| r.x.len()).sum::<usize>())
        .unwrap_or(0);
    let trained = (0..2)
        .filter(|r| dir.join(format!("rounds/training-{r:03}.bin")).exists())
        .count();
    let phase = if !sims.is_multiple_of(60) {
        "simulating"
    } else if sims / 60 > trained {
        "training"
    } else {
        "between"
    };
    format!("{phase}: {sims} simulations, {trained} trainings")
}

/// A finished quick run (built-in task) in `name`, and its samples.csv.
fn finished_run(name: &str) -> (std::path::PathBuf, Vec<u8>) {
    let dir = scratch(name);
    let config = write(
        &dir,
        "c.toml",
        r#"
method = "snpe"
rounds = 2
simulations_per_round = 200
seed = 5
samples = 200
output = "run"
[simulator]
task = "two_moons"
[observation]
values = [0.1, -0.2]
[training]
max_epochs = 10
"#,
    );
    ok(&["run", arg(&config), "--no-progress"]);
    let run = dir.join("run");
    let samples = std::fs::read(run.join("samples.csv")).unwrap();
    (run, samples)
}

/// Flips a byte at `at` bytes from the end of the file (negative) or from its start.
fn flip(path: &Path, at: isize) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = if at < 0 {
        (bytes.len() as isize + at) as usize
    } else {
        at as usize
    };
    bytes[i] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_corrupted_last_record_is_dropped_with_a_warning_and_made_again() {
    let (run, expected) = finished_run("corrupt-last");
    flip(&run.join("simulations.log"), -3);
    std::fs::remove_file(run.join("samples.csv")).unwrap();
    let out = ok(&["resume", arg(&run), "--no-progress"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning:")
            && stderr.contains("simulations.log")
            && stderr.contains("dropped the last record"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(run.join("samples.csv")).unwrap(), expected);
    // A torn last record (a write cut short) too.
    let log = run.join("simulations.log");
    let len = std::fs::metadata(&log).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    file.set_len(len - 100).unwrap();
    let out = ok(&["resume", arg(&run), "--no-progress"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("dropped the last record"));
    assert_eq!(std::fs::read(run.join("samples.csv")).unwrap(), expected);
}

#[test]
fn a_corrupted_middle_record_is_an_error_naming_file_and_record() {
    let (run, _) = finished_run("corrupt-middle");
    // Inside the first record's payload (after the 16-byte header and its 8-byte head).
    flip(&run.join("simulations.log"), 16 + 8 + 40);
    let stderr = fails(&["resume", arg(&run), "--no-progress"]);
    assert!(
        stderr.contains("simulations.log: record 1 is corrupted"),
        "{stderr}"
    );
    // A corrupted training file is an error too (it is written whole, never torn).
    let (run, _) = finished_run("corrupt-training");
    flip(&run.join("rounds/training-000.bin"), -5);
    let stderr = fails(&["resume", arg(&run), "--no-progress"]);
    assert!(
        stderr.contains("training-000.bin: record 1 is corrupted"),
        "{stderr}"
    );
}

#[test]
fn a_changed_config_is_refused_and_another_run_in_the_same_directory_too() {
    let (run, _) = finished_run("changed");
    let copy = run.join("config.toml");
    let text = std::fs::read_to_string(&copy).unwrap();
    std::fs::write(&copy, text.replace("seed = 5", "seed = 6")).unwrap();
    let stderr = fails(&["resume", arg(&run)]);
    assert!(
        stderr.contains("the config has changed since the run started (seed: 5 → 6)"),
        "{stderr}"
    );
    // A change that decides nothing (a comment) is fine.
    std::fs::write(&copy, format!("# a note\n{text}")).unwrap();
    ok(&["resume", arg(&run), "--no-progress"]);
    let config = run.parent().unwrap().join("c.toml");
    let stderr = fails(&["run", arg(&config)]);
    assert!(stderr.contains("already holds a run"), "{stderr}");
}
