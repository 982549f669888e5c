//! How the slice sampler runs: the sweep counts and the chain-major order of §7.4 checked
//! against an independent serial version of the algorithm, thinning, the lockstep batch
//! calls, threads, continuing a run, invalid values and the optional convergence check.

use nalgebra::DMatrix;
use rand::Rng;
use simfer_distributions::{BoxUniform, Prior, derive_rng, rng_from_seed};
use simfer_mcmc::{
    ConvergenceCheck, InitStrategy, LogDensity, McmcDiagnostics, McmcError, ParallelBatch,
    SamplerKind, SliceOutput, SliceSampler, SliceSettings, from_fn,
};

use crate::common::{Banana, Counting, Gauss2, serial_chain};

/// Checks a run against [`serial_chain`] from the same starting points and generators:
/// every kept draw, the chain-major samples, the final states, the widths and the number
/// of evaluations.
fn assert_matches_serial(
    target: &dyn LogDensity,
    settings: &SliceSettings,
    starts: &DMatrix<f64>,
    rngs: Vec<simfer_distributions::SeededRng>,
    init_evaluations: u64,
    n: usize,
    run: &SliceOutput,
) {
    let k = settings.chains;
    let d = target.dim();
    let mut all = Vec::new();
    let mut evaluations = init_evaluations;
    for (c, mut rng) in rngs.into_iter().enumerate() {
        let x0: Vec<f64> = starts.column(c).iter().copied().collect();
        let (kept, last, widths, evals) = serial_chain(target, x0, &mut rng, settings, n);
        evaluations += evals;
        let kept_matrix = DMatrix::from_fn(d, kept.len(), |i, j| kept[j][i]);
        assert_eq!(run.chains[c], kept_matrix, "chain {c}'s draws");
        assert_eq!(
            run.final_states.column(c).as_slice(),
            &last[..],
            "chain {c}'s final state"
        );
        assert_eq!(
            run.widths.column(c).as_slice(),
            &widths[..],
            "chain {c}'s widths"
        );
        all.extend(kept);
    }
    assert_eq!(run.chains.len(), k);
    let expected = DMatrix::from_fn(d, n, |i, j| all[j][i]);
    assert_eq!(run.samples, expected, "chain-major samples, the first N");
    // The sampler keeps U(x) from the acceptance instead of evaluating it again.
    assert_eq!(run.diagnostics.evaluations, evaluations);
}

#[test]
fn counts_and_chain_major_order_follow_the_reference_with_the_defaults() {
    let target = Banana { b: 0.5 };
    let prior = BoxUniform::uniform(2, -3.0, 3.0).unwrap();
    let settings = SliceSettings::default().with_init(InitStrategy::Proposal);
    let (n, seed) = (1000, 21);
    let run = SliceSampler::new(settings.clone())
        .unwrap()
        .sample(&target, Some(&prior), n, seed)
        .unwrap();
    // N = 1000, 20 chains: 50 tuning + 200 warm-up + 50 sweeps, 50 draws per chain.
    let plan = settings.plan(n).unwrap();
    assert_eq!(
        (
            plan.tuning_sweeps,
            plan.warmup_sweeps,
            plan.sampling_sweeps,
            plan.total_sweeps
        ),
        (50, 200, 50, 300)
    );
    let d = &run.diagnostics;
    assert_eq!(d.sampler, SamplerKind::Slice);
    assert_eq!(
        (d.chains, d.tuning, d.warmup, d.iterations, d.thin),
        (20, 50, 200, 50, 1)
    );
    assert_eq!(d.draws_per_chain, 50);
    assert!(run.chains.iter().all(|c| c.shape() == (2, 50)));
    assert_eq!(run.samples.column(50), run.chains[1].column(0));
    assert_eq!(run.samples.column(999), run.chains[19].column(49));
    // Proposal: chain c's start is the first draw of derive_rng(seed, c), which it then
    // goes on sampling with.
    let mut rngs: Vec<_> = (0..20).map(|c| derive_rng(seed, c)).collect();
    let mut starts = DMatrix::zeros(2, 20);
    for (c, rng) in rngs.iter_mut().enumerate() {
        starts.set_column(c, &prior.sample(rng));
    }
    assert_matches_serial(&target, &settings, &starts, rngs, 20, n, &run);
}

