//! The ratio classifier of neural ratio estimation: one logit `f(θ, x)` from the
//! standardized θ and x, as the reference library builds it
//! (`sbi.neural_nets.ratio_estimators.RatioEstimator` with the default
//! `ResNetClassifierConfig`, Hermans et al. 2020, Durkan et al. 2020):
//!
//! ```text
//! f(θ, x) = ResidualNet( [(θ − μ_θ)/σ_θ ; (x − μ_x)/σ_x] ) → one logit
//! ResidualNet: input layer (dθ + dx → H), blocks of two H → H layers with ReLU and a
//!              skip connection (no context gates), output layer H → 1
//! ```
//!
//! Trained with a contrastive loss (NRE-B, NRE-C, …), `f` approximates
//! `log p(x | θ) / p(x)` up to a function of x, which is what the potential of NRE needs.
//! The passes run on simfer-nn's pass driver (f32 or f64, thread-count independent);
//! the backward pass adds gradients with respect to the parameters, θ (the pass's
//! "input") and x (its "condition").

use nalgebra::{DMatrix, DMatrixView, DVector};
use rand::SeedableRng;
use rand::rngs::StdRng;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use simfer_nn::driver::{ChunkGrads, ChunkModel, PassInputs, Passes};
use simfer_nn::{Activation, Gradients, Parameterized, Precision, Real, ResidualNet, Workspace};

use crate::FlowError;
use crate::error::at_least;
use crate::estimator::check_batch;
use crate::standardize::{Standardization, statistics};

/// Architecture of a [`RatioClassifier`]; the defaults are the reference library's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ClassifierConfig {
    /// Width of the hidden layers (default 50).
    pub hidden_features: usize,
    /// Residual blocks (default 2).
    pub num_blocks: usize,
    /// Standardize θ (default true).
    pub standardize_theta: bool,
    /// Standardize x (default true).
    pub standardize_x: bool,
    /// Precision of the training passes (default `f32`; evaluation is `f64`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub precision: Precision,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            hidden_features: 50,
            num_blocks: 2,
            standardize_theta: true,
            standardize_x: true,
            precision: Precision::default(),
        }
    }
}

impl ClassifierConfig {
    /// Checks the settings.
    pub fn check(&self) -> Result<(), FlowError> {
        if self.hidden_features == 0 {
            return Err(FlowError::InvalidConfig(
                "hidden_features must be at least 1, found 0".into(),
            ));
        }
        Ok(())
    }
}

/// The stored state of a [`RatioClassifier`] (what its files hold).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ClassifierData {
    config: ClassifierConfig,
    theta_dim: usize,
    x_dim: usize,
    theta_stats: Standardization,
    x_stats: Standardization,
    params: Vec<f64>,
}

/// A classifier of (θ, x) pairs whose logit estimates a log likelihood-to-evidence ratio.
///
/// ```
/// use nalgebra::DMatrix;
/// use simfer_flows::{ClassifierConfig, RatioClassifier};
///
/// let theta = DMatrix::from_fn(2, 50, |i, j| ((i + 3 * j) as f64).sin());
/// let x = DMatrix::from_fn(3, 50, |i, j| ((2 * i + j) as f64).cos());
/// let f = RatioClassifier::new(&ClassifierConfig::default(), &theta, &x, 1)?;
/// assert_eq!(f.logits(&theta, &x)?.len(), 50);
/// # Ok::<(), simfer_flows::FlowError>(())
/// ```
#[derive(Clone, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "ClassifierData", into = "ClassifierData")
)]
pub struct RatioClassifier {
    data: ClassifierData,
    net: ResidualNet,
}

impl From<RatioClassifier> for ClassifierData {
    fn from(c: RatioClassifier) -> Self {
        c.data
    }
}

impl TryFrom<ClassifierData> for RatioClassifier {
    type Error = FlowError;
    fn try_from(data: ClassifierData) -> Result<Self, FlowError> {
        RatioClassifier::from_data(data)
    }
}

