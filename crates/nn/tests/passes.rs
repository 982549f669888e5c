//! The pass driver with a small model: gradients through the driver against central
//! differences, thread-count independence, and f32 against f64 passes.

use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use simfer_nn::driver::{ChunkGrads, ChunkModel, PassInputs, Passes};
use simfer_nn::{Activation, Gradients, Mlp, NnError, Precision, Real, ResidualNet, Workspace};

/// f(x, c) = MLP([x; c]) → one value per column, and a residual net on x gated by c.
struct Model {
    mlp: Mlp,
    res: ResidualNet,
    dx: usize,
    dc: usize,
    params: Vec<f64>,
}

#[derive(Default)]
struct Chunk<T> {
    xc: Vec<T>,
    x: Vec<T>,
    c: Vec<T>,
    acts: Vec<T>,
    racts: Vec<T>,
    scratch: Vec<T>,
    g: Vec<T>,
    gxc: Vec<T>,
    gx: Vec<T>,
    gc: Vec<T>,
    n: usize,
}

impl Model {
    fn new(dx: usize, dc: usize, seed: u64) -> Self {
        let mlp = Mlp::new(&[dx + dc, 7, 6, 1], Activation::Tanh, None, 0);
        let res = ResidualNet::new(dx, dc, 5, 1, 2, Activation::Relu, mlp.end());
        let mut params = vec![0.0; res.end()];
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        mlp.init_uniform(&mut params, &mut rng);
        res.init(&mut params, &mut rng);
        // Move away from the near-zero residual branch so every block matters.
        for p in &mut params {
            *p += rng.random_range(-0.2..0.2);
        }
        Model {
            mlp,
            res,
            dx,
            dc,
            params,
        }
    }
}

impl ChunkModel for Model {
    type Chunk<T: Real> = Chunk<T>;

    fn gradient_len(&self) -> usize {
        self.params.len()
    }

    fn pass_params<T: Real>(&self, out: &mut Vec<T>) {
        out.clear();
        out.extend(self.params.iter().map(|p| T::of(*p)));
    }

    fn forward_chunk<T: Real>(
        &self,
        p: &[T],
        ch: &mut Chunk<T>,
        inputs: &PassInputs<'_>,
        start: usize,
        out: &mut [f64],
    ) {
        let n = out.len();
        let (dx, dc) = (self.dx, self.dc);
        ch.n = n;
        ch.xc.clear();
        ch.x.clear();
        ch.c.clear();
        for j in 0..n {
            for i in 0..dx {
                let v = T::of(inputs.input[(i, start + j)]);
                ch.xc.push(v);
                ch.x.push(v);
            }
            for i in 0..dc {
                let v = T::of(inputs.condition[(i, start + j)]);
                ch.xc.push(v);
                ch.c.push(v);
            }
        }
        ch.acts.resize(self.mlp.acts_len(n), T::of(0.0));
        self.mlp.forward(p, &ch.xc, n, &mut ch.acts);
        ch.racts.resize(self.res.acts_len(n), T::of(0.0));
        self.res.forward(p, &ch.x, &ch.c, n, &mut ch.racts);
        let (a, b) = (self.mlp.output(&ch.acts, n), self.res.output(&ch.racts, n));
        for j in 0..n {
            out[j] = a[j].widen() + b[j].widen();
        }
    }

    fn backward_chunk<T: Real>(&self, p: &[T], ch: &mut Chunk<T>, w: &[f64], g: ChunkGrads<'_, T>) {
        let n = ch.n;
        let (dx, dc) = (self.dx, self.dc);
        ch.g.clear();
        ch.g.extend(w.iter().map(|v| T::of(*v)));
        let len = self.mlp.scratch_len(n).max(self.res.scratch_len(n));
        ch.scratch.resize(len, T::of(0.0));
        ch.gxc.resize((dx + dc) * n, T::of(0.0));
        ch.gx.resize(dx * n, T::of(0.0));
        ch.gc.clear();
        ch.gc.resize(dc * n, T::of(0.0));
        let mut gp = g.params;
        self.mlp.backward(
            p,
            &ch.xc,
            n,
            &ch.acts,
            &ch.g,
            gp.as_deref_mut(),
            Some(&mut ch.gxc),
            &mut ch.scratch,
        );
        self.res.backward(
            p,
            &ch.c,
            n,
            &ch.racts,
            &ch.g,
            gp,
            Some(&mut ch.gx),
            Some(&mut ch.gc),
            &mut ch.scratch,
        );
        if let Some(gi) = g.input {
            for j in 0..n {
                for i in 0..dx {
                    gi[i + j * dx] += ch.gxc[i + j * (dx + dc)].widen() + ch.gx[i + j * dx].widen();
                }
            }
        }
        if let Some(gc) = g.condition {
            for j in 0..n {
                for i in 0..dc {
                    gc[i + j * dc] +=
                        ch.gxc[dx + i + j * (dx + dc)].widen() + ch.gc[i + j * dc].widen();
                }
            }
        }
    }
}

