//! The masked autoregressive flow (MAF) of the reference library, conditional or not.
//!
//! Forward direction (data → noise), as in the reference (§3.2 of the behaviour spec):
//! ```text
//! z = (θ − μ_θ)/σ_θ,  L = −Σ log σ_θ           standardization, part of the flow
//! c = (x − μ_x)/σ_x                            standardized context, fed to every MADE
//! for k = 1..K:  (a, b) = MADE_k(z, c);  s = softplus(a) + 1e-3
//!                z ← s ⊙ z + b;  L += Σ log s;  z ← z[perm_k]
//! log q(θ | x) = −½‖z‖² − (D/2) log 2π + L
//! ```

use nalgebra::{DMatrix, DMatrixView, DVector};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::FlowError;
use crate::estimator::ConditionalDensityEstimator;
use crate::fastmath;
use crate::layers::Activation;
use crate::made::{MadeActs, MadeLayout};
use crate::precision::{Precision, Real};

/// Lower bound on the standard deviation used to standardize θ (as the reference).
pub const THETA_MIN_STD: f64 = 1e-14;
/// Lower bound on the standard deviation used to standardize x (as the reference).
pub const X_MIN_STD: f64 = 1e-7;
/// Added to `softplus(a)` to get the scale of each affine step.
pub const MIN_SCALE: f64 = 1e-3;
/// Columns per parallel chunk aim at this; chunk boundaries depend only on the batch size.
const CHUNK_TARGET: usize = 128;

/// Architecture of a [`Maf`] and the precision of its training passes. The
/// architecture's defaults are the reference library's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MafConfig {
    /// Width of every hidden layer (default 50).
    pub hidden_features: usize,
    /// Number of MADE transforms (default 5).
    pub num_transforms: usize,
    /// Hidden blocks per MADE after the input layer (default 2).
    pub num_blocks: usize,
    /// Activation of the hidden layers and of the context layer (default tanh).
    pub activation: Activation,
    /// Standardize θ as the first transform of the flow (default true).
    pub standardize_theta: bool,
    /// Standardize the context x before it enters the MADEs (default true).
    pub standardize_x: bool,
    /// Precision of the training passes [`forward`](ConditionalDensityEstimator::forward)
    /// and [`backward`](ConditionalDensityEstimator::backward) (default
    /// [`Precision::F32`], measured to be faster at the same accuracy; see
    /// [`Precision`]). Parameters stay `f64`; evaluation (`log_prob`, `sample`,
    /// `inverse`, `log_prob_grad_theta`, `transform_to_noise`) is always `f64`. Not part
    /// of the architecture: [`Maf::check_architecture`] ignores it, files written before
    /// it existed load with the default, and [`Maf::set_precision`] changes it.
    #[serde(default)]
    pub precision: Precision,
}

impl Default for MafConfig {
    fn default() -> Self {
        MafConfig {
            hidden_features: 50,
            num_transforms: 5,
            num_blocks: 2,
            activation: Activation::Tanh,
            standardize_theta: true,
            standardize_x: true,
            precision: Precision::default(),
        }
    }
}

impl MafConfig {
    fn check(&self) -> Result<(), FlowError> {
        if self.hidden_features == 0 {
            return Err(FlowError::InvalidConfig(
                "hidden_features must be at least 1, found 0".into(),
            ));
        }
        if self.num_transforms == 0 {
            return Err(FlowError::InvalidConfig(
                "num_transforms must be at least 1, found 0".into(),
            ));
        }
        Ok(())
    }
}

/// Per-dimension mean and standard deviation used to standardize a variable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standardization {
    /// Means (one per dimension).
    pub mean: Vec<f64>,
    /// Standard deviations (one per dimension), already floored.
    pub std: Vec<f64>,
}

impl Standardization {
    /// Mean 0 and standard deviation 1 (no standardization).
    pub fn identity(dim: usize) -> Self {
        Standardization {
            mean: vec![0.0; dim],
            std: vec![1.0; dim],
        }
    }

    /// Per-row mean and unbiased standard deviation (floored at `min_std`) over the
    /// columns where `valid` is true.
    fn from_columns(data: &DMatrix<f64>, valid: &[bool], min_std: f64) -> Self {
        let d = data.nrows();
        let count = valid.iter().filter(|v| **v).count() as f64;
        let mut mean = vec![0.0; d];
        for (j, col) in data.column_iter().enumerate() {
            if valid[j] {
                for (m, v) in mean.iter_mut().zip(col.iter()) {
                    *m += *v;
                }
            }
        }
        mean.iter_mut().for_each(|m| *m /= count);
        let mut var = vec![0.0; d];
        for (j, col) in data.column_iter().enumerate() {
            if valid[j] {
                for ((s, v), m) in var.iter_mut().zip(col.iter()).zip(&mean) {
                    *s += (v - m) * (v - m);
                }
            }
        }
        let std = var
            .iter()
            .map(|s| (s / (count - 1.0)).sqrt().max(min_std))
            .collect();
        Standardization { mean, std }
    }

    fn check(&self, dim: usize, what: &'static str) -> Result<(), FlowError> {
        if self.mean.len() != dim || self.std.len() != dim {
            return Err(FlowError::dims(
                what,
                format!("{dim} means and standard deviations"),
                format!("{} and {}", self.mean.len(), self.std.len()),
            ));
        }
        if self.mean.iter().chain(&self.std).any(|v| !v.is_finite()) {
            return Err(FlowError::NonFinite(what));
        }
        if let Some(s) = self.std.iter().find(|s| **s <= 0.0) {
            return Err(FlowError::InvalidConfig(format!(
                "{what}: standard deviations must be positive, found {s}"
            )));
        }
        Ok(())
    }
}

