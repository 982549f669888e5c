//! The neural spline flow (NSF) of the reference library, conditional or not: coupling
//! layers of monotonic rational-quadratic splines with linear tails (Durkan et al. 2019,
//! "Neural Spline Flows"), as sbi's `build_nsf` assembles them from nflows'
//! `PiecewiseRationalQuadraticCouplingTransform`, `LULinear` and `ResidualNet`.
//!
//! Forward direction (data → noise); the input is θ, the condition x:
//! ```text
//! u = (θ − μ_θ)/σ_θ,  L = −Σ log σ_θ          standardization, part of the flow
//! c = (x − μ_x)/σ_x                           standardized context, fed to every conditioner
//! for i = 0..T−1:
//!     T_i = {0, 2, 4, …} (i even) or {1, 3, …} (i odd);  I_i = the other coordinates
//!     p = ResidualNet_i([u_{I_i}; c])  (3K − 1 values per coordinate of T_i)
//!     u_t ← spline(u_t; p_t) for t ∈ T_i;  L += Σ_t ln spline'(u_t; p_t)
//!     u ← L_i U_i u + b_i;  L += Σ_a ln (U_i)_aa                      (LU layer)
//! log q(θ | x) = −½‖u‖² − (D/2) ln 2π + L
//! ```
//! The conditioner is nflows' residual network ([`ResidualNet`]: hidden width `H`, ReLU,
//! the context concatenated to its input and gating every block). The spline of each
//! transformed coordinate has `K` bins on `[−B, B]` and is the identity outside
//! ([`spline`](self) in the source: widths and heights are softmaxed after a division by
//! `√H`, minimum bin width, height and derivative 10⁻³, derivative 1 at `±B`).
//!
//! With `D = 1` nothing is passed through: every layer's conditioner is sbi's
//! `ContextSplineMap`, an MLP of the context alone, `C → H → (H → H) × n_h → 3K − 1` with
//! ReLU, whose `n_h` hidden layers share one weight (as the reference builds them by list
//! repetition); there is no LU layer. The result is `T` stacked context-conditioned 1-D
//! splines. Each maps `[−B, B]` onto itself, so in one dimension the flow keeps the base
//! distribution's mass outside `±B` (in standardized coordinates; 0.27 % for `B = 3`) where
//! it is: a conditional much narrower than the data's spread gets light but long
//! standard-normal tails (the reference behaves the same).
//!
//! Parameters, per transform: the conditioner's ([`ResidualNet`] or [`Mlp`] layout), then
//! the LU layer's ([`LuLayout`]: bias, lower, upper, unconstrained diagonal). With the
//! defaults (H 50, 5 transforms, K 10, 2 blocks) that is 60 925 parameters for `D = 2`,
//! `C = 2` and 20 895 for `D = 1`, `C = 2`, as in the reference.

use std::any::Any;

use nalgebra::{DMatrix, DMatrixView, DVector};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use simfer_nn::driver::{PassInputs, Passes};
use simfer_nn::{
    Activation, ContextRuns, Dense, Gradients, Mlp, Parameterized, Precision, Real, ResidualNet,
    Workspace,
};

use crate::any::EstimatorSettings;
use crate::error::{FlowError, at_least};
use crate::estimator::{ConditionalDensityEstimator, check_batch, check_condition};
use crate::passes::{log_prob_f64, log_prob_grad_condition_f64, log_prob_grad_input_f64};
use crate::standardize::{Standardization, statistics};

#[cfg(feature = "serde")]
mod io;
pub mod lu;
mod passes;
mod sample;
pub mod spline;

pub use lu::{LU_EPS, LuLayout};
pub use passes::Chunk as NsfChunk;
pub use spline::{MIN_BIN_HEIGHT, MIN_BIN_WIDTH, MIN_DERIVATIVE};

