//! What the flows' criterion benchmarks share: a measurement of the process's CPU time
//! (for the `*_cpu` groups), a thread pool of a given size, and the benchmark data, in
//! rows or in the atomic loss's layout.

use criterion::Throughput;
use criterion::measurement::{Measurement, ValueFormatter};
use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// CPU time of all threads of this process, in nanoseconds (0 where unavailable).
#[cfg(target_os = "linux")]
pub fn process_cpu_ns() -> u64 {
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
pub fn process_cpu_ns() -> u64 {
    0
}

/// Criterion measurement: process CPU time.
pub struct CpuTime;

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

pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

pub fn data(d: usize, c: usize, n: usize, seed: u64) -> (DMatrix<f64>, DMatrix<f64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let x = DMatrix::from_fn(c, n, |_, _| rng.random_range(-1.0..1.0));
    let theta = DMatrix::from_fn(d, n, |i, j| {
        x[(i % c, j)] + 0.3 * rng.random_range(-1.0..1.0)
    });
    (theta, x)
}

/// Atoms per row of the atomic layout (the reference's default `num_atoms`).
pub const ATOMS: usize = 10;

/// The atomic loss's layout of a batch of rows (`theta`: `d × rows`, `x`: `c × rows`):
/// `rows · ATOMS` columns, column `i·ATOMS + k` holding row `i`'s x and, as atom `k`, the
/// θ of row `(i + 17k) mod rows` (atom 0 is the row's own θ). This is the pass APT's
/// loss makes on a batch, with every atom of a row sharing the row's x.
#[allow(dead_code)] // not every bench has an atomic case
pub fn atomic(theta: &DMatrix<f64>, x: &DMatrix<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
    let rows = theta.ncols();
    let n = rows * ATOMS;
    let row = |j: usize| j / ATOMS;
    let atom = |j: usize| (row(j) + 17 * (j % ATOMS)) % rows;
    (
        DMatrix::from_fn(theta.nrows(), n, |i, j| theta[(i, atom(j))]),
        DMatrix::from_fn(x.nrows(), n, |i, j| x[(i, row(j))]),
    )
}