#[test]
fn thinning_keeps_every_thin_th_sweep_and_drops_the_warm_up_in_kept_states() {
    let target = Gauss2 { rho: 0.5 };
    let mut rng = rng_from_seed(3);
    let starts = DMatrix::from_fn(2, 3, |_, _| rng.random::<f64>() * 2.0 - 1.0);
    let settings = SliceSettings::default()
        .with_chains(3)
        .with_warmup(7)
        .with_thin(4)
        .with_tuning(5)
        .with_init(InitStrategy::Given(starts.clone()));
    let n = 100;
    // ⌈100·4/3⌉ = 134 sampling sweeps, 28 warm-up sweeps, 5 tuning sweeps; of the 162
    // stored sweeps every 4th is kept (41), less the 7 of the warm-up: ⌈134/4⌉ = 34.
    let plan = settings.plan(n).unwrap();
    assert_eq!(
        (
            plan.warmup_sweeps,
            plan.sampling_sweeps,
            plan.total_sweeps,
            plan.draws_per_chain
        ),
        (28, 134, 167, 34)
    );
    let run = SliceSampler::new(settings.clone())
        .unwrap()
        .sample(&target, None, n, 9)
        .unwrap();
    assert_eq!(run.samples.ncols(), 100);
    assert!(run.chains.iter().all(|c| c.ncols() == 34));
    assert_eq!(run.samples.column(99), run.chains[2].column(31));
    let rngs = (0..3).map(|c| derive_rng(9, c)).collect();
    assert_matches_serial(&target, &settings, &starts, rngs, 3, n, &run);
    // Thinning lowers the autocorrelation of the kept draws.
    let lag1 = |s: &SliceOutput| {
        let x: Vec<f64> = s.chains[0].row(0).iter().copied().collect();
        let m = x.iter().sum::<f64>() / x.len() as f64;
        let v: f64 = x.iter().map(|a| (a - m).powi(2)).sum();
        x.windows(2).map(|w| (w[0] - m) * (w[1] - m)).sum::<f64>() / v
    };
    let long = |thin| {
        SliceSampler::new(SliceSettings::default().with_chains(2).with_thin(thin))
            .unwrap()
            .sample(
                &Gauss2 { rho: 0.95 },
                Some(&BoxUniform::uniform(2, -3.0, 3.0).unwrap()),
                4000,
                1,
            )
            .unwrap()
    };
    let (a, b) = (lag1(&long(1)), lag1(&long(10)));
    assert!(
        a > 0.7 && b < 0.65 * a,
        "lag-1 autocorrelation {a} unthinned, {b} thinned"
    );
}

#[test]
fn each_step_is_one_batch_call_on_the_chains_still_running() {
    let target = Counting::new(Gauss2 { rho: 0.3 });
    let prior = BoxUniform::uniform(2, -3.0, 3.0).unwrap();
    let run = SliceSampler::new(SliceSettings::default().with_chains(8))
        .unwrap()
        .sample(&target, Some(&prior), 400, 2)
        .unwrap();
    let (calls, points, largest) = target.get();
    // The initialisation: one batch of 10 000 candidates per chain.
    let init_calls = 8;
    let sweeps = 50 + 200 + 50;
    let updates = (8 * sweeps * 2) as u64;
    assert_eq!(points, run.diagnostics.evaluations);
    assert_eq!(largest, 10_000);
    // Each update takes at least 3 evaluations (both ends and one candidate); a step
    // evaluates at most one point per chain, so there are at least updates·3/8 steps and,
    // in lockstep, at most about as many as the slowest chain needs.
    let steps = calls - init_calls;
    let sampling_points = points - 8 * 10_000;
    assert!(sampling_points >= 3 * updates);
    assert!(
        steps * 8 >= sampling_points && steps < sampling_points,
        "{steps} steps"
    );
    assert_eq!(run.diagnostics.invalid_evaluations, 0);
}

/// Everything but the wall-clock time.
fn untimed(mut run: SliceOutput) -> SliceOutput {
    assert!(run.diagnostics.seconds > 0.0);
    run.diagnostics = McmcDiagnostics {
        seconds: 0.0,
        ..run.diagnostics
    };
    run
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let target = ParallelBatch(Banana { b: 1.0 });
    let prior = BoxUniform::uniform(2, -4.0, 4.0).unwrap();
    let sampler = SliceSampler::new(SliceSettings::default().with_chains(6)).unwrap();
    let run = |threads: usize, seed: u64| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| untimed(sampler.sample(&target, Some(&prior), 600, seed).unwrap()))
    };
    let one = run(1, 4);
    assert_eq!(one, run(2, 4));
    assert_ne!(one.samples, run(2, 5).samples);
    // The batch evaluation order does not matter either: the plain target (one by one)
    // gives the same bits.
    let plain = untimed(
        sampler
            .sample(&Banana { b: 1.0 }, Some(&prior), 600, 4)
            .unwrap(),
    );
    assert_eq!(one, plain);
}

