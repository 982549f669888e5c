//! `perf-case NAME`: runs one workload of `cargo xtask perf` once, on one thread, with
//! fixed seeds, so that its instruction count under callgrind is the same on every run.
//!
//! `perf-case --list` prints the cases (name, a tab, what it runs), one a line. Each case
//! builds its inputs first and then runs its workload inside [`simfer_perf_measured`],
//! the one function callgrind collects in (`--collect-atstart=no
//! --toggle-collect=*simfer_perf_measured*`), so construction is not counted. The case
//! prints its name and a checksum of its results (the same bits on every run).
//!
//! Everything runs on a rayon pool of one thread (the passes' parallel loops then run in
//! order on it), so callgrind counts one thread's work and nothing depends on scheduling.
//! See `xtask::perf` for the driver.

use std::hint::black_box;
use std::process::ExitCode;

use nalgebra::DMatrix;
use rand::Rng;
use simfer_distributions::rng_from_seed;
use simfer_flows::{
    Adam, ConditionalDensityEstimator, Estimator, EstimatorKind, Gradients, Parameterized,
    Workspace, clip_grad_norm,
};
use simfer_simulators::{SimulationOptions, simulate_for_sbi};

/// One named workload.
struct Case {
    /// The name (`maf_train_step_d2_b200`, …), as in the baseline file.
    name: &'static str,
    /// What it runs, for `--list`.
    about: &'static str,
    /// Builds the inputs and runs the workload (inside [`simfer_perf_measured`]); returns
    /// a checksum of the results.
    run: fn() -> f64,
}

/// Training steps measured per train-step case (after one unmeasured warm-up step).
const STEPS: usize = 5;
/// Training steps measured in the 2000-column case.
const STEPS_LARGE: usize = 1;
/// Columns of the `log_prob` and sampling cases. The count is linear in it, and under
/// valgrind (which emulates the kernels' AVX2 and FMA instructions some hundred times
/// slower than the CPU runs them) 10,000 columns would take minutes.
const EVAL_COLUMNS: usize = 2000;

const CASES: &[Case] = &[
    Case {
        name: "maf_train_step_d2_b200",
        about: "5 training steps of the default MAF, D = C = 2, batch 200",
        run: || train_step(EstimatorKind::Maf, 200, STEPS),
    },
    Case {
        name: "nsf_train_step_d2_b200",
        about: "5 training steps of the default NSF, D = C = 2, batch 200",
        run: || train_step(EstimatorKind::Nsf, 200, STEPS),
    },
    Case {
        name: "mdn_train_step_d2_b200",
        about: "5 training steps of the default MDN, D = C = 2, batch 200",
        run: || train_step(EstimatorKind::Mdn, 200, STEPS),
    },
    Case {
        name: "maf_train_step_d2_b2000",
        about: "1 training step of the default MAF, D = C = 2, 2000 columns laid out as the atomic APT loss lays them out (200 rows × 10 atoms, each row's x repeated)",
        run: || train_step_atomic(EstimatorKind::Maf, STEPS_LARGE),
    },
    Case {
        name: "mdn_train_step_d2_b2000",
        about: "1 training step of the default MDN, D = C = 2, 2000 columns laid out as the atomic APT loss lays them out",
        run: || train_step_atomic(EstimatorKind::Mdn, STEPS_LARGE),
    },
    Case {
        name: "nsf_train_step_d2_b2000",
        about: "1 training step of the default NSF, D = C = 2, 2000 columns laid out as the atomic APT loss lays them out",
        run: || train_step_atomic(EstimatorKind::Nsf, STEPS_LARGE),
    },
    Case {
        name: "maf_log_prob_2k",
        about: "log_prob of 2,000 columns, default MAF, D = C = 2",
        run: || log_prob(EstimatorKind::Maf),
    },
    Case {
        name: "maf_sample_2k",
        about: "2,000 samples at one condition, default MAF, D = C = 2",
        run: || sample(EstimatorKind::Maf),
    },
    Case {
        name: "nsf_log_prob_2k",
        about: "log_prob of 2,000 columns, default NSF, D = C = 2",
        run: || log_prob(EstimatorKind::Nsf),
    },
    Case {
        name: "nsf_sample_2k",
        about: "2,000 samples at one condition, default NSF, D = C = 2",
        run: || sample(EstimatorKind::Nsf),
    },
    Case {
        name: "mdn_log_prob_2k",
        about: "log_prob of 2,000 columns, default MDN, D = C = 2",
        run: || log_prob(EstimatorKind::Mdn),
    },
    Case {
        name: "mdn_sample_2k",
        about: "2,000 samples at one condition, default MDN, D = C = 2",
        run: || sample(EstimatorKind::Mdn),
    },
    Case {
        name: "simulate_two_moons_10k",
        about: "simulate_for_sbi of two_moons: 10,000 prior draws and simulations",
        run: simulate_two_moons,
    },
];

/// The measured region: callgrind collects only while this function runs
/// (`--toggle-collect`). Not inlined, so its symbol is in the binary.
#[inline(never)]
fn simfer_perf_measured(work: &mut dyn FnMut()) {
    work();
}

/// Runs `work` inside the measured region and returns its result.
fn measured<R>(mut work: impl FnMut() -> R) -> R {
    let mut out = None;
    simfer_perf_measured(&mut || out = Some(black_box(work())));
    out.expect("the measured work ran")
}

