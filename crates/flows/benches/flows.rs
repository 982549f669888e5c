//! Criterion benchmarks of the flows' hot paths.
//!
//! `cargo bench -p simfer-flows --bench flows` runs everything; each benchmark id says the
//! number of rayon threads. The FLOP count of a training step and the rate of a plain
//! large matrix product (the machine's reference) are printed first.
//!
//! The training step (`train_step`) runs in both precisions of the training passes
//! (`_f64`, `_f32` in the ids; see `MafConfig::precision`).
//!
//! The group `train_step_cpu` measures the single-thread step in **CPU time** of the
//! process (Linux `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`) instead of wall time: on a machine
//! shared with other work it shows what the step costs when it has a core to itself.

mod common;
use common::{CpuTime, data, pool};

use simfer_flows::Parameterized;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use simfer_flows::nn::linalg::{Op, gemm};
use simfer_flows::{
    Adam, ConditionalDensityEstimator, Gradients, Maf, MafConfig, Precision, Workspace,
    clip_grad_norm,
};

/// Multiply-adds ×2 of all matrix products in one forward + backward (parameter
/// gradients) of the default MAF, per column.
fn step_flops_per_column(d: usize, c: usize, cfg: &MafConfig) -> f64 {
    let h = cfg.hidden_features as f64;
    let (d, c) = (d as f64, c as f64);
    let b = cfg.num_blocks as f64;
    let k = cfg.num_transforms as f64;
    let fwd = h * d + h * c + b * h * h + 2.0 * d * h;
    let bwd_params = fwd;
    let bwd_input = b * h * h + 2.0 * d * h;
    let bwd_first_input = h * d * (k - 1.0) / k; // not needed for the first MADE
    2.0 * k * (fwd + bwd_params + bwd_input + bwd_first_input)
}

fn bench_matmul(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("matmul");
    for &m in &[50usize, 1000] {
        let k = m;
        let n = if m == 50 { 125 } else { 1000 };
        let a = DMatrix::<f64>::from_fn(m, k, |i, j| ((i * 7 + j) as f64).sin());
        let b = DMatrix::<f64>::from_fn(k, n, |i, j| ((i + 3 * j) as f64).cos());
        let mut out = DMatrix::<f64>::zeros(m, n);
        eprintln!(
            "matmul {m}x{k}x{n}: {:.3} MFLOP",
            2.0 * (m * n * k) as f64 / 1e6
        );
        g.bench_function(BenchmarkId::new("gemm", format!("{m}x{k}x{n}")), |bch| {
            bch.iter(|| {
                gemm(
                    m,
                    n,
                    k,
                    1.0,
                    a.as_slice(),
                    Op::N,
                    b.as_slice(),
                    Op::N,
                    0.0,
                    out.as_mut_slice(),
                );
                black_box(&out);
            })
        });
        // The same product in f32: this crate's gemm (its own kernel where the CPU has
        // FMA) and nalgebra's (matrixmultiply's sgemm).
        let (a32, b32) = (a.map(|v| v as f32), b.map(|v| v as f32));
        let mut out32 = DMatrix::<f32>::zeros(m, n);
        g.bench_function(
            BenchmarkId::new("gemm_f32", format!("{m}x{k}x{n}")),
            |bch| {
                bch.iter(|| {
                    gemm(
                        m,
                        n,
                        k,
                        1.0f32,
                        a32.as_slice(),
                        Op::N,
                        b32.as_slice(),
                        Op::N,
                        0.0,
                        out32.as_mut_slice(),
                    );
                    black_box(&out32);
                })
            },
        );
        g.bench_function(
            BenchmarkId::new("nalgebra_f32", format!("{m}x{k}x{n}")),
            |bch| {
                bch.iter(|| {
                    out32.gemm(1.0, &a32, &b32, 0.0);
                    black_box(&out32);
                })
            },
        );
    }
    g.finish();
}

fn bench_tanh(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("tanh_10000");
    let x: Vec<f64> = (0..10_000).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
    let mut y = x.clone();
    g.bench_function("fastmath", |b| {
        b.iter(|| {
            y.copy_from_slice(&x);
            simfer_flows::nn::fastmath::tanh_inplace(&mut y);
            black_box(&y);
        })
    });
    g.bench_function("std", |b| {
        b.iter(|| {
            for (o, v) in y.iter_mut().zip(&x) {
                *o = v.tanh();
            }
            black_box(&y);
        })
    });
    let x32: Vec<f32> = x.iter().map(|v| *v as f32).collect();
    let mut y32 = x32.clone();
    g.bench_function("fastmath_f32", |b| {
        b.iter(|| {
            y32.copy_from_slice(&x32);
            simfer_flows::nn::fastmath::tanh_inplace(&mut y32);
            black_box(&y32);
        })
    });
    g.finish();
}

/// One training step's state: a flow, its workspace, Adam and the buffers.
struct Step {
    maf: Maf,
    ws: Workspace,
    adam: Adam,
    grad: Vec<f64>,
    lp: Vec<f64>,
    w: Vec<f64>,
}

