//! The deterministic pass driver: a model's training passes on column chunks, in
//! parallel, with results that do not depend on the number of threads.
//!
//! A batch of `n` columns is split into [`num_chunks`]`(n)` chunks whose boundaries
//! depend only on `n` ([`chunk_ranges`]). Each chunk has its own scratch state (a model's
//! [`ChunkModel::Chunk`]) and its own parameter-gradient buffer; chunks run in parallel
//! (feature `parallel`), and the per-chunk gradients are summed chunk 0 + chunk 1 + … in
//! `f64`, over parameter blocks in parallel. So the bits of every result are a function of
//! the inputs alone, whatever the number of threads or whether `parallel` is on.
//!
//! The passes run in `f64` or `f32` ([`Precision`]): the model's parameters are rounded
//! to the pass type once per forward ([`ChunkModel::pass_params`]), activations and
//! per-chunk gradients are in that type, and what the driver hands back (outputs,
//! reduced parameter gradients, input and condition gradients) is `f64`.
//!
//! A model implements [`ChunkModel`] (generic over the pass type) and keeps a
//! [`Passes`] in a [`Workspace`]; see the example on [`ChunkModel`].

use std::any::Any;

use nalgebra::DMatrixView;

use crate::error::NnError;
use crate::par;
use crate::precision::{Precision, Real};
use crate::subnormal::FlushSubnormals;

/// Columns per chunk aim at this; chunk boundaries depend only on the batch size.
pub const CHUNK_TARGET: usize = 128;
/// Columns per block when a batch is evaluated without gradients ([`Passes::evaluate`]),
/// so memory stays bounded for any batch size.
pub const EVAL_BLOCK: usize = 4096;
/// Parameter block size of the parallel gradient reduction.
const REDUCE_BLOCK: usize = 8192;

/// The number of chunks a batch of `n` columns is split into (at least 1).
pub fn num_chunks(n: usize) -> usize {
    n.div_ceil(CHUNK_TARGET).max(1)
}

/// `(start, len)` of each chunk of a batch of `n` columns: a function of `n` only, with
/// lengths that differ by at most one.
///
/// ```
/// let r: Vec<_> = simfer_nn::driver::chunk_ranges(300).collect();
/// assert_eq!(r, [(0, 100), (100, 100), (200, 100)]);
/// ```
pub fn chunk_ranges(n: usize) -> impl Iterator<Item = (usize, usize)> {
    let k = num_chunks(n);
    (0..k).map(move |i| (i * n / k, (i + 1) * n / k - i * n / k))
}

/// `(start, len)` of the evaluation blocks of a batch of `n` columns.
pub fn eval_blocks(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n.div_ceil(EVAL_BLOCK)).map(move |b| (b * EVAL_BLOCK, EVAL_BLOCK.min(n - b * EVAL_BLOCK)))
}

/// The columns a pass runs on: the modelled variable (`input`, `input_dim × n`) and what
/// it is conditioned on (`condition`, `condition_dim × n`, or `0 × n`/`0 × 0` when there is
/// none). Column `j` of `input` goes with column `j` of `condition`.
#[derive(Clone, Copy, Debug)]
pub struct PassInputs<'a> {
    /// The modelled variable, one sample per column.
    pub input: DMatrixView<'a, f64>,
    /// The condition, one per column (no rows when unconditional).
    pub condition: DMatrixView<'a, f64>,
}

