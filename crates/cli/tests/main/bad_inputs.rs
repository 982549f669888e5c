//! The catalogue of bad inputs of the `simfer` command line (see docs/BAD-INPUTS.md): one
//! test each, named for the bad input. Each fails with a message naming what was expected
//! and what was found (and the file concerned), never panics, and leaves the run directory
//! as it was: every file unchanged, and the run still resumable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{arg, fails, ok, scratch, write};

/// A run that waits for simulations: `run --no-simulate` of two_moons (θ 2, x 2).
const WAITING: &str = r#"
method = "npe"
simulations_per_round = 30
seed = 4
samples = 50
output = "run"
[simulator]
task = "two_moons"
[observation]
values = [0.3, 0.1]
[training]
max_epochs = 3
"#;

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Asserts no panic in stderr.
fn clean(stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A scratch directory with a run waiting for its round-0 simulations, and the run's path.
fn waiting_run(name: &str) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let config = write(&dir, "c.toml", WAITING);
    ok(&["run", arg(&config), "--no-simulate"]);
    let run = dir.join("run");
    (dir, run)
}

/// Appending `files` to the waiting run fails; returns stderr, after checking that the run
/// directory is unchanged and that the run still resumes to its end.
fn append_fails_and_run_is_intact(run: &Path, files: &[&Path]) -> String {
    let before = snapshot(run);
    let mut args = vec!["append", arg(run)];
    args.extend(files.iter().map(|f| arg(f)));
    let stderr = fails(&args);
    clean(&stderr);
    assert!(snapshot(run) == before, "the run directory was changed");
    stderr
}

fn resumes(run: &Path) {
    ok(&["resume", arg(run), "--no-progress"]);
    assert!(run.join("samples.csv").exists());
}

#[test]
fn a_config_file_that_does_not_exist() {
    let dir = scratch("bad-no-config");
    let missing = dir.join("missing.toml");
    let stderr = fails(&["run", arg(&missing)]);
    clean(&stderr);
    assert!(stderr.contains(arg(&missing)), "{stderr}");
}

#[test]
fn a_config_that_is_not_toml() {
    let dir = scratch("bad-not-toml");
    let config = write(&dir, "c.toml", "seed = [1, \n");
    let stderr = fails(&["run", arg(&config)]);
    clean(&stderr);
    assert!(stderr.contains(arg(&config)), "{stderr}");
    assert!(!dir.join("c.run").exists(), "no run was started");
}

#[test]
fn an_observation_file_that_does_not_exist() {
    let dir = scratch("bad-obs-missing");
    let text = WAITING.replace("values = [0.3, 0.1]", "file = \"nothing.csv\"");
    let config = write(&dir, "c.toml", &text);
    let stderr = fails(&["run", arg(&config)]);
    clean(&stderr);
    assert!(
        stderr.contains("nothing.csv") && stderr.contains("observation.file"),
        "{stderr}"
    );
    assert!(!dir.join("run").exists(), "no run was started");
}

#[test]
fn an_observation_file_of_the_wrong_length() {
    let dir = scratch("bad-obs-length");
    write(&dir, "x_o.csv", "0.1,0.2,0.3\n");
    let text = WAITING.replace("values = [0.3, 0.1]", "file = \"x_o.csv\"");
    let config = write(&dir, "c.toml", &text);
    let stderr = fails(&["run", arg(&config)]);
    clean(&stderr);
    assert!(
        stderr.contains("expected 2") && stderr.contains("found 3"),
        "{stderr}"
    );
    assert!(!dir.join("run").exists(), "no run was started");
}

#[test]
fn an_observation_with_nan() {
    let dir = scratch("bad-obs-nan");
    write(&dir, "x_o.csv", "0.1,nan\n");
    let text = WAITING.replace("values = [0.3, 0.1]", "file = \"x_o.csv\"");
    let config = write(&dir, "c.toml", &text);
    let stderr = fails(&["run", arg(&config)]);
    clean(&stderr);
    assert!(
        stderr.to_lowercase().contains("nan") && stderr.contains("finite"),
        "{stderr}"
    );
    assert!(!dir.join("run").exists(), "no run was started");
}

