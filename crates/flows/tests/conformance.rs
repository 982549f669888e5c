//! The conformance harness on the MAF (it passes) and on deliberately broken estimators
//! (each fails the check that catches its defect, and only that one).

use std::any::Any;

use nalgebra::{DMatrix, DMatrixView, DVector};
use rand::RngCore;
use simfer_flows::testing::{Conformance, ConformanceReport};
use simfer_flows::{
    ConditionalDensityEstimator, EstimatorConfig, FlowError, Gradients, Maf, MafConfig,
    Parameterized, Precision, Workspace,
};

#[test]
fn the_default_maf_conforms() {
    let report = Conformance::for_config(EstimatorConfig::Maf(MafConfig::default())).run();
    println!("{report}");
    report.assert_passed();
    assert_eq!(report.kind, "maf");
    // Gradients for D = 1, 2, 3 with and without a condition (3 to 4 checks each), two
    // normalizations, two sampling checks, round trip, threads, bad input.
    assert!(report.checks.len() >= 25, "{report}");
}

/// What is wrong with a [`Broken`] estimator.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Defect {
    /// The parameter gradient is 10 % too large.
    ParameterGradient,
    /// The input gradient has the wrong sign in its first dimension.
    InputGradient,
    /// The condition gradient is missing (nothing is added).
    ConditionGradient,
    /// log q is off by a constant: the density integrates to e^0.05.
    Unnormalized,
    /// Samples are shifted by 0.3 from the density.
    ShiftedSamples,
}

/// A MAF with one defect.
#[derive(Clone, Debug)]
struct Broken {
    maf: Maf,
    defect: Defect,
}

impl Parameterized for Broken {
    fn num_params(&self) -> usize {
        self.maf.num_params()
    }
    fn params(&self) -> &[f64] {
        self.maf.params()
    }
    fn params_mut(&mut self) -> &mut [f64] {
        self.maf.params_mut()
    }
}

impl ConditionalDensityEstimator for Broken {
    fn kind(&self) -> &'static str {
        "broken-maf"
    }
    fn input_dim(&self) -> usize {
        self.maf.input_dim()
    }
    fn condition_dim(&self) -> usize {
        self.maf.condition_dim()
    }
    fn forward(
        &self,
        ws: &mut Workspace,
        input: DMatrixView<'_, f64>,
        condition: DMatrixView<'_, f64>,
        out: &mut [f64],
    ) -> Result<(), FlowError> {
        self.maf.forward(ws, input, condition, out)?;
        if self.defect == Defect::Unnormalized {
            out.iter_mut().for_each(|v| *v += 0.05);
        }
        Ok(())
    }
    fn backward(
        &self,
        ws: &mut Workspace,
        weights: &[f64],
        grads: Gradients<'_>,
    ) -> Result<(), FlowError> {
        let d = self.input_dim();
        let Gradients {
            params,
            input,
            condition,
        } = grads;
        let condition = if self.defect == Defect::ConditionGradient {
            None
        } else {
            condition
        };
        let mut own_params = params.as_ref().map(|p| vec![0.0; p.len()]);
        let mut own_input = input.as_ref().map(|g| vec![0.0; g.len()]);
        self.maf.backward(
            ws,
            weights,
            Gradients {
                params: own_params.as_deref_mut(),
                input: own_input.as_deref_mut(),
                condition,
            },
        )?;
        if let (Some(p), Some(own)) = (params, own_params) {
            let f = if self.defect == Defect::ParameterGradient {
                1.1
            } else {
                1.0
            };
            for (a, b) in p.iter_mut().zip(own) {
                *a += f * b;
            }
        }
        if let (Some(g), Some(own)) = (input, own_input) {
            for (k, (a, b)) in g.iter_mut().zip(own).enumerate() {
                let flip = self.defect == Defect::InputGradient && k % d == 0;
                *a += if flip { -b } else { b };
            }
        }
        Ok(())
    }
    fn log_prob(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<DVector<f64>, FlowError> {
        let mut lp = self.maf.log_prob(input, condition)?;
        if self.defect == Defect::Unnormalized {
            lp.iter_mut().for_each(|v| *v += 0.05);
        }
        Ok(lp)
    }
    fn sample(
        &self,
        n: usize,
        condition: &[f64],
        rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>, FlowError> {
        let mut s = self.maf.sample(n, condition, rng)?;
        if self.defect == Defect::ShiftedSamples {
            s.iter_mut().for_each(|v| *v += 0.3);
        }
        Ok(s)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn clone_boxed(&self) -> Box<dyn ConditionalDensityEstimator> {
        Box::new(self.clone())
    }
}

fn run_broken(defect: Defect) -> ConformanceReport {
    let config = EstimatorConfig::Maf(MafConfig {
        hidden_features: 10,
        num_transforms: 2,
        precision: Precision::F64,
        ..MafConfig::default()
    });
    let build = move |d: usize, c: usize, seed: u64| {
        // The harness's own data recipe is private; any data with spread will do.
        let input = DMatrix::from_fn(d, 100, |i, j| {
            ((i + 3 * j) as f64 * 0.37).sin() * (1.0 + i as f64)
        });
        let condition = DMatrix::from_fn(c, 100, |i, j| ((2 * i + j) as f64 * 0.71).cos());
        let e = config.build(&input, &condition, seed)?;
        let maf = e
            .downcast_ref::<Maf>()
            .cloned()
            .ok_or_else(|| FlowError::InvalidConfig("expected a MAF".into()))?;
        Ok(Broken { maf, defect })
    };
    Conformance::new(build).with_dims(&[1, 2]).run()
}

/// The names of the failed checks.
fn failed(report: &ConformanceReport) -> Vec<String> {
    report.failures().iter().map(|c| c.name.clone()).collect()
}

#[test]
fn a_parameter_gradient_off_by_a_constant_factor_fails() {
    let report = run_broken(Defect::ParameterGradient);
    let f = failed(&report);
    assert!(!f.is_empty(), "{report}");
    assert!(
        f.iter().all(|n| n.starts_with("parameter gradient")),
        "{report}"
    );
    // Every parameter-gradient check fails (D = 1, 2; C = 0, 2).
    assert_eq!(f.len(), 4, "{report}");
}

#[test]
fn a_wrong_input_gradient_fails() {
    let report = run_broken(Defect::InputGradient);
    let f = failed(&report);
    assert_eq!(f.len(), 4, "{report}");
    assert!(
        f.iter().all(|n| n.starts_with("input gradient")),
        "{report}"
    );
}

#[test]
fn a_missing_condition_gradient_fails() {
    let report = run_broken(Defect::ConditionGradient);
    let f = failed(&report);
    // Only the conditional estimators have a condition gradient.
    assert_eq!(f.len(), 2, "{report}");
    assert!(
        f.iter().all(|n| n.starts_with("condition gradient")),
        "{report}"
    );
}

#[test]
fn an_unnormalized_density_fails() {
    let report = run_broken(Defect::Unnormalized);
    let f = failed(&report);
    assert!(f.contains(&"normalization, D = 1".to_string()), "{report}");
    assert!(f.contains(&"normalization, D = 2".to_string()), "{report}");
    assert!(f.iter().all(|n| n.starts_with("normalization")), "{report}");
}

#[test]
fn samples_that_do_not_follow_the_density_fail() {
    let report = run_broken(Defect::ShiftedSamples);
    let f = failed(&report);
    assert!(
        f.contains(&"samples against the density, D = 1".to_string()),
        "{report}"
    );
    assert!(
        f.contains(&"samples against the density, D = 2".to_string()),
        "{report}"
    );
}