/// A conditional masked autoregressive flow q(θ | x) (or unconditional q(θ)), with its
/// parameters in one flat vector.
///
/// ```
/// use nalgebra::DMatrix;
/// use simfer_flows::{ConditionalDensityEstimator, Maf, MafConfig};
///
/// let theta = DMatrix::from_fn(2, 100, |i, j| ((i + 3 * j) as f64).sin());
/// let x = DMatrix::from_fn(3, 100, |i, j| ((2 * i + j) as f64).cos());
/// let maf = Maf::new(&MafConfig::default(), &theta, &x, 42).unwrap();
/// let lp = maf.log_prob(&theta, &x).unwrap();
/// assert_eq!(lp.len(), 100);
/// let samples = maf.sample(10, &[0.1, 0.2, 0.3], &mut rand::rng()).unwrap();
/// assert_eq!(samples.shape(), (2, 10));
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "MafData", into = "MafData")]
pub struct Maf {
    data: MafData,
    mades: Vec<MadeLayout>,
    mask: Vec<f64>,
    inv_perms: Vec<Vec<usize>>,
    log_det_std: f64,
}

/// The stored state of a [`Maf`] (what its files hold).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct MafData {
    pub(crate) config: MafConfig,
    pub(crate) theta_dim: usize,
    pub(crate) context_dim: usize,
    pub(crate) theta_stats: Standardization,
    pub(crate) x_stats: Standardization,
    pub(crate) params: Vec<f64>,
    pub(crate) permutations: Vec<Vec<usize>>,
}

impl From<Maf> for MafData {
    fn from(m: Maf) -> Self {
        m.data
    }
}

impl TryFrom<MafData> for Maf {
    type Error = FlowError;
    fn try_from(data: MafData) -> Result<Self, FlowError> {
        Maf::from_data(data)
    }
}

fn layouts(config: &MafConfig, d: usize, c: usize) -> Vec<MadeLayout> {
    let mut offset = 0;
    (0..config.num_transforms)
        .map(|_| {
            let l = MadeLayout::new(d, c, config.hidden_features, config.num_blocks, offset);
            offset = l.end();
            l
        })
        .collect()
}

