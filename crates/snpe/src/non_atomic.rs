//! The non-atomic APT loss of SNPE-C for mixture density networks ([`NonAtomicLoss`],
//! whose documentation has the formulas).

use nalgebra::{DMatrix, DVector};
use rand::RngCore;
use simfer_distributions::{Prior, PriorSpec};
use simfer_flows::mdn::{EPSILON, OutputLayout};
use simfer_flows::nn::driver::chunk_ranges;
use simfer_flows::nn::{fastmath, par};
use simfer_flows::{
    ConditionalDensityEstimator, Gradients, Mdn, Mixture, Standardization, Workspace,
};

use crate::SnpeError;
use crate::loss::{Batch, Loss};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// The prior's part of the proposal correction, in θ space.
#[derive(Clone, Debug, PartialEq)]
pub enum PriorTerm {
    /// A box-uniform prior (or an independent product of box-uniforms): constant on its
    /// support, so it drops out.
    Uniform {
        /// The dimension.
        dim: usize,
    },
    /// A Gaussian prior N(mean, precision⁻¹).
    Gaussian {
        /// The mean.
        mean: DVector<f64>,
        /// The precision matrix.
        precision: DMatrix<f64>,
    },
}

impl PriorTerm {
    /// The term of a prior's description, if the correction supports it: a box-uniform, a
    /// Gaussian (by covariance or precision) or an independent product of box-uniforms.
    pub fn from_spec(spec: &PriorSpec) -> Option<PriorTerm> {
        match spec {
            PriorSpec::BoxUniform { low, .. } => Some(PriorTerm::Uniform { dim: low.len() }),
            PriorSpec::MultivariateNormal { mean, covariance } => {
                let cov = square(covariance)?;
                let precision = cov.cholesky()?.inverse();
                Some(PriorTerm::Gaussian {
                    mean: DVector::from_column_slice(mean),
                    precision,
                })
            }
            PriorSpec::GaussianPrecision { mean, precision } => Some(PriorTerm::Gaussian {
                mean: DVector::from_column_slice(mean),
                precision: square(precision)?,
            }),
            PriorSpec::Independent { components } => {
                let mut dim = 0;
                for c in components {
                    match PriorTerm::from_spec(c)? {
                        PriorTerm::Uniform { dim: d } => dim += d,
                        PriorTerm::Gaussian { .. } => return None,
                    }
                }
                Some(PriorTerm::Uniform { dim })
            }
            PriorSpec::LogNormal { .. } | PriorSpec::Custom { .. } => None,
        }
    }

    /// The term of `prior` (see [`from_spec`](Self::from_spec)).
    pub fn from_prior(prior: &dyn Prior) -> Option<PriorTerm> {
        PriorTerm::from_spec(&prior.spec())
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        match self {
            PriorTerm::Uniform { dim } => *dim,
            PriorTerm::Gaussian { mean, .. } => mean.len(),
        }
    }
}

fn square(rows: &[Vec<f64>]) -> Option<DMatrix<f64>> {
    let n = rows.len();
    if rows.iter().any(|r| r.len() != n) {
        return None;
    }
    Some(DMatrix::from_row_iterator(
        n,
        n,
        rows.iter().flatten().copied(),
    ))
}

/// The proposal and the prior mapped into one estimator's standardized space, with what
/// every row needs precomputed.
#[derive(Clone, Debug)]
struct Prepared {
    /// The estimator's input statistics these were prepared for.
    stats: Standardization,
    d: usize,
    l: usize,
    /// P_i − P₀, `L` blocks of `D × D` (column-major).
    b: Vec<f64>,
    /// P_i m_i − P₀ m₀, `L` blocks of `D`.
    v: Vec<f64>,
    /// log α_i + ½ log det P_i − ½ m_iᵀP_i m_i.
    c_w: Vec<f64>,
    /// The proposal's means and precisions, and log α_i − (D/2) log 2π + ½ log det P_i.
    m: Vec<f64>,
    p: Vec<f64>,
    c_p: Vec<f64>,
    /// P₀ (`D × D`, zero for a uniform prior) and P₀ m₀.
    p0: Vec<f64>,
    p0m0: Vec<f64>,
}