fn network(config: &ClassifierConfig, theta_dim: usize, x_dim: usize) -> ResidualNet {
    ResidualNet::new(
        theta_dim + x_dim,
        0,
        config.hidden_features,
        1,
        config.num_blocks,
        Activation::Relu,
        0,
    )
}

impl RatioClassifier {
    /// A classifier of θ (`dθ × n`) and x (`dx × n`) with standardization statistics from
    /// these data (columns with a non-finite entry left out) and PyTorch-default weights
    /// (near-zero second layers in the blocks) from `seed`.
    pub fn new(
        config: &ClassifierConfig,
        theta: &DMatrix<f64>,
        x: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Self, FlowError> {
        config.check()?;
        if theta.nrows() == 0 || x.nrows() == 0 {
            return Err(FlowError::dims(
                "dimensions of θ and x",
                "at least 1 each",
                format!("{} and {}", theta.nrows(), x.nrows()),
            ));
        }
        let (theta_stats, x_stats) =
            statistics(theta, x, config.standardize_theta, config.standardize_x)?;
        let net = network(config, theta.nrows(), x.nrows());
        let mut params = vec![0.0; net.end()];
        net.init(&mut params, &mut StdRng::seed_from_u64(seed));
        RatioClassifier::from_data(ClassifierData {
            config: config.clone(),
            theta_dim: theta.nrows(),
            x_dim: x.nrows(),
            theta_stats,
            x_stats,
            params,
        })
    }

    fn from_data(data: ClassifierData) -> Result<Self, FlowError> {
        data.config.check()?;
        data.theta_stats
            .check(data.theta_dim, "θ standardization statistics")?;
        data.x_stats
            .check(data.x_dim, "x standardization statistics")?;
        let (h, inputs) = (
            data.config.hidden_features,
            data.theta_dim.saturating_add(data.x_dim),
        );
        crate::error::check_stored_size(
            "a ratio classifier",
            data.params.len(),
            &[
                (
                    "the biases of its hidden layers",
                    at_least(&[h, data.config.num_blocks.saturating_add(1)]),
                ),
                ("the weights of its input layer", at_least(&[inputs, h])),
            ],
        )?;
        let net = network(&data.config, data.theta_dim, data.x_dim);
        if data.params.len() != net.end() {
            return Err(FlowError::ArchitectureMismatch(format!(
                "a ratio classifier of θ dimension {}, x dimension {} and {:?} has {} \
                 parameters, found {}",
                data.theta_dim,
                data.x_dim,
                data.config,
                net.end(),
                data.params.len()
            )));
        }
        crate::error::check_finite_params(&data.params)?;
        Ok(RatioClassifier { data, net })
    }

    /// The architecture.
    pub fn config(&self) -> &ClassifierConfig {
        &self.data.config
    }

    /// Dimension of θ.
    pub fn theta_dim(&self) -> usize {
        self.data.theta_dim
    }

    /// Dimension of x.
    pub fn x_dim(&self) -> usize {
        self.data.x_dim
    }

    /// Sets the precision of the training passes.
    pub fn set_precision(&mut self, precision: Precision) {
        self.data.config.precision = precision;
    }

    /// The logits `f(θ_j, x_j)` of the training pass (in the configured precision), kept
    /// in `ws` for [`backward`](Self::backward). `out.len()` must be the number of columns.
    pub fn forward(
        &self,
        ws: &mut Workspace,
        theta: DMatrixView<'_, f64>,
        x: DMatrixView<'_, f64>,
        out: &mut [f64],
    ) -> Result<(), FlowError> {
        check_batch(self.data.theta_dim, self.data.x_dim, &theta, &x)?;
        let inputs = PassInputs {
            input: theta,
            condition: x,
        };
        ws.get::<Passes<RatioClassifier>>().forward(
            self,
            self.data.config.precision,
            &inputs,
            out,
        )?;
        Ok(())
    }

    /// After [`forward`](Self::forward): **adds** the gradients of `Σ_j w_j f(θ_j, x_j)`
    /// asked for (parameters; θ as the "input", `dθ × n`; x as the "condition", `dx × n`).
    pub fn backward(
        &self,
        ws: &mut Workspace,
        weights: &[f64],
        grads: Gradients<'_>,
    ) -> Result<(), FlowError> {
        ws.get::<Passes<RatioClassifier>>()
            .backward(self, weights, grads, None)?;
        Ok(())
    }

    /// The logits `f(θ_j, x_j)` in `f64`.
    pub fn logits(
        &self,
        theta: &DMatrix<f64>,
        x: &DMatrix<f64>,
    ) -> Result<DVector<f64>, FlowError> {
        check_batch(
            self.data.theta_dim,
            self.data.x_dim,
            &theta.as_view(),
            &x.as_view(),
        )?;
        crate::passes::log_prob_f64(self, theta, x)
    }

    /// The logits and their gradient with respect to θ (`dθ × n`), in `f64`.
    pub fn logits_grad_theta(
        &self,
        theta: &DMatrix<f64>,
        x: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), FlowError> {
        check_batch(
            self.data.theta_dim,
            self.data.x_dim,
            &theta.as_view(),
            &x.as_view(),
        )?;
        crate::passes::log_prob_grad_input_f64(self, theta, x)
    }
}

impl Parameterized for RatioClassifier {
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

/// The activations of one chunk of a classifier pass.
#[derive(Clone, Debug, Default)]
pub struct ClassifierChunk<T> {
    n: usize,
    input: Vec<T>,
    acts: Vec<T>,
    g_out: Vec<T>,
    g_in: Vec<T>,
    scratch: Vec<T>,
}

impl ChunkModel for RatioClassifier {
    type Chunk<T: Real> = ClassifierChunk<T>;

