//! The masked autoregressive flow (MAF) of the reference library, conditional or not.
//!
//! Forward direction (data → noise), as the reference builds it (`nflows`'
//! `MaskedAffineAutoregressiveTransform`, sbi's `build_maf`); θ is the input, x the
//! condition:
//! ```text
//! z = (θ − μ_θ)/σ_θ,  L = −Σ log σ_θ           standardization, part of the flow
//! c = (x − μ_x)/σ_x                            standardized context, fed to every MADE
//! for k = 1..K:  (a, b) = MADE_k(z, c);  s = softplus(a) + 1e-3
//!                z ← s ⊙ z + b;  L += Σ log s;  z ← z[perm_k]
//! log q(θ | x) = −½‖z‖² − (D/2) log 2π + L
//! ```

use std::any::Any;

use nalgebra::{DMatrix, DMatrixView, DVector};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use simfer_nn::driver::{PassInputs, Passes};
use simfer_nn::{Activation, Gradients, Parameterized, Precision, Workspace};

use crate::error::{FlowError, at_least};
use crate::estimator::{ConditionalDensityEstimator, check_batch, check_condition};
use crate::passes::{log_prob_f64, log_prob_grad_condition_f64, log_prob_grad_input_f64};
use crate::standardize::{Standardization, statistics};

mod inverse;
#[cfg(feature = "serde")]
mod io;
pub mod made;
mod passes;

pub use made::{ContextColumns, MadeActs, MadeLayout};
pub use passes::Chunk as MafChunk;

/// Added to `softplus(a)` to get the scale of each affine step.
pub const MIN_SCALE: f64 = 1e-3;

/// Architecture of a [`Maf`] and the precision of its training passes. The
/// architecture's defaults are the reference library's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct MafConfig {
    /// Width of every hidden layer (default 50).
    pub hidden_features: usize,
    /// Number of MADE transforms (default 5).
    pub num_transforms: usize,
    /// Hidden blocks per MADE after the input layer (default 2).
    pub num_blocks: usize,
    /// Activation of the hidden layers and of the context layer (default tanh).
    pub activation: Activation,
    /// Standardize the input (θ for posterior estimation) as the first transform of the
    /// flow (default true).
    #[cfg_attr(feature = "serde", serde(alias = "standardize_theta"))]
    pub standardize_input: bool,
    /// Standardize the condition before it enters the MADEs (default true).
    #[cfg_attr(feature = "serde", serde(alias = "standardize_x"))]
    pub standardize_condition: bool,
    /// Precision of the training passes [`forward`](ConditionalDensityEstimator::forward)
    /// and [`backward`](ConditionalDensityEstimator::backward) (default
    /// [`Precision::F32`], measured to be faster at the same accuracy; see
    /// [`Precision`]). Parameters stay `f64`; evaluation (`log_prob`, `sample`,
    /// `inverse`, `log_prob_grad_input`, `transform_to_noise`) is always `f64`. Not part
    /// of the architecture: [`Maf::check_architecture`] ignores it, files written before
    /// it existed load with the default, and [`Maf::set_precision`] changes it.
    #[cfg_attr(feature = "serde", serde(default))]
    pub precision: Precision,
}

impl Default for MafConfig {
    fn default() -> Self {
        MafConfig {
            hidden_features: 50,
            num_transforms: 5,
            num_blocks: 2,
            activation: Activation::Tanh,
            standardize_input: true,
            standardize_condition: true,
            precision: Precision::default(),
        }
    }
}

impl MafConfig {
    /// Checks the settings (every count at least 1).
    pub fn check(&self) -> Result<(), FlowError> {
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

/// A conditional masked autoregressive flow q(input | condition) (or unconditional), with
/// its parameters in one flat vector: `nflows`' MAF as the reference library builds it
/// (Papamakarios et al. 2017).
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
#[derive(Clone, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "MafData", into = "MafData")
)]
pub struct Maf {
    data: MafData,
    mades: Vec<MadeLayout>,
    mask: Vec<f64>,
    inv_perms: Vec<Vec<usize>>,
    log_det_std: f64,
}

