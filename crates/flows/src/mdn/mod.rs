//! The mixture density network (MDN) of the reference library, as a conditional density
//! estimator q(input | condition) (sbi's `build_mdn`, `MultivariateGaussianMDN` and
//! `MixtureDensityEstimator`; Bishop 1994).
//!
//! The condition is standardized, c = (x − μ_x)/σ_x, and goes through hidden ReLU layers
//! (two of 50 units by default); one linear layer then gives the raw outputs of K
//! components (K = 10 by default) for an input of dimension D:
//!
//! ```text
//! h = relu(W₂ relu(W₁ c + b₁) + b₂)
//! (logits, means, diag, upper) = W_o h + b_o            raw outputs, see OutputLayout
//! log β = logits − logsumexp(logits)                      mixture weights
//! μ_k = means[k·D .. (k+1)·D]
//! A_k  upper triangular: A_k,dd = softplus(diag[k·D + d]),
//!      strict upper (r < c) from upper[k·D(D−1)/2 ..] in row-major order (0,1),(0,2),…,(1,2),…
//! Q_k = A_kᵀA_k + εI,  ε = 1e-4                            precision of component k
//! ```
//!
//! With z = (θ − μ_θ)/σ_θ (the standardized input), the log-density is the reference's,
//! including its normaliser, which ignores the +εI (see [`mog`]):
//!
//! ```text
//! log q(θ | x) = logsumexp_k [ log β_k − (D/2) log 2π + Σ_d log A_k,dd
//!                              − ½ (z − μ_k)ᵀ Q_k (z − μ_k) ]  − Σ_d log σ_θ,d
//! ```
//!
//! Sampling is exact: k ~ Categorical(β), ε ~ N(0, I), z = μ_k + A_k⁻¹ε, θ = σ_θ z + μ_θ.
//!
//! Initialisation as the reference's `custom_initialization=True`: the hidden layers and
//! the means' rows of the output layer get PyTorch's default (uniform on ±1/√fan_in); the
//! logits' rows get weights and biases from N(0, ε²), the strict-upper rows weights from
//! N(0, ε²) and biases 0, the diagonal rows weights from N(0, ε²) and biases
//! log(e^{1−ε} − 1) (so softplus gives 1 − ε): at initialisation the weights are uniform
//! and the precisions ≈ I.
//!
//! Parameters (one flat vector): the hidden layers, then the output layer (weight
//! R × H column-major, then its R biases), R = [`OutputLayout::len`]. The reference's four
//! output layers (logits, means, diagonals, upper entries) are the row blocks of this one
//! layer: the same functions and parameter count in one matrix product (a port of PyTorch
//! weights stacks them). For D = 2, C = 2, K = 10, H = 50: 150 + 2 550 + 3 060 = 5 760,
//! as the reference.
//!
//! Beyond the estimator interface, [`Mdn::mixture`] gives the mixture at one condition
//! (in the standardized input space) and [`Mdn::raw_outputs`] /
//! [`Mdn::backward_raw_outputs`] evaluate the raw outputs of a batch and backpropagate a
//! gradient with respect to them into the parameters, for losses written on the mixture
//! (the non-atomic APT loss of simfer-snpe).

use std::any::Any;
use std::ops::Range;

use nalgebra::{DMatrix, DMatrixView, DVector};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use rand_distr::{Distribution, Normal};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use simfer_nn::driver::{PassInputs, Passes};
use simfer_nn::{Activation, Gradients, Mlp, Parameterized, Precision, Workspace};

use crate::error::{FlowError, at_least};
use crate::estimator::{ConditionalDensityEstimator, check_batch, check_condition};
use crate::passes::{log_prob_f64, log_prob_grad_condition_f64, log_prob_grad_input_f64};
use crate::standardize::{Standardization, statistics};

#[cfg(feature = "serde")]
mod io;
pub mod mog;
mod passes;

pub use mog::{EPSILON, Mixture};
pub use passes::{Chunk as MdnChunk, OutputChunk as MdnOutputChunk};