/// Architecture of an [`Nsf`] and the precision of its training passes. The defaults
/// are the reference library's (sbi's `build_nsf`).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct NsfConfig {
    /// Hidden width `H` of every conditioner (default 50). The width and height logits
    /// are divided by `√H`.
    pub hidden_features: usize,
    /// Number of coupling transforms (default 5), each followed by an LU layer when the
    /// input has more than one dimension.
    pub num_transforms: usize,
    /// Number of spline bins `K` (default 10; at most 999, so that the minimum bin
    /// widths fit).
    pub num_bins: usize,
    /// The splines act on `[−B, B]` and are the identity outside (default `B` = 3).
    pub tail_bound: f64,
    /// Residual blocks of each conditioner (default 2; `D ≥ 2`).
    pub num_blocks: usize,
    /// Hidden `H → H` layers of the context-only conditioner of a one-dimensional input
    /// (default 1; they share one weight, as in the reference).
    pub hidden_layers_spline_context: usize,
    /// Standardize the input (θ for posterior estimation) as the first transform of the
    /// flow (default true).
    pub standardize_input: bool,
    /// Standardize the condition before it enters the conditioners (default true).
    pub standardize_condition: bool,
    /// Precision of the training passes [`forward`](ConditionalDensityEstimator::forward)
    /// and [`backward`](ConditionalDensityEstimator::backward) (default
    /// [`Precision::F32`], as for the MAF). Parameters stay `f64`; evaluation
    /// (`log_prob`, `log_prob_grad_input`, `sample`, `inverse`, `transform_to_noise`) is
    /// always `f64`. Not part of the architecture: [`Nsf::check_architecture`] ignores
    /// it and [`Nsf::set_precision`] changes it.
    #[cfg_attr(feature = "serde", serde(default))]
    pub precision: Precision,
}

impl Default for NsfConfig {
    fn default() -> Self {
        NsfConfig {
            hidden_features: 50,
            num_transforms: 5,
            num_bins: 10,
            tail_bound: 3.0,
            num_blocks: 2,
            hidden_layers_spline_context: 1,
            standardize_input: true,
            standardize_condition: true,
            precision: Precision::default(),
        }
    }
}

impl NsfConfig {
    /// Checks the settings: at least one hidden unit, transform and bin; `K · 10⁻³ < 1`
    /// (room for the minimum bin widths); a finite positive tail bound.
    pub fn check(&self) -> Result<(), FlowError> {
        let bad = |m: String| Err(FlowError::InvalidConfig(m));
        if self.hidden_features == 0 {
            return bad("hidden_features must be at least 1, found 0".into());
        }
        if self.num_transforms == 0 {
            return bad("num_transforms must be at least 1, found 0".into());
        }
        if self.num_bins == 0 || self.num_bins as f64 * MIN_BIN_WIDTH >= 1.0 {
            return bad(format!(
                "num_bins must be between 1 and 999 (the minimum bin width is 1e-3 of the interval), found {}",
                self.num_bins
            ));
        }
        if !(self.tail_bound.is_finite() && self.tail_bound > 0.0) {
            return bad(format!(
                "tail_bound must be finite and positive, found {}",
                self.tail_bound
            ));
        }
        Ok(())
    }
}

impl EstimatorSettings for NsfConfig {
    type Model = Nsf;
    fn build(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Nsf, FlowError> {
        Nsf::new(self, input, condition, seed)
    }
    fn precision(&self) -> Precision {
        self.precision
    }
    fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
    }
}

/// The conditioner of one coupling layer: it maps the pass-through coordinates and the
/// context to the `3K − 1` spline values of each transformed coordinate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conditioner {
    /// `D ≥ 2`: nflows' `ResidualNet` of `[u_I; c]`, gated by the context.
    Residual(ResidualNet),
    /// `D = 1`: sbi's `ContextSplineMap`, an MLP of the context alone whose hidden
    /// `H → H` layers all have the same parameters (the same offset).
    ContextMap(Mlp),
}

impl Conditioner {
    /// First parameter index.
    pub fn offset(&self) -> usize {
        match self {
            Conditioner::Residual(r) => r.offset(),
            Conditioner::ContextMap(m) => m.offset(),
        }
    }

    /// One past the last parameter index.
    pub fn end(&self) -> usize {
        match self {
            Conditioner::Residual(r) => r.end(),
            Conditioner::ContextMap(m) => m.end(),
        }
    }

