//! External simulators: the batch protocol with real processes, reproducibility whatever the
//! batching, every failure (crash, hang, garbage, wrong count, NaN, missing program), the
//! shipped example simulators, and the runner's batch path for in-process simulators.
//!
//! Every test that starts a process has a timeout of a second or less where a worker can
//! hang, so the module finishes in seconds.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nalgebra::DMatrix;
use rand::RngCore;
use simfer_benchmark::tasks::TwoMoons;
use simfer_distributions::{BoxUniform, Prior, derive_rng, rng_from_seed};
use simfer_simulators::external::ExternalSimulator;
use simfer_simulators::{
    BatchPlan, ExternalSimulatorBuilder, SimulationOptions, Simulations, Simulator, SimulatorError,
    check_sbi_inputs, simulate_batch, simulate_for_sbi,
};

fn opts(seed: u64) -> SimulationOptions {
    SimulationOptions::with_seed(seed).with_progress(false)
}

/// Whether `program args…` runs and succeeds; prints why a test is skipped if not.
fn available(program: &str, args: &[&str]) -> bool {
    let ok = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("skipped: `{program}` is not available");
    }
    ok
}

fn have_python() -> bool {
    available("python3", &["-c", "pass"])
}

fn have_sh() -> bool {
    available("sh", &["-c", "true"])
}

pub(crate) fn have_awk() -> bool {
    have_sh() && available("awk", &["BEGIN { exit 0 }"])
}

pub(crate) fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The test simulator (`tests/data/protocol_simulator.py`) in a mode, 2 → 2.
fn test_simulator(mode: &str) -> ExternalSimulatorBuilder {
    ExternalSimulator::builder("python3")
        .arg(repo_file("tests/data/protocol_simulator.py"))
        .arg(mode)
        .theta_dim(2)
        .x_dim(2)
}

/// A 2 × n batch of θ's in (−0.5, 0.5)², with θ_1 of column `i` set to `code` for each
/// `(i, code)` (the test simulator's misbehaviours).
fn thetas(n: usize, codes: &[(usize, f64)]) -> DMatrix<f64> {
    let prior = BoxUniform::uniform(2, -0.5, 0.5).unwrap();
    let mut theta = Prior::sample_batch(&prior, n, &mut rng_from_seed(3));
    for &(i, code) in codes {
        theta[(0, i)] = code;
    }
    theta
}

pub(crate) fn bits(m: &DMatrix<f64>) -> Vec<u64> {
    m.iter().map(|v| v.to_bits()).collect()
}

fn column(m: &DMatrix<f64>, j: usize) -> Vec<f64> {
    m.column(j).iter().copied().collect()
}

/// x of column `i` simulated alone through `Simulator::simulate`, with the runner's
/// generator for it.
fn alone(sim: &dyn Simulator, theta: &DMatrix<f64>, seed: u64, i: usize) -> Vec<f64> {
    let mut out = vec![0.0; sim.x_dim()];
    sim.simulate(
        theta.column(i).as_slice(),
        &mut derive_rng(seed, i as u64),
        &mut out,
    )
    .unwrap();
    out
}

/// Asserts that every column but `except` equals its simulation alone, bit for bit.
fn assert_rows_as_alone(sims: &Simulations, seed: u64, except: &[usize]) {
    let clean = test_simulator("filter").build().unwrap();
    for i in (0..sims.len()).filter(|i| !except.contains(i)) {
        let expected = alone(&clean, &sims.theta, seed, i);
        let found = column(&sims.x, i);
        assert_eq!(
            found.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "row {i}: {found:?} vs {expected:?} alone"
        );
    }
}

fn failed_indices(sims: &Simulations) -> Vec<usize> {
    sims.invalid.failed.iter().map(|(i, _)| *i).collect()
}

