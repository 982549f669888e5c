//! The trainer: split, early stopping, restoring the best weights, errors, and fits that
//! learn with both losses.

use nalgebra::DMatrix;
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};
use simfer_distributions::rng_from_seed;
use simfer_snpe::{
    AtomicLoss, Batch, DataSplit, EarlyStopping, Loss, MaximumLikelihood, Progress, SnpeError,
    StopReason, Trainer, TrainingConfig, TrainingData,
};

use crate::mock::Gaussian;

#[test]
fn split_is_ninety_ten_disjoint_and_complete() {
    let mut rng = rng_from_seed(1);
    for (n, n_train) in [(500, 450), (1000, 900), (11, 9)] {
        let s = DataSplit::random(n, 0.1, &mut rng).unwrap();
        assert_eq!(s.train.len(), n_train);
        assert_eq!(s.validation.len(), n - n_train);
        let mut all: Vec<usize> = s.train.iter().chain(&s.validation).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    }
    // A new split per call.
    let a = DataSplit::random(100, 0.1, &mut rng).unwrap();
    let b = DataSplit::random(100, 0.1, &mut rng).unwrap();
    assert_ne!(a, b);
    assert!(DataSplit::random(1, 0.1, &mut rng).is_err());
    assert!(DataSplit::random(100, 0.0, &mut rng).is_err());
}

/// A validation curve that falls to its minimum at epoch 7, then plateaus (equal values
/// are not improvements) and rises.
fn scripted_curve() -> Vec<f64> {
    let mut v: Vec<f64> = (1..=7).map(|e| 10.0 - e as f64).collect();
    v.extend(std::iter::repeat_n(3.0, 5));
    v.extend((0..100).map(|e| 3.5 + e as f64));
    v
}

#[test]
fn early_stopping_stops_twenty_epochs_after_the_best() {
    let mut es = EarlyStopping::new(20);
    let mut stopped = None;
    for (i, &v) in scripted_curve().iter().enumerate() {
        let epoch = i + 1;
        if es.update(epoch, v) == Progress::Converged {
            stopped = Some(epoch);
            break;
        }
    }
    assert_eq!(stopped, Some(27));
    assert_eq!(es.best_epoch(), 7);
    assert_eq!(es.best(), 3.0);
}

/// Training moves parameter 0 by Adam steps; validation returns the scripted curve and
/// records the parameter at each epoch.
struct Scripted {
    curve: Vec<f64>,
    epoch: usize,
    seen: Vec<f64>,
    nan_at: Option<usize>,
    err_at: Option<usize>,
}

impl Loss<Gaussian> for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }
    fn evaluate(
        &mut self,
        est: &Gaussian,
        _ws: &mut simfer_flows::Workspace,
        _batch: &Batch<'_>,
        _rng: &mut dyn RngCore,
        grad: Option<&mut [f64]>,
    ) -> Result<f64, SnpeError> {
        match grad {
            Some(g) => {
                g[0] += 1.0;
                if self.nan_at == Some(self.epoch + 1) {
                    return Ok(f64::NAN);
                }

                Ok(0.0)
            }
            None => {
                self.epoch += 1;
                if self.err_at == Some(self.epoch) {
                    // Fails in validation, after this epoch's training steps.
                    return Err(SnpeError::InvalidConfig {
                        name: "scripted",
                        message: "failure".into(),
                    });
                }
                self.seen.push(est.params[0]);
                Ok(self.curve[self.epoch - 1])
            }
        }
    }
}

fn tiny_data(n: usize) -> TrainingData {
    let theta = DMatrix::from_fn(1, n, |_, j| j as f64 / n as f64);
    let x = theta.clone();
    TrainingData::new(theta, x, vec![0.0; n], vec![true; n]).unwrap()
}