    /// Its distinct dense layers (a shared layer once), input to output.
    pub fn layers(&self) -> Vec<Dense> {
        match self {
            Conditioner::Residual(r) => {
                let mut out = vec![r.input];
                for b in &r.blocks {
                    out.push(b.first);
                    out.push(b.second);
                    out.extend(b.gate);
                }
                out.push(r.output);
                out
            }
            Conditioner::ContextMap(m) => {
                let mut out: Vec<Dense> = Vec::new();
                for l in &m.layers {
                    if !out.iter().any(|o| o.offset == l.offset) {
                        out.push(*l);
                    }
                }
                out
            }
        }
    }

    fn acts_len(&self, n: usize) -> usize {
        match self {
            Conditioner::Residual(r) => r.acts_len(n),
            Conditioner::ContextMap(m) => m.acts_len(n),
        }
    }

    fn scratch_len(&self, n: usize) -> usize {
        match self {
            Conditioner::Residual(r) => r.scratch_len(n),
            Conditioner::ContextMap(m) => m.scratch_len(n),
        }
    }

    fn output<'a, T>(&self, acts: &'a [T], n: usize) -> &'a [T] {
        match self {
            Conditioner::Residual(r) => r.output(acts, n),
            Conditioner::ContextMap(m) => m.output(acts, n),
        }
    }

    /// The forward pass of `n` columns: `x` the pass-through coordinates (`|I| × n`,
    /// unused by the context map), `c` the context (`C × n`), and its runs of equal
    /// columns if any (the residual net's gates then run once per run).
    fn forward<T: Real>(
        &self,
        params: &[T],
        x: &[T],
        c: &[T],
        runs: Option<ContextRuns<'_, T>>,
        n: usize,
        acts: &mut [T],
    ) {
        match self {
            Conditioner::Residual(r) => r.forward_runs(params, x, c, runs, n, acts),
            Conditioner::ContextMap(m) => m.forward(params, c, n, acts),
        }
    }

    /// The reference's initialization: `ResidualNet::init` (PyTorch's default, the
    /// second layer of each block near zero), or PyTorch's default for every distinct
    /// layer of the context map.
    fn init(&self, params: &mut [f64], rng: &mut dyn RngCore) {
        match self {
            Conditioner::Residual(r) => r.init(params, rng),
            Conditioner::ContextMap(_) => {
                for l in self.layers() {
                    l.init_uniform(params, rng);
                }
            }
        }
    }
}

/// The layout of one coupling layer (and the LU layer after it) in the flat parameter
/// vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CouplingLayout {
    /// The coordinates the splines transform, increasing.
    pub transformed: Vec<usize>,
    /// The coordinates passed through unchanged (the conditioner's input), increasing.
    pub identity: Vec<usize>,
    /// The conditioner: `3K − 1` outputs per transformed coordinate, coordinate
    /// `transformed[t]` owning outputs `t(3K − 1) .. (t + 1)(3K − 1)` (widths, heights,
    /// interior derivatives).
    pub conditioner: Conditioner,
    /// The LU layer after the coupling (`D ≥ 2`).
    pub lu: Option<LuLayout>,
}

impl CouplingLayout {
    /// One past the last parameter index of the layer (with its LU layer).
    pub fn end(&self) -> usize {
        self.lu.map_or(self.conditioner.end(), |l| l.end())
    }
}

/// The layouts of the transforms of an NSF with this architecture.
fn layouts(config: &NsfConfig, d: usize, c: usize) -> Vec<CouplingLayout> {
    let h = config.hidden_features;
    let raw = 3 * config.num_bins - 1;
    let mut offset = 0;
    (0..config.num_transforms)
        .map(|i| {
            let layer = if d == 1 {
                let mut sizes = vec![c, h];
                sizes.extend(std::iter::repeat_n(h, config.hidden_layers_spline_context));
                sizes.push(raw);
                let mut mlp = Mlp::new(&sizes, Activation::Relu, None, offset);
                // The repeated hidden layers share the first one's parameters.
                let nl = mlp.layers.len();
                if nl > 3 {
                    let shared = mlp.layers[1].offset;
                    for l in &mut mlp.layers[2..nl - 1] {
                        l.offset = shared;
                    }
                    let out = mlp.layers[nl - 1];
                    mlp.layers[nl - 1] = Dense::new(out.in_dim, out.out_dim, mlp.layers[1].end());
                }
                CouplingLayout {
                    transformed: vec![0],
                    identity: vec![],
                    conditioner: Conditioner::ContextMap(mlp),
                    lu: None,
                }
            } else {
                // sbi's alternating mask: 1 (transformed) at even indices for even i.
                let parity = i % 2;
                let (transformed, identity): (Vec<usize>, Vec<usize>) =
                    (0..d).partition(|k| k % 2 == parity);
                let net = ResidualNet::new(
                    identity.len(),
                    c,
                    h,
                    transformed.len() * raw,
                    config.num_blocks,
                    Activation::Relu,
                    offset,
                );
                let lu = LuLayout::new(d, net.end());
                CouplingLayout {
                    transformed,
                    identity,
                    conditioner: Conditioner::Residual(net),
                    lu: Some(lu),
                }
            };
            offset = layer.end();
            layer
        })
        .collect()
}

