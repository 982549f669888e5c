//! Criterion benchmarks of the mixture density network's training step.
//!
//! `cargo bench -p simfer-flows --bench mdn` runs everything. `train_step` is one
//! maximum-likelihood step as the trainer takes it: forward (log q), backward with
//! weights −1/n (the gradient of the loss −mean log q), global-norm clipping at 5 and an
//! Adam step, for the default MDN (2 hidden layers of 50, 10 components) at D = C = 2 and
//! D = C = 10, batches of 200 and 2000 columns, both precisions of the training passes,
//! on 1 and 2 rayon threads. `benches/reference/mdn_step.py` times the same step of the
//! reference library's MDN.
//!
//! The steps cycle through a pool of batches (20,000 samples), as the epochs of training
//! do: repeating one batch thousands of times lets the mixture collapse onto its points,
//! with extreme precisions that no real training run sees.
//!
//! `mdn_train_step_cpu` is the single-thread step in **CPU time** of the process (Linux
//! `CLOCK_PROCESS_CPUTIME_ID`) rather than wall time: on a machine shared with other work
//! it shows what the step costs when it has a core to itself.
//!
//! `raw_outputs_step` is what the non-atomic loss adds around its own arithmetic: the raw
//! outputs of a batch, then the backward pass of a gradient with respect to them (which
//! runs the network forward again).
//!
//! The 2000-column case is the atomic loss's layout (`b200x10`: 200 rows, each with 10
//! atoms that share the row's x). The network is a function of x alone, so it runs once
//! per row there, and so does everything computed from its outputs alone; only the
//! Gaussian terms run per column.
//!
//! Measured in one sitting (2026-12-02) on the shared 2-core Intel Xeon (Sapphire Rapids,
//! AVX-512, 2.1 GHz) of the project, with the reference (`benches/reference/mdn_step.py`:
//! sbi 0.27 on torch 2.15, 1 / 2 torch threads) run twice, interleaved with two runs of
//! this bench. The host was noisy: the same configuration's median moved by up to 1.5×
//! between runs, on both sides. Fastest median of the two runs, `f32` step, 1 / 2 threads:
//!
//! | shape | simfer | reference | ratio |
//! |---|---|---|---|
//! | D = C = 2, batch 200 | 0.46 / 0.29 ms | 3.58 / 3.94 ms | 7.7× / 13.6× |
//! | D = C = 2, 200 rows × 10 atoms | 2.21 / 1.05 ms | 12.9 / 8.80 ms | 5.8× / 8.4× |
//! | D = C = 10, batch 200 | 1.96 / 1.16 ms | 10.4 / 7.64 ms | 5.3× / 6.6× |
//! | D = C = 10, 200 rows × 10 atoms | 7.66 / 5.94 ms | 129.5 / 79.4 ms | 16.9× / 13.4× |
//!
//! In instruction counts (`cargo xtask perf`, case `mdn_train_step_d2_b2000`, the D = 2
//! atomic step), evaluating the network and its outputs once per row took the step from
//! 37.9 M to 16.2 M instructions. What is left at D = 2 is mostly the per-column mixture
//! arithmetic (a log-sum-exp over the components per column, forward and backward).

mod common;
use common::{ATOMS, CpuTime, atomic, data, pool};

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use nalgebra::DMatrix;
use simfer_flows::{
    Adam, ConditionalDensityEstimator, Gradients, Mdn, MdnConfig, Parameterized, Precision,
    Workspace, clip_grad_norm,
};

/// Multiply-adds ×2 of the network's products in one forward and backward pass (with
/// parameter gradients), per column.
fn step_flops_per_column(d: usize, c: usize, cfg: &MdnConfig) -> f64 {
    let h = cfg.hidden_features as f64;
    let k = cfg.num_components as f64;
    let r = k * (1.0 + 2.0 * d as f64 + (d * (d - 1) / 2) as f64);
    let l = cfg.num_hidden_layers as f64;
    let fwd = c as f64 * h + (l - 1.0) * h * h + h * r;
    let bwd_input = (l - 1.0) * h * h + h * r;
    2.0 * (2.0 * fwd + bwd_input)
}

/// One training step's state: an MDN, its workspace, Adam and the buffers.
struct Step {
    mdn: Mdn,
    ws: Workspace,
    adam: Adam,
    grad: Vec<f64>,
    lp: Vec<f64>,
    w: Vec<f64>,
}

impl Step {
    fn new(theta: &DMatrix<f64>, x: &DMatrix<f64>, precision: Precision) -> Step {
        let cfg = MdnConfig {
            precision,
            ..MdnConfig::default()
        };
        let mdn = Mdn::new(&cfg, theta, x, 3).expect("mdn");
        let batch = theta.ncols();
        Step {
            ws: mdn.workspace(),
            adam: Adam::new(mdn.num_params(), 5e-4),
            grad: vec![0.0; mdn.num_params()],
            lp: vec![0.0; batch],
            // Loss = −mean log q: weights −1/n, then minimize.
            w: vec![-1.0 / batch as f64; batch],
            mdn,
        }
    }

    /// Forward, backward, clipping and an Adam update (what the trainer does per batch).
    fn run(&mut self, theta: &DMatrix<f64>, x: &DMatrix<f64>) {
        self.mdn
            .forward(&mut self.ws, theta.as_view(), x.as_view(), &mut self.lp)
            .expect("forward");
        self.grad.fill(0.0);
        self.mdn
            .backward(&mut self.ws, &self.w, Gradients::params(&mut self.grad))
            .expect("backward");
        // The weights −1/n make `grad` the gradient of the loss, which Adam minimizes.
        clip_grad_norm(&mut self.grad, 5.0);
        self.adam.step(self.mdn.params_mut(), &self.grad);
        black_box(&self.lp);
    }
}