impl Step {
    fn new(theta: &DMatrix<f64>, x: &DMatrix<f64>, precision: Precision) -> Step {
        let cfg = MafConfig {
            precision,
            ..MafConfig::default()
        };
        let maf = Maf::new(&cfg, theta, x, 3).expect("maf");
        let batch = theta.ncols();
        Step {
            ws: maf.workspace(),
            adam: Adam::new(maf.num_params(), 5e-4),
            grad: vec![0.0; maf.num_params()],
            lp: vec![0.0; batch],
            // Loss = −mean log q: weights −1/n, then minimize.
            w: vec![-1.0 / batch as f64; batch],
            maf,
        }
    }

    /// Forward, backward, clipping and an Adam update (what the trainer does per batch).
    fn run(&mut self, theta: &DMatrix<f64>, x: &DMatrix<f64>) {
        self.maf
            .forward(&mut self.ws, theta.as_view(), x.as_view(), &mut self.lp)
            .expect("forward");
        self.grad.fill(0.0);
        self.maf
            .backward(&mut self.ws, &self.w, Gradients::params(&mut self.grad))
            .expect("backward");
        // The weights −1/n make `grad` the gradient of the loss, which Adam minimizes.
        clip_grad_norm(&mut self.grad, 5.0);
        self.adam.step(self.maf.params_mut(), &self.grad);
        black_box(&self.lp);
    }
}

const PRECISIONS: [(Precision, &str); 2] = [(Precision::F64, "f64"), (Precision::F32, "f32")];

/// The training step of the default MAF for D = C = 3 and 10, batches of 200 and 2000
/// columns, both precisions, 1 and 2 threads (wall time).
fn bench_train_step(cr: &mut Criterion) {
    let cfg = MafConfig::default();
    let mut g = cr.benchmark_group("train_step");
    for &(d, c) in &[(3usize, 3usize), (10, 10)] {
        for &batch in &[200usize, 2000] {
            let (theta, x) = data(d, c, batch, 1);
            eprintln!(
                "train_step D={d} C={c} batch={batch}: {:.2} MFLOP",
                step_flops_per_column(d, c, &cfg) * batch as f64 / 1e6
            );
            for (precision, pname) in PRECISIONS {
                for threads in [1usize, 2] {
                    let tp = pool(threads);
                    let mut step = Step::new(&theta, &x, precision);
                    let id = BenchmarkId::new(
                        format!("D{d}_C{c}_b{batch}_{pname}"),
                        format!("{threads}thr"),
                    );
                    g.bench_function(id, |bch| tp.install(|| bch.iter(|| step.run(&theta, &x))));
                }
            }
        }
    }
    g.finish();
}

/// The single-thread training step in CPU time (see the module docs), both precisions.
fn bench_train_step_cpu(cr: &mut Criterion<CpuTime>) {
    let mut g = cr.benchmark_group("train_step_cpu");
    for &(d, c) in &[(3usize, 3usize), (10, 10)] {
        for &batch in &[200usize, 2000] {
            let (theta, x) = data(d, c, batch, 1);
            let tp = pool(1);
            for (precision, pname) in PRECISIONS {
                let mut step = Step::new(&theta, &x, precision);
                let id = BenchmarkId::new(format!("D{d}_C{c}_b{batch}_{pname}"), "1thr");
                g.bench_function(id, |bch| tp.install(|| bch.iter(|| step.run(&theta, &x))));
            }
        }
    }
    g.finish();
}

/// Evaluation (always f64): the forward pass of 10,000 columns in f64 (what `log_prob`
/// runs) and sampling.
fn bench_log_prob_and_sample(cr: &mut Criterion) {
    let cfg = MafConfig {
        precision: Precision::F64,
        ..MafConfig::default()
    };
    let mut g = cr.benchmark_group("eval");
    g.sample_size(20);
    let (d, c, n) = (3, 3, 10_000);
    let (theta, x) = data(d, c, n, 2);
    let maf = Maf::new(&cfg, &theta, &x, 3).expect("maf");
    for threads in [1usize, 2] {
        let tp = pool(threads);
        let mut ws = maf.workspace();
        let mut lp = vec![0.0; n];
        g.bench_function(
            BenchmarkId::new("log_prob_10000_D3_C3", format!("{threads}thr")),
            |bch| {
                tp.install(|| {
                    bch.iter(|| {
                        maf.forward(&mut ws, theta.as_view(), x.as_view(), &mut lp)
                            .expect("forward");
                        black_box(&lp);
                    })
                })
            },
        );
        let x0 = [0.1, -0.2, 0.3];
        g.bench_function(
            BenchmarkId::new("sample_10000_D3_C3", format!("{threads}thr")),
            |bch| {
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
                tp.install(|| bch.iter(|| black_box(maf.sample(n, &x0, &mut rng).expect("sample"))))
            },
        );
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_matmul,
    bench_tanh,
    bench_train_step,
    bench_log_prob_and_sample
);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime);
    targets = bench_train_step_cpu
}
criterion_main!(benches, cpu);