impl PassInputs<'_> {
    /// The number of columns.
    pub fn len(&self) -> usize {
        self.input.ncols()
    }

    /// Whether there are no columns.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The runs of consecutive equal conditions among the columns `start..start + n`, as
    /// the atomic loss lays them out (every atom of a row shares the row's x): writes
    /// their bounds relative to `start` into `bounds` (run `r` is the columns
    /// `bounds[r]..bounds[r + 1]`) and returns true, when there are runs of two columns
    /// or more on average, so that a model evaluates its condition's layers once per
    /// run. Otherwise (or without a condition) clears `bounds` and returns false.
    /// Conditions are equal when their bits are.
    ///
    /// ```
    /// use nalgebra::DMatrix;
    /// use simfer_nn::PassInputs;
    ///
    /// let input = DMatrix::<f64>::zeros(1, 5);
    /// let condition = DMatrix::from_row_slice(1, 5, &[1.0, 1.0, 2.0, 2.0, 2.0]);
    /// let inputs = PassInputs { input: input.as_view(), condition: condition.as_view() };
    /// let mut bounds = Vec::new();
    /// assert!(inputs.condition_runs(0, 5, &mut bounds));
    /// assert_eq!(bounds, [0, 2, 5]);
    /// assert!(!inputs.condition_runs(1, 2, &mut bounds)); // columns 1 and 2 differ
    /// assert!(bounds.is_empty());
    /// ```
    pub fn condition_runs(&self, start: usize, n: usize, bounds: &mut Vec<usize>) -> bool {
        let x = &self.condition;
        let c = x.nrows();
        bounds.clear();
        if c == 0 || n == 0 {
            return false;
        }
        bounds.push(0);
        for j in 1..n {
            let same =
                (0..c).all(|i| x[(i, start + j)].to_bits() == x[(i, start + j - 1)].to_bits());
            if !same {
                bounds.push(j);
            }
        }
        bounds.push(n);
        if 2 * (bounds.len() - 1) > n {
            bounds.clear();
            return false;
        }
        true
    }
}

/// Gradients a backward pass is asked for, all `f64` and all **added** into.
///
/// `params` has one entry per parameter; `input` is `input_dim × n` and `condition` is
/// `condition_dim × n`, column-major, for the `n` columns of the preceding forward pass.
#[derive(Debug, Default)]
pub struct Gradients<'a> {
    /// `∇_params Σ_j w_j f_j` is added here.
    pub params: Option<&'a mut [f64]>,
    /// `∂(Σ_j w_j f_j)/∂input` is added here.
    pub input: Option<&'a mut [f64]>,
    /// `∂(Σ_j w_j f_j)/∂condition` is added here.
    pub condition: Option<&'a mut [f64]>,
}

impl<'a> Gradients<'a> {
    /// Only the parameter gradient.
    pub fn params(grad: &'a mut [f64]) -> Self {
        Gradients {
            params: Some(grad),
            ..Gradients::default()
        }
    }

    /// Only the gradient with respect to the input.
    pub fn input(grad: &'a mut [f64]) -> Self {
        Gradients {
            input: Some(grad),
            ..Gradients::default()
        }
    }

    /// These gradients, also with respect to the input.
    pub fn with_input(mut self, grad: &'a mut [f64]) -> Self {
        self.input = Some(grad);
        self
    }

    /// These gradients, also with respect to the condition.
    pub fn with_condition(mut self, grad: &'a mut [f64]) -> Self {
        self.condition = Some(grad);
        self
    }
}

/// What one chunk's backward pass writes: a chunk-local parameter gradient in the pass
/// type (zeroed by the driver; the chunk **adds** to it), and the chunk's columns of the
/// input and condition gradients (`f64`, **added** to).
#[derive(Debug)]
pub struct ChunkGrads<'a, T> {
    /// The chunk's parameter gradient (all parameters), if wanted.
    pub params: Option<&'a mut [T]>,
    /// `input_dim × len` entries: this chunk's columns of the input gradient.
    pub input: Option<&'a mut [f64]>,
    /// `condition_dim × len` entries: this chunk's columns of the condition gradient.
    pub condition: Option<&'a mut [f64]>,
}