fn data(dx: usize, dc: usize, n: usize) -> (DMatrix<f64>, DMatrix<f64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    (
        DMatrix::from_fn(dx, n, |_, _| rng.random_range(-1.5..1.5)),
        DMatrix::from_fn(dc, n, |_, _| rng.random_range(-1.5..1.5)),
    )
}

fn weighted(model: &Model, x: &DMatrix<f64>, c: &DMatrix<f64>, w: &[f64]) -> f64 {
    let mut ws = Workspace::new();
    let mut out = vec![0.0; x.ncols()];
    let inputs = PassInputs {
        input: x.as_view(),
        condition: c.as_view(),
    };
    ws.get::<Passes<Model>>()
        .forward(model, Precision::F64, &inputs, &mut out)
        .unwrap();
    out.iter().zip(w).map(|(a, b)| a * b).sum()
}

type Grads = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

fn pass(
    model: &Model,
    precision: Precision,
    x: &DMatrix<f64>,
    c: &DMatrix<f64>,
    w: &[f64],
) -> Grads {
    let n = x.ncols();
    let mut ws = Workspace::new();
    let passes: &mut Passes<Model> = ws.get();
    let mut out = vec![0.0; n];
    let inputs = PassInputs {
        input: x.as_view(),
        condition: c.as_view(),
    };
    passes.forward(model, precision, &inputs, &mut out).unwrap();
    let mut gp = vec![0.0; model.gradient_len()];
    let mut gx = vec![0.0; x.len()];
    let mut gc = vec![0.0; c.len()];
    passes
        .backward(
            model,
            w,
            Gradients::params(&mut gp)
                .with_input(&mut gx)
                .with_condition(&mut gc),
            None,
        )
        .unwrap();
    (out, gp, gx, gc)
}

#[test]
fn gradients_through_the_driver_match_central_differences() {
    let (dx, dc, n) = (2, 3, 300); // three chunks
    let model = Model::new(dx, dc, 1);
    let (x, c) = data(dx, dc, n);
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let w: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let (_, gp, gx, gc) = pass(&model, Precision::F64, &x, &c, &w);
    let h = 1e-6;
    let mut worst: f64 = 0.0;
    for i in 0..model.gradient_len() {
        let mut m = Model {
            params: model.params.clone(),
            mlp: model.mlp.clone(),
            res: model.res.clone(),
            dx,
            dc,
        };
        m.params[i] += h;
        let lp = weighted(&m, &x, &c, &w);
        m.params[i] -= 2.0 * h;
        let lm = weighted(&m, &x, &c, &w);
        let fd = (lp - lm) / (2.0 * h);
        worst = worst.max((fd - gp[i]).abs() / (1.0 + fd.abs()));
    }
    assert!(
        worst < 1e-6,
        "parameter gradient: worst relative error {worst:e}"
    );
    for (m, g, what) in [(&x, &gx, "input"), (&c, &gc, "condition")] {
        for k in (0..m.len()).step_by(7) {
            let mut mp = m.clone();
            mp[k] += h;
            let (xp, cp) = if what == "input" {
                (&mp, &c)
            } else {
                (&x, &mp)
            };
            let lp = weighted(&model, xp, cp, &w);
            mp[k] -= 2.0 * h;
            let (xm, cm) = if what == "input" {
                (&mp, &c)
            } else {
                (&x, &mp)
            };
            let lm = weighted(&model, xm, cm, &w);
            let fd = (lp - lm) / (2.0 * h);
            assert!(
                (fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()),
                "{what} {k}: {fd} vs {}",
                g[k]
            );
        }
    }
}

#[test]
fn results_are_the_same_bits_on_one_and_two_threads() {
    let (dx, dc, n) = (3, 2, 1000);
    let model = Model::new(dx, dc, 2);
    let (x, c) = data(dx, dc, n);
    let w = vec![-1.0 / n as f64; n];
    for precision in [Precision::F64, Precision::F32] {
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| pass(&model, precision, &x, &c, &w))
        };
        let (a, b) = (run(1), run(2));
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a.0), bits(&b.0), "{precision:?} outputs");
        assert_eq!(bits(&a.1), bits(&b.1), "{precision:?} parameter gradient");
        assert_eq!(bits(&a.2), bits(&b.2), "{precision:?} input gradient");
        assert_eq!(bits(&a.3), bits(&b.3), "{precision:?} condition gradient");
    }
}

