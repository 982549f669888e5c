//! `cargo xtask perf`: performance tracking by instruction counts.
//!
//! Wall time on a shared machine moves by tens of percent from one run to the next; the
//! number of instructions a workload executes does not. This task builds the `perf-case`
//! program (`xtask/src/bin/perf-case.rs`: one small workload per named case — the training
//! step of each estimator, `log_prob`, sampling, a simulation batch — on one thread with
//! fixed seeds), runs every case under valgrind's callgrind, collecting only inside the
//! measured region (`--collect-atstart=no --toggle-collect=*simfer_perf_measured*`, so
//! construction is not counted), reads the instruction count from the callgrind output
//! file ([`parse_callgrind_total`]) and compares it with the committed baseline
//! [`BASELINE_FILE`] ([`compare`]): a case more than [`TOLERANCE_PERCENT`] % above its
//! baseline fails the task; a case without a baseline is reported and does not.
//! `--update` rewrites the baseline with the counts of this run.
//!
//! Counts depend on the compiler, the valgrind version and the code path the CPU
//! dispatch takes: valgrind 3.19 does not emulate AVX-512, so under it the kernels with
//! run-time SIMD dispatch take their AVX2 (or scalar) path. Within one toolchain and
//! machine type they repeat exactly.
//!
//! ```
//! use xtask::perf::{Verdict, compare};
//! let baseline = [("step".to_string(), 1_000_000)].into_iter().collect();
//! let table = compare(&baseline, &[("step".to_string(), 1_060_000)]);
//! assert_eq!(table.rows[0].verdict, Verdict::Regressed);
//! assert!(!table.passed());
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::cli::PerfArgs;

/// The committed baseline, relative to the workspace root.
pub const BASELINE_FILE: &str = ".ci/perf-baseline.json";

/// A case fails when its count is more than this many percent above its baseline.
pub const TOLERANCE_PERCENT: u64 = 5;

/// The function of `perf-case` that callgrind collects in (a glob on its symbol).
pub const MEASURED_SYMBOL: &str = "*simfer_perf_measured*";

/// The baseline file: instruction counts by case, and what produced them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// What the file is and how to update it.
    #[serde(default)]
    pub about: String,
    /// `valgrind --version` of the run that wrote it.
    #[serde(default)]
    pub valgrind: String,
    /// `rustc --version` of the run that wrote it.
    #[serde(default)]
    pub rustc: String,
    /// Instructions executed (callgrind's `Ir`) in the measured region of each case.
    pub cases: BTreeMap<String, u64>,
}

/// How a case compares with its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the tolerance (or below it by less than the tolerance).
    Ok,
    /// More than [`TOLERANCE_PERCENT`] % above the baseline: the task fails.
    Regressed,
    /// More than [`TOLERANCE_PERCENT`] % below the baseline: passes; the baseline can be
    /// lowered with `--update`.
    Improved,
    /// Measured now, not in the baseline (a new case): reported, passes.
    New,
    /// In the baseline, not measured now (a removed or renamed case, or not selected):
    /// reported, passes.
    Missing,
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The case.
    pub case: String,
    /// Its baseline count, if it has one.
    pub baseline: Option<u64>,
    /// Its count in this run, if it was measured.
    pub now: Option<u64>,
    /// The verdict.
    pub verdict: Verdict,
}

impl Row {
    /// The change from the baseline in percent, where both counts exist.
    pub fn change_percent(&self) -> Option<f64> {
        match (self.baseline, self.now) {
            (Some(b), Some(n)) if b > 0 => Some((n as f64 / b as f64 - 1.0) * 100.0),
            _ => None,
        }
    }
}

/// The comparison of a run with the baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The measured cases in their order, then the baseline's cases not measured.
    pub rows: Vec<Row>,
}

impl Comparison {
    /// No case rose more than the tolerance.
    pub fn passed(&self) -> bool {
        self.regressed().is_empty()
    }

    /// The cases that rose more than the tolerance.
    pub fn regressed(&self) -> Vec<&str> {
        self.with(Verdict::Regressed)
    }