impl Prepared {
    fn new(
        proposal: &Mixture,
        proposal_stats: &Standardization,
        prior: &PriorTerm,
        stats: &Standardization,
    ) -> Result<Prepared, SnpeError> {
        let d = proposal.dim();
        // z_p = (θ − μ_p)/σ_p and z = (θ − μ)/σ, so z = (σ_p/σ) z_p + (μ_p − μ)/σ.
        let scale: Vec<f64> = (0..d)
            .map(|i| proposal_stats.std[i] / stats.std[i])
            .collect();
        let shift: Vec<f64> = (0..d)
            .map(|i| (proposal_stats.mean[i] - stats.mean[i]) / stats.std[i])
            .collect();
        let prop = proposal.affine(&scale, &shift)?;
        let (p0, p0m0) = match prior {
            PriorTerm::Uniform { .. } => (vec![0.0; d * d], vec![0.0; d]),
            PriorTerm::Gaussian { mean, precision } => {
                // The prior of z: mean (m − μ)/σ, precision S P S (covariance Σ/(σσᵀ)).
                let m0: Vec<f64> = (0..d)
                    .map(|i| (mean[i] - stats.mean[i]) / stats.std[i])
                    .collect();
                let p0: Vec<f64> = (0..d * d)
                    .map(|e| {
                        let (r, c) = (e % d, e / d);
                        stats.std[r] * precision[(r, c)] * stats.std[c]
                    })
                    .collect();
                let p0m0 = (0..d)
                    .map(|r| (0..d).map(|c| p0[r + c * d] * m0[c]).sum())
                    .collect();
                (p0, p0m0)
            }
        };
        let l = prop.num_components();
        let (mut b, mut v, mut c_w) = (Vec::new(), Vec::new(), Vec::new());
        let (mut m, mut p, mut c_p) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..l {
            let (mi, pi) = (&prop.means()[i], &prop.precisions()[i]);
            let la = prop.log_weights()[i];
            let ld = prop.log_det_precisions()[i];
            let pm = pi * mi;
            c_w.push(la + 0.5 * ld - 0.5 * mi.dot(&pm));
            c_p.push(la - 0.5 * d as f64 * LN_2PI + 0.5 * ld);
            for e in 0..d * d {
                b.push(pi[(e % d, e / d)] - p0[e]);
                p.push(pi[(e % d, e / d)]);
            }
            for r in 0..d {
                v.push(pm[r] - p0m0[r]);
                m.push(mi[r]);
            }
        }
        Ok(Prepared {
            stats: stats.clone(),
            d,
            l,
            b,
            v,
            c_w,
            m,
            p,
            c_p,
            p0,
            p0m0,
        })
    }
}

/// Per-row scratch of one chunk of rows.
#[derive(Clone, Debug, Default)]
struct Scratch {
    z: Vec<f64>,
    lb: Vec<f64>,
    a: Vec<f64>,
    sg: Vec<f64>,
    q: Vec<f64>,
    qinv: Vec<f64>,
    qmu: Vec<f64>,
    muqmu: Vec<f64>,
    ldq: Vec<f64>,
    comp: Vec<f64>,
    lam: Vec<f64>,
    c: Vec<f64>,
    lw: Vec<f64>,
    t1: Vec<f64>,
    t2: Vec<f64>,
    gq: Vec<f64>,
}

fn grow(v: &mut Vec<f64>, n: usize) {
    v.resize(n, 0.0);
}

/// In-place lower Cholesky factor L of a symmetric `d × d` matrix, stored by rows
/// (L_ij at `a[i·d + j]`, j ≤ i; for the symmetric input either order reads the same), so
/// that the inner products run over contiguous memory. False if the matrix is not
/// positive definite.
fn cholesky(a: &mut [f64], d: usize) -> bool {
    for j in 0..d {
        let row_j = &mut a[j * d..(j + 1) * d];
        let mut s = row_j[j];
        for t in 0..j {
            s -= row_j[t] * row_j[t];
        }
        if !(s > 0.0 && s.is_finite()) {
            return false;
        }
        row_j[j] = s.sqrt();
        for i in j + 1..d {
            let (upto, from_i) = a.split_at_mut(i * d);
            let (row_j, row_i) = (&upto[j * d..j * d + j + 1], &mut from_i[..d]);
            let mut s = row_i[j];
            for t in 0..j {
                s -= row_i[t] * row_j[t];
            }
            row_i[j] = s / row_j[j];
        }
    }
    true
}

/// Solves (L Lᵀ) x = b in place (L from [`cholesky`]).
fn cholesky_solve(l: &[f64], d: usize, b: &mut [f64]) {
    for i in 0..d {
        let row = &l[i * d..i * d + i + 1];
        let mut s = b[i];
        for t in 0..i {
            s -= row[t] * b[t];
        }
        b[i] = s / row[i];
    }
    for i in (0..d).rev() {
        let mut s = b[i];
        for t in i + 1..d {
            s -= l[t * d + i] * b[t];
        }
        b[i] = s / l[i * d + i];
    }
}