#[test]
fn single_precision_passes_agree_with_double_precision() {
    let (dx, dc, n) = (2, 2, 400);
    let model = Model::new(dx, dc, 3);
    let (x, c) = data(dx, dc, n);
    let w = vec![1.0 / n as f64; n];
    let a = pass(&model, Precision::F64, &x, &c, &w);
    let b = pass(&model, Precision::F32, &x, &c, &w);
    let rel = |p: &[f64], q: &[f64]| {
        let num: f64 = p
            .iter()
            .zip(q)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        num / p.iter().map(|a| a * a).sum::<f64>().sqrt()
    };
    for (what, e) in [
        ("out", rel(&a.0, &b.0)),
        ("params", rel(&a.1, &b.1)),
        ("input", rel(&a.2, &b.2)),
        ("condition", rel(&a.3, &b.3)),
    ] {
        // f32 rounding of inputs, weights and activations: relative errors of a few 1e-7.
        assert!(e < 1e-5, "{what}: relative difference {e:e}");
        assert!(e > 0.0, "{what}: the f32 pass should round somewhere");
    }
}

#[test]
fn misuse_is_an_error() {
    let model = Model::new(2, 1, 0);
    let (x, c) = data(2, 1, 10);
    let mut ws = Workspace::new();
    let passes: &mut Passes<Model> = ws.get();
    let mut g = vec![0.0; model.gradient_len()];
    let e = passes
        .backward(&model, &[1.0; 10], Gradients::params(&mut g), None)
        .unwrap_err();
    assert!(matches!(e, NnError::OutOfOrder(_)), "{e}");
    let inputs = PassInputs {
        input: x.as_view(),
        condition: c.as_view(),
    };
    let mut out = vec![0.0; 9];
    let e = passes
        .forward(&model, Precision::F64, &inputs, &mut out)
        .unwrap_err();
    assert!(e.to_string().contains("expected 10, found 9"), "{e}");
    let mut out = vec![0.0; 10];
    passes
        .forward(&model, Precision::F64, &inputs, &mut out)
        .unwrap();
    let e = passes
        .backward(&model, &[1.0; 3], Gradients::params(&mut g), None)
        .unwrap_err();
    assert!(e.to_string().contains("weights"), "{e}");
    let mut short = vec![0.0; 3];
    let e = passes
        .backward(&model, &[1.0; 10], Gradients::input(&mut short), None)
        .unwrap_err();
    assert!(e.to_string().contains("input gradient"), "{e}");
}

/// Reports per column whether a subnormal operand reads as zero inside the chunk
/// (1.0) or not (0.0), forward and backward.
#[cfg(target_arch = "x86_64")]
struct Probe;

#[cfg(target_arch = "x86_64")]
fn subnormals_flushed() -> f64 {
    let sub = std::hint::black_box(f32::MIN_POSITIVE / 8.0);
    if std::hint::black_box(sub * std::hint::black_box(2.0f32)) == 0.0 {
        1.0
    } else {
        0.0
    }
}

#[cfg(target_arch = "x86_64")]
impl ChunkModel for Probe {
    type Chunk<T: Real> = ();
    fn gradient_len(&self) -> usize {
        1
    }
    fn pass_params<T: Real>(&self, out: &mut Vec<T>) {
        out.clear();
        out.push(T::of(0.0));
    }
    fn forward_chunk<T: Real>(
        &self,
        _: &[T],
        _: &mut (),
        _: &PassInputs<'_>,
        _: usize,
        out: &mut [f64],
    ) {
        out.fill(subnormals_flushed());
    }
    fn backward_chunk<T: Real>(&self, _: &[T], _: &mut (), w: &[f64], g: ChunkGrads<'_, T>) {
        if let Some(gi) = g.input {
            gi.fill(subnormals_flushed());
        }
        let _ = w;
    }
}

/// Arithmetic on subnormal numbers is many times slower on x86-64; every chunk, on
/// whichever thread runs it, is computed with them flushed to zero, and the caller's
/// mode is left as it was.
#[cfg(target_arch = "x86_64")]
#[test]
fn every_chunk_runs_with_subnormals_flushed_and_the_callers_mode_is_kept() {
    let n = 2000;
    let x = DMatrix::from_element(1, n, 0.0);
    let none = DMatrix::<f64>::zeros(0, n);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        pool.install(|| {
            for precision in [Precision::F32, Precision::F64] {
                let mut ws = Workspace::new();
                let passes: &mut Passes<Probe> = ws.get();
                let mut out = vec![0.0; n];
                let inputs = PassInputs {
                    input: x.as_view(),
                    condition: none.as_view(),
                };
                passes
                    .forward(&Probe, precision, &inputs, &mut out)
                    .expect("forward");
                assert!(out.iter().all(|v| *v == 1.0), "forward, {threads} threads");
                let mut gx = vec![0.0; n];
                passes
                    .backward(&Probe, &vec![1.0; n], Gradients::input(&mut gx), None)
                    .expect("backward");
                assert!(gx.iter().all(|v| *v == 1.0), "backward, {threads} threads");
            }
        });
    }
    // Outside the passes, subnormals are as the program had them.
    assert_eq!(subnormals_flushed(), 0.0);
}