/// A model whose training passes [`Passes`] drives.
///
/// The model computes one scalar per column (a log-density, a logit) in
/// [`forward_chunk`](Self::forward_chunk), keeping in its per-chunk state what
/// [`backward_chunk`](Self::backward_chunk) needs to add `∇ Σ_j w_j f_j`.
///
/// ```
/// use simfer_nn::driver::{ChunkGrads, ChunkModel, PassInputs, Passes};
/// use simfer_nn::{Precision, Real, Workspace, Gradients};
/// use nalgebra::DMatrix;
///
/// /// f(x) = a·Σ_i x_i with one parameter a.
/// struct Sum { a: f64 }
///
/// impl ChunkModel for Sum {
///     type Chunk<T: Real> = Vec<T>; // the column sums, kept for backward
///     fn gradient_len(&self) -> usize { 1 }
///     fn pass_params<T: Real>(&self, out: &mut Vec<T>) {
///         out.clear();
///         out.push(T::of(self.a));
///     }
///     fn forward_chunk<T: Real>(&self, p: &[T], sums: &mut Vec<T>, inputs: &PassInputs<'_>, start: usize, out: &mut [f64]) {
///         sums.clear();
///         for (j, o) in out.iter_mut().enumerate() {
///             let s = inputs.input.column(start + j).iter().fold(T::of(0.0), |acc, v| acc + T::of(*v));
///             sums.push(s);
///             *o = (p[0] * s).widen();
///         }
///     }
///     fn backward_chunk<T: Real>(&self, p: &[T], sums: &mut Vec<T>, w: &[f64], g: ChunkGrads<'_, T>) {
///         if let Some(gp) = g.params {
///             for (s, wj) in sums.iter().zip(w) {
///                 gp[0] += *s * T::of(*wj);
///             }
///         }
///         if let Some(gi) = g.input {
///             let d = gi.len() / w.len().max(1);
///             for (j, wj) in w.iter().enumerate() {
///                 for i in 0..d {
///                     gi[i + j * d] += p[0].widen() * wj;
///                 }
///             }
///         }
///     }
/// }
///
/// let model = Sum { a: 2.0 };
/// let x = DMatrix::from_fn(3, 500, |i, j| (i + j) as f64);
/// let none = DMatrix::<f64>::zeros(0, 500);
/// let mut ws = Workspace::new();
/// let passes: &mut Passes<Sum> = ws.get();
/// let mut out = vec![0.0; 500];
/// let inputs = PassInputs { input: x.as_view(), condition: none.as_view() };
/// passes.forward(&model, Precision::F64, &inputs, &mut out)?;
/// assert_eq!(out[1], 2.0 * (1.0 + 2.0 + 3.0));
/// let mut grad = [0.0];
/// let mut gx = vec![0.0; 3 * 500];
/// passes.backward(&model, &vec![1.0; 500], Gradients::params(&mut grad).with_input(&mut gx), None)?;
/// assert_eq!(grad[0], x.sum());
/// assert!(gx.iter().all(|g| *g == 2.0));
/// # Ok::<(), simfer_nn::NnError>(())
/// ```
pub trait ChunkModel: Sync + 'static {
    /// The per-chunk state (activations and scratch) of a pass in precision `T`. It is
    /// reused from pass to pass, so buffers grow once and are not reallocated.
    type Chunk<T: Real>: Default + Send + 'static;

    /// The length of the parameter gradient (the number of parameters).
    fn gradient_len(&self) -> usize;

    /// The parameters as the passes use them (e.g. with masks applied), rounded to `T`,
    /// written into `out` (cleared first).
    fn pass_params<T: Real>(&self, out: &mut Vec<T>);

    /// The forward pass of columns `start .. start + out.len()` of `inputs`: writes one
    /// value per column into `out` and keeps in `chunk` what the backward pass needs.
    fn forward_chunk<T: Real>(
        &self,
        params: &[T],
        chunk: &mut Self::Chunk<T>,
        inputs: &PassInputs<'_>,
        start: usize,
        out: &mut [f64],
    );

    /// After [`forward_chunk`](Self::forward_chunk) on the same `chunk`: adds the gradients
    /// of `Σ_j weights[j] · f_j` over the chunk's columns into `grads`.
    fn backward_chunk<T: Real>(
        &self,
        params: &[T],
        chunk: &mut Self::Chunk<T>,
        weights: &[f64],
        grads: ChunkGrads<'_, T>,
    );
}

