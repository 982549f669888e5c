//! A conditional Gaussian estimator with closed-form log-density and gradients, so the
//! losses and the trainer can be checked against hand computations independently of the
//! flows: q(θ | x) = Π_d N(θ_d; (A x + b)_d, exp(2 s_d)), parameters [A (column-major), b, s].

use nalgebra::{DMatrix, DMatrixView};
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};
use simfer_flows::{ConditionalDensityEstimator, FlowError, Gradients, Parameterized, Workspace};

#[derive(Debug, Clone)]
pub struct Gaussian {
    pub d: usize,
    pub c: usize,
    pub params: Vec<f64>,
}

#[derive(Default)]
pub struct GaussianWs {
    theta: DMatrix<f64>,
    x: DMatrix<f64>,
}

impl Gaussian {
    pub fn new(d: usize, c: usize, params: Vec<f64>) -> Self {
        assert_eq!(params.len(), d * c + 2 * d);
        Self { d, c, params }
    }

    fn a(&self, i: usize, j: usize) -> f64 {
        self.params[i + j * self.d]
    }

    fn b(&self, i: usize) -> f64 {
        self.params[self.d * self.c + i]
    }

    fn s(&self, i: usize) -> f64 {
        self.params[self.d * self.c + self.d + i]
    }

    pub fn mean(&self, x: &[f64]) -> Vec<f64> {
        (0..self.d)
            .map(|i| self.b(i) + (0..self.c).map(|j| self.a(i, j) * x[j]).sum::<f64>())
            .collect()
    }

    /// log q(θ | x) by the direct formula.
    pub fn log_density(&self, theta: &[f64], x: &[f64]) -> f64 {
        let mu = self.mean(x);
        (0..self.d)
            .map(|i| {
                let z = (theta[i] - mu[i]) / self.s(i).exp();
                -0.5 * z * z - self.s(i) - 0.5 * (2.0 * std::f64::consts::PI).ln()
            })
            .sum()
    }
}

impl Parameterized for Gaussian {
    fn num_params(&self) -> usize {
        self.params.len()
    }
    fn params(&self) -> &[f64] {
        &self.params
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.params
    }
}

impl ConditionalDensityEstimator for Gaussian {
    fn kind(&self) -> &'static str {
        "test-gaussian"
    }
    fn input_dim(&self) -> usize {
        self.d
    }
    fn condition_dim(&self) -> usize {
        self.c
    }

    fn forward(
        &self,
        ws: &mut Workspace,
        theta: DMatrixView<'_, f64>,
        x: DMatrixView<'_, f64>,
        out: &mut [f64],
    ) -> Result<(), FlowError> {
        let ws = ws.get::<GaussianWs>();
        ws.theta = theta.into_owned();
        ws.x = x.into_owned();
        for j in 0..theta.ncols() {
            let t: Vec<f64> = theta.column(j).iter().copied().collect();
            let c: Vec<f64> = x.column(j).iter().copied().collect();
            out[j] = self.log_density(&t, &c);
        }
        Ok(())
    }

    fn backward(
        &self,
        ws: &mut Workspace,
        weights: &[f64],
        grads: Gradients<'_>,
    ) -> Result<(), FlowError> {
        let ws = ws.get::<GaussianWs>();
        let (d, c) = (self.d, self.c);
        let Gradients {
            mut params,
            mut input,
            mut condition,
        } = grads;
        for j in 0..ws.theta.ncols() {
            let xj: Vec<f64> = ws.x.column(j).iter().copied().collect();
            let mu = self.mean(&xj);
            for i in 0..d {
                let var = (2.0 * self.s(i)).exp();
                let r = ws.theta[(i, j)] - mu[i];
                let dmu = r / var * weights[j];
                if let Some(grad) = params.as_deref_mut() {
                    for k in 0..c {
                        grad[i + k * d] += dmu * xj[k];
                    }
                    grad[d * c + i] += dmu;
                    grad[d * c + d + i] += (r * r / var - 1.0) * weights[j];
                }
                if let Some(g) = input.as_deref_mut() {
                    g[i + j * d] -= dmu;
                }
                if let Some(g) = condition.as_deref_mut() {
                    for k in 0..c {
                        g[k + j * c] += dmu * self.a(i, k);
                    }
                }
            }
        }
        Ok(())
    }

    fn sample(
        &self,
        n: usize,
        x: &[f64],
        rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>, FlowError> {
        let mu = self.mean(x);
        Ok(DMatrix::from_fn(self.d, n, |i, _| {
            let e: f64 = StandardNormal.sample(rng);
            mu[i] + self.s(i).exp() * e
        }))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn clone_boxed(&self) -> Box<dyn ConditionalDensityEstimator> {
        Box::new(self.clone())
    }
}