#[test]
fn final_states_continue_the_chains() {
    let target = Gauss2 { rho: 0.0 };
    let prior = BoxUniform::uniform(2, -3.0, 3.0).unwrap();
    let first = SliceSampler::new(SliceSettings::default().with_chains(4))
        .unwrap()
        .sample(&target, Some(&prior), 200, 1)
        .unwrap();
    // The final state is the last kept draw with thin = 1.
    for c in 0..4 {
        assert_eq!(first.final_states.column(c), first.chains[c].column(49));
    }
    let settings = SliceSettings::default()
        .with_chains(4)
        .with_warmup(0)
        .with_tuning(0)
        .with_init_width(1.0)
        .with_init(InitStrategy::Given(first.final_states.clone()));
    let next = SliceSampler::new(settings)
        .unwrap()
        .sample(&target, None, 200, 2)
        .unwrap();
    // Given starts cost one evaluation each, no proposal needed.
    assert_eq!(next.diagnostics.warmup, 0);
    assert!(next.diagnostics.evaluations > 4);
    assert_eq!(next.samples.ncols(), 200);
}

#[test]
fn nan_values_are_treated_as_minus_infinity_and_counted() {
    // A unit Gaussian whose evaluation is NaN above 1 (as a broken potential might be).
    let target = from_fn(1, |x: &[f64]| {
        if x[0] > 1.0 {
            f64::NAN
        } else {
            -0.5 * x[0] * x[0]
        }
    });
    let prior = BoxUniform::uniform(1, -3.0, 3.0).unwrap();
    let run = SliceSampler::new(SliceSettings::default().with_chains(4))
        .unwrap()
        .sample(&target, Some(&prior), 1000, 3)
        .unwrap();
    assert!(run.samples.iter().all(|&x| x <= 1.0));
    let d = &run.diagnostics;
    // About a sixth of the prior candidates land above 1, and so do step-outs.
    assert!(d.invalid_evaluations > 4 * 10_000 / 8, "{d:?}");
    assert!(d.invalid_evaluations < d.evaluations);
}

#[test]
fn the_convergence_check_rejects_chains_stuck_in_separate_modes() {
    // Two unit modes at ±30: slice sampling with step-out cannot cross the gap.
    let target = from_fn(1, |x: &[f64]| {
        let (a, b) = (-0.5 * (x[0] - 30.0).powi(2), -0.5 * (x[0] + 30.0).powi(2));
        a.max(b) + (-(a - b).abs()).exp().ln_1p()
    });
    let starts = DMatrix::from_row_slice(1, 4, &[30.0, -30.0, 30.0, -30.0]);
    let settings = SliceSettings::default()
        .with_chains(4)
        .with_init(InitStrategy::Given(starts));
    let run = SliceSampler::new(settings.clone())
        .unwrap()
        .sample(&target, None, 1000, 1)
        .unwrap();
    assert!(run.diagnostics.max_rhat() > 1.5, "{:?}", run.diagnostics);
    let err = SliceSampler::new(settings.with_convergence(ConvergenceCheck::default()))
        .unwrap()
        .sample(&target, None, 1000, 1)
        .unwrap_err();
    assert!(
        matches!(err, McmcError::Convergence { max_rhat, chains: 4, .. } if max_rhat > 1.5),
        "{err:?}"
    );
    assert!(err.to_string().contains("split-R̂ of x[0]"), "{err}");
    // One mode, converged chains: the check passes.
    let one = from_fn(1, |x: &[f64]| -0.5 * x[0] * x[0]);
    let ok = SliceSampler::new(SliceSettings::default().with_convergence(ConvergenceCheck {
        max_rhat: 1.01,
        min_ess: 1000.0,
    }))
    .unwrap()
    .with_parameter_names(vec!["theta".into()])
    .sample(
        &one,
        Some(&BoxUniform::uniform(1, -3.0, 3.0).unwrap()),
        4000,
        2,
    )
    .unwrap();
    assert_eq!(ok.diagnostics.parameter_names, ["theta"]);
    assert_eq!(ok.diagnostics.required_ess, Some(1000.0));
}