/// A conditional neural spline flow q(input | condition) (or unconditional), with its
/// parameters in one flat vector: the reference library's NSF (Durkan et al. 2019).
///
/// ```
/// use nalgebra::DMatrix;
/// use simfer_flows::{ConditionalDensityEstimator, Gradients, Nsf, NsfConfig, Parameterized};
///
/// let theta = DMatrix::from_fn(2, 100, |i, j| ((i + 3 * j) as f64).sin());
/// let x = DMatrix::from_fn(3, 100, |i, j| ((2 * i + j) as f64).cos());
/// let nsf = Nsf::new(&NsfConfig::default(), &theta, &x, 42)?;
/// let lp = nsf.log_prob(&theta, &x)?;
/// assert_eq!(lp.len(), 100);
///
/// // One training pass: log q in the training precision, then the gradient of the
/// // loss −mean log q.
/// let mut ws = nsf.workspace();
/// let mut out = vec![0.0; 100];
/// nsf.forward(&mut ws, theta.as_view(), x.as_view(), &mut out)?;
/// let mut grad = vec![0.0; nsf.num_params()];
/// nsf.backward(&mut ws, &vec![-0.01; 100], Gradients::params(&mut grad))?;
///
/// let samples = nsf.sample(10, &[0.1, 0.2, 0.3], &mut rand::rng())?;
/// assert_eq!(samples.shape(), (2, 10));
/// # Ok::<(), simfer_flows::FlowError>(())
/// ```
#[derive(Clone, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "NsfData", into = "NsfData")
)]
pub struct Nsf {
    data: NsfData,
    layers: Vec<CouplingLayout>,
    log_det_std: f64,
}

/// The stored state of an [`Nsf`] (what its files hold): the configuration, dimensions,
/// standardization statistics and parameters (the masks follow from the dimension).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct NsfData {
    pub(crate) config: NsfConfig,
    pub(crate) input_dim: usize,
    pub(crate) condition_dim: usize,
    pub(crate) input_stats: Standardization,
    pub(crate) condition_stats: Standardization,
    pub(crate) params: Vec<f64>,
}

impl From<Nsf> for NsfData {
    fn from(m: Nsf) -> Self {
        m.data
    }
}

impl TryFrom<NsfData> for Nsf {
    type Error = FlowError;
    fn try_from(data: NsfData) -> Result<Self, FlowError> {
        Nsf::from_data(data)
    }
}

