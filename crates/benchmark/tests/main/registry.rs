//! The task registry and what every task provides.

use rand::RngCore;
use simfer_benchmark::BenchmarkError;
use simfer_benchmark::{task, task_names};
use simfer_distributions::{Prior, derive_rng, rng_from_seed};
use simfer_simulators::{SimulationOptions, SimulatorError, check_sbi_inputs, simulate_for_sbi};

#[test]
fn all_eleven_tasks_exist_and_fit_together() {
    let expected_dims = [
        ("linear_gaussian", 3, 3, true),
        ("gaussian_linear", 10, 10, true),
        ("gaussian_linear_uniform", 10, 10, true),
        ("two_moons", 2, 2, true),
        ("slcp", 5, 8, true),
        ("slcp_distractors", 5, 100, true),
        ("gaussian_mixture", 2, 2, true),
        ("bernoulli_glm", 10, 10, true),
        ("bernoulli_glm_raw", 10, 100, true),
        ("sir", 2, 10, false),
        ("lotka_volterra", 4, 20, false),
    ];
    assert_eq!(task_names().len(), 11);
    for (name, td, xd, has_reference) in expected_dims {
        assert!(task_names().contains(&name));
        let t = task(name).unwrap();
        assert_eq!(t.name(), name);
        assert_eq!((t.theta_dim(), t.x_dim()), (td, xd), "{name}");
        let prior = t.prior();
        assert_eq!(Prior::dim(&prior), td, "{name}");
        assert_eq!(t.parameter_names().len(), td, "{name}");
        let sim = t.simulator();
        check_sbi_inputs(sim.as_ref(), prior.as_ref()).unwrap();
        let opts = SimulationOptions::with_seed(1).with_progress(false);
        let sims = simulate_for_sbi(sim.as_ref(), &prior, 200, &opts).unwrap();
        assert_eq!(sims.x.shape(), (xd, 200));
        assert!(sims.invalid.is_empty(), "{name}: {}", sims.invalid);
        assert!(
            sims.theta
                .column_iter()
                .all(|c| prior.in_support(c.as_slice()))
        );
        // Reference posteriors for all but sir and lotka_volterra.
        let x_o: Vec<f64> = sims.x.column(0).iter().copied().collect();
        let reference = t.reference_posterior(&x_o);
        assert_eq!(reference.is_some(), has_reference, "{name}");
        if let Some(r) = reference {
            let r = r.unwrap();
            assert_eq!(r.dim(), td);
            let s = r.sample(100, &mut rng_from_seed(0)).unwrap();
            assert!(
                s.column_iter().all(|c| prior.in_support(c.as_slice())),
                "{name}"
            );
        }
    }
}

#[test]
fn an_unknown_task_lists_the_valid_names() {
    let err = task("three_moons").err().unwrap();
    assert!(matches!(err, BenchmarkError::UnknownTask { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("three_moons") && msg.contains("two_moons, slcp"),
        "{msg}"
    );
}

#[test]
fn task_parameter_names() {
    assert_eq!(task("sir").unwrap().parameter_names(), ["beta", "gamma"]);
    assert_eq!(
        task("lotka_volterra").unwrap().parameter_names(),
        ["alpha", "beta", "gamma", "delta"]
    );
    let glm = task("bernoulli_glm").unwrap().parameter_names();
    assert_eq!(glm[0], "beta_0");
    assert_eq!(glm[9], "h_9");
}

#[test]
fn wrong_theta_length_is_an_error_for_every_task_simulator() {
    for name in task_names() {
        let t = task(name).unwrap();
        let sim = t.simulator();
        let theta = vec![0.5; t.theta_dim() + 1];
        let mut out = vec![0.0; t.x_dim()];
        let mut rng = derive_rng(0, 0);
        let err = sim
            .simulate(&theta, &mut rng as &mut dyn RngCore, &mut out)
            .unwrap_err();
        assert!(
            matches!(err, SimulatorError::ThetaDimension { .. }),
            "{name}: {err:?}"
        );
    }
}