/// Architecture of an [`Mdn`] and the precision of its training passes. The defaults are
/// the reference library's (`build_mdn`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct MdnConfig {
    /// Width of every hidden layer (default 50).
    pub hidden_features: usize,
    /// Number of mixture components K (default 10).
    pub num_components: usize,
    /// Number of hidden ReLU layers (default 2).
    pub num_hidden_layers: usize,
    /// Standardize the input (θ for posterior estimation; default true).
    pub standardize_input: bool,
    /// Standardize the condition before the network (default true).
    pub standardize_condition: bool,
    /// Precision of the training passes [`forward`](ConditionalDensityEstimator::forward),
    /// [`backward`](ConditionalDensityEstimator::backward) and
    /// [`backward_raw_outputs`](Mdn::backward_raw_outputs) (default [`Precision::F32`],
    /// as the MAF). Parameters stay `f64`; evaluation (`log_prob`, `sample`,
    /// `log_prob_grad_input`, `mixture`, `raw_outputs`) is always `f64`. Not part of the
    /// architecture ([`Mdn::check_architecture`] ignores it).
    #[cfg_attr(feature = "serde", serde(default))]
    pub precision: Precision,
}

impl Default for MdnConfig {
    fn default() -> Self {
        MdnConfig {
            hidden_features: 50,
            num_components: 10,
            num_hidden_layers: 2,
            standardize_input: true,
            standardize_condition: true,
            precision: Precision::default(),
        }
    }
}

impl MdnConfig {
    /// Checks the settings (every count at least 1).
    pub fn check(&self) -> Result<(), FlowError> {
        for (name, v) in [
            ("hidden_features", self.hidden_features),
            ("num_components", self.num_components),
            ("num_hidden_layers", self.num_hidden_layers),
        ] {
            if v == 0 {
                return Err(FlowError::InvalidConfig(format!(
                    "{name} must be at least 1, found 0"
                )));
            }
        }
        Ok(())
    }
}

/// Where each raw output of an MDN's network sits in one column of
/// [`Mdn::raw_outputs`] (R = [`len`](Self::len) rows per condition): the K logits, the K·D
/// means (component-major), the K·D unconstrained diagonals of the precision factors
/// (before softplus; component-major) and the K·D(D−1)/2 strict-upper entries
/// (component-major, each component's in row-major upper-triangle order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputLayout {
    /// The dimension D of the input.
    pub dim: usize,
    /// The number of components K.
    pub num_components: usize,
}

impl OutputLayout {
    /// D(D − 1)/2, the strict-upper entries of one precision factor.
    pub fn num_upper(&self) -> usize {
        self.dim * self.dim.saturating_sub(1) / 2
    }

    /// The number of raw outputs R = K(1 + 2D + D(D−1)/2).
    pub fn len(&self) -> usize {
        self.num_components * (1 + 2 * self.dim + self.num_upper())
    }

    /// Whether there are no outputs (never, for a valid MDN).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows of the logits.
    pub fn logits(&self) -> Range<usize> {
        0..self.num_components
    }

    /// The rows of the means.
    pub fn means(&self) -> Range<usize> {
        let s = self.num_components;
        s..s + self.num_components * self.dim
    }

    /// The rows of the unconstrained diagonals.
    pub fn diag(&self) -> Range<usize> {
        let s = self.means().end;
        s..s + self.num_components * self.dim
    }

    /// The rows of the strict-upper entries.
    pub fn upper(&self) -> Range<usize> {
        let s = self.diag().end;
        s..s + self.num_components * self.num_upper()
    }

    /// The row of entry `d` of component `k`'s mean.
    pub fn mean(&self, k: usize, d: usize) -> usize {
        self.means().start + k * self.dim + d
    }

    /// The row of the unconstrained diagonal entry `(d, d)` of component `k`'s factor.
    pub fn diag_entry(&self, k: usize, d: usize) -> usize {
        self.diag().start + k * self.dim + d
    }

