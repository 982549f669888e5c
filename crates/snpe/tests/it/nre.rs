//! The ratio-estimation losses: values from explicit logits against the formulas, their
//! gradients against central differences (with respect to the logits and, through the
//! classifier, to its parameters), and trained classifiers against the analytic
//! log-ratio of a Gaussian toy problem.

use nalgebra::DMatrix;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use simfer_distributions::{MultivariateNormal, Prior, rng_from_seed};
use simfer_flows::{ClassifierConfig, Parameterized, Precision, RatioClassifier, Workspace};
use simfer_snpe::{
    Batch, DataSplit, Loss, NreLoss, NreVariant, Trainer, TrainingConfig, TrainingData,
};

fn variants() -> Vec<NreVariant> {
    vec![
        NreVariant::A,
        NreVariant::B { num_atoms: 4 },
        NreVariant::C {
            num_classes: 3,
            gamma: 0.7,
        },
        NreVariant::Balanced { lambda: 3.0 },
    ]
}

fn ln_sum_exp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// The loss of one variant written out from the definitions, independently of the crate.
fn direct(variant: NreVariant, f: &[f64], b: usize) -> f64 {
    let per = f.len() / b;
    let rows = (0..b).map(|i| &f[i * per..(i + 1) * per]);
    match variant {
        NreVariant::A => {
            rows.map(|r| -(sigmoid(r[0]).ln() + (1.0 - sigmoid(r[1])).ln()))
                .sum::<f64>()
                / (2 * b) as f64
        }
        NreVariant::Balanced { lambda } => {
            let bce = direct(NreVariant::A, f, b);
            let m = (0..b)
                .map(|i| sigmoid(f[2 * i]) + sigmoid(f[2 * i + 1]) - 1.0)
                .sum::<f64>()
                / b as f64;
            bce + lambda * m * m
        }
        NreVariant::B { .. } => rows.map(|r| -(r[0] - ln_sum_exp(r))).sum::<f64>() / b as f64,
        NreVariant::C {
            num_classes: k,
            gamma,
        } => {
            let kf = k as f64;
            rows.map(|r| {
                let (g, fj) = r.split_at(k);
                let lp_marg = kf.ln() - (kf + gamma * g.iter().map(|v| v.exp()).sum::<f64>()).ln();
                let lp_joint = gamma.ln() + fj[0]
                    - (kf + gamma * fj.iter().map(|v| v.exp()).sum::<f64>()).ln();
                -(lp_marg / (1.0 + gamma) + gamma * lp_joint / (1.0 + gamma))
            })
            .sum::<f64>()
                / b as f64
        }
    }
}

#[test]
fn values_match_the_definitions_and_gradients_match_central_differences() {
    let mut rng = rng_from_seed(1);
    for variant in variants() {
        let loss = NreLoss::new(variant).unwrap();
        let b = 5;
        let per = match variant {
            NreVariant::A | NreVariant::Balanced { .. } => 2,
            NreVariant::B { num_atoms } => num_atoms,
            NreVariant::C { num_classes, .. } => 2 * num_classes,
        };
        let f: Vec<f64> = (0..b * per).map(|_| rng.random_range(-3.0..3.0)).collect();
        let (value, grad) = loss.from_logits(&f, b).unwrap();
        let expect = direct(variant, &f, b);
        assert!(
            (value - expect).abs() < 1e-12,
            "{variant:?}: {value} vs {expect}"
        );
        for k in 0..f.len() {
            let h = 1e-6;
            let (mut up, mut down) = (f.clone(), f.clone());
            up[k] += h;
            down[k] -= h;
            let fd = (direct(variant, &up, b) - direct(variant, &down, b)) / (2.0 * h);
            assert!(
                (fd - grad[k]).abs() < 1e-8,
                "{variant:?} logit {k}: {fd} vs {}",
                grad[k]
            );
        }
        assert!(loss.from_logits(&f[1..], b).is_err());
    }
    assert!(NreLoss::new(NreVariant::B { num_atoms: 1 }).is_err());
    assert!(
        NreLoss::new(NreVariant::C {
            num_classes: 2,
            gamma: -1.0
        })
        .is_err()
    );
    assert!(NreLoss::new(NreVariant::Balanced { lambda: f64::NAN }).is_err());
}

fn classifier(theta: &DMatrix<f64>, x: &DMatrix<f64>) -> RatioClassifier {
    let config = ClassifierConfig {
        hidden_features: 10,
        precision: Precision::F64,
        ..ClassifierConfig::default()
    };
    let mut f = RatioClassifier::new(&config, theta, x, 2).unwrap();
    let mut rng = rng_from_seed(4);
    for p in f.params_mut() {
        *p += rng.random_range(-0.2..0.2);
    }
    f
}