/// What the last forward pass was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Last {
    n: usize,
    precision: Precision,
    input_rows: usize,
    condition_rows: usize,
}

/// One chunk: its columns, its state and its parameter gradient.
struct Slot<S, T> {
    start: usize,
    len: usize,
    state: S,
    grad: Vec<T>,
}

impl<S: Default, T> Default for Slot<S, T> {
    fn default() -> Self {
        Slot {
            start: 0,
            len: 0,
            state: S::default(),
            grad: Vec::new(),
        }
    }
}

/// The buffers of the passes in one precision.
struct Lane<S, T> {
    params: Vec<T>,
    slots: Vec<Slot<S, T>>,
    acc: Vec<f64>,
}

impl<S, T> Default for Lane<S, T> {
    fn default() -> Self {
        Lane {
            params: Vec::new(),
            slots: Vec::new(),
            acc: Vec::new(),
        }
    }
}

/// The reusable state of a model's passes (both precisions), kept in a [`Workspace`].
pub struct Passes<M: ChunkModel> {
    f64s: Lane<M::Chunk<f64>, f64>,
    f32s: Lane<M::Chunk<f32>, f32>,
    last: Option<Last>,
}

impl<M: ChunkModel> Default for Passes<M> {
    fn default() -> Self {
        Passes {
            f64s: Lane::default(),
            f32s: Lane::default(),
            last: None,
        }
    }
}

impl<M: ChunkModel> std::fmt::Debug for Passes<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passes").field("last", &self.last).finish()
    }
}

/// A pass type with its lane in [`Passes`].
trait PassReal: Real {
    fn lane<M: ChunkModel>(p: &mut Passes<M>) -> &mut Lane<M::Chunk<Self>, Self>;
    fn lane_ref<M: ChunkModel>(p: &Passes<M>) -> &Lane<M::Chunk<Self>, Self>;
}

impl PassReal for f64 {
    fn lane<M: ChunkModel>(p: &mut Passes<M>) -> &mut Lane<M::Chunk<f64>, f64> {
        &mut p.f64s
    }
    fn lane_ref<M: ChunkModel>(p: &Passes<M>) -> &Lane<M::Chunk<f64>, f64> {
        &p.f64s
    }
}

impl PassReal for f32 {
    fn lane<M: ChunkModel>(p: &mut Passes<M>) -> &mut Lane<M::Chunk<f32>, f32> {
        &mut p.f32s
    }
    fn lane_ref<M: ChunkModel>(p: &Passes<M>) -> &Lane<M::Chunk<f32>, f32> {
        &p.f32s
    }
}

impl<M: ChunkModel> Passes<M> {
    /// The forward pass of every column of `inputs` in `precision`, one value per column
    /// into `out` (`out.len()` must be the number of columns). The chunks keep what
    /// [`backward`](Self::backward) needs.
    pub fn forward(
        &mut self,
        model: &M,
        precision: Precision,
        inputs: &PassInputs<'_>,
        out: &mut [f64],
    ) -> Result<(), NnError> {
        let n = inputs.len();
        check_inputs(inputs, out)?;
        self.last = None;
        match precision {
            Precision::F64 => self.forward_in::<f64>(model, inputs, out),
            Precision::F32 => self.forward_in::<f32>(model, inputs, out),
        }
        self.last = Some(Last {
            n,
            precision,
            input_rows: inputs.input.nrows(),
            condition_rows: inputs.condition.nrows(),
        });
        Ok(())
    }

