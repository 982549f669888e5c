//! The job-array workflow: `run --no-simulate`, `simulate --shard` for each shard, `append`,
//! `resume --no-simulate`, …, ends with the samples of a run in one process; CSV and `.npy`
//! files append as shard files do; a θ that is not the round's is an error naming the file
//! and row.

use std::path::{Path, PathBuf};

use simfer_cli::commands::shard::SHARD_KIND;
use simfer_cli::log::{SimRecord, decode};
use simfer_cli::records::read_records;

use crate::common::{arg, fails, ok, scratch, write};

const CONFIG: &str = r#"
method = "snpe"
rounds = 2
simulations_per_round = 150
seed = 8
samples = 300
output = "run"
[simulator]
task = "two_moons"
[observation]
values = [0.3, 0.1]
[training]
max_epochs = 10
"#;

/// θ and x of a shard file, one simulation per row, as CSV text (θ columns then x).
fn shard_as_rows(path: &Path) -> Vec<(Vec<f64>, Vec<f64>)> {
    let records = read_records(path, SHARD_KIND, false).unwrap();
    let mut rows = Vec::new();
    for (k, bytes) in records.payloads.iter().enumerate().skip(1) {
        let rec: SimRecord = decode(path, k + 1, bytes).unwrap();
        let d = rec.theta.len() / rec.len();
        for j in 0..rec.len() {
            rows.push((
                rec.theta[j * d..(j + 1) * d].to_vec(),
                rec.x[j * 2..(j + 1) * 2].to_vec(),
            ));
        }
    }
    rows
}

fn csv(rows: &[(Vec<f64>, Vec<f64>)]) -> String {
    let mut out = String::from("a,b,x1,x2\n");
    for (t, x) in rows {
        let all: Vec<String> = t.iter().chain(x).map(|v| format!("{v:?}")).collect();
        out.push_str(&all.join(","));
        out.push('\n');
    }
    out
}

fn npy(path: &Path, rows: &[Vec<f64>]) {
    let m = nalgebra::DMatrix::from_fn(rows[0].len(), rows.len(), |i, j| rows[j][i]);
    simfer_cli::data::write_npy(path, &m).unwrap();
}

fn shard_file(run: &Path, round: usize, shard: usize, of: usize) -> PathBuf {
    run.join(format!(
        "shards/round-{round:03}-shard-{shard:04}-of-{of:04}.sims"
    ))
}

#[test]
fn a_run_simulated_in_shards_ends_as_one_in_one_process() {
    let plain = scratch("shards-plain");
    let config = write(&plain, "c.toml", CONFIG);
    ok(&["run", arg(&config), "--no-progress"]);
    let expected = std::fs::read(plain.join("run/samples.csv")).unwrap();

    let dir = scratch("shards-array");
    let config = write(&dir, "c.toml", CONFIG);
    let run = dir.join("run");
    let out = ok(&["run", arg(&config), "--no-simulate"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("round 0 waits for simulations: 0 of 150") && stderr.contains("--shard"),
        "{stderr}"
    );
    assert!(run.join("pending/round-000-theta.csv").exists());
    assert!(!run.join("samples.csv").exists());
    // Round 0 in three shards, one of them through the config rather than the directory.
    for shard in ["0", "1", "2"] {
        let target = if shard == "1" {
            arg(&config)
        } else {
            arg(&run)
        };
        ok(&[
            "simulate",
            target,
            "--shard",
            shard,
            "--num-shards",
            "3",
            "--no-progress",
        ]);
    }
    // The shards wrote only their own files.
    assert_eq!(
        std::fs::metadata(run.join("simulations.log"))
            .unwrap()
            .len(),
        16,
        "the run's log holds only its header"
    );
    let shards: Vec<PathBuf> = (0..3).map(|i| shard_file(&run, 0, i, 3)).collect();
    let mut args = vec!["append", arg(&run)];
    args.extend(shards.iter().map(|p| arg(p)));
    let out = ok(&args);
    assert!(String::from_utf8_lossy(&out.stdout).contains("150 of 150"));
    // Appending again adds nothing.
    let out = ok(&args);
    assert!(String::from_utf8_lossy(&out.stdout).contains("50 simulations, 0 new"));
    let out = ok(&["resume", arg(&run), "--no-simulate", "--no-progress"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("round 1 waits for simulations"));

    // Round 1: two shards, the second appended as CSV (θ, x) and as a pair of .npy files.
    ok(&["simulate", arg(&run), "--shard", "0", "--num-shards", "2"]);
    ok(&["simulate", arg(&run), "--shard", "1", "--num-shards", "2"]);
    let rows = shard_as_rows(&shard_file(&run, 1, 1, 2));
    assert_eq!(rows.len(), 75);
    let (first, second) = rows.split_at(40);
    let csv_path = write(&dir, "elsewhere.csv", &csv(first));
    let theta_npy = dir.join("theta.npy");
    let x_npy = dir.join("x.npy");
    npy(
        &theta_npy,
        &second.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
    );
    npy(
        &x_npy,
        &second.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
    );
    // A θ off by one bit is no θ of the round.
    let mut wrong = first.to_vec();
    wrong[7].0[1] = f64::from_bits(wrong[7].0[1].to_bits() ^ 1);
    let wrong_path = write(&dir, "wrong.csv", &csv(&wrong));
    let stderr = fails(&["append", arg(&run), arg(&wrong_path)]);
    assert!(
        stderr.contains("wrong.csv: row 8: θ = [") && stderr.contains("none of round 1's 150"),
        "{stderr}"
    );
    ok(&[
        "append",
        arg(&run),
        arg(&shard_file(&run, 1, 0, 2)),
        arg(&csv_path),
        arg(&theta_npy),
        arg(&x_npy),
    ]);
    ok(&["resume", arg(&run), "--no-simulate", "--no-progress"]);
    let got = std::fs::read(run.join("samples.csv")).unwrap();
    assert!(got == expected, "the sharded run's samples.csv differs");
}

#[test]
fn a_missing_part_is_simulated_by_resume_and_shards_are_checked() {
    let plain = scratch("shards-partial-plain");
    let config = write(&plain, "c.toml", CONFIG);
    ok(&["run", arg(&config), "--no-progress"]);
    let expected = std::fs::read(plain.join("run/samples.csv")).unwrap();

    let dir = scratch("shards-partial");
    let config = write(&dir, "c.toml", CONFIG);
    let run = dir.join("run");
    ok(&["run", arg(&config), "--no-simulate"]);
    ok(&["simulate", arg(&run), "--shard", "1", "--num-shards", "4"]);
    let stderr = fails(&["simulate", arg(&run), "--shard", "4", "--num-shards", "4"]);
    assert!(
        stderr.contains("--shard from 0 to --num-shards − 1"),
        "{stderr}"
    );
    let out = ok(&["append", arg(&run), arg(&shard_file(&run, 0, 1, 4))]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("38 of 150"));
    // Without --no-simulate, resume simulates the rest itself.
    ok(&["resume", arg(&run), "--no-progress"]);
    assert!(std::fs::read(run.join("samples.csv")).unwrap() == expected);
    // A shard file of round 0 does not fit the finished run's last round.
    let stderr = fails(&["append", arg(&run), arg(&shard_file(&run, 0, 1, 4))]);
    assert!(stderr.contains("holds simulations of round 0"), "{stderr}");
}