    /// The cases with a given verdict.
    pub fn with(&self, verdict: Verdict) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| r.verdict == verdict)
            .map(|r| r.case.as_str())
            .collect()
    }

    /// The table: case, baseline, now, change and verdict, one case a line.
    pub fn table(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|r| r.case.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut s = format!(
            "{:<width$}  {:>15}  {:>15}  {:>9}\n",
            "case", "baseline", "now", "change"
        );
        for r in &self.rows {
            let count = |c: Option<u64>| c.map_or_else(|| "-".to_string(), group_digits);
            let change = r
                .change_percent()
                .map_or_else(|| "-".to_string(), |p| format!("{p:+.2} %"));
            let note = match r.verdict {
                Verdict::Ok => String::new(),
                Verdict::Regressed => {
                    format!("  FAIL: more than {TOLERANCE_PERCENT} % above the baseline")
                }
                Verdict::Improved => {
                    format!(
                        "  more than {TOLERANCE_PERCENT} % below: lower the baseline with --update"
                    )
                }
                Verdict::New => "  new: no baseline (add it with --update)".to_string(),
                Verdict::Missing => "  not measured".to_string(),
            };
            let _ = writeln!(
                s,
                "{:<width$}  {:>15}  {:>15}  {:>9}{note}",
                r.case,
                count(r.baseline),
                count(r.now),
                change
            );
        }
        s
    }
}

/// `n` with commas between groups of three digits.
fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Compares the counts of a run (`now`, in the order measured) with the baseline: a rise
/// of more than [`TOLERANCE_PERCENT`] % is [`Verdict::Regressed`], exactly that much or
/// less passes.
pub fn compare(baseline: &BTreeMap<String, u64>, now: &[(String, u64)]) -> Comparison {
    // In integers, so that exactly the tolerance passes: n > b·(100 + t)/100 fails.
    let above =
        |n: u64, b: u64| u128::from(n) * 100 > u128::from(b) * u128::from(100 + TOLERANCE_PERCENT);
    let mut rows: Vec<Row> = now
        .iter()
        .map(|(case, n)| {
            let b = baseline.get(case).copied();
            let verdict = match b {
                None => Verdict::New,
                Some(b) if above(*n, b) => Verdict::Regressed,
                Some(b) if above(b, *n) => Verdict::Improved,
                Some(_) => Verdict::Ok,
            };
            Row {
                case: case.clone(),
                baseline: b,
                now: Some(*n),
                verdict,
            }
        })
        .collect();
    for (case, b) in baseline {
        if !now.iter().any(|(c, _)| c == case) {
            rows.push(Row {
                case: case.clone(),
                baseline: Some(*b),
                now: None,
                verdict: Verdict::Missing,
            });
        }
    }
    Comparison { rows }
}

/// The total instruction count of a callgrind output file: its `totals:` line (or, in
/// files without one, `summary:`), the first event (`Ir` with callgrind's defaults).
///
/// ```
/// let out = "version: 1\ncmd: perf-case x\nevents: Ir\nfn=main\n3 12\ntotals: 1234567\n";
/// assert_eq!(xtask::perf::parse_callgrind_total(out), Some(1_234_567));
/// ```
pub fn parse_callgrind_total(text: &str) -> Option<u64> {
    let field = |key: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix(key))
            .next_back()
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    field("totals:").or_else(|| field("summary:"))
}

/// The cases of a `perf-case --list` output (`name<TAB>about` lines), in order.
pub fn parse_case_list(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_once('\t') {
            Some((name, about)) => (name.trim().to_string(), about.trim().to_string()),
            None => (l.trim().to_string(), String::new()),
        })
        .collect()
}

/// Reads a baseline file.
pub fn read_baseline(path: &Path) -> Result<Baseline> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The cargo target directory (`CARGO_TARGET_DIR`, or `target` in the workspace).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"))
}

/// The first line of `program --version`, or "" when it does not run.
fn version_of(program: &str) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_default()
}