    fn gradient_len(&self) -> usize {
        self.data.params.len()
    }

    fn pass_params<T: Real>(&self, out: &mut Vec<T>) {
        out.clear();
        out.extend(self.data.params.iter().map(|p| T::of(*p)));
    }

    fn forward_chunk<T: Real>(
        &self,
        params: &[T],
        ch: &mut ClassifierChunk<T>,
        inputs: &PassInputs<'_>,
        start: usize,
        out: &mut [f64],
    ) {
        let n = out.len();
        let (dt, dx) = (self.data.theta_dim, self.data.x_dim);
        let (ts, xs) = (&self.data.theta_stats, &self.data.x_stats);
        ch.n = n;
        ch.input.clear();
        for j in 0..n {
            for i in 0..dt {
                ch.input.push(T::of(
                    (inputs.input[(i, start + j)] - ts.mean[i]) / ts.std[i],
                ));
            }
            for i in 0..dx {
                ch.input.push(T::of(
                    (inputs.condition[(i, start + j)] - xs.mean[i]) / xs.std[i],
                ));
            }
        }
        ch.acts.resize(self.net.acts_len(n), T::of(0.0));
        self.net.forward(params, &ch.input, &[], n, &mut ch.acts);
        for (o, v) in out.iter_mut().zip(self.net.output(&ch.acts, n)) {
            *o = v.widen();
        }
    }