#[test]
fn one_simulation_per_round() {
    let dir = scratch("bad-one-sim");
    let text = WAITING.replace("simulations_per_round = 30", "simulations_per_round = 1");
    let config = write(&dir, "c.toml", &text);
    let stderr = fails(&["run", arg(&config), "--no-progress"]);
    clean(&stderr);
    assert!(
        stderr.contains("at least 2") && stderr.contains("found 1"),
        "{stderr}"
    );
    assert!(
        !dir.join("run").exists(),
        "nothing was simulated: no run was started"
    );
}

#[test]
fn sample_of_a_directory_without_a_posterior() {
    let (_dir, run) = waiting_run("bad-sample-unfinished");
    let before = snapshot(&run);
    let stderr = fails(&["sample", arg(&run), "--x=0.1,0.2"]);
    clean(&stderr);
    assert!(
        stderr.contains("round") || stderr.contains("finished"),
        "{stderr}"
    );
    assert!(snapshot(&run) == before, "the run directory was changed");
    resumes(&run);
}

#[test]
fn sample_of_a_directory_that_is_not_a_run() {
    let dir = scratch("bad-sample-not-run");
    write(&dir, "notes.txt", "hello");
    let stderr = fails(&["sample", arg(&dir), "--x=0.1,0.2"]);
    clean(&stderr);
    assert!(stderr.contains(arg(&dir)), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "hello"
    );
}

#[test]
fn resume_of_a_directory_that_is_not_a_run() {
    let dir = scratch("bad-resume-not-run");
    write(&dir, "notes.txt", "hello");
    let before = snapshot(&dir);
    let stderr = fails(&["resume", arg(&dir)]);
    clean(&stderr);
    assert!(stderr.contains(arg(&dir)), "{stderr}");
    assert!(snapshot(&dir) == before, "nothing was written");
}

#[test]
fn resume_of_a_directory_that_does_not_exist() {
    let dir = scratch("bad-resume-missing");
    let missing = dir.join("nothing");
    let stderr = fails(&["resume", arg(&missing)]);
    clean(&stderr);
    assert!(stderr.contains(arg(&missing)), "{stderr}");
    assert!(!missing.exists(), "nothing was created");
}

#[test]
fn append_of_a_csv_with_the_wrong_column_count() {
    let (dir, run) = waiting_run("bad-append-columns");
    let csv = write(&dir, "sims.csv", "a,b,x1\n0.1,0.2,0.3\n");
    let stderr = append_fails_and_run_is_intact(&run, &[&csv]);
    assert!(
        stderr.contains(arg(&csv)) && stderr.contains('4') && stderr.contains('3'),
        "{stderr}"
    );
    resumes(&run);
}

#[test]
fn append_of_a_csv_with_a_non_numeric_cell() {
    let (dir, run) = waiting_run("bad-append-cell");
    let csv = write(&dir, "sims.csv", "a,b,x1,x2\n0.1,0.2,oops,0.4\n");
    let stderr = append_fails_and_run_is_intact(&run, &[&csv]);
    assert!(
        stderr.contains(arg(&csv)) && stderr.contains("oops"),
        "{stderr}"
    );
    resumes(&run);
}

#[test]
fn append_of_a_file_that_does_not_exist() {
    let (dir, run) = waiting_run("bad-append-missing");
    let missing = dir.join("nothing.csv");
    let stderr = append_fails_and_run_is_intact(&run, &[&missing]);
    assert!(stderr.contains(arg(&missing)), "{stderr}");
    resumes(&run);
}

#[test]
fn append_of_an_npy_of_the_wrong_dtype() {
    let (dir, run) = waiting_run("bad-append-dtype");
    let (theta, x) = (dir.join("theta.npy"), dir.join("x.npy"));
    write_npy_f32(&theta, 3, 2);
    write_npy_f32(&x, 3, 2);
    let stderr = append_fails_and_run_is_intact(&run, &[&theta, &x]);
    assert!(
        stderr.contains(arg(&theta)) && stderr.contains("<f8") && stderr.contains("<f4"),
        "{stderr}"
    );
    resumes(&run);
}