fn log_det_chol(l: &[f64], d: usize) -> f64 {
    // One logarithm of the product of the diagonal, unless that leaves the normal range.
    let prod: f64 = (0..d).map(|i| l[i * d + i]).product();
    if prod.is_normal() && prod < 1e300 {
        2.0 * prod.ln()
    } else {
        (0..d).map(|i| 2.0 * l[i * d + i].ln()).sum()
    }
}

/// `out += s · (L Lᵀ)⁻¹` (full, column-major) for L from [`cholesky`], using `w`
/// (`d × d`) as scratch for L⁻¹.
fn add_scaled_inverse(l: &[f64], d: usize, s: f64, w: &mut [f64], out: &mut [f64]) {
    // W = L⁻¹ (lower, column-major), column by column.
    for c in 0..d {
        let col = &mut w[c * d..(c + 1) * d];
        col[..c].fill(0.0);
        col[c] = 1.0 / l[c * d + c];
        for r in c + 1..d {
            let row = &l[r * d..r * d + r + 1];
            let mut acc = 0.0;
            for t in c..r {
                acc -= row[t] * col[t];
            }
            col[r] = acc / row[r];
        }
    }
    // (L Lᵀ)⁻¹ = Wᵀ W: entry (r, c) = Σ_{t ≥ max(r, c)} W_tr W_tc.
    for c in 0..d {
        let wc = &w[c * d..(c + 1) * d];
        for r in 0..=c {
            let wr = &w[r * d..(r + 1) * d];
            let mut acc = 0.0;
            for t in c..d {
                acc += wr[t] * wc[t];
            }
            out[r + c * d] += s * acc;
            if r != c {
                out[c + r * d] += s * acc;
            }
        }
    }
}

fn logsumexp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + v.iter().map(|x| fastmath::exp(x - max)).sum::<f64>().ln()
}