impl Maf {
    /// A conditional MAF for θ (`D × n`) given x (`C × n`), with standardization
    /// statistics computed from these data (columns with any non-finite entry in θ or x
    /// are left out) and weights and permutations drawn from `seed`.
    pub fn new(
        config: &MafConfig,
        theta: &DMatrix<f64>,
        x: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Maf, FlowError> {
        if x.ncols() != theta.ncols() {
            return Err(FlowError::dims(
                "number of x columns (one per θ column)",
                theta.ncols(),
                x.ncols(),
            ));
        }
        let n = theta.ncols();
        let valid: Vec<bool> = (0..n)
            .map(|j| {
                theta
                    .column(j)
                    .iter()
                    .chain(x.column(j).iter())
                    .all(|v| v.is_finite())
            })
            .collect();
        let found = valid.iter().filter(|v| **v).count();
        let needs_stats = config.standardize_theta || (config.standardize_x && x.nrows() > 0);
        if needs_stats && found < 2 {
            return Err(FlowError::InsufficientData {
                needed: 2,
                found,
                total: n,
            });
        }
        let theta_stats = if config.standardize_theta {
            Standardization::from_columns(theta, &valid, THETA_MIN_STD)
        } else {
            Standardization::identity(theta.nrows())
        };
        let x_stats = if config.standardize_x && x.nrows() > 0 {
            Standardization::from_columns(x, &valid, X_MIN_STD)
        } else {
            Standardization::identity(x.nrows())
        };
        Maf::with_statistics(config, theta_stats, x_stats, seed)
    }

    /// An unconditional MAF q(θ) with θ statistics from `theta` (`D × n`).
    pub fn new_unconditional(
        config: &MafConfig,
        theta: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Maf, FlowError> {
        Maf::new(config, theta, &DMatrix::zeros(0, theta.ncols()), seed)
    }

    /// A MAF with given standardization statistics (`theta_stats` has `D` entries,
    /// `x_stats` has `C`, possibly 0). Weights use PyTorch's default initialization
    /// (uniform on ±1/√fan_in); permutations are uniformly random; both from `seed`.
    pub fn with_statistics(
        config: &MafConfig,
        theta_stats: Standardization,
        x_stats: Standardization,
        seed: u64,
    ) -> Result<Maf, FlowError> {
        config.check()?;
        let d = theta_stats.mean.len();
        let c = x_stats.mean.len();
        if d == 0 {
            return Err(FlowError::dims("θ dimension", "at least 1", 0));
        }
        let mades = layouts(config, d, c);
        let num_params = mades.last().map_or(0, MadeLayout::end);
        let mut params = vec![0.0; num_params];
        let mut permutations = Vec::with_capacity(config.num_transforms);
        let mut rng = StdRng::seed_from_u64(seed);
        for made in &mades {
            made.input.init_uniform(&mut params, &mut rng);
            if let Some(cl) = &made.context {
                cl.init_uniform(&mut params, &mut rng);
            }
            for b in &made.blocks {
                b.init_uniform(&mut params, &mut rng);
            }
            made.output.init_uniform(&mut params, &mut rng);
            let mut perm: Vec<usize> = (0..d).collect();
            perm.shuffle(&mut rng);
            permutations.push(perm);
        }
        Maf::from_data(MafData {
            config: config.clone(),
            theta_dim: d,
            context_dim: c,
            theta_stats,
            x_stats,
            params,
            permutations,
        })
    }

    /// Builds the derived state and checks that everything fits together.
    pub(crate) fn from_data(data: MafData) -> Result<Maf, FlowError> {
        data.config.check()?;
        let (d, c) = (data.theta_dim, data.context_dim);
        if d == 0 {
            return Err(FlowError::dims("θ dimension", "at least 1", 0));
        }
        data.theta_stats.check(d, "θ standardization statistics")?;
        data.x_stats.check(c, "x standardization statistics")?;
        let mades = layouts(&data.config, d, c);
        let num_params = mades.last().map_or(0, MadeLayout::end);
        if data.params.len() != num_params {
            return Err(FlowError::ArchitectureMismatch(format!(
                "a MAF with θ dimension {d}, context dimension {c} and {:?} has {num_params} parameters, found {}",
                data.config,
                data.params.len()
            )));
        }
        if data.permutations.len() != data.config.num_transforms {
            return Err(FlowError::ArchitectureMismatch(format!(
                "expected {} permutations (one per transform), found {}",
                data.config.num_transforms,
                data.permutations.len()
            )));
        }
        let mut inv_perms = Vec::with_capacity(data.permutations.len());
        for p in &data.permutations {
            let mut inv = vec![usize::MAX; d];
            for (i, &pi) in p.iter().enumerate() {
                if pi < d && inv[pi] == usize::MAX {
                    inv[pi] = i;
                }
            }
            if p.len() != d || inv.contains(&usize::MAX) {
                return Err(FlowError::ArchitectureMismatch(format!(
                    "{p:?} is not a permutation of 0..{d}"
                )));
            }
            inv_perms.push(inv);
        }
        let mut mask = vec![1.0; num_params];
        for m in &mades {
            m.write_mask(&mut mask);
        }
        let log_det_std = -data.theta_stats.std.iter().map(|s| s.ln()).sum::<f64>();
        Ok(Maf {
            data,
            mades,
            mask,
            inv_perms,
            log_det_std,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &MafConfig {
        &self.data.config
    }

    /// The statistics θ is standardized with (the flow's first transform).
    pub fn theta_standardization(&self) -> &Standardization {
        &self.data.theta_stats
    }

    /// The statistics the context x is standardized with.
    pub fn x_standardization(&self) -> &Standardization {
        &self.data.x_stats
    }

    /// The fixed permutations, one per transform: after transform `k`,
    /// `z_out[i] = z_in[perm_k[i]]`.
    pub fn permutations(&self) -> &[Vec<usize>] {
        &self.data.permutations
    }

    /// The layout of each MADE in the flat parameter vector.
    pub fn made_layouts(&self) -> &[MadeLayout] {
        &self.mades
    }

    /// The parameter mask: 0 for masked weight entries (always with zero gradient), 1
    /// for all others.
    pub fn param_mask(&self) -> &[f64] {
        &self.mask
    }

    /// Sets the precision of the training passes (see [`MafConfig::precision`]).
    pub fn set_precision(&mut self, precision: Precision) {
        self.data.config.precision = precision;
    }

    /// Checks that this flow has the given architecture and dimensions; the error says
    /// what differs. The training [`precision`](MafConfig::precision) is not compared.
    pub fn check_architecture(
        &self,
        config: &MafConfig,
        theta_dim: usize,
        context_dim: usize,
    ) -> Result<(), FlowError> {
        let same = MafConfig {
            precision: self.data.config.precision,
            ..config.clone()
        };
        if self.data.config != same
            || self.data.theta_dim != theta_dim
            || self.data.context_dim != context_dim
        {
            return Err(FlowError::ArchitectureMismatch(format!(
                "expected θ dimension {theta_dim}, context dimension {context_dim}, {config:?}; found θ dimension {}, context dimension {}, {:?}",
                self.data.theta_dim, self.data.context_dim, self.data.config
            )));
        }
        Ok(())
    }

    /// The masked parameters `p ⊙ mask`, rounded to `T`.
    fn masked_params_into<T: Real>(&self, out: &mut Vec<T>) {
        out.clear();
        out.extend(
            self.data
                .params
                .iter()
                .zip(&self.mask)
                .map(|(p, m)| T::of(p * m)),
        );
    }

    fn check_batch(
        &self,
        theta: &DMatrixView<'_, f64>,
        x: &DMatrixView<'_, f64>,
    ) -> Result<usize, FlowError> {
        let (d, c) = (self.data.theta_dim, self.data.context_dim);
        if theta.nrows() != d {
            return Err(FlowError::dims("θ rows (θ dimension)", d, theta.nrows()));
        }
        let n = theta.ncols();
        if x.nrows() != c {
            return Err(FlowError::dims("x rows (context dimension)", c, x.nrows()));
        }
        if c > 0 && x.ncols() != n {
            return Err(FlowError::dims(
                "x columns (one per θ column)",
                n,
                x.ncols(),
            ));
        }
        Ok(n)
    }

    /// The training forward pass in precision `T` (see [`ConditionalDensityEstimator::forward`]).
    fn forward_in<T: PassReal>(
        &self,
        ws: &mut MafWorkspace,
        theta: DMatrixView<'_, f64>,
        x: DMatrixView<'_, f64>,
        out: &mut [f64],
    ) -> Result<(), FlowError> {
        let n = self.check_batch(&theta, &x)?;
        if out.len() != n {
            return Err(FlowError::dims(
                "output length (one per column)",
                n,
                out.len(),
            ));
        }
        ws.last = None;
        let passes = T::passes(ws);
        self.masked_params_into(&mut passes.masked);
        passes.chunks.resize_with(num_chunks(n), Chunk::default);
        for (ch, (start, len)) in passes.chunks.iter_mut().zip(chunk_ranges(n)) {
            ch.resize(self, start, len);
        }
        let masked = &passes.masked;
        passes
            .chunks
            .par_iter_mut()
            .for_each(|ch| ch.forward(self, masked, &theta, &x));
        for ch in &passes.chunks {
            for (o, l) in out[ch.start..ch.start + ch.len].iter_mut().zip(&ch.lp) {
                *o = l.widen();
            }
        }
        ws.last = Some((n, T::PRECISION));
        Ok(())
    }

    /// Shared body of `backward` and `log_prob_grad_theta`.
    fn backward_impl(
        &self,
        ws: &mut MafWorkspace,
        weights: &[f64],
        grad: Option<&mut [f64]>,
        theta_grad: Option<&mut DMatrix<f64>>,
    ) -> Result<(), FlowError> {
        let (n, precision) = ws.last.ok_or_else(|| {
            FlowError::InvalidConfig(
                "backward called without a preceding forward on this workspace".into(),
            )
        })?;
        if weights.len() != n {
            return Err(FlowError::dims(
                "weights (one per column of the last forward)",
                n,
                weights.len(),
            ));
        }
        if let Some(g) = &grad {
            if g.len() != self.num_params() {
                return Err(FlowError::dims(
                    "gradient length",
                    self.num_params(),
                    g.len(),
                ));
            }
        }
        match precision {
            Precision::F64 => self.backward_in::<f64>(ws, n, weights, grad, theta_grad),
            Precision::F32 => self.backward_in::<f32>(ws, n, weights, grad, theta_grad),
        }
        Ok(())
    }

    /// The backward pass in precision `T`, after a forward in `T` of `n` columns.
    fn backward_in<T: PassReal>(
        &self,
        ws: &mut MafWorkspace,
        n: usize,
        weights: &[f64],
        grad: Option<&mut [f64]>,
        theta_grad: Option<&mut DMatrix<f64>>,
    ) {
        let want_params = grad.is_some();
        let want_theta = theta_grad.is_some();
        let np = self.num_params();
        let passes = T::passes(ws);
        let masked = &passes.masked;
        passes.chunks.par_iter_mut().for_each(|ch| {
            ch.backward(
                self,
                masked,
                &weights[ch.start..ch.start + ch.len],
                want_params,
                want_theta,
                np,
            );
        });
        if let Some(g) = grad {
            // Chunk 0 + chunk 1 + … elementwise in f64, over parameter blocks in
            // parallel: the same bits for any number of threads.
            if let Some((first, rest)) = passes.chunks.split_first() {
                passes.acc.resize(np, 0.0);
                passes
                    .acc
                    .par_chunks_mut(REDUCE_BLOCK)
                    .zip(g.par_chunks_mut(REDUCE_BLOCK))
                    .zip(self.mask.par_chunks(REDUCE_BLOCK))
                    .enumerate()
                    .for_each(|(b, ((acc, gb), mb))| {
                        let lo = b * REDUCE_BLOCK;
                        let hi = lo + acc.len();
                        widen_copy(acc, &first.grad[lo..hi]);
                        for ch in rest {
                            widen_add(acc, &ch.grad[lo..hi]);
                        }
                        add_masked(gb, mb, acc);
                    });
            }
        }
        if let Some(tg) = theta_grad {
            let d = self.data.theta_dim;
            *tg = DMatrix::zeros(d, n);
            for ch in &passes.chunks {
                for j in 0..ch.len {
                    for i in 0..d {
                        tg[(i, ch.start + j)] =
                            ch.g_u[i + j * d].widen() / self.data.theta_stats.std[i];
                    }
                }
            }
        }
    }
}

fastmath::simd_dispatch!(
    fn add_masked(g: &mut [f64], mask: &[f64], x: &[f64]) => add_masked_g
);

#[inline(always)]
fn add_masked_g(g: &mut [f64], mask: &[f64], x: &[f64]) {
    for ((gi, m), xi) in g.iter_mut().zip(mask).zip(x) {
        *gi += *m * *xi;
    }
}

fastmath::simd_dispatch!(
    /// `acc[i] = x[i]` widened to `f64`.
    fn widen_copy<T: Real>(acc: &mut [f64], x: &[T]) => widen_copy_g
);

fastmath::simd_dispatch!(
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

/// Parameter block size for the parallel reduction of per-chunk gradients.
const REDUCE_BLOCK: usize = 8192;

/// Columns per block when evaluating large batches without gradients.
pub const EVAL_BLOCK: usize = 4096;

fn eval_blocks(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n.div_ceil(EVAL_BLOCK)).map(move |b| (b * EVAL_BLOCK, EVAL_BLOCK.min(n - b * EVAL_BLOCK)))
}

fn num_chunks(n: usize) -> usize {
    n.div_ceil(CHUNK_TARGET).max(1)
}

/// Column ranges of the parallel chunks for a batch of `n`: a function of `n` only.
fn chunk_ranges(n: usize) -> impl Iterator<Item = (usize, usize)> {
    let k = num_chunks(n);
    (0..k).map(move |i| (i * n / k, (i + 1) * n / k - i * n / k))
}

/// Reusable buffers for [`Maf`]'s forward and backward passes (in either precision).
#[derive(Clone, Debug, Default)]
pub struct MafWorkspace {
    f64s: Passes<f64>,
    f32s: Passes<f32>,
    /// Number of columns and precision of the last forward pass.
    last: Option<(usize, Precision)>,
}

/// The buffers of the passes in one precision.
#[derive(Clone, Debug, Default)]
struct Passes<T> {
    /// The masked parameters, converted to `T`.
    masked: Vec<T>,
    chunks: Vec<Chunk<T>>,
    /// The per-chunk gradients summed in `f64`.
    acc: Vec<f64>,
}

/// A precision the passes run in, with its buffers in the workspace.
trait PassReal: Real {
    const PRECISION: Precision;
    fn passes(ws: &mut MafWorkspace) -> &mut Passes<Self>;
}

impl PassReal for f64 {
    const PRECISION: Precision = Precision::F64;
    fn passes(ws: &mut MafWorkspace) -> &mut Passes<f64> {
        &mut ws.f64s
    }
}

impl PassReal for f32 {
    const PRECISION: Precision = Precision::F32;
    fn passes(ws: &mut MafWorkspace) -> &mut Passes<f32> {
        &mut ws.f32s
    }
}

#[derive(Clone, Debug, Default)]
struct Chunk<T> {
    start: usize,
    len: usize,
    /// Standardized context, `C × len`.
    c: Vec<T>,
    /// Inputs of each transform and the final noise: `(K + 1)` blocks of `D × len`.
    u: Vec<T>,
    /// Context-layer outputs: `K` blocks of `H × len`.
    ctx: Vec<T>,
    /// Hidden outputs: `K · (B + 1)` blocks of `H × len`.
    hid: Vec<T>,
    /// MADE outputs: `K` blocks of `2D × len`.
    out: Vec<T>,
    /// Scales: `K` blocks of `D × len`.
    s: Vec<T>,
    /// Unconstrained scales `a` (de-interleaved): `K` blocks of `D × len`.
    a: Vec<T>,
    /// Scratch, `D × len` each.
    v: Vec<T>,
    tmp: Vec<T>,
    /// log q per column.
    lp: Vec<T>,
    // Backward scratch.
    w: Vec<T>,
    g_u: Vec<T>,
    g_v: Vec<T>,
    g_out: Vec<T>,
    g_made: Vec<T>,
    gh: Vec<T>,
    gh2: Vec<T>,
    grad: Vec<T>,
}

const LN_2PI: f64 = 1.837_877_066_409_345_5;

fastmath::simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn affine_forward<T: Real>(out: &[T], u: &[T], a: &mut [T], s: &mut [T], v: &mut [T], tmp: &mut [T], lp: &mut [T], d: usize) => affine_forward_g
);

/// From a MADE output `out` (`2D × n`, interleaved `a, b`) and its input `u`: keeps `a`
/// (de-interleaved) and `s = softplus(a) + 1e-3`, writes `v = s ⊙ u + b` and adds
/// `Σ_i ln s_ij` to `lp[j]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn affine_forward_g<T: Real>(
    out: &[T],
    u: &[T],
    a: &mut [T],
    s: &mut [T],
    v: &mut [T],
    tmp: &mut [T],
    lp: &mut [T],
    d: usize,
) {
    for ((oc, ac), vc) in out
        .chunks_exact(2 * d)
        .zip(a.chunks_exact_mut(d))
        .zip(v.chunks_exact_mut(d))
    {
        for i in 0..d {
            ac[i] = oc[2 * i];
            vc[i] = oc[2 * i + 1];
        }
    }
    let min_scale = T::of(MIN_SCALE);
    for (sv, av) in s.iter_mut().zip(a.iter()) {
        *sv = av.fast_softplus() + min_scale;
    }
    for ((vv, sv), uv) in v.iter_mut().zip(s.iter()).zip(u) {
        *vv += *sv * *uv;
    }
    for (t, sv) in tmp.iter_mut().zip(s.iter()) {
        *t = sv.fast_ln();
    }
    for (l, tc) in lp.iter_mut().zip(tmp.chunks_exact(d)) {
        let mut acc = T::of(0.0);
        for t in tc {
            acc += *t;
        }
        *l += acc;
    }
}

fastmath::simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn affine_backward<T: Real>(g_v: &[T], u: &[T], s: &[T], a: &[T], w: &[T], d: usize, tmp: &mut [T], g_out: &mut [T], g_u: &mut [T]) => affine_backward_g
);

/// Backward through `v = s ⊙ u + b` and the log-determinant `w_j Σ ln s`: from
/// `g_v = ∂L/∂v` writes `g_out = ∂L/∂(a, b)` (interleaved) and the direct part of
/// `∂L/∂u`, `g_u = g_v ⊙ s`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn affine_backward_g<T: Real>(
    g_v: &[T],
    u: &[T],
    s: &[T],
    a: &[T],
    w: &[T],
    d: usize,
    tmp: &mut [T],
    g_out: &mut [T],
    g_u: &mut [T],
) {
    for (t, av) in tmp.iter_mut().zip(a) {
        *t = av.fast_sigmoid();
    }
    for ((((tc, gvc), uc), sc), wj) in tmp
        .chunks_exact_mut(d)
        .zip(g_v.chunks_exact(d))
        .zip(u.chunks_exact(d))
        .zip(s.chunks_exact(d))
        .zip(w)
    {
        for i in 0..d {
            tc[i] *= gvc[i] * uc[i] + *wj / sc[i];
        }
    }
    for ((oc, tc), gvc) in g_out
        .chunks_exact_mut(2 * d)
        .zip(tmp.chunks_exact(d))
        .zip(g_v.chunks_exact(d))
    {
        for i in 0..d {
            oc[2 * i] = tc[i];
            oc[2 * i + 1] = gvc[i];
        }
    }
    for ((gu, gv), sv) in g_u.iter_mut().zip(g_v).zip(s) {
        *gu = *gv * *sv;
    }
}

fastmath::simd_dispatch!(
    fn inverse_step(out: &[f64], v: &[f64], y: &mut [f64], tmp: &mut [f64], d: usize) => inverse_step_g
);

/// One fixed-point pass of the MADE inverse: `y = (v − b) / (softplus(a) + 1e-3)`.
#[inline(always)]
fn inverse_step_g(out: &[f64], v: &[f64], y: &mut [f64], tmp: &mut [f64], d: usize) {
    for ((oc, tc), yc) in out
        .chunks_exact(2 * d)
        .zip(tmp.chunks_exact_mut(d))
        .zip(y.chunks_exact_mut(d))
    {
        for i in 0..d {
            tc[i] = oc[2 * i];
            yc[i] = oc[2 * i + 1];
        }
    }
    for t in tmp.iter_mut() {
        *t = fastmath::softplus(*t) + MIN_SCALE;
    }
    for ((yv, vv), t) in y.iter_mut().zip(v).zip(tmp.iter()) {
        *yv = (*vv - *yv) / *t;
    }
}

impl<T: Real> Chunk<T> {
    fn resize(&mut self, maf: &Maf, start: usize, len: usize) {
        let zero = T::of(0.0);
        let (d, c, h) = (
            maf.data.theta_dim,
            maf.data.context_dim,
            maf.data.config.hidden_features,
        );
        let k = maf.data.config.num_transforms;
        let b = maf.data.config.num_blocks;
        self.start = start;
        self.len = len;
        self.c.resize(c * len, zero);
        self.u.resize((k + 1) * d * len, zero);
        self.ctx.resize(k * h * len, zero);
        self.hid.resize(k * (b + 1) * h * len, zero);
        self.out.resize(k * 2 * d * len, zero);
        self.s.resize(k * d * len, zero);
        self.a.resize(k * d * len, zero);
        self.v.resize(d * len, zero);
        self.tmp.resize(d * len, zero);
        self.lp.resize(len, zero);
    }

