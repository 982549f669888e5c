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
//! Measured in one sitting on the shared 2-core Intel Xeon (Sapphire Rapids, AVX-512) of
//! the project, median wall time of the `f32` step on 1 / 2 threads, against the
//! reference (sbi 0.27 on torch 2.15, 1 / 2 torch threads):
//!
//! | shape | simfer | reference | ratio |
//! |---|---|---|---|
//! | D = C = 2, batch 200 | 1.65 / 1.02 ms | 13.9 / 13.8 ms | 8.4× / 13.5× |
//! | D = C = 2, 2000 columns | 15.1 / 7.9 ms | 41.1 / 35.8 ms | 2.7× / 4.5× |
//! | D = C = 10, batch 200 | 2.76 / 1.71 ms | 18.9 / 17.7 ms | 6.9× / 10.4× |
//! | D = C = 10, 2000 columns | 27.0 / 12.8 ms | 95.9 / 69.1 ms | 3.5× / 5.4× |
//!
//! About half of a step is simfer-nn's single-precision product kernel (the residual
//! nets' `50 × 50` products, at 80–90 GFLOP/s at 2000 columns), a third its other kernels
//! (small products, gates, activations, Adam, the gradient reduction); the splines, the
//! LU layers and the transposes between them a tenth (D = 2) to a sixth (D = 10).

use std::hint::black_box;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use simfer_flows::{
    Adam, ConditionalDensityEstimator, Gradients, Nsf, NsfConfig, Parameterized, Precision,
    Workspace, clip_grad_norm,
};

/// CPU time of all threads of this process, in nanoseconds (0 where unavailable).
#[cfg(target_os = "linux")]
fn process_cpu_ns() -> u64 {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec (64-bit Linux layout).
    let rc = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(not(target_os = "linux"))]
fn process_cpu_ns() -> u64 {
    0
}

/// Criterion measurement: process CPU time.
struct CpuTime;

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (f, unit) = if typical < 1e3 {
            (1.0, "ns cpu")
        } else if typical < 1e6 {
            (1e-3, "µs cpu")
        } else {
            (1e-6, "ms cpu")
        };
        values.iter_mut().for_each(|v| *v *= f);
        unit
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        _t: &Throughput,
        _values: &mut [f64],
    ) -> &'static str {
        "(no throughput)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        process_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        process_cpu_ns().saturating_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

/// θ (`d × n`) depending on x (`c × n`), as the reference benchmark draws them.
fn data(d: usize, c: usize, n: usize, seed: u64) -> (DMatrix<f64>, DMatrix<f64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let x = DMatrix::from_fn(c, n, |_, _| rng.random_range(-1.0..1.0));
    let theta = DMatrix::from_fn(d, n, |i, j| {
        x[(i % c, j)] + 0.3 * rng.random_range(-1.0..1.0)
    });
    (theta, x)
}

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

fn bench_train_step(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("nsf_train_step");
    for &(d, c) in &[(2usize, 2usize), (10, 10)] {
        for &batch in &[200usize, 2000] {
            let (theta, x) = data(d, c, batch, 1);
            for (precision, pname) in [(Precision::F32, "f32"), (Precision::F64, "f64")] {
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

/// The single-thread `f32` training steps in CPU time (see the module docs).
fn bench_train_step_cpu(cr: &mut Criterion<CpuTime>) {
    let mut g = cr.benchmark_group("nsf_train_step_cpu");
    for &(d, c) in &[(2usize, 2usize), (10, 10)] {
        for &batch in &[200usize, 2000] {
            let (theta, x) = data(d, c, batch, 1);
            let tp = pool(1);
            let mut step = Step::new(&theta, &x, Precision::F32);
            let id = BenchmarkId::new(format!("D{d}_C{c}_b{batch}_f32"), "1thr");
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
