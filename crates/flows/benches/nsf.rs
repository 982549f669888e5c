//! Criterion benchmarks of the neural spline flow's hot paths.
//!
//! `cargo bench -p simfer-flows --bench nsf` runs everything; each benchmark id says the
//! number of rayon threads.
//!
//! * `nsf_train_step`: one maximum-likelihood training step of the default NSF (forward,
//!   backward of the loss −mean log q, gradient-norm clipping at 5, an Adam step), for
//!   D = C = 2 and D = C = 10, batches of 200 (the trainer's batch) and 2000 columns (the
//!   size of the atomic APT pass), in the default `f32` passes (and `f64` for comparison);
//! * `nsf_train_step_cpu`: the single-thread `f32` steps in **CPU time** of the process
//!   (Linux `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`) instead of wall time: on a machine
//!   shared with other work it shows what a step costs when it has a core to itself (the
//!   reference script prints the same figure);
//! * `nsf_eval`: `log_prob` of 10,000 columns and sampling 10,000 at D = C = 2 (both
//!   always `f64`).
//!
//! `benches/reference/nsf_step.py` times the same training step on the reference library.
//!
//! The 2000-column case is the atomic loss's layout (`b200x10`: 200 rows, each with 10
//! atoms that share the row's x); the residual nets' context gates run once per row.
//!
//! Measured in one sitting (2026-12-02) on the shared 2-core Intel Xeon (Sapphire Rapids,
//! AVX-512, 2.1 GHz) of the project, median wall time of the `f32` step on 1 / 2 threads,
//! against the reference (`benches/reference/nsf_step.py`: sbi 0.27 on torch 2.15, 1 / 2
//! torch threads), two interleaved runs of each; the range is over the two runs' ratios:
//!
//! | shape | simfer | reference | ratio |
//! |---|---|---|---|
//! | D = C = 2, batch 200 | 2.40–2.70 / 1.71–1.98 ms | 34.7–36.0 / 35.2–40.9 ms | 12.8–15.0× / 17.8–23.9× |
//! | D = C = 2, 200 rows × 10 atoms | 26.4–35.3 / 17.0–17.4 ms | 85.9–92.9 / 77.2–81.1 ms | 2.6–3.3× / 4.4–4.8× |
//! | D = C = 10, batch 200 | 3.31–3.88 / 2.66–2.76 ms | 46.9–47.9 / 43.7–45.9 ms | 12.4–14.2× / 15.8–17.3× |
//! | D = C = 10, 200 rows × 10 atoms | 47.9–62.7 / 24.9–25.0 ms | 186–238 / 153–154 ms | 3.8–3.9× / 6.1–6.2× |
//!
//! At 2000 columns and D = 2 a step is ≈ 0.7 GFLOP of products, almost all of them the
//! residual nets' `50 × 50` products of θ-dependent activations, which no layout can share
//! between atoms. The reference runs it at ≈ 8 GFLOP/s on one thread; 10× that is more
//! than the large-product rate of that core (≈ 72–96 GFLOP/s in earlier sittings), so the
//! ratio there is bounded by the product kernel, not by the passes around it.
//!
//! In a profile of the D = 2, 2000-column step on one thread (2026-12-01), 59 % of the time is
//! simfer-nn's single-precision product kernel (the residual nets' `50 × 50` products),
//! 9 % its small products, 6.5 % clearing and copying buffers, 6 % the gates and their
//! backward, 4 % the splines, 2.5 % the bias-gradient sums.

mod common;
use common::{ATOMS, CpuTime, atomic, data, pool};

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use simfer_flows::{
    Adam, ConditionalDensityEstimator, Gradients, Nsf, NsfConfig, Parameterized, Precision,
    Workspace, clip_grad_norm,
};

/// One training step's state: a flow, its workspace, Adam and the buffers.
struct Step {
    nsf: Nsf,
    ws: Workspace,
    adam: Adam,
    grad: Vec<f64>,
    lp: Vec<f64>,
    w: Vec<f64>,
}