    /// The row of the strict-upper entry `(r, c)`, `r < c`, of component `k`'s factor.
    pub fn upper_entry(&self, k: usize, r: usize, c: usize) -> usize {
        debug_assert!(r < c && c < self.dim);
        self.upper().start + k * self.num_upper() + upper_index(self.dim, r, c)
    }
}

/// Index of the strict-upper entry (r, c), r < c, of a D × D matrix in row-major
/// upper-triangle order.
#[inline(always)]
pub(crate) fn upper_index(d: usize, r: usize, c: usize) -> usize {
    r * (d - 1) - r * r.saturating_sub(1) / 2 + (c - r - 1)
}

/// The stored state of an [`Mdn`] (what its files hold): configuration, dimensions,
/// standardization statistics and parameters.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct MdnData {
    pub(crate) config: MdnConfig,
    pub(crate) input_dim: usize,
    pub(crate) condition_dim: usize,
    pub(crate) input_stats: Standardization,
    pub(crate) condition_stats: Standardization,
    pub(crate) params: Vec<f64>,
}

/// The network and everything derived from the stored state. Its own training passes
/// (the network's raw outputs and their linearization, [`Mdn::backward_raw_outputs`])
/// run on the pass driver as a model of their own.
#[derive(Clone, Debug)]
pub(crate) struct Net {
    pub(crate) data: MdnData,
    pub(crate) mlp: Mlp,
    pub(crate) layout: OutputLayout,
    pub(crate) log_det_std: f64,
}

/// A mixture density network q(input | condition) with full-covariance Gaussian
/// components, its parameters in one flat vector: the reference's MDN (see the
/// [module docs](self) for the architecture, the density and the initialisation).
///
/// ```
/// use nalgebra::DMatrix;
/// use simfer_flows::{ConditionalDensityEstimator, Gradients, Mdn, MdnConfig, Parameterized};
///
/// let theta = DMatrix::from_fn(2, 100, |i, j| ((i + 3 * j) as f64).sin());
/// let x = DMatrix::from_fn(2, 100, |i, j| ((2 * i + j) as f64).cos());
/// let mdn = Mdn::new(&MdnConfig::default(), &theta, &x, 42)?;
/// assert_eq!(mdn.num_params(), 5_760);
///
/// // Training passes: log q and the gradient of the loss −mean log q.
/// let mut ws = mdn.workspace();
/// let mut log_q = vec![0.0; 100];
/// mdn.forward(&mut ws, theta.as_view(), x.as_view(), &mut log_q)?;
/// let mut grad = vec![0.0; mdn.num_params()];
/// mdn.backward(&mut ws, &vec![-1.0 / 100.0; 100], Gradients::params(&mut grad))?;
///
/// // The mixture at one condition, in the standardized input space, and samples.
/// let mixture = mdn.mixture(&[0.1, 0.2])?;
/// assert_eq!(mixture.num_components(), 10);
/// let samples = mdn.sample(10, &[0.1, 0.2], &mut rand::rng())?;
/// assert_eq!(samples.shape(), (2, 10));
/// # Ok::<(), simfer_flows::FlowError>(())
/// ```
#[derive(Clone, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "MdnData", into = "MdnData")
)]
pub struct Mdn {
    pub(crate) net: Net,
}

impl From<Mdn> for MdnData {
    fn from(m: Mdn) -> Self {
        m.net.data
    }
}

impl TryFrom<MdnData> for Mdn {
    type Error = FlowError;
    fn try_from(data: MdnData) -> Result<Self, FlowError> {
        Mdn::from_data(data)
    }
}

/// The scratch of an MDN's passes in a [`Workspace`]: the log-density passes and the
/// raw-output passes, kept side by side so that neither frees the other's buffers.
#[derive(Default)]
pub(crate) struct MdnWorkspace {
    pub(crate) log_q: Passes<Mdn>,
    pub(crate) raw: Passes<Net>,
    /// The raw-output passes' values per column, and their unit weights.
    values: Vec<f64>,
    ones: Vec<f64>,
}