    /// The forward pass of this chunk's columns; θ and x are standardized in `f64`,
    /// then rounded to `T`.
    fn forward(
        &mut self,
        maf: &Maf,
        masked: &[T],
        theta: &DMatrixView<'_, f64>,
        x: &DMatrixView<'_, f64>,
    ) {
        let cfg = &maf.data.config;
        let (d, cdim, h) = (
            maf.data.theta_dim,
            maf.data.context_dim,
            cfg.hidden_features,
        );
        let (n, start) = (self.len, self.start);
        let (dn, hn) = (d * n, h * n);
        let hidn = (cfg.num_blocks + 1) * hn;
        let ts = &maf.data.theta_stats;
        for j in 0..n {
            for i in 0..d {
                self.u[i + j * d] = T::of((theta[(i, start + j)] - ts.mean[i]) / ts.std[i]);
            }
        }
        let xs = &maf.data.x_stats;
        for j in 0..n {
            for i in 0..cdim {
                self.c[i + j * cdim] = T::of((x[(i, start + j)] - xs.mean[i]) / xs.std[i]);
            }
        }
        self.lp.fill(T::of(maf.log_det_std));
        for (k, made) in maf.mades.iter().enumerate() {
            let (u_prev, u_rest) = self.u[k * dn..].split_at_mut(dn);
            let out = &mut self.out[k * 2 * dn..(k + 1) * 2 * dn];
            made.forward(
                masked,
                cfg.activation,
                u_prev,
                &self.c,
                n,
                MadeActs {
                    ctx: &mut self.ctx[k * hn..(k + 1) * hn],
                    hid: &mut self.hid[k * hidn..(k + 1) * hidn],
                    out,
                },
                false,
                &mut [],
            );
            let s = &mut self.s[k * dn..(k + 1) * dn];
            let a = &mut self.a[k * dn..(k + 1) * dn];
            affine_forward(
                out,
                u_prev,
                a,
                s,
                &mut self.v,
                &mut self.tmp,
                &mut self.lp,
                d,
            );
            // Stored permuted: u_next[p] = v[perm[p]].
            let u_next = &mut u_rest[..dn];
            let inv = &maf.inv_perms[k];
            for (vc, uc) in self.v.chunks_exact(d).zip(u_next.chunks_exact_mut(d)) {
                for (vi, &pi) in vc.iter().zip(inv) {
                    uc[pi] = *vi;
                }
            }
        }
        let uk = &self.u[cfg.num_transforms * dn..(cfg.num_transforms + 1) * dn];
        let (minus_half, norm) = (T::of(-0.5), T::of(0.5 * d as f64 * LN_2PI));
        for j in 0..n {
            let mut sq = T::of(0.0);
            for v in &uk[j * d..(j + 1) * d] {
                sq += *v * *v;
            }
            self.lp[j] += minus_half * sq - norm;
        }
    }

