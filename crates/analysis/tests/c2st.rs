//! C2ST against Bayes-optimal accuracies.

use simfer_analysis::{C2stOptions, c2st, c2st_with_details};

use crate::common::{normal, rng};

#[test]
fn defaults_are_the_benchmark_definition() {
    // benchmark-tasks.md "Scoring" and sbibm's `c2st`: 5 shuffled folds, z-scoring with
    // the reference, 2 × 10·D units, Adam 1e-3, L2 1e-4, batches of 200, stop after 10
    // epochs without a 1e-4 improvement, and a cap (`max_iter=10000`) high enough that
    // the stopping rule, not the cap, ends training.
    let o = C2stOptions::default();
    assert_eq!((o.folds, o.z_score, o.hidden_per_dim), (5, true, 10));
    assert_eq!((o.learning_rate, o.l2, o.batch_size), (1e-3, 1e-4, 200));
    assert_eq!(
        (o.tol, o.n_iter_no_change, o.max_epochs),
        (1e-4, 10, 10_000)
    );
}

#[test]
fn same_distribution_scores_one_half() {
    let mut r = rng(40);
    let a = normal(2, 5_000, 0.0, 1.0, &mut r);
    let b = normal(2, 5_000, 0.0, 1.0, &mut r);
    let acc = c2st(&a, &b, &C2stOptions::default()).unwrap();
    // Held-out accuracy of 10,000 predictions: std 0.005 around 0.5 (slightly below when
    // the classifier overfits noise).
    assert!((acc - 0.5).abs() < 0.02, "accuracy {acc}");
}

#[test]
fn unit_shift_in_one_dimension_scores_the_bayes_accuracy() {
    // N(0, 1) vs N(1, 1): the best classifier thresholds at ½, accuracy Φ(½) = 0.6915.
    let mut r = rng(41);
    let a = normal(1, 10_000, 0.0, 1.0, &mut r);
    let b = normal(1, 10_000, 1.0, 1.0, &mut r);
    let res = c2st_with_details(&a, &b, &C2stOptions::default()).unwrap();
    assert!(
        (res.accuracy - 0.6915).abs() < 0.02,
        "accuracy {}",
        res.accuracy
    );
    assert_eq!(res.fold_accuracies.len(), 5);
    // The stopping rule ends training here, within scikit-learn's default of 200 epochs.
    assert!(
        res.epochs.iter().all(|&e| e > 11 && e < 200),
        "epochs {:?}",
        res.epochs
    );
}

#[test]
fn z_scoring_makes_the_score_scale_free() {
    // The reference's statistics are used for both sets, so rescaling both changes nothing.
    let mut r = rng(42);
    let a = normal(2, 1_500, 0.0, 1.0, &mut r);
    let b = normal(2, 1_500, 0.3, 1.0, &mut r);
    let o = C2stOptions::default();
    let s1 = c2st(&a, &b, &o).unwrap();
    let s2 = c2st(
        &(&a * 1000.0).add_scalar(5.0),
        &(&b * 1000.0).add_scalar(5.0),
        &o,
    )
    .unwrap();
    assert!((s1 - s2).abs() < 1e-9, "{s1} vs {s2}");
}

#[test]
fn result_depends_on_the_seed_only_not_on_the_thread_count() {
    let mut r = rng(43);
    let a = normal(3, 800, 0.0, 1.0, &mut r);
    let b = normal(3, 700, 0.5, 1.0, &mut r);
    let o = C2stOptions::default();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| c2st_with_details(&a, &b, &o).unwrap())
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(5));
    let other_seed = c2st_with_details(
        &a,
        &b,
        &C2stOptions {
            seed: 2,
            ..o.clone()
        },
    )
    .unwrap();
    assert_ne!(one.fold_accuracies, other_seed.fold_accuracies);
}

#[test]
fn separable_samples_score_one() {
    let mut r = rng(44);
    let a = normal(2, 1_000, 0.0, 1.0, &mut r);
    let b = normal(2, 1_000, 20.0, 1.0, &mut r);
    assert!(c2st(&a, &b, &C2stOptions::default()).unwrap() > 0.999);
}