    /// The forward pass in `f64` in blocks of [`EVAL_BLOCK`] columns, for evaluation
    /// without gradients (memory stays bounded for any batch). No backward pass can
    /// follow it.
    pub fn evaluate(
        &mut self,
        model: &M,
        inputs: &PassInputs<'_>,
        out: &mut [f64],
    ) -> Result<(), NnError> {
        check_inputs(inputs, out)?;
        self.last = None;
        let n = inputs.len();
        let conditional = inputs.condition.nrows() > 0 && inputs.condition.ncols() == n;
        for (start, len) in eval_blocks(n) {
            let block = PassInputs {
                input: inputs.input.columns(start, len),
                condition: if conditional {
                    inputs.condition.columns(start, len)
                } else {
                    inputs.condition.columns(0, 0)
                },
            };
            self.forward_in::<f64>(model, &block, &mut out[start..start + len]);
        }
        Ok(())
    }

    fn forward_in<T: PassReal>(&mut self, model: &M, inputs: &PassInputs<'_>, out: &mut [f64]) {
        let n = out.len();
        let lane = T::lane(self);
        model.pass_params(&mut lane.params);
        lane.slots.resize_with(num_chunks(n), Slot::default);
        for (slot, (start, len)) in lane.slots.iter_mut().zip(chunk_ranges(n)) {
            slot.start = start;
            slot.len = len;
        }
        let params = &lane.params[..];
        let pieces = par::split_lengths(out, lane.slots.iter().map(|s| s.len));
        let items: Vec<_> = lane.slots.iter_mut().zip(pieces).collect();
        par::for_each(items, |(slot, o)| {
            if slot.len > 0 {
                let _flush = FlushSubnormals::new();
                model.forward_chunk(params, &mut slot.state, inputs, slot.start, o);
            }
        });
    }

    /// After [`forward`](Self::forward): adds the gradients of `Σ_j weights[j] · f_j` into
    /// `grads`. The parameter gradient is reduced over the chunks in `f64` in a fixed
    /// order; with `mask`, entry `i` of it is multiplied by `mask[i]` before it is added
    /// (e.g. the zero entries of a masked layer).
    pub fn backward(
        &mut self,
        model: &M,
        weights: &[f64],
        grads: Gradients<'_>,
        mask: Option<&[f64]>,
    ) -> Result<(), NnError> {
        let last = self.last.ok_or_else(|| {
            NnError::OutOfOrder(
                "a backward pass needs a preceding forward pass on the same workspace".into(),
            )
        })?;
        if weights.len() != last.n {
            return Err(NnError::dims(
                "weights (one per column of the last forward pass)",
                last.n,
                weights.len(),
            ));
        }
        let np = model.gradient_len();
        let checks = [
            (
                "parameter gradient",
                grads.params.as_ref().map(|g| g.len()),
                np,
            ),
            (
                "input gradient (input rows × columns)",
                grads.input.as_ref().map(|g| g.len()),
                last.input_rows * last.n,
            ),
            (
                "condition gradient (condition rows × columns)",
                grads.condition.as_ref().map(|g| g.len()),
                last.condition_rows * last.n,
            ),
            ("gradient mask", mask.map(<[f64]>::len), np),
        ];
        for (what, found, expected) in checks {
            if let Some(found) = found
                && found != expected
            {
                return Err(NnError::dims(what, expected, found));
            }
        }
        match last.precision {
            Precision::F64 => self.backward_in::<f64>(model, last, weights, grads, mask),
            Precision::F32 => self.backward_in::<f32>(model, last, weights, grads, mask),
        }
        Ok(())
    }