impl Nsf {
    /// A conditional NSF for the input (`D × n`) given the condition (`C × n`), with
    /// standardization statistics computed from these data (columns with any non-finite
    /// entry in either are left out) and weights drawn from `seed`.
    pub fn new(
        config: &NsfConfig,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Nsf, FlowError> {
        config.check()?;
        let (input_stats, condition_stats) = statistics(
            input,
            condition,
            config.standardize_input,
            config.standardize_condition,
        )?;
        Nsf::with_statistics(config, input_stats, condition_stats, seed)
    }

    /// An unconditional NSF q(input) with statistics from `input` (`D × n`).
    pub fn new_unconditional(
        config: &NsfConfig,
        input: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Nsf, FlowError> {
        Nsf::new(config, input, &DMatrix::zeros(0, input.ncols()), seed)
    }

    /// An NSF with given standardization statistics (`input_stats` has `D` entries,
    /// `condition_stats` has `C`, possibly 0). The conditioners get the reference's
    /// initialization (PyTorch's default, near-zero second layers in the residual blocks;
    /// the output layers are not zeroed, so the flow is not the identity), the LU layers
    /// the identity; all from `seed`.
    pub fn with_statistics(
        config: &NsfConfig,
        input_stats: Standardization,
        condition_stats: Standardization,
        seed: u64,
    ) -> Result<Nsf, FlowError> {
        config.check()?;
        let d = input_stats.mean.len();
        let c = condition_stats.mean.len();
        if d == 0 {
            return Err(FlowError::dims("input dimension", "at least 1", 0));
        }
        let layers = layouts(config, d, c);
        let num_params = layers.last().map_or(0, CouplingLayout::end);
        let mut params = vec![0.0; num_params];
        let mut rng = StdRng::seed_from_u64(seed);
        for layer in &layers {
            layer.conditioner.init(&mut params, &mut rng);
            if let Some(lu) = &layer.lu {
                lu.init_identity(&mut params);
            }
        }
        Nsf::from_data(NsfData {
            config: config.clone(),
            input_dim: d,
            condition_dim: c,
            input_stats,
            condition_stats,
            params,
        })
    }

    /// Builds the derived state and checks that everything fits together.
    pub(crate) fn from_data(data: NsfData) -> Result<Nsf, FlowError> {
        data.config.check()?;
        let (d, c) = (data.input_dim, data.condition_dim);
        if d == 0 {
            return Err(FlowError::dims("input dimension", "at least 1", 0));
        }
        data.input_stats
            .check(d, "input standardization statistics")?;
        data.condition_stats
            .check(c, "condition standardization statistics")?;
        let (t, h) = (data.config.num_transforms, data.config.hidden_features);
        let k = data.config.num_bins;
        let bounds: &[(&str, usize)] = if d == 1 {
            // The repeated hidden layers of the context network share their parameters:
            // more of them than parameters is taken as a corrupted count.
            &[
                ("the biases of its first hidden layers", at_least(&[t, h])),
                ("the biases of its outputs", at_least(&[t, k])),
                (
                    "one per repeated hidden layer of the spline context",
                    data.config.hidden_layers_spline_context,
                ),
            ]
        } else {
            let b = data.config.num_blocks.saturating_add(1);
            &[
                ("the biases of its hidden layers", at_least(&[t, h, b])),
                ("the biases of its outputs", at_least(&[t, k])),
                ("its LU layers", at_least(&[t, d, d])),
            ]
        };
        crate::error::check_stored_size("an NSF", data.params.len(), bounds)?;
        let layers = layouts(&data.config, d, c);
        let num_params = layers.last().map_or(0, CouplingLayout::end);
        if data.params.len() != num_params {
            return Err(FlowError::ArchitectureMismatch(format!(
                "an NSF with input dimension {d}, condition dimension {c} and {:?} has {num_params} parameters, found {}",
                data.config,
                data.params.len()
            )));
        }
        crate::error::check_finite_params(&data.params)?;
        let log_det_std = data.input_stats.log_det();
        Ok(Nsf {
            data,
            layers,
            log_det_std,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &NsfConfig {
        &self.data.config
    }

    /// The statistics the input is standardized with (the flow's first transform).
    pub fn input_standardization(&self) -> &Standardization {
        &self.data.input_stats
    }

    /// The statistics the condition is standardized with.
    pub fn condition_standardization(&self) -> &Standardization {
        &self.data.condition_stats
    }

    /// The layout of each transform (coupling layer and LU layer) in the flat parameter
    /// vector, in the order of the forward direction.
    pub fn coupling_layouts(&self) -> &[CouplingLayout] {
        &self.layers
    }

    /// Sets the precision of the training passes (see [`NsfConfig::precision`]).
    pub fn set_precision(&mut self, precision: Precision) {
        self.data.config.precision = precision;
    }

    /// The training precision (see [`NsfConfig::precision`]).
    pub fn precision(&self) -> Precision {
        self.data.config.precision
    }

    /// Checks that this flow has the given architecture and dimensions; the error says
    /// what differs. The training [`precision`](NsfConfig::precision) is not compared.
    pub fn check_architecture(
        &self,
        config: &NsfConfig,
        input_dim: usize,
        condition_dim: usize,
    ) -> Result<(), FlowError> {
        let same = NsfConfig {
            precision: self.data.config.precision,
            ..config.clone()
        };
        if self.data.config != same
            || self.data.input_dim != input_dim
            || self.data.condition_dim != condition_dim
        {
            return Err(FlowError::ArchitectureMismatch(format!(
                "expected input dimension {input_dim}, condition dimension {condition_dim}, {config:?}; found input dimension {}, condition dimension {}, {:?}",
                self.data.input_dim, self.data.condition_dim, self.data.config
            )));
        }
        Ok(())
    }
}

impl Parameterized for Nsf {
    fn num_params(&self) -> usize {
        self.data.params.len()
    }

    fn params(&self) -> &[f64] {
        &self.data.params
    }

    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.data.params
    }
}

impl ConditionalDensityEstimator for Nsf {
    fn kind(&self) -> &'static str {
        "nsf"
    }

    fn input_dim(&self) -> usize {
        self.data.input_dim
    }

    fn condition_dim(&self) -> usize {
        self.data.condition_dim
    }

    /// Runs in the precision of [`NsfConfig::precision`] (the log-densities handed back
    /// are `f64` either way).
    fn forward(
        &self,
        ws: &mut Workspace,
        input: DMatrixView<'_, f64>,
        condition: DMatrixView<'_, f64>,
        out: &mut [f64],
    ) -> Result<(), FlowError> {
        check_batch(
            self.data.input_dim,
            self.data.condition_dim,
            &input,
            &condition,
        )?;
        let inputs = PassInputs { input, condition };
        ws.get::<Passes<Nsf>>()
            .forward(self, self.data.config.precision, &inputs, out)?;
        Ok(())
    }

    /// In the precision of the preceding [`forward`](Self::forward); the parameter
    /// gradient is reduced over the column chunks in `f64`.
    fn backward(
        &self,
        ws: &mut Workspace,
        weights: &[f64],
        grads: Gradients<'_>,
    ) -> Result<(), FlowError> {
        ws.get::<Passes<Nsf>>()
            .backward(self, weights, grads, None)?;
        Ok(())
    }

    /// Evaluated in `f64` (whatever [`NsfConfig::precision`] says), in blocks, so memory
    /// stays bounded for any batch size.
    fn log_prob(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<DVector<f64>, FlowError> {
        check_batch(
            self.data.input_dim,
            self.data.condition_dim,
            &input.as_view(),
            &condition.as_view(),
        )?;
        log_prob_f64(self, input, condition)
    }

    /// Evaluated in `f64`, whatever [`NsfConfig::precision`] says.
    fn log_prob_grad_input(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), FlowError> {
        check_batch(
            self.data.input_dim,
            self.data.condition_dim,
            &input.as_view(),
            &condition.as_view(),
        )?;
        log_prob_grad_input_f64(self, input, condition)
    }

    /// Evaluated in `f64`, whatever [`NsfConfig::precision`] says.
    fn log_prob_grad_condition(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), FlowError> {
        check_batch(
            self.data.input_dim,
            self.data.condition_dim,
            &input.as_view(),
            &condition.as_view(),
        )?;
        log_prob_grad_condition_f64(self, input, condition)
    }

    /// Standard normal noise (all drawn first from `rng`, column by column) mapped
    /// through the inverse of the flow in `f64`; the result does not depend on the number
    /// of threads.
    fn sample(
        &self,
        n: usize,
        condition: &[f64],
        rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>, FlowError> {
        check_condition(self.data.condition_dim, condition)?;
        let mut noise = DMatrix::<f64>::zeros(self.data.input_dim, n);
        for v in noise.iter_mut() {
            *v = StandardNormal.sample(rng);
        }
        self.inverse_into(&mut noise, condition);
        Ok(noise)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn clone_boxed(&self) -> Box<dyn ConditionalDensityEstimator> {
        Box::new(self.clone())
    }
}

/// `ln 2π`.
pub(crate) const LN_2PI: f64 = 1.837_877_066_409_345_5;