#[test]
fn parameter_gradients_through_the_classifier_match_central_differences() {
    let n = 12;
    let mut rng = rng_from_seed(3);
    let theta = DMatrix::from_fn(2, n, |_, _| rng.random_range(-1.0..1.0));
    let x = DMatrix::from_fn(1, n, |_, j| {
        theta[(0, j)] - theta[(1, j)] + 0.1 * rng.random_range(-1.0..1.0)
    });
    let f = classifier(&theta, &x);
    let (lp, flags) = (vec![0.0; n], vec![true; n]);
    let batch = Batch {
        theta: theta.as_view(),
        x: x.as_view(),
        prior_log_prob: &lp,
        from_prior: &flags,
    };
    for variant in variants() {
        let mut loss = NreLoss::new(variant).unwrap();
        let mut ws = Workspace::new();
        let mut grad = vec![0.0; f.num_params()];
        loss.evaluate(&f, &mut ws, &batch, &mut rng_from_seed(8), Some(&mut grad))
            .unwrap();
        let mut probe = f.clone();
        let h = 1e-6;
        for i in (0..f.num_params()).step_by(11) {
            let p0 = probe.params()[i];
            probe.params_mut()[i] = p0 + h;
            let up = loss
                .evaluate(&probe, &mut ws, &batch, &mut rng_from_seed(8), None)
                .unwrap();
            probe.params_mut()[i] = p0 - h;
            let down = loss
                .evaluate(&probe, &mut ws, &batch, &mut rng_from_seed(8), None)
                .unwrap();
            probe.params_mut()[i] = p0;
            let fd = (up - down) / (2.0 * h);
            assert!(
                (fd - grad[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                "{variant:?} parameter {i}: {fd} vs {}",
                grad[i]
            );
        }
    }
    // A batch too small for the contrasting rows is a clear error.
    let small = Batch {
        theta: theta.columns(0, 3),
        x: x.columns(0, 3),
        prior_log_prob: &lp[..3],
        from_prior: &flags[..3],
    };
    let mut loss = NreLoss::new(NreVariant::B { num_atoms: 10 }).unwrap();
    let err = loss
        .evaluate(
            &f,
            &mut Workspace::new(),
            &small,
            &mut rng_from_seed(0),
            None,
        )
        .unwrap_err();
    assert!(err.to_string().contains("at least 10"), "{err}");
}

/// θ ~ N(0, 1), x | θ ~ N(θ, s²): log r(θ, x) = log N(x; θ, s²) − log N(x; 0, 1 + s²).
fn log_ratio(theta: f64, x: f64, s: f64) -> f64 {
    let lnorm = |v: f64, m: f64, var: f64| -0.5 * (v - m).powi(2) / var - 0.5 * var.ln();
    lnorm(x, theta, s * s) - lnorm(x, 0.0, 1.0 + s * s)
}

fn train(variant: NreVariant, seed: u64) -> RatioClassifier {
    let (n, s) = (6000, 0.5);
    let prior = MultivariateNormal::new(vec![0.0], DMatrix::from_element(1, 1, 1.0)).unwrap();
    let mut rng = rng_from_seed(seed);
    let theta = prior.sample_batch(n, &mut rng);
    let x = theta.map(|t| {
        let e: f64 = StandardNormal.sample(&mut rng);
        t + s * e
    });
    let data = TrainingData::with_prior(theta, x, &prior, vec![true; n]).unwrap();
    let split = DataSplit::random(n, 0.1, &mut rng).unwrap();
    let (t_train, x_train) = data.gather(&split.train);
    let config = ClassifierConfig {
        hidden_features: 32,
        ..ClassifierConfig::default()
    };
    let mut f = RatioClassifier::new(&config, &t_train, &x_train, seed).unwrap();
    let trainer = Trainer::new(TrainingConfig {
        learning_rate: 2e-3,
        max_num_epochs: Some(60),
        ..TrainingConfig::default()
    })
    .unwrap();
    let mut loss = NreLoss::new(variant).unwrap();
    trainer
        .train(&mut f, &mut loss, &data, &split, 0, &mut rng, None)
        .unwrap();
    f
}

#[test]
fn trained_classifiers_recover_the_analytic_log_ratio() {
    let s = 0.5;
    // Pairs (θ, x) where the joint has mass: x within 2 of θ, θ within 1.5.
    let grid: Vec<(f64, f64)> = (0..=6)
        .flat_map(|i| (0..=6).map(move |j| (-1.5 + 0.5 * i as f64, -1.0 + 0.5 * j as f64)))
        .filter(|(t, x)| (t - x).abs() < 1.2)
        .collect();
    let theta = DMatrix::from_fn(1, grid.len(), |_, j| grid[j].0);
    let x = DMatrix::from_fn(1, grid.len(), |_, j| grid[j].1);
    let exact: Vec<f64> = grid.iter().map(|&(t, x)| log_ratio(t, x, s)).collect();

    // NRE-B learns log r up to a function of x: compare differences at the same x.
    let fb = train(NreVariant::B { num_atoms: 10 }, 1)
        .logits(&theta, &x)
        .unwrap();
    let mut errs = Vec::new();
    for a in 0..grid.len() {
        for b in 0..grid.len() {
            if a != b && grid[a].1 == grid[b].1 {
                errs.push(((fb[a] - fb[b]) - (exact[a] - exact[b])).abs());
            }
        }
    }
    let mean_b = errs.iter().sum::<f64>() / errs.len() as f64;
    // The log-ratios on the grid vary by several units; the trained classifiers of this
    // test are off by about 0.13 on average.
    assert!(
        mean_b < 0.35,
        "NRE-B: mean error of log-ratio differences {mean_b}"
    );

    // NRE-C learns log r itself.
    let fc = train(NreVariant::c(), 2).logits(&theta, &x).unwrap();
    let mean_c = fc
        .iter()
        .zip(&exact)
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
        / exact.len() as f64;
    assert!(mean_c < 0.35, "NRE-C: mean error of the log-ratio {mean_c}");
}