#[test]
fn trainer_stops_at_best_plus_patience_and_restores_the_best_weights() {
    let data = tiny_data(50);
    let mut rng = rng_from_seed(2);
    let split = DataSplit::random(50, 0.1, &mut rng).unwrap();
    let mut est = Gaussian::new(1, 1, vec![0.0, 0.0, 0.0]);
    let mut loss = Scripted {
        curve: scripted_curve(),
        epoch: 0,
        seen: vec![],
        nan_at: None,
        err_at: None,
    };
    let mut epochs_seen = 0;
    let mut obs = |_: &simfer_snpe::EpochReport| epochs_seen += 1;
    let trainer = Trainer::new(TrainingConfig::default()).unwrap();
    let h = trainer
        .train(
            &mut est,
            &mut loss,
            &data,
            &split,
            0,
            &mut rng,
            Some(&mut obs),
        )
        .unwrap();
    assert_eq!(h.epochs_trained, 27);
    assert_eq!(epochs_seen, 27);
    assert_eq!(h.best_epoch, 7);
    assert_eq!(h.stop_reason, StopReason::Converged);
    assert_eq!(h.validation_loss.len(), 27);
    assert_eq!(h.best_validation_loss, 3.0);
    // The weights are those validated at epoch 7, not the last ones.
    assert_eq!(est.params[0], loss.seen[6]);
    assert_ne!(loss.seen[6], loss.seen[26]);
}

#[test]
fn epoch_cap_is_exact_and_keeps_the_best() {
    let data = tiny_data(50);
    let mut rng = rng_from_seed(2);
    let split = DataSplit::random(50, 0.1, &mut rng).unwrap();
    let mut est = Gaussian::new(1, 1, vec![0.0, 0.0, 0.0]);
    let mut loss = Scripted {
        curve: scripted_curve(),
        epoch: 0,
        seen: vec![],
        nan_at: None,
        err_at: None,
    };
    let cfg = TrainingConfig {
        max_num_epochs: Some(10),
        ..Default::default()
    };
    let h = Trainer::new(cfg)
        .unwrap()
        .train(&mut est, &mut loss, &data, &split, 0, &mut rng, None)
        .unwrap();
    assert_eq!(h.epochs_trained, 10);
    assert_eq!(h.stop_reason, StopReason::MaxEpochs);
    assert_eq!(h.best_epoch, 7);
    assert_eq!(est.params[0], loss.seen[6]);
}