const PRECISIONS: [(Precision, &str); 2] = [(Precision::F64, "f64"), (Precision::F32, "f32")];

/// Samples in the pool of batches the steps cycle through.
const POOL: usize = 20_000;

/// The pool of batches of `batch` columns (θ, x) of `data(d, c, POOL, 1)`, as rows or in
/// the atomic loss's layout (`batch · ATOMS` columns each).
fn batches(d: usize, c: usize, batch: usize, atoms: bool) -> Vec<(DMatrix<f64>, DMatrix<f64>)> {
    let (theta, x) = data(d, c, POOL, 1);
    (0..POOL / batch)
        .map(|b| {
            let t = theta.columns(b * batch, batch).into_owned();
            let x = x.columns(b * batch, batch).into_owned();
            if atoms { atomic(&t, &x) } else { (t, x) }
        })
        .collect()
}

/// The batch layouts of the training-step benchmarks: 200 rows (`b200`), and the same
/// rows in the atomic loss's layout, 2000 columns (`b200x10`).
const LAYOUTS: [bool; 2] = [false, true];

fn layout_name(atoms: bool) -> String {
    if atoms {
        format!("b200x{ATOMS}")
    } else {
        "b200".into()
    }
}

/// Runs `step` on the next batch of the pool.
fn cycle(step: &mut Step, pool: &[(DMatrix<f64>, DMatrix<f64>)], next: &mut usize) {
    let (theta, x) = &pool[*next];
    step.run(theta, x);
    *next = (*next + 1) % pool.len();
}

/// The maximum-likelihood training step of the default MDN for D = C = 2 and 10, batches
/// of 200 and 2000 columns, both precisions, 1 and 2 threads (wall time).
fn bench_train_step(cr: &mut Criterion) {
    let cfg = MdnConfig::default();
    let mut g = cr.benchmark_group("mdn_train_step");
    for &(d, c) in &[(2usize, 2usize), (10, 10)] {
        for atoms in LAYOUTS {
            let data = batches(d, c, 200, atoms);
            let layout = layout_name(atoms);
            // With atoms the network runs once per row: its products are those of 200 rows.
            eprintln!(
                "mdn_train_step D={d} C={c} {layout}: {:.2} MFLOP in the network's products",
                step_flops_per_column(d, c, &cfg) * 200.0 / 1e6
            );
            for (precision, pname) in PRECISIONS {
                for threads in [1usize, 2] {
                    let tp = pool(threads);
                    let mut step = Step::new(&data[0].0, &data[0].1, precision);
                    let mut next = 0;
                    let id = BenchmarkId::new(
                        format!("D{d}_C{c}_{layout}_{pname}"),
                        format!("{threads}thr"),
                    );
                    g.bench_function(id, |bch| {
                        tp.install(|| bch.iter(|| cycle(&mut step, &data, &mut next)))
                    });
                }
            }
        }
    }
    g.finish();
}

/// The single-thread training step in CPU time, both precisions.
fn bench_train_step_cpu(cr: &mut Criterion<CpuTime>) {
    let mut g = cr.benchmark_group("mdn_train_step_cpu");
    for &(d, c) in &[(2usize, 2usize), (10, 10)] {
        for atoms in LAYOUTS {
            let data = batches(d, c, 200, atoms);
            let layout = layout_name(atoms);
            let tp = pool(1);
            for (precision, pname) in PRECISIONS {
                let mut step = Step::new(&data[0].0, &data[0].1, precision);
                let mut next = 0;
                let id = BenchmarkId::new(format!("D{d}_C{c}_{layout}_{pname}"), "1thr");
                g.bench_function(id, |bch| {
                    tp.install(|| bch.iter(|| cycle(&mut step, &data, &mut next)))
                });
            }
        }
    }
    g.finish();
}

/// The raw outputs of a batch and the backward pass of a gradient with respect to them
/// (default MDN, f32 training passes, batch 200).
fn bench_raw_outputs(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("mdn_raw_outputs_step");
    for &(d, c) in &[(2usize, 2usize), (10, 10)] {
        let batch = 200;
        let (theta, x) = data(d, c, batch, 2);
        let mdn = Mdn::new(&MdnConfig::default(), &theta, &x, 3).expect("mdn");
        let r = mdn.output_layout().len();
        let g_out = DMatrix::from_fn(r, batch, |i, j| ((i * 7 + j) as f64).sin() * 1e-3);
        let mut out = vec![0.0; r * batch];
        let mut grad = vec![0.0; mdn.num_params()];
        for threads in [1usize, 2] {
            let tp = pool(threads);
            let mut ws = mdn.workspace();
            let id = BenchmarkId::new(format!("D{d}_C{c}_b{batch}_f32"), format!("{threads}thr"));
            g.bench_function(id, |bch| {
                tp.install(|| {
                    bch.iter(|| {
                        mdn.raw_outputs(&mut ws, x.as_view(), &mut out)
                            .expect("outputs");
                        grad.fill(0.0);
                        mdn.backward_raw_outputs(
                            &mut ws,
                            x.as_view(),
                            g_out.as_view(),
                            Gradients::params(&mut grad),
                        )
                        .expect("backward");
                        black_box(&grad);
                    })
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_train_step, bench_raw_outputs);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime);
    targets = bench_train_step_cpu
}
criterion_main!(benches, cpu);