    /// The backward pass of this chunk for the per-column weights `w`: parameter
    /// gradients into `self.grad`, `∂/∂u_0` in `self.g_u`.
    fn backward(
        &mut self,
        maf: &Maf,
        masked: &[T],
        w: &[f64],
        want_params: bool,
        want_theta: bool,
        np: usize,
    ) {
        let zero = T::of(0.0);
        let cfg = &maf.data.config;
        let (d, h) = (maf.data.theta_dim, cfg.hidden_features);
        let n = self.len;
        let (dn, hn) = (d * n, h * n);
        let hidn = (cfg.num_blocks + 1) * hn;
        let kk = cfg.num_transforms;
        self.g_u.resize(dn, zero);
        self.g_v.resize(dn, zero);
        self.g_out.resize(2 * dn, zero);
        self.g_made.resize(dn, zero);
        self.gh.resize(hn, zero);
        self.gh2.resize(hn, zero);
        self.w.clear();
        self.w.extend(w.iter().map(|v| T::of(*v)));
        if want_params {
            self.grad.clear();
            self.grad.resize(np, zero);
        }
        // ∂/∂u_K of Σ w_j (−½‖u_K‖²).
        let uk = &self.u[kk * dn..(kk + 1) * dn];
        for j in 0..n {
            for i in 0..d {
                self.g_u[i + j * d] = -self.w[j] * uk[i + j * d];
            }
        }
        for k in (0..kk).rev() {
            let perm = &maf.data.permutations[k];
            let u = &self.u[k * dn..(k + 1) * dn];
            let s = &self.s[k * dn..(k + 1) * dn];
            let a = &self.a[k * dn..(k + 1) * dn];
            for (gvc, guc) in self.g_v.chunks_exact_mut(d).zip(self.g_u.chunks_exact(d)) {
                for (gu, &pp) in guc.iter().zip(perm) {
                    gvc[pp] = *gu;
                }
            }
            affine_backward(
                &self.g_v,
                u,
                s,
                a,
                &self.w,
                d,
                &mut self.tmp,
                &mut self.g_out,
                &mut self.g_u,
            );
            let need_gz = k > 0 || want_theta;
            maf.mades[k].backward(
                masked,
                cfg.activation,
                u,
                &self.c,
                n,
                &self.ctx[k * hn..(k + 1) * hn],
                &self.hid[k * hidn..(k + 1) * hidn],
                &self.g_out,
                &mut self.grad,
                want_params,
                need_gz.then_some(&mut self.g_made[..]),
                &mut self.gh,
                &mut self.gh2,
            );
            if need_gz {
                for (g, m) in self.g_u.iter_mut().zip(&self.g_made) {
                    *g += *m;
                }
            }
        }
    }
}

impl ConditionalDensityEstimator for Maf {
    type Workspace = MafWorkspace;