fn network(config: &MdnConfig, c: usize, r: usize) -> Mlp {
    let mut sizes = vec![c];
    sizes.extend(std::iter::repeat_n(
        config.hidden_features,
        config.num_hidden_layers,
    ));
    sizes.push(r);
    Mlp::new(&sizes, Activation::Relu, None, 0)
}

impl Mdn {
    /// An MDN for the input (`D × n`) given the condition (`C × n`), with standardization
    /// statistics computed from these data (columns with any non-finite entry in either
    /// are left out) and weights drawn from `seed`.
    pub fn new(
        config: &MdnConfig,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Mdn, FlowError> {
        let (input_stats, condition_stats) = statistics(
            input,
            condition,
            config.standardize_input,
            config.standardize_condition,
        )?;
        Mdn::with_statistics(config, input_stats, condition_stats, seed)
    }

    /// An unconditional MDN q(input) (a Gaussian mixture learned through the biases) with
    /// statistics from `input` (`D × n`). The reference requires a condition; this is an
    /// extension.
    pub fn new_unconditional(
        config: &MdnConfig,
        input: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Mdn, FlowError> {
        Mdn::new(config, input, &DMatrix::zeros(0, input.ncols()), seed)
    }

    /// An MDN with given standardization statistics (`input_stats` has `D` entries,
    /// `condition_stats` has `C`, possibly 0), initialised as the reference (see the
    /// [module docs](self)) from `seed`.
    pub fn with_statistics(
        config: &MdnConfig,
        input_stats: Standardization,
        condition_stats: Standardization,
        seed: u64,
    ) -> Result<Mdn, FlowError> {
        config.check()?;
        let d = input_stats.mean.len();
        let c = condition_stats.mean.len();
        if d == 0 {
            return Err(FlowError::dims("input dimension", "at least 1", 0));
        }
        let layout = OutputLayout {
            dim: d,
            num_components: config.num_components,
        };
        let mlp = network(config, c, layout.len());
        let mut params = vec![0.0; mlp.end()];
        let mut rng = StdRng::seed_from_u64(seed);
        mlp.init_uniform(&mut params, &mut rng);
        let out = &mlp.layers[mlp.layers.len() - 1];
        let r = layout.len();
        let normal = Normal::new(0.0, EPSILON).expect("a positive standard deviation");
        let w0 = out.weight_range().start;
        let b0 = out.bias_range().start;
        let softplus_one = (1.0 - EPSILON).exp_m1().ln();
        for (rows, bias) in [
            (layout.logits(), None),
            (layout.diag(), Some(softplus_one)),
            (layout.upper(), Some(0.0)),
        ] {
            for h in 0..out.in_dim {
                for row in rows.clone() {
                    params[w0 + row + h * r] = normal.sample(&mut rng);
                }
            }
            for row in rows {
                params[b0 + row] = match bias {
                    Some(v) => v,
                    None => normal.sample(&mut rng),
                };
            }
        }
        Mdn::from_data(MdnData {
            config: config.clone(),
            input_dim: d,
            condition_dim: c,
            input_stats,
            condition_stats,
            params,
        })
    }

    /// Builds the derived state and checks that everything fits together.
    pub(crate) fn from_data(data: MdnData) -> Result<Mdn, FlowError> {
        data.config.check()?;
        let (d, c) = (data.input_dim, data.condition_dim);
        if d == 0 {
            return Err(FlowError::dims("input dimension", "at least 1", 0));
        }
        data.input_stats
            .check(d, "input standardization statistics")?;
        data.condition_stats
            .check(c, "condition standardization statistics")?;
        let (h, k) = (data.config.hidden_features, data.config.num_components);
        crate::error::check_stored_size(
            "an MDN",
            data.params.len(),
            &[
                (
                    "the biases of its hidden layers",
                    at_least(&[h, data.config.num_hidden_layers]),
                ),
                ("the biases of its components' means", at_least(&[k, d])),
            ],
        )?;
        let layout = OutputLayout {
            dim: d,
            num_components: data.config.num_components,
        };
        let mlp = network(&data.config, c, layout.len());
        if data.params.len() != mlp.end() {
            return Err(FlowError::ArchitectureMismatch(format!(
                "an MDN with input dimension {d}, condition dimension {c} and {:?} has {} parameters, found {}",
                data.config,
                mlp.end(),
                data.params.len()
            )));
        }
        crate::error::check_finite_params(&data.params)?;
        let log_det_std = data.input_stats.log_det();
        Ok(Mdn {
            net: Net {
                data,
                mlp,
                layout,
                log_det_std,
            },
        })
    }

    /// The architecture.
    pub fn config(&self) -> &MdnConfig {
        &self.net.data.config
    }

    /// The statistics the input is standardized with: the mixture of
    /// [`mixture`](Self::mixture) is over z = (input − mean)/std.
    pub fn input_standardization(&self) -> &Standardization {
        &self.net.data.input_stats
    }

    /// The statistics the condition is standardized with.
    pub fn condition_standardization(&self) -> &Standardization {
        &self.net.data.condition_stats
    }

    /// The network: hidden ReLU layers, then the output layer of the raw outputs (its
    /// rows as [`output_layout`](Self::output_layout) says), with their ranges in the flat
    /// parameter vector.
    pub fn network(&self) -> &Mlp {
        &self.net.mlp
    }

    /// Where each raw output sits in a column of [`raw_outputs`](Self::raw_outputs).
    pub fn output_layout(&self) -> OutputLayout {
        self.net.layout
    }

    /// The number of mixture components K.
    pub fn num_components(&self) -> usize {
        self.net.data.config.num_components
    }

    /// Sets the precision of the training passes (see [`MdnConfig::precision`]).
    pub fn set_precision(&mut self, precision: Precision) {
        self.net.data.config.precision = precision;
    }

    /// The training precision (see [`MdnConfig::precision`]).
    pub fn precision(&self) -> Precision {
        self.net.data.config.precision
    }

    /// Checks that this MDN has the given architecture and dimensions; the error says
    /// what differs. The training [`precision`](MdnConfig::precision) is not compared.
    pub fn check_architecture(
        &self,
        config: &MdnConfig,
        input_dim: usize,
        condition_dim: usize,
    ) -> Result<(), FlowError> {
        let data = &self.net.data;
        let same = MdnConfig {
            precision: data.config.precision,
            ..config.clone()
        };
        if data.config != same || data.input_dim != input_dim || data.condition_dim != condition_dim
        {
            return Err(FlowError::ArchitectureMismatch(format!(
                "expected input dimension {input_dim}, condition dimension {condition_dim}, {config:?}; found input dimension {}, condition dimension {}, {:?}",
                data.input_dim, data.condition_dim, data.config
            )));
        }
        Ok(())
    }

    /// The mixture q(z | condition) over the **standardized** input z = (input − μ)/σ
    /// ([`input_standardization`](Self::input_standardization)) for one condition
    /// (length `C`, finite), evaluated in `f64`. Its [`log_prob`](Mixture::log_prob) plus
    /// `−Σ log σ` is this MDN's log-density; its [`affine`](Mixture::affine) map by
    /// (σ, μ) is the mixture over the input itself.
    pub fn mixture(&self, condition: &[f64]) -> Result<Mixture, FlowError> {
        check_condition(self.net.data.condition_dim, condition)?;
        let x = DMatrix::from_column_slice(condition.len(), 1, condition);
        let mut out = vec![0.0; self.net.layout.len()];
        let mut ws = Workspace::new();
        self.raw_outputs(&mut ws, x.as_view(), &mut out)?;
        self.mixture_from_outputs(&out)
    }

    /// The mixture a column of raw outputs (R entries, see
    /// [`output_layout`](Self::output_layout)) stands for.
    pub fn mixture_from_outputs(&self, outputs: &[f64]) -> Result<Mixture, FlowError> {
        let l = self.net.layout;
        if outputs.len() != l.len() {
            return Err(FlowError::dims(
                "raw outputs (one column)",
                l.len(),
                outputs.len(),
            ));
        }
        let (d, k) = (l.dim, l.num_components);
        let logits = outputs[l.logits()].to_vec();
        let means = (0..k)
            .map(|c| DVector::from_iterator(d, (0..d).map(|i| outputs[l.mean(c, i)])))
            .collect();
        let factors = (0..k)
            .map(|c| {
                DMatrix::from_fn(d, d, |r, col| {
                    if r == col {
                        crate::nn::fastmath::softplus(outputs[l.diag_entry(c, r)])
                    } else if r < col {
                        outputs[l.upper_entry(c, r, col)]
                    } else {
                        0.0
                    }
                })
            })
            .collect();
        Mixture::new(logits, means, factors, EPSILON)
    }

    /// The network's raw outputs for every column of `condition` (`C × n`; `0 × n` for
    /// an unconditional MDN), in `f64`, into `out` (`R × n`, column-major, R =
    /// [`OutputLayout::len`]). The passes keep nothing for a backward pass; see
    /// [`backward_raw_outputs`](Self::backward_raw_outputs).
    pub fn raw_outputs(
        &self,
        ws: &mut Workspace,
        condition: DMatrixView<'_, f64>,
        out: &mut [f64],
    ) -> Result<(), FlowError> {
        let n = self.check_raw_condition(&condition)?;
        let r = self.net.layout.len();
        if out.len() != r * n {
            return Err(FlowError::dims(
                "raw outputs (outputs per condition × columns)",
                r * n,
                out.len(),
            ));
        }
        let none = DMatrixView::from_slice(&[], 0, n);
        let inputs = PassInputs {
            input: none,
            condition,
        };
        let MdnWorkspace {
            raw: passes,
            values,
            ..
        } = ws.get::<MdnWorkspace>();
        values.resize(n, 0.0);
        passes.forward(&self.net, Precision::F64, &inputs, values)?;
        for (start, len, chunk) in passes.chunks_f64() {
            out[start * r..(start + len) * r].copy_from_slice(chunk.outputs(&self.net, len));
        }
        Ok(())
    }

    /// Adds to `grads` the gradients of `Σ_j ⟨g_outputs[:, j], o(condition_j)⟩`, where
    /// o(x) are the raw outputs ([`raw_outputs`](Self::raw_outputs)) and `g_outputs`
    /// (`R × n`) is the gradient of a loss with respect to them: with respect to the
    /// parameters and, when asked, the condition (`C × n`). `grads.input` must be `None`
    /// (the raw outputs depend only on the condition).
    ///
    /// Runs a forward pass of the network itself (in the training
    /// [`precision`](MdnConfig::precision)), then the backward pass.
    pub fn backward_raw_outputs(
        &self,
        ws: &mut Workspace,
        condition: DMatrixView<'_, f64>,
        g_outputs: DMatrixView<'_, f64>,
        grads: Gradients<'_>,
    ) -> Result<(), FlowError> {
        let n = self.check_raw_condition(&condition)?;
        let r = self.net.layout.len();
        if g_outputs.shape() != (r, n) {
            return Err(FlowError::dims(
                "gradient of the raw outputs (outputs per condition × columns)",
                format!("{r} × {n}"),
                format!("{} × {}", g_outputs.nrows(), g_outputs.ncols()),
            ));
        }
        if grads.input.is_some() {
            return Err(FlowError::InvalidConfig(
                "the raw outputs depend only on the condition: ask for parameter and condition gradients, not an input gradient".into(),
            ));
        }
        let inputs = PassInputs {
            input: g_outputs,
            condition,
        };
        let MdnWorkspace {
            raw: passes,
            values,
            ones,
            ..
        } = ws.get::<MdnWorkspace>();
        values.resize(n, 0.0);
        ones.resize(n, 1.0);
        passes.forward(&self.net, self.precision(), &inputs, values)?;
        passes.backward(&self.net, ones, grads, None)?;
        Ok(())
    }

    fn check_raw_condition(&self, condition: &DMatrixView<'_, f64>) -> Result<usize, FlowError> {
        let c = self.net.data.condition_dim;
        if condition.nrows() != c {
            return Err(FlowError::dims(
                "condition rows (the condition's dimension)",
                c,
                condition.nrows(),
            ));
        }
        Ok(condition.ncols())
    }
}

impl Parameterized for Mdn {
    fn num_params(&self) -> usize {
        self.net.data.params.len()
    }

    fn params(&self) -> &[f64] {
        &self.net.data.params
    }

    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.net.data.params
    }
}

impl ConditionalDensityEstimator for Mdn {
    fn kind(&self) -> &'static str {
        "mdn"
    }