#[test]
fn results_are_identical_for_any_batch_size_worker_count_and_reading_style() {
    if !have_python() {
        return;
    }
    let theta = thetas(37, &[]);
    let reference = simulate_batch(
        &test_simulator("filter").batch_size(1).build().unwrap(),
        &theta,
        &opts(9),
    )
    .unwrap();
    assert!(reference.invalid.is_empty(), "{}", reference.invalid);
    for mode in ["filter", "vectorize"] {
        for workers in [1, 2] {
            for batch in [1, 3, 100] {
                let sim = test_simulator(mode)
                    .workers(workers)
                    .batch_size(batch)
                    .build()
                    .unwrap();
                let sims = simulate_batch(&sim, &theta, &opts(9)).unwrap();
                assert_eq!(
                    bits(&sims.x),
                    bits(&reference.x),
                    "{mode}, {workers} workers, batches of {batch}"
                );
                assert!(sims.invalid.is_empty());
                assert_eq!(sim.restarts(), 0);
            }
        }
    }
    // Each simulation is the one `simulate` gives with the runner's generator for it.
    let sim = test_simulator("filter").build().unwrap();
    for i in [0, 17, 36] {
        assert_eq!(alone(&sim, &theta, 9, i), column(&reference.x, i));
    }
    // Another seed, other simulations; a stream offset picks the same streams as the full
    // batch did.
    let other = simulate_batch(&sim, &theta, &opts(10)).unwrap();
    assert_ne!(bits(&other.x), bits(&reference.x));
    let part = theta.columns(20, 10).into_owned();
    let sub = simulate_batch(&sim, &part, &opts(9).with_stream_offset(20)).unwrap();
    assert_eq!(sub.x, reference.x.columns(20, 10).into_owned());
}

#[test]
fn a_crashing_worker_fails_only_its_row_and_is_restarted() {
    if !have_python() {
        return;
    }
    let theta = thetas(12, &[(5, 1.0)]);
    for mode in ["filter", "vectorize"] {
        let sim = test_simulator(mode).batch_size(4).build().unwrap();
        let sims = simulate_batch(&sim, &theta, &opts(1)).unwrap();
        assert_eq!(failed_indices(&sims), vec![5], "{mode}: {}", sims.invalid);
        let reason = &sims.invalid.failed[0].1;
        assert!(reason.contains("exit status: 3"), "{reason}");
        assert!(
            reason.contains("boom at theta=1"),
            "stderr is quoted: {reason}"
        );
        assert!(column(&sims.x, 5).iter().all(|v| v.is_nan()));
        assert_eq!(sims.invalid.nan_rows, vec![5]);
        // Killed in its batch, then again alone; the rows after it were simulated by the
        // restarted worker, and nothing else was lost.
        assert_eq!(sim.restarts(), 2, "{mode}");
        assert_rows_as_alone(&sims, 1, &[5]);
        let message = sims.invalid.to_string();
        assert!(
            message.contains("; 1 failed in the simulator: #5 the worker exited (exit status: 3)"),
            "{message}"
        );
    }
}

#[test]
fn a_restarted_worker_goes_on_with_later_batches() {
    if !have_python() {
        return;
    }
    let sim = test_simulator("filter").batch_size(2).build().unwrap();
    let theta = thetas(10, &[(0, 1.0)]);
    let sims = simulate_batch(&sim, &theta, &opts(4)).unwrap();
    assert_eq!(failed_indices(&sims), vec![0]);
    assert_rows_as_alone(&sims, 4, &[0]);
    assert_eq!(sim.worker_pids().len(), 1, "a worker runs again");
    // And the next call uses it.
    let again = simulate_batch(&sim, &thetas(6, &[]), &opts(4)).unwrap();
    assert!(again.invalid.is_empty());
    assert_eq!(sim.restarts(), 2);
}

#[test]
fn a_hanging_worker_is_killed_at_the_timeout() {
    if !have_python() {
        return;
    }
    let sim = test_simulator("filter")
        .batch_size(4)
        .timeout(Duration::from_millis(500))
        .startup_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let theta = thetas(8, &[(2, 2.0)]);
    let start = Instant::now();
    let sims = simulate_batch(&sim, &theta, &opts(2)).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(failed_indices(&sims), vec![2]);
    let reason = &sims.invalid.failed[0].1;
    assert!(
        // The hanging row was in a new worker's first batch, both times.
        reason.contains(
            "no answer within the timeout of 1.5s, 1s of it for the start of a new worker"
        ),
        "{reason}"
    );
    assert_rows_as_alone(&sims, 2, &[2]);
}