    fn theta_dim(&self) -> usize {
        self.data.theta_dim
    }

    fn context_dim(&self) -> usize {
        self.data.context_dim
    }

    fn num_params(&self) -> usize {
        self.data.params.len()
    }

    fn params(&self) -> &[f64] {
        &self.data.params
    }

    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.data.params
    }

    fn workspace(&self) -> MafWorkspace {
        MafWorkspace::default()
    }

    /// Runs in the precision of [`MafConfig::precision`] (the log-densities handed back
    /// are `f64` either way).
    fn forward(
        &self,
        ws: &mut MafWorkspace,
        theta: DMatrixView<'_, f64>,
        x: DMatrixView<'_, f64>,
        out: &mut [f64],
    ) -> Result<(), FlowError> {
        match self.data.config.precision {
            Precision::F64 => self.forward_in::<f64>(ws, theta, x, out),
            Precision::F32 => self.forward_in::<f32>(ws, theta, x, out),
        }
    }

    /// In the precision of the preceding [`forward`](Self::forward); the gradient is
    /// reduced over the column chunks in `f64`.
    fn backward(
        &self,
        ws: &mut MafWorkspace,
        weights: &[f64],
        grad: &mut [f64],
    ) -> Result<(), FlowError> {
        self.backward_impl(ws, weights, Some(grad), None)
    }