/// −log q̃(z | x) of one row from the estimator's raw outputs `out` at x, and, when `g` is
/// given, `omega ×` its gradient with respect to those outputs written into `g`.
fn row(
    prep: &Prepared,
    lay: &OutputLayout,
    out: &[f64],
    z: &[f64],
    s: &mut Scratch,
    g: Option<&mut [f64]>,
    omega: f64,
) -> f64 {
    let (d, kk, ll) = (prep.d, lay.num_components, prep.l);
    let dd = d * d;
    for (v, n) in [
        (&mut s.lb, kk),
        (&mut s.a, kk * dd),
        (&mut s.sg, kk * d),
        (&mut s.q, kk * dd),
        (&mut s.qinv, kk * dd),
        (&mut s.qmu, kk * d),
        (&mut s.muqmu, kk),
        (&mut s.ldq, kk),
        (&mut s.comp, kk),
        (&mut s.lam, ll * kk * dd),
        (&mut s.c, ll * kk * d),
        (&mut s.lw, ll * kk),
        (&mut s.t1, dd.max(d)),
        (&mut s.t2, dd.max(d)),
        (&mut s.gq, dd),
    ] {
        grow(v, n);
    }
    // The estimator's mixture: log β, A_k, Q_k = A_kᵀA_k + εI, its Cholesky and inverse.
    let logits = &out[lay.logits()];
    let lse = logsumexp(logits);
    for k in 0..kk {
        s.lb[k] = logits[k] - lse;
    }
    for k in 0..kk {
        let a = &mut s.a[k * dd..(k + 1) * dd];
        a.fill(0.0);
        for r in 0..d {
            let raw = out[lay.diag_entry(k, r)];
            a[r + r * d] = fastmath::softplus(raw);
            s.sg[k * d + r] = fastmath::sigmoid(raw);
            for c in r + 1..d {
                a[r + c * d] = out[lay.upper_entry(k, r, c)];
            }
        }
        let q = &mut s.q[k * dd..(k + 1) * dd];
        for c in 0..d {
            for r in 0..d {
                let mut acc = 0.0;
                for t in 0..=r.min(c) {
                    acc += a[t + r * d] * a[t + c * d];
                }
                q[r + c * d] = acc + if r == c { EPSILON } else { 0.0 };
            }
        }
        let mu = &out[lay.mean(k, 0)..lay.mean(k, 0) + d];
        let mut mqm = 0.0;
        let mut quad = 0.0;
        for r in 0..d {
            let mut qm = 0.0;
            let mut qd = 0.0;
            for c in 0..d {
                qm += q[r + c * d] * mu[c];
                qd += q[r + c * d] * (z[c] - mu[c]);
            }
            s.qmu[k * d + r] = qm;
            mqm += mu[r] * qm;
            quad += (z[r] - mu[r]) * qd;
        }
        s.muqmu[k] = mqm;
        let lq = &mut s.t1[..dd];
        lq.copy_from_slice(q);
        if !cholesky(lq, d) {
            return f64::NAN;
        }
        s.ldq[k] = log_det_chol(lq, d);
        let qi = &mut s.qinv[k * dd..(k + 1) * dd];
        qi.fill(0.0);
        add_scaled_inverse(lq, d, 1.0, &mut s.t2[..dd], qi);
        s.comp[k] = s.lb[k] - 0.5 * d as f64 * LN_2PI + 0.5 * s.ldq[k] - 0.5 * quad;
    }
    let log_q = logsumexp(&s.comp[..kk]);
    // The product components.
    for i in 0..ll {
        let bi = &prep.b[i * dd..(i + 1) * dd];
        let vi = &prep.v[i * d..(i + 1) * d];
        for k in 0..kk {
            let ik = i * kk + k;
            let lam = &mut s.lam[ik * dd..(ik + 1) * dd];
            for e in 0..dd {
                lam[e] = bi[e] + s.q[k * dd + e];
            }
            if !cholesky(lam, d) {
                return f64::NAN;
            }
            let c = &mut s.c[ik * d..(ik + 1) * d];
            for r in 0..d {
                c[r] = vi[r] + s.qmu[k * d + r];
            }
            let b = &mut s.t1[..d];
            b.copy_from_slice(c);
            cholesky_solve(lam, d, c);
            let bc: f64 = b.iter().zip(c.iter()).map(|(x, y)| x * y).sum();
            s.lw[ik] = prep.c_w[i] + s.lb[k] + 0.5 * s.ldq[k]
                - 0.5 * log_det_chol(lam, d)
                - 0.5 * s.muqmu[k]
                + 0.5 * bc;
        }
    }
    let lse_w = logsumexp(&s.lw[..ll * kk]);
    // The proposal's exact log-density and the prior's terms at z.
    let mut lp = vec_lse_proposal(prep, z, &mut s.t1);
    let mut quad0 = 0.0;
    let mut lin0 = 0.0;
    for r in 0..d {
        let mut acc = 0.0;
        for c in 0..d {
            acc += prep.p0[r + c * d] * z[c];
        }
        quad0 += z[r] * acc;
        lin0 += prep.p0m0[r] * z[r];
    }
    lp += 0.5 * d as f64 * LN_2PI + 0.5 * quad0 - lin0;
    let value = -log_q - lp + lse_w;
    let Some(g) = g else {
        return value;
    };
    if !value.is_finite() {
        return value;
    }
    // Gradient with respect to (log β_k, μ_k, Q_k), then to the raw outputs.
    let mut sum_glb = 0.0;
    for k in 0..kk {
        let rk = fastmath::exp(s.comp[k] - log_q);
        let mu = &out[lay.mean(k, 0)..lay.mean(k, 0) + d];
        // G (in gq) and u = Σ_i s_ik (c_ik − μ_k) − r_k (z − μ_k) (in t1).
        let gq = &mut s.gq[..dd];
        gq.fill(0.0);
        let u = &mut s.t1[..d];
        for r in 0..d {
            u[r] = -rk * (z[r] - mu[r]);
        }
        for c in 0..d {
            for r in 0..d {
                gq[r + c * d] = rk * (z[r] - mu[r]) * (z[c] - mu[c]);
            }
        }
        let mut s_k = 0.0;
        for i in 0..ll {
            let ik = i * kk + k;
            let sik = fastmath::exp(s.lw[ik] - lse_w);
            if sik == 0.0 {
                continue;
            }
            s_k += sik;
            let c = &s.c[ik * d..(ik + 1) * d];
            for r in 0..d {
                u[r] += sik * (c[r] - mu[r]);
            }
            for cc in 0..d {
                for r in 0..d {
                    gq[r + cc * d] -= sik * (c[r] - mu[r]) * (c[cc] - mu[cc]);
                }
            }
            add_scaled_inverse(&s.lam[ik * dd..(ik + 1) * dd], d, -sik, &mut s.t2[..dd], gq);
        }
        let glb = omega * (s_k - rk);
        sum_glb += glb;
        g[lay.logits().start + k] = glb;
        for e in 0..dd {
            gq[e] = 0.5 * omega * (gq[e] + (s_k - rk) * s.qinv[k * dd + e]);
        }
        // ∂/∂μ_k = ω Q_k u.
        for r in 0..d {
            let mut acc = 0.0;
            for c in 0..d {
                acc += s.q[k * dd + r + c * d] * u[c];
            }
            g[lay.mean(k, r)] = omega * acc;
        }
        // ∂/∂A_k = 2 A_k G on the upper triangle; the diagonal through softplus.
        let a = &s.a[k * dd..(k + 1) * dd];
        for r in 0..d {
            for c in r..d {
                let mut acc = 0.0;
                for t in r..d {
                    acc += a[r + t * d] * gq[t + c * d];
                }
                let ga = 2.0 * acc;
                if r == c {
                    g[lay.diag_entry(k, r)] = ga * s.sg[k * d + r];
                } else {
                    g[lay.upper_entry(k, r, c)] = ga;
                }
            }
        }
    }
    // Through log β = logits − logsumexp(logits).
    for k in 0..kk {
        g[lay.logits().start + k] -= fastmath::exp(s.lb[k]) * sum_glb;
    }
    value
}