    fn input_dim(&self) -> usize {
        self.net.data.input_dim
    }

    fn condition_dim(&self) -> usize {
        self.net.data.condition_dim
    }

    /// Runs in the precision of [`MdnConfig::precision`] (the log-densities handed back
    /// are `f64` either way).
    fn forward(
        &self,
        ws: &mut Workspace,
        input: DMatrixView<'_, f64>,
        condition: DMatrixView<'_, f64>,
        out: &mut [f64],
    ) -> Result<(), FlowError> {
        check_batch(
            self.net.data.input_dim,
            self.net.data.condition_dim,
            &input,
            &condition,
        )?;
        let inputs = PassInputs { input, condition };
        ws.get::<MdnWorkspace>()
            .log_q
            .forward(self, self.precision(), &inputs, out)?;
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
        ws.get::<MdnWorkspace>()
            .log_q
            .backward(self, weights, grads, None)?;
        Ok(())
    }

    /// Evaluated in `f64` (whatever [`MdnConfig::precision`] says), in blocks.
    fn log_prob(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<DVector<f64>, FlowError> {
        check_batch(
            self.net.data.input_dim,
            self.net.data.condition_dim,
            &input.as_view(),
            &condition.as_view(),
        )?;
        log_prob_f64(self, input, condition)
    }

    /// Evaluated in `f64`, whatever [`MdnConfig::precision`] says.
    fn log_prob_grad_input(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), FlowError> {
        check_batch(
            self.net.data.input_dim,
            self.net.data.condition_dim,
            &input.as_view(),
            &condition.as_view(),
        )?;
        log_prob_grad_input_f64(self, input, condition)
    }

    /// Evaluated in `f64`, whatever [`MdnConfig::precision`] says.
    fn log_prob_grad_condition(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), FlowError> {
        check_batch(
            self.net.data.input_dim,
            self.net.data.condition_dim,
            &input.as_view(),
            &condition.as_view(),
        )?;
        log_prob_grad_condition_f64(self, input, condition)
    }

    /// Exact sampling from the mixture at `condition` ([`Mixture::sample`]: all `n`
    /// components first, then the normals sample by sample, from `rng` in that order),
    /// mapped back from the standardized space.
    fn sample(
        &self,
        n: usize,
        condition: &[f64],
        rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>, FlowError> {
        let mixture = self.mixture(condition)?;
        let mut z = mixture.sample(n, rng);
        let s = &self.net.data.input_stats;
        for mut col in z.column_iter_mut() {
            for (i, v) in col.iter_mut().enumerate() {
                *v = s.std[i] * *v + s.mean[i];
            }
        }
        Ok(z)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn clone_boxed(&self) -> Box<dyn ConditionalDensityEstimator> {
        Box::new(self.clone())
    }
}

impl crate::EstimatorSettings for MdnConfig {
    type Model = Mdn;
    fn build(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Mdn, FlowError> {
        Mdn::new(self, input, condition, seed)
    }
    fn precision(&self) -> Precision {
        self.precision
    }
    fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
    }
}