    fn backward_chunk<T: Real>(
        &self,
        params: &[T],
        ch: &mut ClassifierChunk<T>,
        weights: &[f64],
        grads: ChunkGrads<'_, T>,
    ) {
        let n = ch.n;
        let (dt, dx) = (self.data.theta_dim, self.data.x_dim);
        let d = dt + dx;
        ch.g_out.clear();
        ch.g_out.extend(weights.iter().map(|w| T::of(*w)));
        ch.scratch.resize(self.net.scratch_len(n), T::of(0.0));
        let want_input = grads.input.is_some() || grads.condition.is_some();
        ch.g_in.resize(d * n, T::of(0.0));
        self.net.backward(
            params,
            &[],
            n,
            &ch.acts,
            &ch.g_out,
            grads.params,
            want_input.then_some(&mut ch.g_in[..]),
            None,
            &mut ch.scratch,
        );
        if let Some(gt) = grads.input {
            let std = &self.data.theta_stats.std;
            for j in 0..n {
                for i in 0..dt {
                    gt[i + j * dt] += ch.g_in[i + j * d].widen() / std[i];
                }
            }
        }
        if let Some(gx) = grads.condition {
            let std = &self.data.x_stats.std;
            for j in 0..n {
                for i in 0..dx {
                    gx[i + j * dx] += ch.g_in[dt + i + j * d].widen() / std[i];
                }
            }
        }
    }
}

#[cfg(feature = "serde")]
impl crate::io::SavedModel for RatioClassifier {
    type Stored = ClassifierData;
    const KIND: &'static str = "ratio-classifier";
    // Version 2 carries a checksum; version 1 is the same layout without one.
    const VERSION: u32 = 2;
    const OLDEST_VERSION: u32 = 1;
    const CHECKSUMMED_SINCE: u32 = 2;
    fn from_stored(stored: ClassifierData) -> Result<Self, FlowError> {
        RatioClassifier::from_data(stored)
    }
}

#[cfg(feature = "serde")]
impl RatioClassifier {
    /// The binary encoding (see [`io`](crate::io)).
    pub fn to_bytes(&self) -> Result<Vec<u8>, FlowError> {
        crate::io::to_bytes(self)
    }

    /// A classifier from its binary encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FlowError> {
        crate::io::from_bytes(bytes)
    }

    /// The JSON encoding.
    pub fn to_json(&self) -> Result<String, FlowError> {
        crate::io::to_json(self)
    }