/// log p̃(z) of the proposal (exact normaliser), using `t` as scratch.
fn vec_lse_proposal(prep: &Prepared, z: &[f64], t: &mut Vec<f64>) -> f64 {
    let (d, ll) = (prep.d, prep.l);
    let dd = d * d;
    grow(t, ll.max(d));
    let mut max = f64::NEG_INFINITY;
    for i in 0..ll {
        let (m, p) = (&prep.m[i * d..(i + 1) * d], &prep.p[i * dd..(i + 1) * dd]);
        let mut quad = 0.0;
        for r in 0..d {
            let mut acc = 0.0;
            for c in 0..d {
                acc += p[r + c * d] * (z[c] - m[c]);
            }
            quad += (z[r] - m[r]) * acc;
        }
        t[i] = prep.c_p[i] - 0.5 * quad;
        max = max.max(t[i]);
    }
    if !max.is_finite() {
        return max;
    }
    max + t[..ll]
        .iter()
        .map(|v| fastmath::exp(v - max))
        .sum::<f64>()
        .ln()
}

/// Checks that a batch has rows and that its parts agree in length.
fn check_rows(batch: &Batch<'_>) -> Result<(), SnpeError> {
    let b = batch.len();
    if b == 0 {
        return Err(SnpeError::NotEnoughData {
            found: 0,
            needed: 1,
            reason: "a batch must hold at least one sample".into(),
        });
    }
    if batch.x.ncols() != b {
        return Err(SnpeError::DimensionMismatch {
            what: "columns of x in the batch".into(),
            expected: b,
            found: batch.x.ncols(),
        });
    }
    Ok(())
}

