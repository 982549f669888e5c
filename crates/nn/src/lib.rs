//! # simfer-nn: the numerical building blocks of simfer's neural networks
//!
//! Everything the density estimators and classifiers of the workspace share, and nothing
//! about inference:
//!
//! * [`precision`]: [`Precision`] (`f32` or `f64` training passes) and the [`Real`]
//!   scalar type every kernel is generic over;
//! * [`fastmath`]: vectorizable, accurate elementwise functions (`exp`, `tanh`,
//!   `sigmoid`, `softplus`, `ln`, in both precisions) with run-time SIMD dispatch;
//! * [`linalg`]: matrix products on column-major slices ([`gemm`](linalg::gemm), with a
//!   cache-friendly single-precision kernel and register kernels for the small shapes),
//!   dot products and row sums in a fixed summation order;
//! * [`layers`]: [`Dense`] and [`MaskedDense`] layers and [`Activation`]s with
//!   hand-written backprop; [`Mlp`] and [`ResidualNet`] (nflows' residual network with
//!   context gating) built from them;
//! * [`optim`]: the [`Optimizer`] trait, [`Adam`] with PyTorch's update, and
//!   [`clip_grad_norm`];
//! * [`driver`]: the deterministic pass driver — column chunks that depend only on the
//!   batch size, per-chunk scratch, `f32` or `f64` passes, reductions in a fixed order —
//!   so that any model built on it gives the same bits for any number of threads; and
//!   the object-safe scratch [`Workspace`];
//! * [`par`] (rayon behind the `parallel` feature) and [`shuffle`].
//!
//! Conventions: a batch of `n` vectors of dimension `d` is a column-major `d × n` block
//! (one sample per column); a model owns one flat parameter vector, and a layer knows the
//! range of it that holds its weights; nothing allocates in the passes once the buffers
//! have grown.
//!
//! Features: `parallel` (rayon; default) and `serde` (Serialize/Deserialize for layouts,
//! activations, precision and Adam; default).
//!
//! A two-layer network trained by Adam to fit y = 2x:
//! ```
//! use rand::SeedableRng;
//! use simfer_nn::{Activation, Adam, Mlp, Optimizer};
//!
//! let net = Mlp::new(&[1, 8, 1], Activation::Tanh, None, 0);
//! let mut params = vec![0.0; net.end()];
//! net.init_uniform(&mut params, &mut rand::rngs::StdRng::seed_from_u64(0));
//! let n = 32;
//! let x: Vec<f64> = (0..n).map(|j| j as f64 / n as f64 - 0.5).collect();
//! let (mut acts, mut scratch) = (vec![0.0; net.acts_len(n)], vec![0.0; net.scratch_len(n)]);
//! let mut adam = Adam::new(params.len(), 0.01);
//! let mse = |params: &[f64], acts: &mut Vec<f64>| {
//!     net.forward(params, &x, n, acts);
//!     net.output(acts, n).iter().zip(&x).map(|(y, x)| (y - 2.0 * x).powi(2)).sum::<f64>() / n as f64
//! };
//! let before = mse(&params, &mut acts);
//! for _ in 0..500 {
//!     net.forward(&params, &x, n, &mut acts);
//!     let g_out: Vec<f64> = net.output(&acts, n).iter().zip(&x).map(|(y, x)| 2.0 * (y - 2.0 * x) / n as f64).collect();
//!     let mut grad = vec![0.0; params.len()];
//!     net.backward(&params, &x, n, &acts, &g_out, Some(&mut grad), None, &mut scratch);
//!     Optimizer::step(&mut adam, &mut params, &grad);
//! }
//! assert!(mse(&params, &mut acts) < 0.01 * before);
//! ```

pub mod driver;
pub mod error;
pub mod fastmath;
pub mod layers;
pub mod linalg;
pub mod mlp;
pub mod optim;
pub mod par;
pub mod precision;
mod random;
pub mod resnet;
mod sgemm;
pub mod subnormal;

pub use driver::{ChunkGrads, ChunkModel, Gradients, PassInputs, Passes, Workspace};
pub use error::NnError;
pub use layers::{Activation, Dense, MaskedDense};
pub use mlp::Mlp;
pub use optim::{Adam, Optimizer, Parameterized, clip_grad_norm};
pub use precision::{Precision, Real};
pub use random::shuffle;
pub use resnet::{ContextRuns, ResidualBlock, ResidualNet};