/// The stored state of a [`Maf`] (what its files hold): the configuration, dimensions,
/// standardization statistics, parameters and permutations.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct MafData {
    pub(crate) config: MafConfig,
    #[cfg_attr(feature = "serde", serde(alias = "theta_dim"))]
    pub(crate) input_dim: usize,
    #[cfg_attr(feature = "serde", serde(alias = "context_dim"))]
    pub(crate) condition_dim: usize,
    #[cfg_attr(feature = "serde", serde(alias = "theta_stats"))]
    pub(crate) input_stats: Standardization,
    #[cfg_attr(feature = "serde", serde(alias = "x_stats"))]
    pub(crate) condition_stats: Standardization,
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
    /// A conditional MAF for the input (`D × n`) given the condition (`C × n`), with
    /// standardization statistics computed from these data (columns with any non-finite
    /// entry in either are left out) and weights and permutations drawn from `seed`.
    pub fn new(
        config: &MafConfig,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Maf, FlowError> {
        let (input_stats, condition_stats) = statistics(
            input,
            condition,
            config.standardize_input,
            config.standardize_condition,
        )?;
        Maf::with_statistics(config, input_stats, condition_stats, seed)
    }

    /// An unconditional MAF q(input) with statistics from `input` (`D × n`).
    pub fn new_unconditional(
        config: &MafConfig,
        input: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Maf, FlowError> {
        Maf::new(config, input, &DMatrix::zeros(0, input.ncols()), seed)
    }

    /// A MAF with given standardization statistics (`input_stats` has `D` entries,
    /// `condition_stats` has `C`, possibly 0). Weights use PyTorch's default initialization
    /// (uniform on ±1/√fan_in); permutations are uniformly random; both from `seed`.
    pub fn with_statistics(
        config: &MafConfig,
        input_stats: Standardization,
        condition_stats: Standardization,
        seed: u64,
    ) -> Result<Maf, FlowError> {
        config.check()?;
        let d = input_stats.mean.len();
        let c = condition_stats.mean.len();
        if d == 0 {
            return Err(FlowError::dims("input dimension", "at least 1", 0));
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
            input_dim: d,
            condition_dim: c,
            input_stats,
            condition_stats,
            params,
            permutations,
        })
    }

    /// Builds the derived state and checks that everything fits together.
    pub(crate) fn from_data(data: MafData) -> Result<Maf, FlowError> {
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
        let b = data.config.num_blocks.saturating_add(1);
        crate::error::check_stored_size(
            "a MAF",
            data.params.len(),
            &[
                ("the biases of its hidden layers", at_least(&[t, h, b])),
                (
                    "the weights of its input layers",
                    at_least(&[t, d.saturating_add(c), h]),
                ),
            ],
        )?;
        let mades = layouts(&data.config, d, c);
        let num_params = mades.last().map_or(0, MadeLayout::end);
        if data.params.len() != num_params {
            return Err(FlowError::ArchitectureMismatch(format!(
                "a MAF with input dimension {d}, condition dimension {c} and {:?} has {num_params} parameters, found {}",
                data.config,
                data.params.len()
            )));
        }
        crate::error::check_finite_params(&data.params)?;
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
        let log_det_std = data.input_stats.log_det();
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

    /// The statistics the input is standardized with (the flow's first transform).
    pub fn input_standardization(&self) -> &Standardization {
        &self.data.input_stats
    }

    /// The statistics the condition is standardized with.
    pub fn condition_standardization(&self) -> &Standardization {
        &self.data.condition_stats
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

    /// The training precision (see [`MafConfig::precision`]).
    pub fn precision(&self) -> Precision {
        self.data.config.precision
    }

    /// Checks that this flow has the given architecture and dimensions; the error says
    /// what differs. The training [`precision`](MafConfig::precision) is not compared.
    pub fn check_architecture(
        &self,
        config: &MafConfig,
        input_dim: usize,
        condition_dim: usize,
    ) -> Result<(), FlowError> {
        let same = MafConfig {
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

impl Parameterized for Maf {
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

impl ConditionalDensityEstimator for Maf {
    fn kind(&self) -> &'static str {
        "maf"
    }

    fn input_dim(&self) -> usize {
        self.data.input_dim
    }

    fn condition_dim(&self) -> usize {
        self.data.condition_dim
    }

    /// Runs in the precision of [`MafConfig::precision`] (the log-densities handed back
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
        ws.get::<Passes<Maf>>()
            .forward(self, self.data.config.precision, &inputs, out)?;
        Ok(())
    }

    /// In the precision of the preceding [`forward`](Self::forward); the parameter
    /// gradient is reduced over the column chunks in `f64`, masked entries get 0.
    fn backward(
        &self,
        ws: &mut Workspace,
        weights: &[f64],
        grads: Gradients<'_>,
    ) -> Result<(), FlowError> {
        ws.get::<Passes<Maf>>()
            .backward(self, weights, grads, Some(&self.mask))?;
        Ok(())
    }

    /// Evaluated in `f64` (whatever [`MafConfig::precision`] says), in blocks, so memory
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

    /// Evaluated in `f64`, whatever [`MafConfig::precision`] says.
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

    /// Evaluated in `f64`, whatever [`MafConfig::precision`] says.
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