/// The non-atomic APT loss of SNPE-C for mixture density networks: the proposal
/// correction in closed form (Greenberg, Nonnenmacher & Macke 2019, "Automatic Posterior
/// Transformation for Likelihood-Free Inference", appendix A1; the reference library's
/// `sbi.inference.trainers.npe.npe_c`, `NPE_C._log_prob_proposal_posterior_mog` and
/// `_automatic_posterior_transformation`).
///
/// Everything lives in the estimator's standardized input space z = (θ − μ)/σ. The
/// estimator q(z | x) is an MDN with components (β_k, μ_k, Q_k), k = 1..K, at each
/// training x; the proposal p̃(z) is the MDN mixture (α_i, m_i, P_i), i = 1..L, of the
/// posterior that proposed the round, at its default x; the prior is N(m₀, P₀⁻¹) (a
/// Gaussian prior, z-scored) or constant (a box-uniform one, dropped). The proposal
/// posterior q̃(z | x) ∝ q(z | x) p̃(z) / p(z) is a mixture of L·K Gaussians, component
/// (i, k) (index i·K + k):
///
/// ```text
/// Λ_ik = P_i + Q_k − P₀,   b_ik = P_i m_i + Q_k μ_k − P₀ m₀,   c_ik = Λ_ik⁻¹ b_ik
/// log w_ik = log α_i + log β_k + ½ [log det P_i + log det Q_k − log det Λ_ik]
///            − ½ [m_iᵀP_i m_i + μ_kᵀQ_k μ_k − c_ikᵀΛ_ik c_ik]
/// loss = −log Σ_ik (w_ik / Σ w) N(z; c_ik, Λ_ik⁻¹)
/// ```
///
/// Multiplying out the Gaussians, the numerator is the product itself up to factors that
/// do not depend on the estimator, so per row
///
/// ```text
/// loss = −log q_exact(z | x) − log p̃_exact(z) − (D/2) log 2π − ½ zᵀP₀z + m₀ᵀP₀z
///        + logsumexp_ik log w_ik
/// ```
///
/// where both densities use the exact normaliser ½ log det (with the +εI, unlike the MDN's
/// own log-density). This is how the value is computed; its gradient with respect to the
/// estimator's mixture is, with responsibilities r_k of q_exact at z and s_ik =
/// softmax(log w)_ik:
///
/// ```text
/// ∂/∂log β_k = Σ_i s_ik − r_k
/// ∂/∂μ_k     = Q_k [Σ_i s_ik (c_ik − μ_k) − r_k (z − μ_k)]
/// ∂/∂Q_k     = ½ [(Σ_i s_ik − r_k) Q_k⁻¹ + r_k (z − μ_k)(z − μ_k)ᵀ
///                 − Σ_i s_ik (Λ_ik⁻¹ + (c_ik − μ_k)(c_ik − μ_k)ᵀ)]
/// ```
///
/// then through log β = log-softmax(logits), Q_k = A_kᵀA_k + εI (∂/∂A_k = 2 A_k ∂/∂Q_k,
/// upper triangle), A_k,dd = softplus(diag) and the network
/// ([`Mdn::backward_raw_outputs`]).
///
/// Two departures from the reference, both on purpose:
/// * the z-scored Gaussian prior has the covariance Σ/(σσᵀ) (entry (r, c) is
///   Σ_rc/(σ_r σ_c)), the exact one; the reference builds it with the **standard
///   deviation ratio** √v/σ on the diagonal, where a variance belongs, and drops the
///   correlations (`_set_maybe_z_scored_prior`). The two agree only when the prior's
///   standard deviations equal the z-scoring ones and the prior is uncorrelated;
/// * a proposal trained with other z-scoring statistics than the current estimator (a
///   network rebuilt with `retrain_from_scratch`) is mapped into the current z space
///   first; the reference would use it in the wrong space.
///
/// As in the reference, the loss is per row (no atoms), so the orchestrator trains on the
/// latest round's data only.
///
/// It needs the mixture of the **proposal** (the MDN posterior that drew the round's θ's,
/// at its default x) and the prior, which must be Gaussian or box-uniform (or an
/// independent product of box-uniforms; see [`PriorTerm`]). The estimator trained must be
/// an [`Mdn`]; another kind is an error. Per row, the cost is L·K Cholesky factorizations
/// of D × D matrices; rows run in parallel, with the same bits for any number of threads.
///
/// One evaluation with its gradient (in training, the [`Trainer`](crate::Trainer) does
/// this per batch):
///
/// ```
/// use simfer_distributions::{MultivariateNormal, Prior, rng_from_seed};
/// use simfer_flows::{Mdn, MdnConfig, Parameterized, Workspace};
/// use simfer_snpe::{Batch, Loss, NonAtomicLoss};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let prior = MultivariateNormal::isotropic(vec![0.0, 0.0], 1.0)?;
/// let mut rng = rng_from_seed(0);
/// let theta = prior.sample_batch(200, &mut rng);
/// let x = theta.map(|t| t + 0.1);
/// let config = MdnConfig { hidden_features: 16, num_components: 3, ..MdnConfig::default() };
/// // The MDN of the posterior that proposed the round (here untrained) and, at x_o, the loss.
/// let proposal = Mdn::new(&config, &theta, &x, 1)?;
/// let mut loss = NonAtomicLoss::from_proposal(&proposal, &[0.1, 0.1], &prior)?;
///
/// let estimator = proposal.clone();
/// let lp = prior.log_prob_batch(&theta)?;
/// let flags = vec![false; 200];
/// let batch = Batch { theta: theta.as_view(), x: x.as_view(), prior_log_prob: lp.as_slice(), from_prior: &flags };
/// let mut grad = vec![0.0; estimator.num_params()];
/// let mut ws = Workspace::new();
/// let value = loss.evaluate(&estimator, &mut ws, &batch, &mut rng, Some(&mut grad))?;
/// assert!(value.is_finite() && grad.iter().any(|g| *g != 0.0));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct NonAtomicLoss {
    proposal: Mixture,
    proposal_stats: Standardization,
    prior: PriorTerm,
    prepared: Option<Prepared>,
    outputs: Vec<f64>,
    g_out: DMatrix<f64>,
    values: Vec<f64>,
    scratch: Vec<Scratch>,
}