#[test]
fn non_finite_loss_is_an_error_naming_where_and_keeps_the_best_weights() {
    let data = tiny_data(50);
    let mut rng = rng_from_seed(2);
    let split = DataSplit::random(50, 0.1, &mut rng).unwrap();
    let mut est = Gaussian::new(1, 1, vec![0.0, 0.0, 0.0]);
    let mut loss = Scripted {
        curve: scripted_curve(),
        epoch: 0,
        seen: vec![],
        nan_at: Some(5),
        err_at: None,
    };
    let err = Trainer::new(TrainingConfig::default())
        .unwrap()
        .train(&mut est, &mut loss, &data, &split, 3, &mut rng, None)
        .unwrap_err();
    match err {
        SnpeError::NonFiniteLoss {
            round,
            epoch,
            batch,
            best_epoch,
            ..
        } => {
            assert_eq!((round, epoch, batch, best_epoch), (3, 5, 0, 4));
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(est.params[0], loss.seen[3]);
    let msg = Trainer::new(TrainingConfig::default())
        .unwrap()
        .train(
            &mut est,
            &mut Scripted {
                curve: scripted_curve(),
                epoch: 0,
                seen: vec![],
                nan_at: Some(1),
                err_at: None,
            },
            &data,
            &split,
            1,
            &mut rng,
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(msg.contains("round 1, epoch 1, batch 0"), "{msg}");
}

#[test]
fn an_interruption_check_stops_training_before_a_minibatch_and_keeps_the_best_weights() {
    use std::cell::Cell;
    use std::rc::Rc;

    let data = tiny_data(50); // one minibatch per epoch
    let mut rng = rng_from_seed(2);
    let split = DataSplit::random(50, 0.1, &mut rng).unwrap();
    let mut est = Gaussian::new(1, 1, vec![0.0, 0.0, 0.0]);
    let mut loss = Scripted {
        curve: scripted_curve(),
        epoch: 0,
        seen: vec![],
        nan_at: None,
        err_at: None,
    };
    let trainer = Trainer::new(TrainingConfig::default()).unwrap();
    // The check asks to stop at its 10th call: before the minibatch of epoch 10.
    let calls = Rc::new(Cell::new(0));
    let counted = Rc::clone(&calls);
    let check = move || {
        counted.set(counted.get() + 1);
        counted.get() >= 10
    };
    let err = simfer_snpe::with_interrupt_check(check, || {
        trainer.train(&mut est, &mut loss, &data, &split, 2, &mut rng, None)
    })
    .unwrap_err();
    match err {
        SnpeError::Interrupted {
            round,
            epoch,
            best_epoch,
        } => assert_eq!((round, epoch, best_epoch), (2, 10, 7)),
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(calls.get(), 10);
    assert_eq!(loss.seen.len(), 9);
    assert_eq!(est.params[0], loss.seen[6]);
    // Once the closure has returned, the check is gone and training runs to its end.
    assert!(!simfer_snpe::interrupt_requested());
    let mut loss = Scripted {
        curve: scripted_curve(),
        epoch: 0,
        seen: vec![],
        nan_at: None,
        err_at: None,
    };
    let h = trainer
        .train(&mut est, &mut loss, &data, &split, 2, &mut rng, None)
        .unwrap();
    assert_eq!(h.epochs_trained, 27);
    assert_eq!(calls.get(), 10);
}

#[test]
fn bad_data_and_settings_are_errors() {
    let theta = DMatrix::from_element(1, 4, 0.5);
    let mut x = DMatrix::from_element(1, 4, 0.5);
    assert!(TrainingData::new(theta.clone(), x.clone(), vec![0.0; 3], vec![true; 4]).is_err());
    x[(0, 2)] = f64::NAN;
    let err = TrainingData::new(theta, x, vec![0.0; 4], vec![true; 4]).unwrap_err();
    assert!(err.to_string().contains("row 2"), "{err}");
    for cfg in [
        TrainingConfig {
            batch_size: 0,
            ..Default::default()
        },
        TrainingConfig {
            learning_rate: -1.0,
            ..Default::default()
        },
        TrainingConfig {
            clip_max_norm: Some(f64::NAN),
            ..Default::default()
        },
        TrainingConfig {
            validation_fraction: 1.0,
            ..Default::default()
        },
    ] {
        assert!(Trainer::new(cfg).is_err());
    }
    // Estimator of the wrong dimension.
    let data = tiny_data(20);
    let mut rng = rng_from_seed(0);
    let split = DataSplit::random(20, 0.1, &mut rng).unwrap();
    let mut est = Gaussian::new(2, 1, vec![0.0; 6]);
    let err = Trainer::default()
        .train(
            &mut est,
            &mut MaximumLikelihood::new(),
            &data,
            &split,
            0,
            &mut rng,
            None,
        )
        .unwrap_err();
    assert!(err.to_string().contains("expected 2, found 1"), "{err}");
}

fn normal(rng: &mut dyn RngCore) -> f64 {
    StandardNormal.sample(rng)
}

fn fast() -> Trainer {
    Trainer::new(TrainingConfig {
        learning_rate: 2e-2,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn maximum_likelihood_recovers_a_conditional_gaussian() {
    // θ = 0.7·x − 0.4 + 0.3·ε: the mock family contains it exactly.
    let mut rng = rng_from_seed(11);
    let n = 3000;
    let x = DMatrix::from_fn(1, n, |_, _| normal(&mut rng));
    let theta = DMatrix::from_fn(1, n, |_, j| 0.7 * x[(0, j)] - 0.4 + 0.3 * normal(&mut rng));
    let data = TrainingData::new(theta, x, vec![0.0; n], vec![true; n]).unwrap();
    let split = DataSplit::random(n, 0.1, &mut rng).unwrap();
    let mut est = Gaussian::new(1, 1, vec![0.0, 0.0, 0.0]);
    let h = fast()
        .train(
            &mut est,
            &mut MaximumLikelihood::new(),
            &data,
            &split,
            0,
            &mut rng,
            None,
        )
        .unwrap();
    assert_eq!(h.stop_reason, StopReason::Converged);
    assert_eq!(h.epochs_trained, h.best_epoch + 20);
    let (a, b, s) = (est.params[0], est.params[1], est.params[2].exp());
    assert!((a - 0.7).abs() < 0.03, "slope {a}");
    assert!((b + 0.4).abs() < 0.03, "intercept {b}");
    assert!((s - 0.3).abs() < 0.015, "std {s}");
}

#[test]
fn atomic_loss_on_proposal_data_recovers_the_true_posterior() {
    // Prior θ ~ N(0, 1), x = θ + 0.5·ε: posterior N(0.8·x, 0.2). The data come from a
    // narrow proposal N(0.5, 0.4²); maximum likelihood on them would learn the proposal
    // posterior, the atomic loss must undo the proposal and find the true one.
    let mut rng = rng_from_seed(12);
    let n = 4000;
    let theta = DMatrix::from_fn(1, n, |_, _| 0.5 + 0.4 * normal(&mut rng));
    let x = DMatrix::from_fn(1, n, |_, j| theta[(0, j)] + 0.5 * normal(&mut rng));
    let lp: Vec<f64> = theta
        .iter()
        .map(|t| -0.5 * t * t - 0.5 * (2.0 * std::f64::consts::PI).ln())
        .collect();
    let data = TrainingData::new(theta, x, lp, vec![false; n]).unwrap();
    let split = DataSplit::random(n, 0.1, &mut rng).unwrap();
    let mut est = Gaussian::new(1, 1, vec![0.0, 0.0, 0.0]);
    fast()
        .train(
            &mut est,
            &mut AtomicLoss::new(10, false).unwrap(),
            &data,
            &split,
            1,
            &mut rng,
            None,
        )
        .unwrap();
    let (a, b, var) = (est.params[0], est.params[1], (2.0 * est.params[2]).exp());
    assert!((a - 0.8).abs() < 0.06, "slope {a}");
    assert!(b.abs() < 0.05, "intercept {b}");
    assert!((var - 0.2).abs() < 0.03, "variance {var}");

    // The same data with maximum likelihood give the proposal posterior: precision
    // 1/0.16 + 4 → variance ≈ 0.0976, clearly not 0.2.
    let mut ml = Gaussian::new(1, 1, vec![0.0, 0.0, 0.0]);
    fast()
        .train(
            &mut ml,
            &mut MaximumLikelihood::new(),
            &data,
            &split,
            1,
            &mut rng,
            None,
        )
        .unwrap();
    let ml_var = (2.0 * ml.params[2]).exp();
    assert!((ml_var - 0.0976).abs() < 0.015, "ML variance {ml_var}");
}

#[test]
fn any_error_during_training_restores_the_best_weights() {
    let data = tiny_data(50);
    let mut rng = rng_from_seed(2);
    let split = DataSplit::random(50, 0.1, &mut rng).unwrap();
    let mut est = Gaussian::new(1, 1, vec![0.0, 0.0, 0.0]);
    let mut loss = Scripted {
        curve: scripted_curve(),
        epoch: 0,
        seen: vec![],
        nan_at: None,
        err_at: Some(6),
    };
    let err = Trainer::new(TrainingConfig::default())
        .unwrap()
        .train(&mut est, &mut loss, &data, &split, 0, &mut rng, None)
        .unwrap_err();
    assert!(err.to_string().contains("failure"), "{err}");
    // Epoch 6 took a training step before failing in validation; the weights are those
    // of the best epoch, 5, not the stepped ones.
    assert_eq!(loss.seen.len(), 5);
    assert_eq!(est.params[0], loss.seen[4]);
}