impl Step {
    fn new(theta: &DMatrix<f64>, x: &DMatrix<f64>, precision: Precision) -> Step {
        let cfg = NsfConfig {
            precision,
            ..NsfConfig::default()
        };
        let nsf = Nsf::new(&cfg, theta, x, 3).expect("nsf");
        let batch = theta.ncols();
        Step {
            ws: nsf.workspace(),
            adam: Adam::new(nsf.num_params(), 5e-4),
            grad: vec![0.0; nsf.num_params()],
            lp: vec![0.0; batch],
            // Loss = −mean log q: weights −1/n, then minimize.
            w: vec![-1.0 / batch as f64; batch],
            nsf,
        }
    }

    /// Forward, backward, clipping and an Adam update (what the trainer does per batch).
    fn run(&mut self, theta: &DMatrix<f64>, x: &DMatrix<f64>) {
        self.nsf
            .forward(&mut self.ws, theta.as_view(), x.as_view(), &mut self.lp)
            .expect("forward");
        self.grad.fill(0.0);
        self.nsf
            .backward(&mut self.ws, &self.w, Gradients::params(&mut self.grad))
            .expect("backward");
        // The weights −1/n make `grad` the gradient of the loss, which Adam minimizes.
        clip_grad_norm(&mut self.grad, 5.0);
        self.adam.step(self.nsf.params_mut(), &self.grad);
        black_box(&self.lp);
    }
}

/// The batches of the training-step benchmarks, named: 200 rows (`b200`), and the same
/// rows in the atomic loss's layout, 2000 columns (`b200x10`).
fn layouts(d: usize, c: usize) -> Vec<(String, DMatrix<f64>, DMatrix<f64>)> {
    let (theta, x) = data(d, c, 200, 1);
    let (at, ax) = atomic(&theta, &x);
    vec![("b200".into(), theta, x), (format!("b200x{ATOMS}"), at, ax)]
}

fn bench_train_step(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("nsf_train_step");
    for &(d, c) in &[(2usize, 2usize), (10, 10)] {
        for (layout, theta, x) in layouts(d, c) {
            for (precision, pname) in [(Precision::F32, "f32"), (Precision::F64, "f64")] {
                for threads in [1usize, 2] {
                    let tp = pool(threads);
                    let mut step = Step::new(&theta, &x, precision);
                    let id = BenchmarkId::new(
                        format!("D{d}_C{c}_{layout}_{pname}"),
                        format!("{threads}thr"),
                    );
                    g.bench_function(id, |bch| tp.install(|| bch.iter(|| step.run(&theta, &x))));
                }
            }
        }
    }
    g.finish();
}

/// The single-thread `f32` training steps in CPU time (see the module docs).
fn bench_train_step_cpu(cr: &mut Criterion<CpuTime>) {
    let mut g = cr.benchmark_group("nsf_train_step_cpu");
    for &(d, c) in &[(2usize, 2usize), (10, 10)] {
        for (layout, theta, x) in layouts(d, c) {
            let tp = pool(1);
            let mut step = Step::new(&theta, &x, Precision::F32);
            let id = BenchmarkId::new(format!("D{d}_C{c}_{layout}_f32"), "1thr");
            g.bench_function(id, |bch| tp.install(|| bch.iter(|| step.run(&theta, &x))));
        }
    }
    g.finish();
}

fn bench_eval(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("nsf_eval");
    g.sample_size(20);
    let (d, c, n) = (2, 2, 10_000);
    let (theta, x) = data(d, c, n, 2);
    let nsf = Nsf::new(&NsfConfig::default(), &theta, &x, 3).expect("nsf");
    for threads in [1usize, 2] {
        let tp = pool(threads);
        g.bench_function(
            BenchmarkId::new("log_prob_10000_D2_C2", format!("{threads}thr")),
            |bch| {
                tp.install(|| bch.iter(|| black_box(nsf.log_prob(&theta, &x).expect("log_prob"))))
            },
        );
        let x0 = [0.1, -0.2];
        g.bench_function(
            BenchmarkId::new("sample_10000_D2_C2", format!("{threads}thr")),
            |bch| {
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
                tp.install(|| bch.iter(|| black_box(nsf.sample(n, &x0, &mut rng).expect("sample"))))
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench_train_step, bench_eval);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime);
    targets = bench_train_step_cpu
}
criterion_main!(benches, cpu);
