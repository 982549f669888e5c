//! What the tests share: a scratch directory per test, configs, and running `simfer` with a
//! time limit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `simfer` binary.
pub fn simfer() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_simfer"));
    c.stdin(Stdio::null());
    c
}

/// A fresh scratch directory for test `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The test simulator `tests/data/flaky.py`.
pub fn flaky() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/flaky.py")
        .display()
        .to_string()
}

/// Whether python3 runs; prints why a test is skipped if not.
pub fn have_python() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "pass"])
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("skipped: python3 is not available");
    }
    ok
}

/// Writes `text` as `dir/name` and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A config of the flaky simulator in `mode` (2 → 2), with quick training.
pub fn flaky_config(mode: &str, extra_args: &str, settings: &str) -> String {
    format!(
        r#"
{settings}
output = "run"

[prior]
a = {{ kind = "uniform", low = -1, high = 1 }}
b = {{ kind = "normal", mean = 0, std = 0.5 }}

[simulator]
program = "python3"
args = ["{}", "{mode}"{extra_args}]
x_dim = 2
workers = 2
batch_size = 5
timeout = 1.0
startup_timeout = 1.0
max_restarts = 20

[observation]
values = [0.2, -0.1]

[training]
max_epochs = 15
"#,
        flaky()
    )
}

/// Runs `cmd`, killing it after `limit`; panics if it had to be killed.
pub fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} did not finish within {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `simfer ARGS` within two minutes and returns its output, asserting success.
pub fn ok(args: &[&str]) -> Output {
    let out = run_within(simfer().args(args), Duration::from_secs(120));
    assert!(
        out.status.success(),
        "simfer {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `simfer ARGS` within two minutes and returns its stderr, asserting failure.
pub fn fails(args: &[&str]) -> String {
    let out = run_within(simfer().args(args), Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "simfer {args:?} succeeded: {stderr}");
    stderr
}

/// The path as a string argument.
pub fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// summary.json of a run directory.
pub fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}