/// Builds `perf-case` in the release profile and returns the path of the executable.
fn build_case_program() -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(&cargo)
        .current_dir(crate::workspace_root())
        .args([
            "build",
            "--release",
            "--package",
            "xtask",
            "--bin",
            "perf-case",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {cargo} build"))?;
    ensure!(
        out.status.success(),
        "building perf-case failed: {}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "perf-case")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo build reported no perf-case executable")
}

/// Runs one case under callgrind and returns its instruction count.
fn measure(program: &Path, case: &str, out_dir: &Path) -> Result<u64> {
    let out_file = out_dir.join(format!("{case}.callgrind.out"));
    let _ = std::fs::remove_file(&out_file);
    let out = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={MEASURED_SYMBOL}"))
        .arg(program)
        .arg(case)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .context("running valgrind (install it: Debian's package valgrind)")?;
    ensure!(
        out.status.success(),
        "perf-case {case} under callgrind failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_file)
        .with_context(|| format!("reading {}", out_file.display()))?;
    let total = parse_callgrind_total(&text)
        .with_context(|| format!("no totals: line in {}", out_file.display()))?;
    ensure!(
        total > 0,
        "callgrind counted no instruction in {MEASURED_SYMBOL} for {case} ({}): the \
         measured function was not found",
        out_file.display()
    );
    Ok(total)
}

/// Runs `cases` under callgrind, `jobs` at a time (the counts do not depend on it), and
/// returns their counts in the order of `cases`.
fn measure_all(
    program: &Path,
    cases: &[String],
    out_dir: &Path,
    jobs: usize,
) -> Result<Vec<(String, u64)>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<u64>>>> = Mutex::new(cases.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, cases.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let started = Instant::now();
                    let result = measure(program, case, out_dir);
                    if let Ok(count) = &result {
                        eprintln!(
                            "perf: {case}: {count} instructions ({:.1} s)",
                            started.elapsed().as_secs_f64()
                        );
                    }
                    results.lock().expect("no thread panicked")[i] = Some(result);
                }
            });
        }
    });
    let results = results.into_inner().expect("no thread panicked");
    cases
        .iter()
        .zip(results)
        .map(|(case, r)| Ok((case.clone(), r.expect("every case ran")?)))
        .collect()
}

/// What [`perf`] found.
#[derive(Debug, Clone)]
pub struct PerfReport {
    /// The comparison with the baseline as it was before this run.
    pub comparison: Comparison,
    /// Seconds spent running the cases under valgrind (the build excluded).
    pub seconds: f64,
    /// Whether the baseline file was rewritten (`--update`).
    pub updated: bool,
}