#[test]
fn garbage_and_wrong_value_counts_fail_their_row_and_restart_the_worker() {
    if !have_python() {
        return;
    }
    let sim = test_simulator("filter").batch_size(5).build().unwrap();
    let theta = thetas(10, &[(2, 3.0), (6, 4.0)]);
    let sims = simulate_batch(&sim, &theta, &opts(3)).unwrap();
    assert_eq!(failed_indices(&sims), vec![2, 6], "{}", sims.invalid);
    let (garbage, count) = (&sims.invalid.failed[0].1, &sims.invalid.failed[1].1);
    assert!(garbage.contains("`hello` is not a number"), "{garbage}");
    assert!(
        count.contains("expected 2 numbers, found 3 values"),
        "{count}"
    );
    assert_eq!(sims.invalid.nan_rows, vec![2, 6]);
    assert_eq!(sim.restarts(), 4);
    assert_rows_as_alone(&sims, 3, &[2, 6]);
}

#[test]
fn nan_infinity_and_error_lines_are_answers_not_worker_failures() {
    if !have_python() {
        return;
    }
    for mode in ["filter", "vectorize"] {
        let sim = test_simulator(mode).batch_size(4).build().unwrap();
        let theta = thetas(9, &[(1, 5.0), (4, 6.0), (7, 7.0)]);
        let sims = simulate_batch(&sim, &theta, &opts(5)).unwrap();
        assert_eq!(sims.invalid.nan_rows, vec![1, 4], "{mode}");
        assert_eq!(sims.invalid.inf_rows, vec![7]);
        assert_eq!(
            sims.invalid.failed,
            vec![(4, "the simulator reported: negative mass".to_string())]
        );
        assert_eq!(column(&sims.x, 7), vec![f64::NEG_INFINITY, 1.0]);
        assert_eq!(sim.restarts(), 0, "{mode}: no worker was restarted");
        assert_rows_as_alone(&sims, 5, &[1, 4, 7]);
    }
}

#[test]
fn a_worker_answering_fewer_rows_than_asked_loses_nothing() {
    if !have_python() {
        return;
    }
    // It answers the first 2 rows of each batch of 4 and then waits: the other 2 rows of
    // each batch are simulated again, alone, after the timeout.
    let sim = test_simulator("short")
        .batch_size(4)
        .timeout(Duration::from_millis(500))
        .startup_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let theta = thetas(8, &[]);
    let sims = simulate_batch(&sim, &theta, &opts(6)).unwrap();
    assert!(sims.invalid.is_empty(), "{}", sims.invalid);
    assert_eq!(sim.restarts(), 2);
    assert_rows_as_alone(&sims, 6, &[]);
}