    fn backward_in<T: PassReal>(
        &mut self,
        model: &M,
        last: Last,
        weights: &[f64],
        grads: Gradients<'_>,
        mask: Option<&[f64]>,
    ) {
        let np = model.gradient_len();
        let lane = T::lane(self);
        let want_params = grads.params.is_some();
        let lens: Vec<usize> = lane.slots.iter().map(|s| s.len).collect();
        let inputs = split_columns(grads.input, last.input_rows, &lens);
        let conditions = split_columns(grads.condition, last.condition_rows, &lens);
        let params = &lane.params[..];
        let items: Vec<_> = lane.slots.iter_mut().zip(inputs).zip(conditions).collect();
        par::for_each(items, |((slot, gi), gc)| {
            if want_params {
                slot.grad.clear();
                slot.grad.resize(np, T::of(0.0));
            }
            if slot.len == 0 {
                return;
            }
            let w = &weights[slot.start..slot.start + slot.len];
            let Slot { state, grad, .. } = slot;
            let _flush = FlushSubnormals::new();
            model.backward_chunk(
                params,
                state,
                w,
                ChunkGrads {
                    params: want_params.then_some(&mut grad[..]),
                    input: gi,
                    condition: gc,
                },
            );
        });
        if let Some(g) = grads.params {
            let chunk_grads: Vec<&[T]> = lane.slots.iter().map(|s| &s.grad[..]).collect();
            reduce(&mut lane.acc, &chunk_grads, g, mask);
        }
    }

    /// The precision and number of columns of the last [`forward`](Self::forward), if a
    /// backward pass can follow.
    pub fn last(&self) -> Option<(Precision, usize)> {
        self.last.map(|l| (l.precision, l.n))
    }

    /// The chunks of the last `f64` pass: `(start, len, state)` in column order.
    pub fn chunks_f64(&self) -> impl Iterator<Item = (usize, usize, &M::Chunk<f64>)> {
        <f64 as PassReal>::lane_ref(self)
            .slots
            .iter()
            .map(|s| (s.start, s.len, &s.state))
    }
}

/// The pieces of a column-major gradient (`rows` per column) for chunks of `lens` columns.
fn split_columns<'a>(
    g: Option<&'a mut [f64]>,
    rows: usize,
    lens: &[usize],
) -> Vec<Option<&'a mut [f64]>> {
    match g {
        Some(g) => par::split_lengths(g, lens.iter().map(|l| l * rows))
            .into_iter()
            .map(Some)
            .collect(),
        None => lens.iter().map(|_| None).collect(),
    }
}

fn check_inputs(inputs: &PassInputs<'_>, out: &[f64]) -> Result<(), NnError> {
    let n = inputs.len();
    if out.len() != n {
        return Err(NnError::dims(
            "output length (one per column)",
            n,
            out.len(),
        ));
    }
    let c = &inputs.condition;
    if c.nrows() > 0 && c.ncols() != n {
        return Err(NnError::dims(
            "condition columns (one per input column)",
            n,
            c.ncols(),
        ));
    }
    Ok(())
}

/// `g += mask ⊙ Σ_chunks grad_chunk`, the sum taken chunk 0 + chunk 1 + … in `f64`, over
/// parameter blocks in parallel: the same bits for any number of threads.
fn reduce<T: Real>(acc: &mut Vec<f64>, chunk_grads: &[&[T]], g: &mut [f64], mask: Option<&[f64]>) {
    let Some((first, rest)) = chunk_grads.split_first() else {
        return;
    };
    let np = g.len();
    acc.resize(np, 0.0);
    let masks: Vec<Option<&[f64]>> = match mask {
        Some(m) => m.chunks(REDUCE_BLOCK).map(Some).collect(),
        None => (0..np.div_ceil(REDUCE_BLOCK)).map(|_| None).collect(),
    };
    let items: Vec<_> = acc
        .chunks_mut(REDUCE_BLOCK)
        .zip(g.chunks_mut(REDUCE_BLOCK))
        .zip(masks)
        .enumerate()
        .collect();
    par::for_each(items, |(b, ((acc, gb), mb))| {
        let lo = b * REDUCE_BLOCK;
        let hi = lo + acc.len();
        widen_copy(acc, &first[lo..hi]);
        for ch in rest {
            widen_add(acc, &ch[lo..hi]);
        }
        match mb {
            Some(m) => add_masked(gb, m, acc),
            None => crate::linalg::add_assign(gb, acc),
        }
    });
}