    /// Evaluated in `f64` (whatever [`MafConfig::precision`] says), in blocks of
    /// [`EVAL_BLOCK`] columns, so memory stays bounded for any batch size (a single
    /// `forward` keeps every activation for the backward pass).
    fn log_prob(&self, theta: &DMatrix<f64>, x: &DMatrix<f64>) -> Result<DVector<f64>, FlowError> {
        self.check_batch(&theta.as_view(), &x.as_view())?;
        let n = theta.ncols();
        let mut ws = self.workspace();
        let mut out = DVector::zeros(n);
        for (start, len) in eval_blocks(n) {
            let xb = if self.data.context_dim > 0 {
                x.columns(start, len)
            } else {
                x.columns(0, 0)
            };
            self.forward_in::<f64>(
                &mut ws,
                theta.columns(start, len),
                xb,
                &mut out.as_mut_slice()[start..start + len],
            )?;
        }
        Ok(out)
    }

    /// Evaluated in `f64`, whatever [`MafConfig::precision`] says.
    fn log_prob_grad_theta(
        &self,
        theta: &DMatrix<f64>,
        x: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), FlowError> {
        self.check_batch(&theta.as_view(), &x.as_view())?;
        let n = theta.ncols();
        let mut ws = self.workspace();
        let mut lp = DVector::zeros(n);
        let mut tg = DMatrix::zeros(self.data.theta_dim, n);
        let mut block_grad = DMatrix::zeros(0, 0);
        for (start, len) in eval_blocks(n) {
            let xb = if self.data.context_dim > 0 {
                x.columns(start, len)
            } else {
                x.columns(0, 0)
            };
            self.forward_in::<f64>(
                &mut ws,
                theta.columns(start, len),
                xb,
                &mut lp.as_mut_slice()[start..start + len],
            )?;
            let ones = vec![1.0; len];
            self.backward_impl(&mut ws, &ones, None, Some(&mut block_grad))?;
            tg.columns_mut(start, len).copy_from(&block_grad);
        }
        Ok((lp, tg))
    }