#[test]
fn append_of_an_npy_of_the_wrong_shape() {
    let (dir, run) = waiting_run("bad-append-shape");
    let (theta, x) = (dir.join("theta.npy"), dir.join("x.npy"));
    // θ has 2 columns; x has 3 where the simulator gives 2.
    simfer_cli::data::write_npy(&theta, &nalgebra::DMatrix::from_element(2, 4, 0.1)).unwrap();
    simfer_cli::data::write_npy(&x, &nalgebra::DMatrix::from_element(3, 4, 0.1)).unwrap();
    let stderr = append_fails_and_run_is_intact(&run, &[&theta, &x]);
    assert!(
        stderr.contains(arg(&x)) && stderr.contains('2') && stderr.contains('3'),
        "{stderr}"
    );
    resumes(&run);
}

#[test]
fn append_of_an_npy_pair_of_different_row_counts() {
    let (dir, run) = waiting_run("bad-append-rows");
    let (theta, x) = (dir.join("theta.npy"), dir.join("x.npy"));
    simfer_cli::data::write_npy(&theta, &nalgebra::DMatrix::from_element(2, 4, 0.1)).unwrap();
    simfer_cli::data::write_npy(&x, &nalgebra::DMatrix::from_element(2, 3, 0.1)).unwrap();
    let stderr = append_fails_and_run_is_intact(&run, &[&theta, &x]);
    assert!(stderr.contains('4') && stderr.contains('3'), "{stderr}");
    resumes(&run);
}

#[test]
fn append_of_one_npy_file_without_its_pair() {
    let (dir, run) = waiting_run("bad-append-unpaired");
    let theta = dir.join("theta.npy");
    simfer_cli::data::write_npy(&theta, &nalgebra::DMatrix::from_element(2, 4, 0.1)).unwrap();
    let stderr = append_fails_and_run_is_intact(&run, &[&theta]);
    assert!(
        stderr.contains(arg(&theta)) && stderr.contains(".npy"),
        "{stderr}"
    );
    resumes(&run);
}

#[test]
fn simulate_with_shard_not_below_num_shards() {
    let (_dir, run) = waiting_run("bad-shard");
    let before = snapshot(&run);
    let stderr = fails(&["simulate", arg(&run), "--shard", "3", "--num-shards", "3"]);
    clean(&stderr);
    assert!(
        stderr.contains("--shard") && stderr.contains('3'),
        "{stderr}"
    );
    assert!(snapshot(&run) == before, "the run directory was changed");
    resumes(&run);
}

#[test]
fn simulate_with_zero_shards() {
    let (_dir, run) = waiting_run("bad-shard-zero");
    let before = snapshot(&run);
    let stderr = fails(&["simulate", arg(&run), "--shard", "0", "--num-shards", "0"]);
    clean(&stderr);
    assert!(stderr.contains("--num-shards"), "{stderr}");
    assert!(snapshot(&run) == before, "the run directory was changed");
}

#[test]
fn sample_at_x_of_the_wrong_length() {
    let (_dir, run) = waiting_run("bad-sample-x");
    resumes(&run);
    let before = snapshot(&run);
    let stderr = fails(&["sample", arg(&run), "--x=0.1,0.2,0.3"]);
    clean(&stderr);
    assert!(
        stderr.contains("expected 2") && stderr.contains("found 3"),
        "{stderr}"
    );
    assert!(snapshot(&run) == before, "the run directory was changed");
}

#[test]
fn sample_at_x_that_is_not_a_number() {
    let (_dir, run) = waiting_run("bad-sample-nan");
    let stderr = fails(&["sample", arg(&run), "--x=0.1,abc"]);
    clean(&stderr);
    assert!(stderr.contains("abc"), "{stderr}");
}

/// A `rows × cols` .npy of float32 zeros, written by hand (header of NumPy's format 1.0).
fn write_npy_f32(path: &Path, rows: usize, cols: usize) {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(std::iter::repeat_n(0u8, rows * cols * 4));
    std::fs::write(path, bytes).unwrap();
}