#[test]
fn a_program_that_does_not_exist_is_a_clear_error() {
    let sim = ExternalSimulator::builder("simfer-no-such-simulator")
        .arg("--fast")
        .theta_dim(1)
        .x_dim(1)
        .build()
        .unwrap();
    let start = Instant::now();
    let err = simulate_batch(&sim, &DMatrix::zeros(1, 5), &opts(0)).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(err, SimulatorError::ExternalSpawn { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("`simfer-no-such-simulator --fast`") && msg.contains("on PATH"),
        "{msg}"
    );
    assert!(matches!(
        sim.start(),
        Err(SimulatorError::ExternalSpawn { .. })
    ));
    if !have_sh() {
        return;
    }
    let in_missing_dir = ExternalSimulator::builder("sh")
        .theta_dim(1)
        .x_dim(1)
        .current_dir("/nonexistent/simfer")
        .build()
        .unwrap();
    let msg = in_missing_dir.start().unwrap_err().to_string();
    assert!(msg.contains("working directory"), "{msg}");
}

#[test]
fn a_program_that_exits_at_once_is_a_clear_error_not_a_hang() {
    if !have_sh() {
        return;
    }
    let sim = ExternalSimulator::builder("sh")
        .args(["-c", "echo cannot load the model >&2; exit 1"])
        .theta_dim(1)
        .x_dim(1)
        .max_restarts(2)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = simulate_batch(&sim, &DMatrix::zeros(1, 50), &opts(0)).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let SimulatorError::ExternalFailing {
        failures,
        max_restarts,
        ref last,
        ..
    } = err
    else {
        panic!("unexpected error {err:?}")
    };
    assert_eq!((failures, max_restarts), (3, 2));
    assert!(last.contains("exit status: 1"), "{last}");
    let msg = err.to_string();
    assert!(
        msg.contains("`sh -c 'echo cannot load the model >&2; exit 1'`"),
        "{msg}"
    );
    assert!(
        msg.contains("cannot load the model"),
        "stderr is quoted: {msg}"
    );
}

#[test]
fn a_worker_that_crashes_on_every_row_hits_the_restart_cap() {
    if !have_python() {
        return;
    }
    let sim = test_simulator("filter")
        .batch_size(3)
        .max_restarts(4)
        .build()
        .unwrap();
    let theta = thetas(20, &(0..20).map(|i| (i, 1.0)).collect::<Vec<_>>());
    let err = simulate_batch(&sim, &theta, &opts(0)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("failed 5 times in a row") && msg.contains("max_restarts = 4"),
        "{msg}"
    );
    assert!(
        msg.contains("protocol_simulator.py") && msg.contains("boom"),
        "{msg}"
    );
    // One θ through `simulate`: the failed row is an error of its own.
    // A good θ answers (and resets the count of failures in a row).
    sim.simulate(&[0.0, 0.0], &mut rng_from_seed(0), &mut [0.0; 2])
        .unwrap();
    let err = sim
        .simulate(&[1.0, 0.0], &mut rng_from_seed(0), &mut [0.0; 2])
        .unwrap_err();
    assert!(
        matches!(err, SimulatorError::ExternalSimulation { .. }),
        "{err:?}"
    );
}

/// The state of a process (`R`, `S`, `Z`…), or `None` once it is gone.
#[cfg(target_os = "linux")]
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Waits up to two seconds for a process to be gone (or a zombie, if `zombie_ok`).
#[cfg(target_os = "linux")]
fn wait_gone(pid: u32, zombie_ok: bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        match process_state(pid) {
            None => return true,
            Some('Z') if zombie_ok => return true,
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    false
}

#[cfg(target_os = "linux")]
#[test]
fn a_timeout_kills_the_whole_process_group_and_leaves_no_zombie() {
    if !have_sh() {
        return;
    }
    let pid_file = std::env::temp_dir().join(format!("simfer-external-{}.pid", std::process::id()));
    let _ = std::fs::remove_file(&pid_file);
    let sim = ExternalSimulator::builder("sh")
        .args(["-c", "sleep 30 & echo $! > \"$PID_FILE\"; wait"])
        .env("PID_FILE", &pid_file)
        .theta_dim(1)
        .x_dim(1)
        .timeout(Duration::from_millis(300))
        .startup_timeout(Duration::ZERO)
        .max_restarts(0)
        .build()
        .unwrap();
    sim.start().unwrap();
    let worker = sim.worker_pids()[0];
    let err = simulate_batch(&sim, &DMatrix::zeros(1, 3), &opts(0)).unwrap_err();
    assert!(err.to_string().contains("no answer within"), "{err}");
    assert!(
        wait_gone(worker, false),
        "the worker {worker} is not reaped"
    );
    let grandchild: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = std::fs::remove_file(&pid_file);
    assert!(
        wait_gone(grandchild, true),
        "what the worker started ({grandchild}) still runs"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn workers_are_shut_down_on_drop() {
    if !have_python() || !have_sh() {
        return;
    }
    // A well-behaved worker exits on end of file; one that ignores it is killed after the
    // grace period.
    let polite = test_simulator("filter").workers(2).build().unwrap();
    polite.start().unwrap();
    let stubborn = ExternalSimulator::builder("sh")
        .args(["-c", "exec sleep 30"])
        .theta_dim(1)
        .x_dim(1)
        .build()
        .unwrap();
    stubborn.start().unwrap();
    let mut pids = polite.worker_pids();
    assert_eq!(pids.len(), 2);
    pids.extend(stubborn.worker_pids());
    let start = Instant::now();
    drop(polite);
    drop(stubborn);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    for pid in pids {
        assert!(wait_gone(pid, false), "worker {pid} survived");
    }
}

#[test]
fn a_large_batch_to_a_worker_that_does_not_read_cannot_block_us() {
    if !have_sh() {
        return;
    }
    // 2000 rows of 50 values are far more than a pipe holds.
    let sim = ExternalSimulator::builder("sh")
        .args(["-c", "sleep 30"])
        .theta_dim(50)
        .x_dim(1)
        .batch_size(2000)
        .timeout(Duration::from_millis(300))
        .startup_timeout(Duration::ZERO)
        .max_restarts(0)
        .build()
        .unwrap();
    let theta = DMatrix::from_element(50, 2000, 0.123_456_789);
    let start = Instant::now();
    let err = simulate_batch(&sim, &theta, &opts(0)).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(
        matches!(err, SimulatorError::ExternalFailing { .. }),
        "{err:?}"
    );
}

#[test]
fn a_simulator_flooding_its_stderr_does_not_block() {
    if !have_python() {
        return;
    }
    // 100 kB of stderr per row, more than a pipe holds: it is drained as it comes.
    let sim = test_simulator("noisy")
        .batch_size(10)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let sims = simulate_batch(&sim, &thetas(30, &[]), &opts(8)).unwrap();
    assert!(sims.invalid.is_empty());
    assert_rows_as_alone(&sims, 8, &[]);
}

#[test]
fn invalid_settings_are_rejected_when_built() {
    let base = || ExternalSimulator::builder("python3").theta_dim(2).x_dim(2);
    for (builder, what) in [
        (ExternalSimulator::builder("python3").x_dim(2), "theta_dim"),
        (base().x_dim(0), "x_dim = 0"),
        (base().workers(0), "workers = 0"),
        (base().batch_size(0), "batch_size = 0"),
        (base().timeout(Duration::ZERO), "timeout"),
        (
            ExternalSimulator::builder("").theta_dim(1).x_dim(1),
            "program",
        ),
    ] {
        let err = builder.build().unwrap_err();
        assert!(matches!(err, SimulatorError::InvalidArgument(_)));
        assert!(err.to_string().contains(what), "{what}: {err}");
    }
    let sim = base().workers(3).batch_size(7).build().unwrap();
    assert_eq!(
        sim.batch_plan(),
        Some(BatchPlan {
            batch_size: 7,
            concurrency: 3
        })
    );
    assert_eq!(sim.command_line(), "python3");
    assert!(format!("{sim:?}").contains("workers: 3"));
    // Dimensions are checked before any process starts.
    let err = simulate_batch(&sim, &DMatrix::zeros(3, 4), &opts(0)).unwrap_err();
    assert!(matches!(
        err,
        SimulatorError::ThetaDimension {
            expected: 2,
            found: 3
        }
    ));
    assert!(sim.worker_pids().is_empty());
}

/// The crescent point p = x − (−|z0|, z1) implied by θ and x.
fn crescent_point(theta: &[f64], x: &[f64]) -> (f64, f64) {
    let s = std::f64::consts::FRAC_1_SQRT_2;
    let (z0, z1) = ((theta[0] + theta[1]) * s, (-theta[0] + theta[1]) * s);
    (x[0] + z0.abs(), x[1] - z1)
}

#[test]
fn the_two_moons_example_lies_on_the_crescent_and_is_reproducible() {
    if !have_python() {
        return;
    }
    let sim = ExternalSimulator::builder("python3")
        .arg(repo_file("../../examples/simulators/two_moons.py"))
        .theta_dim(2)
        .x_dim(2)
        .workers(2)
        .batch_size(250)
        .build()
        .unwrap();
    let prior = BoxUniform::uniform(2, -1.0, 1.0).unwrap();
    check_sbi_inputs(&sim, &prior).unwrap();
    let n = 4000;
    let sims = simulate_for_sbi(&sim, &prior, n, &opts(1)).unwrap();
    assert!(sims.invalid.is_empty(), "{}", sims.invalid);
    // r = |p − (0.25, 0)| ~ N(0.1, 0.01²) and the angle a ~ U(−π/2, π/2): mean 0, var π²/12.
    let (mut rs, mut angles) = (Vec::new(), Vec::new());
    for j in 0..n {
        let (p0, p1) = crescent_point(sims.theta.column(j).as_slice(), sims.x.column(j).as_slice());
        let (dx, dy) = (p0 - 0.25, p1);
        rs.push((dx * dx + dy * dy).sqrt());
        angles.push(dy.atan2(dx));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let var = |v: &[f64]| {
        let m = mean(v);
        v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64
    };
    assert!((mean(&rs) - 0.1).abs() < 5.0 * 0.01 / (n as f64).sqrt());
    assert!(
        (var(&rs).sqrt() - 0.01).abs() < 0.001,
        "{}",
        var(&rs).sqrt()
    );
    let pi = std::f64::consts::PI;
    assert!(angles.iter().all(|a| a.abs() < pi / 2.0));
    assert!(mean(&angles).abs() < 5.0 * (pi * pi / 12.0 / n as f64).sqrt());
    assert!((var(&angles) - pi * pi / 12.0).abs() < 0.05);
    // The same run with one worker and other batches is the same, bit for bit.
    let one = ExternalSimulator::builder("python3")
        .arg(repo_file("../../examples/simulators/two_moons.py"))
        .theta_dim(2)
        .x_dim(2)
        .batch_size(1000)
        .build()
        .unwrap();
    let again = simulate_for_sbi(&one, &prior, n, &opts(1)).unwrap();
    assert_eq!(bits(&again.x), bits(&sims.x));
    // A θ that cannot be simulated is declared failed: the script answers `error …`.
    let wrong = ExternalSimulator::builder("python3")
        .arg(repo_file("../../examples/simulators/two_moons.py"))
        .theta_dim(3)
        .x_dim(2)
        .build()
        .unwrap();
    let bad = simulate_batch(&wrong, &DMatrix::zeros(3, 2), &opts(0)).unwrap();
    assert_eq!(failed_indices(&bad), vec![0, 1]);
    assert!(
        bad.invalid.failed[0]
            .1
            .contains("expected 2 parameters, found 3")
    );
    assert_eq!(wrong.restarts(), 0);
    // The in-process TwoMoons has the same distribution (not the same draws).
    let native = simulate_batch(&TwoMoons, &sims.theta, &opts(1)).unwrap();
    let native_mean = native.x.column_mean();
    let external_mean = sims.x.column_mean();
    for d in 0..2 {
        assert!((native_mean[d] - external_mean[d]).abs() < 0.05);
    }
}

#[test]
fn the_linear_gaussian_shell_example_has_the_right_mean_and_std() {
    if !have_awk() {
        return;
    }
    let build = |workers: usize, batch: usize| {
        ExternalSimulator::builder("sh")
            .arg(repo_file("../../examples/simulators/linear_gaussian.sh"))
            .theta_dim(3)
            .x_dim(3)
            .workers(workers)
            .batch_size(batch)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    };
    let n = 3000;
    let theta_true = [0.5, -1.0, 0.0];
    let theta = DMatrix::from_fn(3, n, |r, _| theta_true[r]);
    let sim = build(2, 200);
    let sims = simulate_batch(&sim, &theta, &opts(7)).unwrap();
    assert!(sims.invalid.is_empty(), "{}", sims.invalid);
    // x = θ + 1 + 0.1·ε: mean θ + 1 (to 5 standard errors), std 0.1 (to 5%).
    for d in 0..3 {
        let row: Vec<f64> = sims.x.row(d).iter().copied().collect();
        let mean = row.iter().sum::<f64>() / n as f64;
        let std = (row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        assert!(
            (mean - (theta_true[d] + 1.0)).abs() < 5.0 * 0.1 / (n as f64).sqrt(),
            "dimension {d}: mean {mean}"
        );
        assert!((std - 0.1).abs() < 0.005, "dimension {d}: std {std}");
    }
    // The three coordinates are uncorrelated.
    let centered = |d: usize| -> Vec<f64> {
        let m = sims.x.row(d).mean();
        sims.x.row(d).iter().map(|v| v - m).collect()
    };
    let (a, b) = (centered(0), centered(1));
    let corr = a.iter().zip(&b).map(|(u, v)| u * v).sum::<f64>() / (n as f64 * 0.01);
    assert!(corr.abs() < 0.1, "correlation {corr}");
    // Reproducible whatever the workers and batches, and through the tutorial's prior.
    let again = simulate_batch(&build(1, 7), &theta, &opts(7)).unwrap();
    assert_eq!(bits(&again.x), bits(&sims.x));
    let prior = BoxUniform::uniform(3, -2.0, 2.0).unwrap();
    check_sbi_inputs(&sim, &prior).unwrap();
    let tutorial = simulate_for_sbi(&sim, &prior, 500, &opts(1)).unwrap();
    let residual = &tutorial.x - &tutorial.theta;
    assert!((residual.mean() - 1.0).abs() < 0.02);
}

/// An in-process simulator that asks for the batch path but keeps the default
/// `simulate_many`.
pub(crate) struct Batched<S>(pub(crate) S, pub(crate) BatchPlan);

impl<S: Simulator> Simulator for Batched<S> {
    fn theta_dim(&self) -> usize {
        self.0.theta_dim()
    }
    fn x_dim(&self) -> usize {
        self.0.x_dim()
    }
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        self.0.simulate(theta, rng, out)
    }
    fn batch_plan(&self) -> Option<BatchPlan> {
        Some(self.1)
    }
}

#[test]
fn the_batch_path_gives_the_per_theta_results_for_any_plan() {
    let theta = thetas(1000, &[]);
    let per_theta = simulate_batch(&TwoMoons, &theta, &opts(21)).unwrap();
    for (batch_size, concurrency) in [(1, 1), (7, 2), (64, 3), (5000, 2)] {
        let plan = BatchPlan {
            batch_size,
            concurrency,
        };
        let sims = simulate_batch(&Batched(TwoMoons, plan), &theta, &opts(21)).unwrap();
        assert_eq!(bits(&sims.x), bits(&per_theta.x), "{plan:?}");
        assert_eq!(sims.invalid, per_theta.invalid);
        // Boxed, the plan is still seen.
        let boxed: Box<dyn Simulator> = Box::new(Batched(TwoMoons, plan));
        assert_eq!(boxed.batch_plan(), Some(plan));
    }
    assert_eq!(TwoMoons.batch_plan(), None);
    // Errors and panics in a chunk name the lowest failing index, as on the per-θ path.
    let sim = simfer_simulators::FnSimulator::new(1, 1, |theta: &[f64], _: &mut dyn RngCore| {
        assert!(theta[0] < 0.5, "θ too large");
        vec![theta[0]]
    });
    let theta = DMatrix::from_fn(1, 300, |_, j| if j == 150 || j == 260 { 1.0 } else { 0.0 });
    let plan = BatchPlan {
        batch_size: 16,
        concurrency: 2,
    };
    match simulate_batch(&Batched(sim, plan), &theta, &opts(0)).unwrap_err() {
        SimulatorError::Panicked { index, message, .. } => {
            assert_eq!(index, 150);
            assert!(message.contains("θ too large"), "{message}");
        }
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn the_invalid_report_names_the_failed_rows_and_why() {
    let report = simfer_simulators::InvalidReport {
        nan_rows: (0..7).collect(),
        total: 20,
        failed: (0..7).map(|i| (i, format!("reason {i}"))).collect(),
        ..Default::default()
    };
    assert_eq!(report.num_failed(), 7);
    assert_eq!(report.num_invalid(), 7);
    assert_eq!(
        report.to_string(),
        "Found 7 NaN simulations and 0 Inf simulations (of 20), at indices [0, 1, 2, 3, 4, 5, 6]; \
         7 failed in the simulator: #0 reason 0 | #1 reason 1 | #2 reason 2 | #3 reason 3 | \
         #4 reason 4 | …"
    );
}