/// `cargo xtask perf`: builds `perf-case`, measures every case (or those selected) under
/// callgrind, prints the table and compares with the baseline; with `--update`, rewrites
/// the baseline instead of failing.
///
/// # Errors
/// A build or valgrind failure, an unreadable baseline, an unknown case; and, without
/// `--update`, any case more than [`TOLERANCE_PERCENT`] % above its baseline (after the
/// table is printed).
pub fn perf(args: &PerfArgs) -> Result<PerfReport> {
    ensure!(
        !version_of("valgrind").is_empty(),
        "valgrind is not installed (Debian: apt-get install valgrind)"
    );
    let program = build_case_program()?;
    let list = Command::new(&program)
        .arg("--list")
        .output()
        .context("running perf-case --list")?;
    ensure!(list.status.success(), "perf-case --list failed");
    let all = parse_case_list(&String::from_utf8_lossy(&list.stdout));
    let selected: Vec<String> = match &args.cases {
        None => all.iter().map(|(n, _)| n.clone()).collect(),
        Some(names) => {
            for n in names {
                if !all.iter().any(|(c, _)| c == n) {
                    let known: Vec<&str> = all.iter().map(|(c, _)| c.as_str()).collect();
                    bail!("no perf case {n:?}; the cases are {}", known.join(", "));
                }
            }
            names.clone()
        }
    };

    let root = crate::workspace_root();
    let baseline_path = root.join(BASELINE_FILE);
    let baseline = if baseline_path.exists() {
        read_baseline(&baseline_path)?
    } else if args.update {
        Baseline {
            about: String::new(),
            valgrind: String::new(),
            rustc: String::new(),
            cases: BTreeMap::new(),
        }
    } else {
        bail!(
            "no baseline {}: write it with `cargo xtask perf --update`",
            baseline_path.display()
        );
    };

    let out_dir = target_dir().join("perf");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let started = Instant::now();
    let now = measure_all(&program, &selected, &out_dir, jobs)?;
    let seconds = started.elapsed().as_secs_f64();

    let valgrind = version_of("valgrind");
    let rustc = version_of("rustc");
    let mut comparison = compare(&baseline.cases, &now);
    if args.cases.is_some() {
        // Cases not selected were not meant to be measured.
        comparison.rows.retain(|r| r.verdict != Verdict::Missing);
    }
    println!("{}", comparison.table());
    println!(
        "{} cases in {seconds:.0} s ({jobs} at a time) under {valgrind}; callgrind files in {}",
        now.len(),
        out_dir.display()
    );
    if !args.update {
        for (what, theirs, ours) in [
            ("valgrind", &baseline.valgrind, &valgrind),
            ("rustc", &baseline.rustc, &rustc),
        ] {
            if !theirs.is_empty() && theirs != ours {
                println!(
                    "note: the baseline was measured with {theirs:?}, this run with \
                     {ours:?} ({what}); counts may differ for that reason alone"
                );
            }
        }
    }

    if args.update {
        let mut cases = baseline.cases.clone();
        if args.cases.is_none() {
            cases.clear();
        }
        cases.extend(now.iter().cloned());
        let updated = Baseline {
            about: format!(
                "Instructions (callgrind's Ir) in the measured region of each case of \
                 `cargo xtask perf`; CI fails when a case rises more than {TOLERANCE_PERCENT} % \
                 above its count here. Rewrite with `cargo xtask perf --update`."
            ),
            valgrind,
            rustc,
            cases,
        };
        let mut text = serde_json::to_string_pretty(&updated)?;
        text.push('\n');
        std::fs::write(&baseline_path, text)
            .with_context(|| format!("writing {}", baseline_path.display()))?;
        println!("wrote {}", baseline_path.display());
        return Ok(PerfReport {
            comparison,
            seconds,
            updated: true,
        });
    }

    let regressed = comparison.regressed();
    if !regressed.is_empty() {
        bail!(
            "{} rose more than {TOLERANCE_PERCENT} % above the baseline ({BASELINE_FILE}); \
             if the rise is intended, rewrite it with `cargo xtask perf --update` and commit it",
            regressed.join(", ")
        );
    }
    Ok(PerfReport {
        comparison,
        seconds,
        updated: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(cases: &[(&str, u64)]) -> BTreeMap<String, u64> {
        cases.iter().map(|(c, n)| (c.to_string(), *n)).collect()
    }

    fn now(cases: &[(&str, u64)]) -> Vec<(String, u64)> {
        cases.iter().map(|(c, n)| (c.to_string(), *n)).collect()
    }

    /// The tail of a real callgrind output file (valgrind 3.19).
    const CALLGRIND_OUT: &str = "\
# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  target/release/perf-case maf_train_step_d2_b200
part: 1


desc: I1 cache: 
desc: D1 cache: 
desc: LL cache: 
desc: Timerange: Basic block 0 - 123456
desc: Trigger: Program termination

positions: line
events: Ir
summary: 98765432

ob=(1) /work/main/target/release/perf-case
fl=(1) ???
fn=(1) perf_case::simfer_perf_measured
0 12
cfn=(2) perf_case::train_step::{{closure}}
calls=1 0
0 98765420

totals: 98765432
";

    #[test]
    fn parses_totals_and_falls_back_to_summary() {
        assert_eq!(parse_callgrind_total(CALLGRIND_OUT), Some(98_765_432));
        let summary_only = CALLGRIND_OUT.replace("totals: 98765432\n", "");
        assert_eq!(parse_callgrind_total(&summary_only), Some(98_765_432));
        // Several events: the first (Ir).
        assert_eq!(
            parse_callgrind_total("events: Ir Dr Dw\ntotals: 10 4 3\n"),
            Some(10)
        );
        // totals wins over summary where they differ.
        assert_eq!(
            parse_callgrind_total("summary: 5\nfn=x\n0 7\ntotals: 7\n"),
            Some(7)
        );
        assert_eq!(parse_callgrind_total("events: Ir\nfn=x\n0 7\n"), None);
        assert_eq!(parse_callgrind_total("totals: many\n"), None);
        assert_eq!(parse_callgrind_total(""), None);
    }

    #[test]
    fn a_rise_of_more_than_five_percent_fails_and_less_passes() {
        let b = baseline(&[("step", 1_000_000)]);
        for (count, verdict) in [
            (1_000_000, Verdict::Ok),
            (1_049_999, Verdict::Ok),
            (1_050_000, Verdict::Ok), // exactly 5 % is not more than 5 %
            (1_050_001, Verdict::Regressed),
            (1_200_000, Verdict::Regressed),
            (960_000, Verdict::Ok),
            (900_000, Verdict::Improved),
        ] {
            let c = compare(&b, &now(&[("step", count)]));
            assert_eq!(c.rows.len(), 1);
            assert_eq!(c.rows[0].verdict, verdict, "count {count}");
            assert_eq!(c.passed(), verdict != Verdict::Regressed, "count {count}");
        }
        let c = compare(&b, &now(&[("step", 1_030_000)]));
        let change = c.rows[0].change_percent().expect("a change");
        assert!((change - 3.0).abs() < 1e-9, "{change}");
    }

    #[test]
    fn new_and_missing_cases_are_reported_and_pass() {
        let b = baseline(&[("a", 100), ("gone", 50)]);
        let c = compare(&b, &now(&[("a", 104), ("fresh", 7)]));
        assert!(c.passed());
        assert_eq!(c.with(Verdict::Ok), ["a"]);
        assert_eq!(c.with(Verdict::New), ["fresh"]);
        assert_eq!(c.with(Verdict::Missing), ["gone"]);
        // Measured cases first, in their order, then the missing ones.
        let order: Vec<&str> = c.rows.iter().map(|r| r.case.as_str()).collect();
        assert_eq!(order, ["a", "fresh", "gone"]);
        assert_eq!(c.rows[1].change_percent(), None);

        // One regression among several fails the whole comparison, and names the case.
        let c = compare(&b, &now(&[("a", 106), ("fresh", 7)]));
        assert!(!c.passed());
        assert_eq!(c.regressed(), ["a"]);
    }

    #[test]
    fn the_table_has_every_case_its_counts_and_change() {
        let b = baseline(&[("maf_train_step_d2_b200", 1_000_000), ("gone", 5)]);
        let c = compare(
            &b,
            &now(&[("maf_train_step_d2_b200", 1_100_000), ("new_case", 1234)]),
        );
        let t = c.table();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(
            lines[0].starts_with("case") && lines[0].contains("baseline"),
            "{t}"
        );
        assert!(
            lines[1].contains("1,000,000")
                && lines[1].contains("1,100,000")
                && lines[1].contains("+10.00 %")
                && lines[1].contains("FAIL"),
            "{t}"
        );
        assert!(
            lines[2].contains("new_case") && lines[2].contains("1,234"),
            "{t}"
        );
        assert!(lines[2].contains("new"), "{t}");
        assert!(
            lines[3].contains("gone") && lines[3].contains("not measured"),
            "{t}"
        );
    }

    #[test]
    fn digits_are_grouped_by_three() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(123_456_789), "123,456,789");
    }

    #[test]
    fn case_lists_parse() {
        let list = "maf_log_prob_2k\tlog_prob of 2,000 columns\nbare\n\n";
        assert_eq!(
            parse_case_list(list),
            [
                (
                    "maf_log_prob_2k".to_string(),
                    "log_prob of 2,000 columns".to_string()
                ),
                ("bare".to_string(), String::new())
            ]
        );
    }

    #[test]
    fn the_baseline_file_round_trips() {
        let b = Baseline {
            about: "x".into(),
            valgrind: "valgrind-3.19.0".into(),
            rustc: "rustc 1.0".into(),
            cases: baseline(&[("a", 1), ("b", 2)]),
        };
        let text = serde_json::to_string_pretty(&b).expect("json");
        let back: Baseline = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, b);
        // Only the counts are required.
        let back: Baseline = serde_json::from_str(r#"{"cases": {"a": 3}}"#).expect("parses");
        assert_eq!(back.cases, baseline(&[("a", 3)]));
    }
}