    fn sample(
        &self,
        n: usize,
        x: &[f64],
        rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>, FlowError> {
        let (d, c) = (self.data.theta_dim, self.data.context_dim);
        if x.len() != c {
            return Err(FlowError::dims("x length (context dimension)", c, x.len()));
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(FlowError::NonFinite("the context x to sample at"));
        }
        let mut noise = DMatrix::<f64>::zeros(d, n);
        for v in noise.iter_mut() {
            *v = StandardNormal.sample(rng);
        }
        self.inverse_into(&mut noise, x);
        Ok(noise)
    }
}

impl Maf {
    /// The flow's forward direction: the base-distribution noise `u` (`D × n`) that each
    /// column of θ maps to given its context (the inverse of [`inverse`](Self::inverse)),
    /// in `f64`.
    pub fn transform_to_noise(
        &self,
        theta: &DMatrix<f64>,
        x: &DMatrix<f64>,
    ) -> Result<DMatrix<f64>, FlowError> {
        let mut ws = self.workspace();
        let mut lp = vec![0.0; theta.ncols()];
        self.forward_in::<f64>(&mut ws, theta.as_view(), x.as_view(), &mut lp)?;
        let d = self.data.theta_dim;
        let k = self.data.config.num_transforms;
        let mut u = DMatrix::zeros(d, theta.ncols());
        for ch in &ws.f64s.chunks {
            let dn = d * ch.len;
            u.as_mut_slice()[d * ch.start..d * ch.start + dn]
                .copy_from_slice(&ch.u[k * dn..(k + 1) * dn]);
        }
        Ok(u)
    }

    /// Maps base-distribution noise `u` (`D × n`) to θ for the context `x`
    /// by inverting the flow (§3.5: D fixed-point passes per MADE).
    pub fn inverse(&self, u: &DMatrix<f64>, x: &[f64]) -> Result<DMatrix<f64>, FlowError> {
        let d = self.data.theta_dim;
        if u.nrows() != d {
            return Err(FlowError::dims("noise rows (θ dimension)", d, u.nrows()));
        }
        if x.len() != self.data.context_dim {
            return Err(FlowError::dims(
                "x length (context dimension)",
                self.data.context_dim,
                x.len(),
            ));
        }
        let mut out = u.clone();
        self.inverse_into(&mut out, x);
        Ok(out)
    }

    fn inverse_into(&self, u: &mut DMatrix<f64>, x: &[f64]) {
        let cfg = &self.data.config;
        let (d, h) = (self.data.theta_dim, cfg.hidden_features);
        let n = u.ncols();
        let mut masked = Vec::new();
        self.masked_params_into(&mut masked);
        // The context is the same for every column: evaluate each context layer once.
        let xs = &self.data.x_stats;
        let c: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| (v - xs.mean[i]) / xs.std[i])
            .collect();
        let ctxs: Vec<Vec<f64>> = self
            .mades
            .iter()
            .map(|m| {
                let mut t = vec![0.0; h];
                if let Some(cl) = &m.context {
                    cl.forward_activated(&masked, &c, 1, cfg.activation, &mut t);
                }
                t
            })
            .collect();
        let data = u.as_mut_slice();
        let ranges: Vec<(usize, usize)> = chunk_ranges(n).collect();
        let mut pieces: Vec<&mut [f64]> = Vec::with_capacity(ranges.len());
        let mut rest = data;
        for &(_, len) in &ranges {
            let (a, b) = rest.split_at_mut(len * d);
            pieces.push(a);
            rest = b;
        }
        pieces.into_par_iter().for_each(|piece| {
            let n = piece.len() / d.max(1);
            let dn = d * n;
            let mut y = vec![0.0; dn];
            let mut v = vec![0.0; dn];
            let mut hid = vec![0.0; (cfg.num_blocks + 1) * h * n];
            let mut out = vec![0.0; 2 * dn];
            let mut ctx_copy = vec![0.0; h];
            let mut bias = vec![0.0; h];
            let mut tmp = vec![0.0; dn];
            for k in (0..self.mades.len()).rev() {
                let made = &self.mades[k];
                let perm = &self.data.permutations[k];
                // Undo the permutation: v[perm[p]] = u[p].
                for j in 0..n {
                    for (p, &pp) in perm.iter().enumerate() {
                        v[pp + j * d] = piece[p + j * d];
                    }
                }
                y.fill(0.0);
                ctx_copy.copy_from_slice(&ctxs[k]);
                for _ in 0..d {
                    made.forward(
                        &masked,
                        cfg.activation,
                        &y,
                        &[],
                        n,
                        MadeActs {
                            ctx: &mut ctx_copy,
                            hid: &mut hid,
                            out: &mut out,
                        },
                        true,
                        &mut bias,
                    );
                    inverse_step(&out, &v, &mut y, &mut tmp, d);
                }
                piece.copy_from_slice(&y);
            }
            let ts = &self.data.theta_stats;
            for j in 0..n {
                for i in 0..d {
                    piece[i + j * d] = piece[i + j * d] * ts.std[i] + ts.mean[i];
                }
            }
        });
    }
}