/// θ (`2 × n`) depending on x (`2 × n`), as the flows' criterion benches draw them.
fn data(n: usize, seed: u64) -> (DMatrix<f64>, DMatrix<f64>) {
    let mut rng = rng_from_seed(seed);
    let x = DMatrix::from_fn(2, n, |_, _| rng.random_range(-1.0..1.0));
    let theta = DMatrix::from_fn(2, n, |i, j| x[(i, j)] + 0.3 * rng.random_range(-1.0..1.0));
    (theta, x)
}

/// The reference library's default estimator of `kind`, built from `theta` and `x`.
fn build(kind: EstimatorKind, theta: &DMatrix<f64>, x: &DMatrix<f64>) -> Estimator {
    kind.default_config()
        .build(theta, x, 3)
        .expect("the default estimator builds")
}

/// One maximum-likelihood training step as the trainer makes it: forward, backward of
/// −mean log q (weights −1/n), gradient-norm clipping at 5, an Adam step.
struct Step {
    est: Estimator,
    ws: Workspace,
    adam: Adam,
    grad: Vec<f64>,
    lp: Vec<f64>,
    w: Vec<f64>,
}

impl Step {
    fn run(&mut self, theta: &DMatrix<f64>, x: &DMatrix<f64>) {
        self.est
            .forward(&mut self.ws, theta.as_view(), x.as_view(), &mut self.lp)
            .expect("forward");
        self.grad.fill(0.0);
        self.est
            .backward(&mut self.ws, &self.w, Gradients::params(&mut self.grad))
            .expect("backward");
        clip_grad_norm(&mut self.grad, 5.0);
        self.adam.step(self.est.params_mut(), &self.grad);
    }
}

fn train_step(kind: EstimatorKind, batch: usize, steps: usize) -> f64 {
    let (theta, x) = data(batch, 1);
    train_steps_on(kind, &theta, &x, steps)
}

/// `steps` measured training steps of `kind` on the columns `theta`, `x`.
fn train_steps_on(
    kind: EstimatorKind,
    theta: &DMatrix<f64>,
    x: &DMatrix<f64>,
    steps: usize,
) -> f64 {
    let n = theta.ncols();
    let est = build(kind, theta, x);
    let mut step = Step {
        ws: est.workspace(),
        adam: Adam::new(est.num_params(), 5e-4),
        grad: vec![0.0; est.num_params()],
        lp: vec![0.0; n],
        w: vec![-1.0 / n as f64; n],
        est,
    };
    // The first step sizes the workspace; the measured ones reuse it, as in training.
    step.run(theta, x);
    measured(|| {
        for _ in 0..steps {
            step.run(theta, x);
        }
    });
    step.lp.iter().sum::<f64>() + step.est.params().iter().sum::<f64>()
}

/// Rows and atoms of the atomic-layout case: 2,000 columns, as SNPE-C's later rounds.
const ATOMIC_ROWS: usize = 200;
const ATOMS: usize = 10;

/// The columns of the atomic loss (`snpe::loss::AtomicLoss`): column `i·A + k` holds atom
/// `k` of row `i`, θ of row `i` for `k = 0` and of another row otherwise, and row `i`'s x.
fn atomic_data() -> (DMatrix<f64>, DMatrix<f64>) {
    let (theta, x) = data(ATOMIC_ROWS, 1);
    let n = ATOMIC_ROWS * ATOMS;
    let row = |j: usize| j / ATOMS;
    let atom = |j: usize| (row(j) + 17 * (j % ATOMS)) % ATOMIC_ROWS;
    (
        DMatrix::from_fn(2, n, |i, j| theta[(i, atom(j))]),
        DMatrix::from_fn(2, n, |i, j| x[(i, row(j))]),
    )
}

fn train_step_atomic(kind: EstimatorKind, steps: usize) -> f64 {
    let (theta, x) = atomic_data();
    train_steps_on(kind, &theta, &x, steps)
}

fn log_prob(kind: EstimatorKind) -> f64 {
    let (theta, x) = data(EVAL_COLUMNS, 2);
    let est = build(kind, &theta, &x);
    let lp = measured(|| est.log_prob(&theta, &x).expect("log_prob"));
    lp.sum()
}

fn sample(kind: EstimatorKind) -> f64 {
    let (theta, x) = data(EVAL_COLUMNS, 2);
    let est = build(kind, &theta, &x);
    let mut rng = rng_from_seed(5);
    let s = measured(|| {
        est.sample(EVAL_COLUMNS, &[0.1, -0.2], &mut rng)
            .expect("sample")
    });
    s.sum()
}

fn simulate_two_moons() -> f64 {
    let task = simfer_benchmark::task("two_moons").expect("two_moons");
    let (prior, simulator) = (task.prior(), task.simulator());
    let opts = SimulationOptions::with_seed(7).with_progress(false);
    let sims = measured(|| {
        simulate_for_sbi(simulator.as_ref(), &prior, 10_000, &opts).expect("simulations")
    });
    sims.x.sum()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag] if flag == "--list" => {
            for case in CASES {
                println!("{}\t{}", case.name, case.about);
            }
            ExitCode::SUCCESS
        }
        [name] => {
            let Some(case) = CASES.iter().find(|c| c.name == name) else {
                eprintln!("perf-case: no case {name:?} (see perf-case --list)");
                return ExitCode::FAILURE;
            };
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .expect("a rayon pool of one thread");
            let checksum = pool.install(case.run);
            println!("{} {checksum:e}", case.name);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: perf-case NAME | perf-case --list");
            ExitCode::FAILURE
        }
    }
}