impl NonAtomicLoss {
    /// The loss for the proposal mixture `proposal` over the standardized space
    /// `(θ − proposal_standardization.mean) / proposal_standardization.std` (what
    /// [`Mdn::mixture`] and [`Mdn::input_standardization`] give) and the prior's term.
    pub fn new(
        proposal: Mixture,
        proposal_standardization: Standardization,
        prior: PriorTerm,
    ) -> Result<Self, SnpeError> {
        let d = proposal.dim();
        proposal_standardization.check(d, "the proposal's standardization statistics")?;
        if prior.dim() != d {
            return Err(SnpeError::DimensionMismatch {
                what: "dimension of the prior, to match the proposal mixture".into(),
                expected: d,
                found: prior.dim(),
            });
        }
        if let PriorTerm::Gaussian { mean, precision } = &prior
            && (precision.shape() != (d, d)
                || mean.iter().chain(precision.iter()).any(|v| !v.is_finite())
                || precision.clone().cholesky().is_none())
        {
            return Err(SnpeError::InvalidConfig {
                name: "prior",
                message: format!(
                    "a Gaussian prior needs a finite mean and a symmetric positive definite {d} × {d} precision"
                ),
            });
        }
        Ok(Self {
            proposal,
            proposal_stats: proposal_standardization,
            prior,
            prepared: None,
            outputs: Vec::new(),
            g_out: DMatrix::zeros(0, 0),
            values: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// The loss for the proposal posterior whose estimator is `proposal`, at its default
    /// observation `default_x`, and `prior` (which must be supported:
    /// [`supports_prior`](Self::supports_prior)).
    pub fn from_proposal(
        proposal: &Mdn,
        default_x: &[f64],
        prior: &dyn Prior,
    ) -> Result<Self, SnpeError> {
        let term = PriorTerm::from_prior(prior).ok_or_else(|| SnpeError::InvalidConfig {
            name: "prior",
            message: format!(
                "the non-atomic loss needs a Gaussian or box-uniform prior (or an independent product of box-uniforms), found {:?}",
                prior.spec()
            ),
        })?;
        let mixture = proposal.mixture(default_x)?;
        Self::new(mixture, proposal.input_standardization().clone(), term)
    }

    /// Whether every proposal component is at least as narrow as the prior in every
    /// direction (P_i − P₀ positive semi-definite; always true for a box-uniform prior,
    /// whose P₀ is zero). Then every product precision Λ_ik = (P_i − P₀) + Q_k is positive
    /// definite, whatever the estimator's components Q_k, and the loss is finite. When it
    /// is false, a broad estimator component makes some Λ_ik indefinite: that product is
    /// not normalizable, the loss is NaN (the reference library fails there too), and the
    /// atomic loss, which holds for any proposal, is the one to use.
    pub fn proposal_within_prior(&self) -> bool {
        let PriorTerm::Gaussian { precision, .. } = &self.prior else {
            return true;
        };
        // Both precisions in the proposal's standardized space (P₀ → S P₀ S).
        let d = self.proposal.dim();
        let std = &self.proposal_stats.std;
        let p0 = DMatrix::from_fn(d, d, |r, c| std[r] * precision[(r, c)] * std[c]);
        self.proposal.precisions().iter().all(|pi| {
            let b = pi - &p0;
            let b = (&b + b.transpose()) * 0.5;
            // Rounding: an eigenvalue within 1e-10 of the precisions' scale counts as 0.
            let scale = pi.amax().max(p0.amax()).max(f64::MIN_POSITIVE);
            nalgebra::SymmetricEigen::new(b)
                .eigenvalues
                .iter()
                .all(|&e| e >= -1e-10 * scale)
        })
    }

    /// Whether the closed-form correction supports `prior` (see [`PriorTerm::from_spec`]).
    pub fn supports_prior(prior: &dyn Prior) -> bool {
        PriorTerm::from_prior(prior).is_some()
    }

    /// The proposal mixture, over its own standardized space.
    pub fn proposal(&self) -> &Mixture {
        &self.proposal
    }

    /// The prior's term.
    pub fn prior(&self) -> &PriorTerm {
        &self.prior
    }

    fn prepare(&mut self, mdn: &Mdn) -> Result<(), SnpeError> {
        let stats = mdn.input_standardization();
        if self.prepared.as_ref().is_none_or(|p| &p.stats != stats) {
            self.prepared = Some(Prepared::new(
                &self.proposal,
                &self.proposal_stats,
                &self.prior,
                stats,
            )?);
        }
        Ok(())
    }
}

impl<E: ConditionalDensityEstimator> Loss<E> for NonAtomicLoss {
    fn name(&self) -> &'static str {
        "non-atomic (APT, MDN)"
    }

    /// The mean over the batch of −log q̃(θ_b | x_b) in the estimator's standardized
    /// space; `batch.prior_log_prob` and `batch.from_prior` are not used. A proposal
    /// posterior precision Λ_ik that is not positive definite gives a NaN loss (the trainer
    /// reports it); it cannot happen when
    /// [`proposal_within_prior`](Self::proposal_within_prior).
    fn evaluate(
        &mut self,
        estimator: &E,
        workspace: &mut Workspace,
        batch: &Batch<'_>,
        _rng: &mut dyn RngCore,
        grad: Option<&mut [f64]>,
    ) -> Result<f64, SnpeError> {
        check_rows(batch)?;
        let mdn = estimator.as_any().downcast_ref::<Mdn>().ok_or_else(|| {
            SnpeError::InvalidConfig {
                name: "estimator",
                message: format!(
                    "the non-atomic loss needs a mixture density network (kind `mdn`), found an estimator of kind `{}`",
                    estimator.kind()
                ),
            }
        })?;
        let d = self.proposal.dim();
        for (what, expected, found) in [
            (
                "dimension of θ of the estimator, to match the proposal",
                d,
                mdn.input_dim(),
            ),
            ("rows of θ in the batch", d, batch.theta.nrows()),
            (
                "rows of x in the batch",
                mdn.condition_dim(),
                batch.x.nrows(),
            ),
        ] {
            if expected != found {
                return Err(SnpeError::DimensionMismatch {
                    what: what.into(),
                    expected,
                    found,
                });
            }
        }
        self.prepare(mdn)?;
        let prep = self.prepared.as_ref().expect("prepared above");
        let lay = mdn.output_layout();
        let (n, r) = (batch.len(), lay.len());
        self.outputs.resize(r * n, 0.0);
        mdn.raw_outputs(workspace, batch.x, &mut self.outputs)?;
        let want_grad = grad.is_some();
        if want_grad && self.g_out.shape() != (r, n) {
            self.g_out = DMatrix::zeros(r, n);
        }
        self.values.resize(n, 0.0);
        let ranges: Vec<(usize, usize)> = chunk_ranges(n).collect();
        self.scratch.resize_with(ranges.len(), Scratch::default);
        let stats = mdn.input_standardization();
        let omega = 1.0 / n as f64;
        let outputs = &self.outputs;
        let theta = &batch.theta;
        let values = par::split_lengths(&mut self.values, ranges.iter().map(|r| r.1));
        let grads: Vec<Option<&mut [f64]>> = if want_grad {
            par::split_lengths(self.g_out.as_mut_slice(), ranges.iter().map(|x| x.1 * r))
                .into_iter()
                .map(Some)
                .collect()
        } else {
            ranges.iter().map(|_| None).collect()
        };
        let items: Vec<_> = ranges
            .iter()
            .zip(self.scratch.iter_mut())
            .zip(values)
            .zip(grads)
            .collect();
        par::for_each(items, |(((&(start, len), sc), vals), mut g)| {
            let mut z = std::mem::take(&mut sc.z);
            z.resize(d, 0.0);
            for j in 0..len {
                let col = start + j;
                for i in 0..d {
                    z[i] = (theta[(i, col)] - stats.mean[i]) / stats.std[i];
                }
                let gj = g.as_deref_mut().map(|g| &mut g[j * r..(j + 1) * r]);
                vals[j] = row(
                    prep,
                    &lay,
                    &outputs[col * r..(col + 1) * r],
                    &z,
                    sc,
                    gj,
                    omega,
                );
            }
            sc.z = z;
        });
        let loss = self.values.iter().sum::<f64>() * omega;
        if let Some(grad) = grad
            && loss.is_finite()
        {
            mdn.backward_raw_outputs(
                workspace,
                batch.x,
                self.g_out.as_view(),
                Gradients::params(grad),
            )?;
        }
        Ok(loss)
    }
}
