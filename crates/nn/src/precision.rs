//! The floating-point precision of a model's training passes, and the scalar types the
//! numerical kernels are generic over.
//!
//! A model keeps its parameters in `f64` (the master copy that the optimizer, clipping
//! and save/load work on). Its training passes can run in `f32` ([`Precision::F32`]):
//! the parameters are rounded once per forward pass, the activations, products and
//! per-chunk gradients are `f32`, and the outputs and the reduced gradient handed back
//! are `f64` (see [`driver`](crate::driver)). Evaluation for users stays `f64`.
//!
//! The kernels of [`linalg`](crate::linalg), [`fastmath`] and
//! [`layers`](crate::layers) are generic over [`Real`], implemented for `f32` and `f64`.

use nalgebra::RealField;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::fastmath;
use crate::linalg::Op;

/// The floating-point type a model's training passes compute in.
///
/// The default is [`F32`](Self::F32), chosen by measurement on the masked autoregressive
/// flow of simfer-flows (a shared 2-core AMD EPYC
/// with AVX-512): a training step of the default MAF takes 1.55–1.9× less CPU time than
/// in `f64` (D = 3 and 10, batches of 200 and 2000 columns; `cargo bench -p
/// simfer-flows --bench flows -- train_step`), the multi-round tutorial 1.7× less (1.23 s
/// against 2.11 s of CPU time on average over 10 seeds), and the trained posteriors are
/// as accurate: the tutorial's C2ST against the exact posterior averaged 0.559 in `f32`
/// and 0.561 in `f64` over the same 10 seeds (paired difference −0.002 ± 0.004), with the
/// same number of epochs for most seeds. The single-precision passes agree with the
/// double-precision ones to about 1e-6 (relative) in log-densities and gradients. (The reference library, on PyTorch,
/// trains in single precision too.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub enum Precision {
    /// Double precision throughout.
    F64,
    /// Single-precision activations, products and per-chunk gradients; parameters,
    /// log-densities handed back and the reduced gradient stay `f64` (the default).
    #[default]
    F32,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point type the flows' kernels run in: `f32` or `f64` (sealed).
///
/// The `fast_*` methods are [`fastmath`]'s vectorizable elementary functions in this
/// precision (for `f64` exactly [`fastmath::exp`], [`fastmath::tanh`], …; for `f32`
/// [`fastmath::exp_f32`], [`fastmath::tanh_f32`], …).
pub trait Real: RealField + Copy + Default + Send + Sync + sealed::Sealed {
    /// `v` rounded to this type.
    fn of(v: f64) -> Self;
    /// `self` as an `f64` (exact).
    fn widen(self) -> f64;
    /// `e^self`.
    fn fast_exp(self) -> Self;
    /// `tanh(self)`.
    fn fast_tanh(self) -> Self;
    /// `tanh(self)` with fused multiply-adds in its polynomial; only for code compiled
    /// with the `fma` target feature (else `mul_add` is a slow library call).
    #[doc(hidden)]
    fn fast_tanh_fma(self) -> Self;
    /// The logistic sigmoid `1/(1 + e^{−self})`.
    fn fast_sigmoid(self) -> Self;
    /// `ln(1 + e^self)`, stable for any argument.
    fn fast_softplus(self) -> Self;
    /// `ln(self)`.
    fn fast_ln(self) -> Self;
    /// The large-product path of [`gemm`](crate::linalg::gemm) specific to this type;
    /// `false` where there is none (nalgebra's `gemm` is used then).
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    fn gemm_tiled(
        _m: usize,
        _n: usize,
        _k: usize,
        _alpha: Self,
        _a: &[Self],
        _op_a: Op,
        _b: &[Self],
        _op_b: Op,
        _beta: Self,
        _c: &mut [Self],
    ) -> bool {
        false
    }
}

impl Real for f64 {
    #[inline(always)]
    fn of(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }
    #[inline(always)]
    fn fast_exp(self) -> Self {
        fastmath::exp(self)
    }
    #[inline(always)]
    fn fast_tanh(self) -> Self {
        fastmath::tanh(self)
    }
    #[inline(always)]
    fn fast_tanh_fma(self) -> Self {
        fastmath::tanh_fma(self)
    }
    #[inline(always)]
    fn fast_sigmoid(self) -> Self {
        fastmath::sigmoid(self)
    }
    #[inline(always)]
    fn fast_softplus(self) -> Self {
        fastmath::softplus(self)
    }
    #[inline(always)]
    fn fast_ln(self) -> Self {
        fastmath::ln(self)
    }
}

impl Real for f32 {
    #[inline(always)]
    fn of(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn widen(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn fast_exp(self) -> Self {
        fastmath::exp_f32(self)
    }
    #[inline(always)]
    fn fast_tanh(self) -> Self {
        fastmath::tanh_f32(self)
    }
    #[inline(always)]
    fn fast_tanh_fma(self) -> Self {
        fastmath::tanh_f32_fma(self)
    }
    #[inline(always)]
    fn fast_sigmoid(self) -> Self {
        fastmath::sigmoid_f32(self)
    }
    #[inline(always)]
    fn fast_softplus(self) -> Self {
        fastmath::softplus_f32(self)
    }
    #[inline(always)]
    fn fast_ln(self) -> Self {
        fastmath::ln_f32(self)
    }
    #[inline]
    fn gemm_tiled(
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: &[f32],
        op_a: Op,
        b: &[f32],
        op_b: Op,
        beta: f32,
        c: &mut [f32],
    ) -> bool {
        crate::sgemm::sgemm_fma(m, n, k, alpha, a, op_a, b, op_b, beta, c)
    }
}