crate::fastmath::simd_dispatch!(
    /// `g[i] += mask[i] · x[i]`.
    fn add_masked(g: &mut [f64], mask: &[f64], x: &[f64]) => add_masked_g
);

#[inline(always)]
fn add_masked_g(g: &mut [f64], mask: &[f64], x: &[f64]) {
    for ((gi, m), xi) in g.iter_mut().zip(mask).zip(x) {
        *gi += *m * *xi;
    }
}

crate::fastmath::simd_dispatch!(
    /// `acc[i] = x[i]` widened to `f64`.
    fn widen_copy<T: Real>(acc: &mut [f64], x: &[T]) => widen_copy_g
);

crate::fastmath::simd_dispatch!(
    /// `acc[i] += x[i]` widened to `f64`.
    fn widen_add<T: Real>(acc: &mut [f64], x: &[T]) => widen_add_g
);

#[inline(always)]
fn widen_copy_g<T: Real>(acc: &mut [f64], x: &[T]) {
    for (a, v) in acc.iter_mut().zip(x) {
        *a = v.widen();
    }
}

#[inline(always)]
fn widen_add_g<T: Real>(acc: &mut [f64], x: &[T]) {
    for (a, v) in acc.iter_mut().zip(x) {
        *a += v.widen();
    }
}

/// Scratch space for a model's passes, of any type: an estimator keeps its [`Passes`]
/// (or anything else) here, so the estimator interface needs no associated workspace type
/// and stays object safe. A workspace grows to the largest batch it has seen.
///
/// ```
/// let mut ws = simfer_nn::Workspace::new();
/// ws.get::<Vec<f64>>().push(1.0);
/// assert_eq!(ws.get::<Vec<f64>>().len(), 1);
/// // Asking for another type replaces the contents.
/// assert_eq!(*ws.get::<u32>(), 0);
/// ```
#[derive(Default)]
pub struct Workspace {
    inner: Option<Box<dyn Any + Send>>,
}

impl Workspace {
    /// An empty workspace.
    pub fn new() -> Self {
        Workspace::default()
    }

    /// The workspace's contents as a `W`, created with `W::default()` when it holds
    /// nothing or something of another type.
    pub fn get<W: Any + Send + Default>(&mut self) -> &mut W {
        if !self.inner.as_ref().is_some_and(|b| b.is::<W>()) {
            self.inner = Some(Box::new(W::default()));
        }
        match self.inner.as_mut().and_then(|b| b.downcast_mut::<W>()) {
            Some(w) => w,
            None => unreachable!("the workspace was just set to this type"),
        }
    }

    /// The contents as a `W`, if it holds one.
    pub fn get_ref<W: Any + Send>(&self) -> Option<&W> {
        self.inner.as_ref().and_then(|b| b.downcast_ref::<W>())
    }

    /// Drops the contents (frees the buffers).
    pub fn clear(&mut self) {
        self.inner = None;
    }
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("used", &self.inner.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_batch_and_depend_only_on_its_size() {
        for n in [0, 1, 127, 128, 129, 255, 256, 1000, 2001] {
            let r: Vec<_> = chunk_ranges(n).collect();
            assert_eq!(r.len(), num_chunks(n));
            let mut next = 0;
            for &(s, l) in &r {
                assert_eq!(s, next);
                assert!(l <= CHUNK_TARGET);
                next += l;
            }
            assert_eq!(next, n);
            let (lo, hi) = r
                .iter()
                .fold((usize::MAX, 0), |(a, b), &(_, l)| (a.min(l), b.max(l)));
            assert!(hi - lo <= 1, "n = {n}: lengths {lo}..{hi}");
        }
        let b: Vec<_> = eval_blocks(2 * EVAL_BLOCK + 5).collect();
        assert_eq!(
            b,
            [
                (0, EVAL_BLOCK),
                (EVAL_BLOCK, EVAL_BLOCK),
                (2 * EVAL_BLOCK, 5)
            ]
        );
    }
}