    /// A classifier from its JSON encoding.
    pub fn from_json(json: &str) -> Result<Self, FlowError> {
        crate::io::from_json(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn data(n: usize) -> (DMatrix<f64>, DMatrix<f64>) {
        let mut rng = StdRng::seed_from_u64(3);
        let theta = DMatrix::from_fn(2, n, |_, _| rng.random_range(-2.0..2.0));
        let x = DMatrix::from_fn(3, n, |i, j| {
            theta[(i % 2, j)] + 0.3 * rng.random_range(-1.0..1.0) + i as f64
        });
        (theta, x)
    }

    fn perturbed(precision: Precision) -> RatioClassifier {
        let (theta, x) = data(100);
        let config = ClassifierConfig {
            hidden_features: 12,
            precision,
            ..ClassifierConfig::default()
        };
        let mut f = RatioClassifier::new(&config, &theta, &x, 5).unwrap();
        let mut rng = StdRng::seed_from_u64(9);
        for p in f.params_mut() {
            *p += rng.random_range(-0.2..0.2);
        }
        f
    }

    #[test]
    fn parameter_count_matches_the_reference() {
        let (theta, _) = data(10);
        let x = DMatrix::from_fn(2, 10, |i, j| (i + j) as f64);
        let f = RatioClassifier::new(&ClassifierConfig::default(), &theta, &x, 0).unwrap();
        assert_eq!(f.num_params(), 10_501);
    }

    #[test]
    fn gradients_match_central_differences() {
        let f = perturbed(Precision::F64);
        let (theta, x) = data(7);
        let w: Vec<f64> = (0..7).map(|j| (j as f64 - 3.0) / 4.0).collect();
        let mut ws = Workspace::new();
        let mut out = vec![0.0; 7];
        f.forward(&mut ws, theta.as_view(), x.as_view(), &mut out)
            .unwrap();
        let lg = f.logits(&theta, &x).unwrap();
        assert!(
            out.iter()
                .zip(lg.iter())
                .all(|(a, b)| (a - b).abs() < 1e-12)
        );
        let (mut gp, mut gt, mut gx) = (vec![0.0; f.num_params()], vec![0.0; 14], vec![0.0; 21]);
        f.backward(
            &mut ws,
            &w,
            Gradients::params(&mut gp)
                .with_input(&mut gt)
                .with_condition(&mut gx),
        )
        .unwrap();
        let objective = |f: &RatioClassifier, t: &DMatrix<f64>, x: &DMatrix<f64>| -> f64 {
            f.logits(t, x)
                .unwrap()
                .iter()
                .zip(&w)
                .map(|(a, b)| a * b)
                .sum()
        };
        let h = 1e-6;
        for i in (0..f.num_params()).step_by(7) {
            let mut g = f.clone();
            g.params_mut()[i] += h;
            let up = objective(&g, &theta, &x);
            g.params_mut()[i] -= 2.0 * h;
            let down = objective(&g, &theta, &x);
            let fd = (up - down) / (2.0 * h);
            assert!(
                (fd - gp[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                "param {i}: {fd} vs {}",
                gp[i]
            );
        }
        for (m, g, is_theta) in [(&theta, &gt, true), (&x, &gx, false)] {
            for k in 0..m.len() {
                let mut mp = m.clone();
                mp[k] += h;
                let up = if is_theta {
                    objective(&f, &mp, &x)
                } else {
                    objective(&f, &theta, &mp)
                };
                mp[k] -= 2.0 * h;
                let down = if is_theta {
                    objective(&f, &mp, &x)
                } else {
                    objective(&f, &theta, &mp)
                };
                let fd = (up - down) / (2.0 * h);
                assert!(
                    (fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{k}: {fd} vs {}",
                    g[k]
                );
            }
        }
        let (_, gtheta) = f.logits_grad_theta(&theta, &x).unwrap();
        for j in 0..7 {
            for i in 0..2 {
                // The weighted θ-gradient is w_j times the unweighted one.
                assert!((gtheta[(i, j)] * w[j] - gt[i + 2 * j]).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn single_precision_passes_agree_and_files_round_trip() {
        let (f64s, f32s) = (perturbed(Precision::F64), perturbed(Precision::F32));
        let (theta, x) = data(300);
        let mut ws = Workspace::new();
        let (mut a, mut b) = (vec![0.0; 300], vec![0.0; 300]);
        f64s.forward(&mut ws, theta.as_view(), x.as_view(), &mut a)
            .unwrap();
        f32s.forward(&mut ws, theta.as_view(), x.as_view(), &mut b)
            .unwrap();
        let err = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-4 && err > 0.0, "{err}");
        #[cfg(feature = "serde")]
        {
            let back = RatioClassifier::from_bytes(&f32s.to_bytes().unwrap()).unwrap();
            assert_eq!(
                back.logits(&theta, &x).unwrap(),
                f32s.logits(&theta, &x).unwrap()
            );
            let back = RatioClassifier::from_json(&f32s.to_json().unwrap()).unwrap();
            assert_eq!(back.params(), f32s.params());
            let mut v: serde_json::Value = serde_json::from_str(&f32s.to_json().unwrap()).unwrap();
            v["model"]["params"] = serde_json::json!([1.0, 2.0]);
            // Changed, the file no longer matches its checksum; sealed again, the change
            // is checked against the architecture.
            assert!(matches!(
                RatioClassifier::from_json(&v.to_string()),
                Err(FlowError::Corrupted { .. })
            ));
            crate::io::seal_json(&mut v);
            assert!(matches!(
                RatioClassifier::from_json(&v.to_string()),
                Err(FlowError::ArchitectureMismatch(_))
            ));
        }
        assert!(
            f64s.logits(&DMatrix::zeros(3, 4), &DMatrix::zeros(3, 4))
                .is_err()
        );
    }
}
