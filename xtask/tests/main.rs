//! Integration tests of the `xtask` binary: `run` (smoke run, thread independence,
//! observation files, errors), `c2st`/`mmd` of files, and a one-run `bench`.

mod bad_inputs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A fresh directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs the xtask binary with `threads` rayon threads.
fn xtask(args: &[&str], threads: usize) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .output()
        .expect("the xtask binary runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "xtask failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "xtask succeeded but should have failed"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("file exists")).expect("JSON")
}

/// A tiny run on linear_gaussian (2 rounds of 200 simulations, at most 30 epochs each).
fn tiny_run(out: &Path, observation: &[&str], threads: usize) -> Output {
    let mut args = vec![
        "run",
        "--task",
        "linear_gaussian",
        "--rounds",
        "2",
        "--simulations-per-round",
        "200",
        "--max-epochs",
        "30",
        "--samples",
        "300",
        "--seed",
        "7",
        "--out",
        out.to_str().expect("UTF-8 path"),
    ];
    args.extend_from_slice(observation);
    xtask(&args, threads)
}

#[test]
fn run_smoke_writes_its_files_and_does_not_depend_on_threads() {
    let dir = temp_dir("smoke");
    let (one, two) = (dir.join("t1"), dir.join("t2"));
    ok(&tiny_run(&one, &["--theta=-1,0.5,0.2"], 1));
    let stdout = ok(&tiny_run(&two, &["--theta", "-1,0.5,0.2"], 2));
    assert!(stdout.contains("wrote samples.csv"), "{stdout}");

    let a = std::fs::read(one.join("samples.csv")).unwrap();
    let b = std::fs::read(two.join("samples.csv")).unwrap();
    assert!(a == b, "samples.csv differs between 1 and 2 threads");
    let text = String::from_utf8(a).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("theta_1,theta_2,theta_3"));
    assert_eq!(lines.clone().count(), 300);
    assert!(
        lines.all(|l| l.split(',').count() == 3 && l.split(',').all(|v| v.parse::<f64>().is_ok()))
    );

    let s = json(&two.join("summary.json"));
    assert_eq!(s["task"], "linear_gaussian");
    assert_eq!(s["threads"], 2);
    assert_eq!(s["settings"]["rounds"], 2);
    assert_eq!(s["settings"]["simulations_per_round"], 200);
    assert_eq!(
        s["observation"]["theta_true"],
        serde_json::json!([-1.0, 0.5, 0.2])
    );
    assert_eq!(s["observation"]["x_o"].as_array().unwrap().len(), 3);
    let rounds = s["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2);
    assert_eq!(rounds[0]["proposal"], "prior");
    assert_eq!(rounds[1]["proposal"], "posterior after round 0");
    for r in rounds {
        let epochs = r["epochs"].as_u64().unwrap();
        assert!((1..=30).contains(&epochs), "{r}");
        assert!(r["best_validation_loss"].as_f64().unwrap().is_finite());
        assert_eq!(r["invalid_nan"], 0);
        assert!(r["acceptance_rate"].as_f64().unwrap() > 0.0);
    }
    for phase in ["simulate", "train", "sample", "inference", "total"] {
        assert!(s["seconds"][phase].as_f64().unwrap() >= 0.0, "{phase}");
    }
    // The samples in the summary are those of the file: the mean of θ_1 matches.
    let mean: f64 = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse::<f64>().unwrap())
        .sum::<f64>()
        / 300.0;
    assert!((mean - s["posterior_mean"][0].as_f64().unwrap()).abs() < 1e-9);

    let svg = std::fs::read_to_string(two.join("pairplot.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("linear_gaussian"), "the title names the task");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn observation_file_with_or_without_header_equals_the_list() {
    let dir = temp_dir("obsfile");
    let with = dir.join("with.csv");
    let without = dir.join("without.csv");
    std::fs::write(&with, "x_1,x_2,x_3\n-0.5,0.25,1e-1\n").unwrap();
    std::fs::write(&without, "-0.5, 0.25, 0.1").unwrap();
    let outs: Vec<PathBuf> = ["list", "with", "without"]
        .iter()
        .map(|n| dir.join(n))
        .collect();
    ok(&tiny_run(&outs[0], &["--observation=-0.5,0.25,0.1"], 2));
    ok(&tiny_run(
        &outs[1],
        &["--observation-file", with.to_str().unwrap()],
        2,
    ));
    ok(&tiny_run(
        &outs[2],
        &["--observation-file", without.to_str().unwrap()],
        2,
    ));
    let samples: Vec<Vec<u8>> = outs
        .iter()
        .map(|o| std::fs::read(o.join("samples.csv")).unwrap())
        .collect();
    assert!(samples[0] == samples[1] && samples[1] == samples[2]);
    for o in &outs {
        let s = json(&o.join("summary.json"));
        assert_eq!(
            s["observation"]["x_o"],
            serde_json::json!([-0.5, 0.25, 0.1])
        );
        assert_eq!(s["observation"]["theta_true"], Value::Null);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_errors_say_what_was_expected() {
    let dir = temp_dir("errors");
    let e = failed(&tiny_run(&dir, &["--observation=1,2"], 1));
    assert!(e.contains("expected 3 values, found 2"), "{e}");
    let e = failed(&tiny_run(&dir, &["--theta=5,0,0"], 1));
    assert!(e.contains("outside the support"), "{e}");
    let two_rows = dir.join("two.csv");
    std::fs::write(&two_rows, "1,2,3\n4,5,6\n").unwrap();
    let e = failed(&tiny_run(
        &dir,
        &["--observation-file", two_rows.to_str().unwrap()],
        1,
    ));
    assert!(
        e.contains("expected one row") && e.contains("found 2"),
        "{e}"
    );
    let e = failed(&tiny_run(
        &dir,
        &["--observation-file", "/nonexistent/x.csv"],
        1,
    ));
    assert!(e.contains("/nonexistent/x.csv"), "{e}");
    // An unknown task: `bad_inputs::unknown_task`.
    let e = failed(&xtask(
        &[
            "run",
            "--task",
            "two_moons",
            "--observation=1,x",
            "--out",
            "o",
        ],
        1,
    ));
    assert!(e.contains("\"x\""), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn c2st_and_mmd_of_sample_files() {
    let dir = temp_dir("files");
    // Three sets of 400 samples in 2-D: a and b from one distribution (a deterministic
    // low-discrepancy sequence, interleaved), c shifted by 3 in the first dimension.
    let point = |i: usize| {
        let u = (i as f64 * 0.754_877_666_246_692_7).fract();
        let v = (i as f64 * 0.569_840_290_998_053_2).fract();
        (u, v)
    };
    let write = |name: &str, start: usize, shift: f64| {
        let mut s = String::from("theta_1,theta_2\n");
        for i in 0..400 {
            let (u, v) = point(2 * i + start + 1);
            s.push_str(&format!("{},{}\n", u + shift, v));
        }
        let path = dir.join(name);
        std::fs::write(&path, s).unwrap();
        path
    };
    let (a, b, c) = (
        write("a.csv", 0, 0.0),
        write("b.csv", 1, 0.0),
        write("c.csv", 0, 3.0),
    );
    let score = |x: &Path, y: &Path| -> f64 {
        ok(&xtask(
            &[
                "c2st",
                x.to_str().unwrap(),
                y.to_str().unwrap(),
                "--seed",
                "2",
            ],
            2,
        ))
        .trim()
        .parse()
        .unwrap()
    };
    let same = score(&a, &b);
    assert!((0.4..0.6).contains(&same), "same distribution: {same}");
    let apart = score(&a, &c);
    assert!(apart > 0.95, "separated: {apart}");

    let mmd = |x: &Path, y: &Path| -> f64 {
        ok(&xtask(
            &["mmd", x.to_str().unwrap(), y.to_str().unwrap()],
            2,
        ))
        .trim()
        .parse()
        .unwrap()
    };
    assert!(mmd(&a, &b).abs() < 0.01);
    assert!(mmd(&a, &c) > 0.5);

    let three_d = dir.join("d.csv");
    std::fs::write(&three_d, "1,2,3\n4,5,6\n").unwrap();
    let e = failed(&xtask(
        &["c2st", a.to_str().unwrap(), three_d.to_str().unwrap()],
        1,
    ));
    assert!(e.contains("same dimension"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_of_one_run_writes_both_reports() {
    let dir = temp_dir("bench");
    let out = ok(&xtask(
        &[
            "bench",
            "--suite",
            "quick",
            "--out",
            dir.to_str().unwrap(),
            "--tasks",
            "two_moons",
            "--rounds",
            "1",
            "--observations",
            "1",
            "--samples",
            "400",
            "--predictive-samples",
            "100",
            "--max-epochs",
            "20",
            "--keep-samples",
        ],
        2,
    ));
    assert!(
        out.contains("[1/1] two_moons") && out.contains("C2ST"),
        "{out}"
    );
    let r = json(&dir.join("report.json"));
    let runs = r["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(
        (run["task"].as_str(), run["budget"].as_u64()),
        (Some("two_moons"), Some(1000))
    );
    let c2st = run["c2st"].as_f64().unwrap();
    assert!((0.5..=1.0).contains(&c2st), "{c2st}");
    assert_eq!(run["c2st_folds"].as_array().unwrap().len(), 5);
    assert!(run["predictive"]["median_distance"].as_f64().unwrap() > 0.0);
    assert_eq!(run["error"], Value::Null);
    let obs = &r["observations"][0];
    assert_eq!(obs["theta_true"].as_array().unwrap().len(), 2);
    assert_eq!(obs["reference"], true);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let row = md.lines().find(|l| l.starts_with("| two_moons |")).unwrap();
    assert!(row.contains("| .725 |"), "published NPE beside ours: {row}");
    assert!(dir.join("samples/two_moons_obs1_reference.csv").exists());
    assert!(
        dir.join("samples/two_moons_npe_maf_n1000_r1_obs1.csv")
            .exists()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
