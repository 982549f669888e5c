//! The parallel runner: thread independence, invalid rows, errors.

use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngCore};
use simfer_benchmark::tasks::TwoMoons;
use simfer_distributions::{
    BoxUniform, DistributionError, Prior, Proposal, Support, derive_rng, rng_from_seed,
};
use simfer_simulators::{
    FnSimulator, InvalidReport, SimulationOptions, Simulator, SimulatorError, SliceSimulator,
    check_sbi_inputs, simulate_batch, simulate_for_sbi,
};

pub(crate) fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

use crate::external::{Batched, bits};

fn opts(seed: u64) -> SimulationOptions {
    SimulationOptions::with_seed(seed).with_progress(false)
}

#[test]
fn one_and_two_threads_give_bit_identical_results() {
    let cases = [
        ("two_moons", 5000),
        ("slcp", 3000),
        ("sir", 200),
        ("lotka_volterra", 100),
    ];
    for (name, n) in cases {
        let task = simfer_benchmark::task(name).unwrap();
        let (sim, prior, n) = (task.simulator(), task.prior(), &n);
        let one = in_pool(1, || simulate_for_sbi(sim.as_ref(), &prior, *n, &opts(11))).unwrap();
        let two = in_pool(2, || simulate_for_sbi(sim.as_ref(), &prior, *n, &opts(11))).unwrap();
        let three = in_pool(3, || simulate_for_sbi(sim.as_ref(), &prior, *n, &opts(11))).unwrap();
        // Bit-identical, NaN included: compare the bit patterns.
        let bits = |m: &DMatrix<f64>| m.iter().map(|v| v.to_bits()).collect::<Vec<u64>>();
        assert_eq!(bits(&one.theta), bits(&two.theta));
        assert_eq!(bits(&one.x), bits(&two.x));
        assert_eq!(bits(&one.x), bits(&three.x));
        assert_eq!(one.invalid, two.invalid);
        let other_seed =
            in_pool(2, || simulate_for_sbi(sim.as_ref(), &prior, *n, &opts(12))).unwrap();
        assert_ne!(bits(&one.x), bits(&other_seed.x));
    }
}

#[test]
fn simulation_i_depends_only_on_seed_and_i() {
    let theta = Prior::sample_batch(
        &BoxUniform::uniform(2, -1.0, 1.0).unwrap(),
        100,
        &mut rng_from_seed(0),
    );
    let all = simulate_batch(&TwoMoons, &theta, &opts(5)).unwrap();
    // Columns 40..60 simulated on their own, with the stream offset of their position.
    let part = theta.columns(40, 20).into_owned();
    let sub = simulate_batch(&TwoMoons, &part, &opts(5).with_stream_offset(40)).unwrap();
    assert_eq!(sub.x, all.x.columns(40, 20).into_owned());
    // And each one equals a direct call with derive_rng(seed, i).
    let mut out = [0.0; 2];
    TwoMoons
        .simulate(theta.column(7).as_slice(), &mut derive_rng(5, 7), &mut out)
        .unwrap();
    assert_eq!(&out[..], all.x.column(7).as_slice());
}

#[test]
fn nan_and_infinite_simulations_are_counted_and_listed_not_dropped() {
    // θ = 1 → NaN in the second output, θ = 2 → +∞, θ = 3 → NaN and −∞, else finite.
    let sim = SliceSimulator::new(
        1,
        2,
        |theta: &[f64], _rng: &mut dyn RngCore, out: &mut [f64]| {
            out[0] = theta[0];
            out[1] = match theta[0] as i64 {
                1 => f64::NAN,
                2 => f64::INFINITY,
                3 => {
                    out[0] = f64::NEG_INFINITY;
                    f64::NAN
                }
                _ => 0.0,
            };
        },
    );
    let theta = DMatrix::from_row_slice(1, 8, &[0.0, 1.0, 2.0, 3.0, 0.0, 2.0, 1.0, 0.0]);
    let sims = simulate_batch(&sim, &theta, &opts(0)).unwrap();
    assert_eq!(sims.x.ncols(), 8, "invalid simulations are kept");
    assert_eq!(sims.invalid.nan_rows, vec![1, 3, 6]);
    assert_eq!(sims.invalid.inf_rows, vec![2, 5]);
    assert_eq!(sims.invalid.num_invalid(), 5);
    assert_eq!(sims.invalid.invalid_indices(), vec![1, 2, 3, 5, 6]);
    assert_eq!(
        sims.invalid.to_string(),
        "Found 3 NaN simulations and 2 Inf simulations (of 8), at indices [1, 2, 3, 5, 6]"
    );
    let (theta_ok, x_ok) = sims.valid();
    assert_eq!(theta_ok, DMatrix::from_row_slice(1, 3, &[0.0, 0.0, 0.0]));
    assert_eq!(x_ok.ncols(), 3);
    assert!(InvalidReport::from_columns(&DMatrix::zeros(2, 3)).is_empty());
}

#[test]
fn wrong_theta_dimension_is_an_error() {
    let err = simulate_batch(&TwoMoons, &DMatrix::zeros(3, 10), &opts(0)).unwrap_err();
    assert!(matches!(
        err,
        SimulatorError::ThetaDimension {
            expected: 2,
            found: 3
        }
    ));
    let mut out = [0.0; 2];
    let direct = TwoMoons.simulate(&[0.0], &mut rng_from_seed(0), &mut out);
    assert!(matches!(direct, Err(SimulatorError::ThetaDimension { .. })));
    let short = TwoMoons.simulate(&[0.0, 0.0], &mut rng_from_seed(0), &mut out[..1]);
    assert!(short.is_err());
    // An empty batch is fine.
    let empty = simulate_batch(&TwoMoons, &DMatrix::zeros(2, 0), &opts(0)).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn a_simulator_writing_the_wrong_length_is_an_error_naming_index_and_lengths() {
    let sim = FnSimulator::new(1, 3, |theta: &[f64], _rng: &mut dyn RngCore| {
        if theta[0] >= 5.0 {
            vec![0.0; 2]
        } else {
            vec![0.0; 3]
        }
    });
    let theta = DMatrix::from_fn(1, 50, |_, j| if j == 17 || j == 30 { 5.0 } else { 0.0 });
    for threads in [1, 2] {
        let err = in_pool(threads, || simulate_batch(&sim, &theta, &opts(0))).unwrap_err();
        match &err {
            SimulatorError::Simulation { index, source, .. } => {
                assert_eq!(*index, 17, "the lowest failing index is reported");
                assert!(matches!(
                    **source,
                    SimulatorError::OutputLength {
                        expected: 3,
                        found: 2
                    }
                ));
            }
            other => panic!("unexpected error {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("simulation 17") && msg.contains("returned 2 values"),
            "{msg}"
        );
        assert!(msg.contains("x_dim = 3"), "{msg}");
    }
}

#[test]
fn a_panicking_simulator_is_an_error_naming_the_index() {
    let sim = FnSimulator::new(1, 1, |theta: &[f64], _rng: &mut dyn RngCore| {
        assert!(theta[0] < 0.5, "θ too large: {}", theta[0]);
        vec![theta[0]]
    });
    let theta = DMatrix::from_fn(1, 400, |_, j| if j % 97 == 96 { 1.0 } else { 0.0 });
    for threads in [1, 2] {
        let err = in_pool(threads, || simulate_batch(&sim, &theta, &opts(0))).unwrap_err();
        match &err {
            SimulatorError::Panicked {
                index,
                theta,
                message,
            } => {
                assert_eq!(*index, 96);
                assert_eq!(theta, &vec![1.0]);
                assert!(message.contains("θ too large: 1"), "{message}");
            }
            other => panic!("unexpected error {other:?}"),
        }
    }
}

#[test]
fn simulate_for_sbi_checks_the_proposal() {
    let prior3 = BoxUniform::uniform(3, 0.0, 1.0).unwrap();
    let err = simulate_for_sbi(&TwoMoons, &prior3, 10, &opts(0)).unwrap_err();
    assert!(matches!(
        err,
        SimulatorError::DimensionMismatch {
            expected: 2,
            found: 3,
            ..
        }
    ));
    struct Failing;
    impl Proposal for Failing {
        fn theta_dim(&self) -> usize {
            2
        }
        fn propose(
            &self,
            _n: usize,
            _rng: &mut dyn RngCore,
        ) -> Result<DMatrix<f64>, DistributionError> {
            Err(DistributionError::sampling("budget spent"))
        }
    }
    let err = simulate_for_sbi(&TwoMoons, &Failing, 10, &opts(0)).unwrap_err();
    assert!(err.to_string().contains("budget spent"), "{err}");
    struct WrongShape;
    impl Proposal for WrongShape {
        fn theta_dim(&self) -> usize {
            2
        }
        fn propose(
            &self,
            n: usize,
            _rng: &mut dyn RngCore,
        ) -> Result<DMatrix<f64>, DistributionError> {
            Ok(DMatrix::zeros(2, n + 1))
        }
    }
    assert!(simulate_for_sbi(&TwoMoons, &WrongShape, 10, &opts(0)).is_err());
}

#[derive(Debug)]
struct OutsideSupport;

impl Prior for OutsideSupport {
    fn dim(&self) -> usize {
        2
    }
    fn sample(&self, rng: &mut dyn RngCore) -> DVector<f64> {
        DVector::from_element(2, 2.0 + rng.random::<f64>())
    }
    fn log_prob(&self, _theta: &[f64]) -> Result<f64, DistributionError> {
        Ok(0.0)
    }
    fn support(&self) -> Vec<Support> {
        vec![
            Support::Interval {
                low: 0.0,
                high: 1.0
            };
            2
        ]
    }
}

#[test]
fn check_sbi_inputs_reports_clear_errors() {
    let prior = BoxUniform::uniform(2, -1.0, 1.0).unwrap();
    check_sbi_inputs(&TwoMoons, &prior).unwrap();

    let prior3 = BoxUniform::uniform(3, -1.0, 1.0).unwrap();
    let msg = check_sbi_inputs(&TwoMoons, &prior3)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("expected 2, found 3"), "{msg}");

    let msg = check_sbi_inputs(&TwoMoons, &OutsideSupport)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("outside the prior's support"), "{msg}");

    let wrong_len = FnSimulator::new(2, 2, |_: &[f64], _: &mut dyn RngCore| vec![1.0]);
    let msg = check_sbi_inputs(&wrong_len, &prior)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("returned 1 values") && msg.contains("x_dim = 2"),
        "{msg}"
    );

    let panics = FnSimulator::new(2, 2, |_: &[f64], _: &mut dyn RngCore| -> Vec<f64> {
        panic!("not implemented for this θ")
    });
    let msg = check_sbi_inputs(&panics, &prior).unwrap_err().to_string();
    assert!(
        msg.contains("panicked: not implemented for this θ"),
        "{msg}"
    );

    let no_output = FnSimulator::new(2, 0, |_: &[f64], _: &mut dyn RngCore| vec![]);
    assert!(matches!(
        check_sbi_inputs(&no_output, &prior),
        Err(SimulatorError::InvalidArgument(_))
    ));
    assert!(simulate_batch(&no_output, &DMatrix::zeros(2, 3), &opts(0)).is_err());
}

/// What a sink was given in one call: the first index, the values, the failed rows.
type SinkCall = (usize, Vec<f64>, Vec<(usize, String)>);

/// A sink that records what it was given, and fails from simulation `fail_from` on.
struct Recorder {
    x_dim: usize,
    fail_from: usize,
    seen: std::sync::Mutex<Vec<SinkCall>>,
}

impl simfer_simulators::SimulationSink for Recorder {
    fn done(&self, first: usize, x: &[f64], failed: &[(usize, String)]) -> Result<(), String> {
        if first + x.len() / self.x_dim > self.fail_from {
            return Err("the disk is full".into());
        }
        self.seen
            .lock()
            .map_err(|e| e.to_string())?
            .push((first, x.to_vec(), failed.to_vec()));
        Ok(())
    }
}

/// The simulations a sink saw, put back in order (each index exactly once).
fn reassemble(sink: &Recorder, n: usize) -> DMatrix<f64> {
    let mut x = DMatrix::from_element(sink.x_dim, n, f64::NAN);
    let mut count = vec![0; n];
    for (first, values, _) in sink.seen.lock().unwrap().iter() {
        for (k, col) in values.chunks(sink.x_dim).enumerate() {
            x.column_mut(first + k).copy_from_slice(col);
            count[first + k] += 1;
        }
    }
    assert!(
        count.iter().all(|c| *c == 1),
        "every simulation once: {count:?}"
    );
    x
}

#[test]
fn a_sink_sees_every_simulation_once_as_it_returns_and_its_failure_stops_the_batch() {
    use simfer_simulators::{BatchPlan, simulate_batch_with};
    let prior = BoxUniform::uniform(2, -1.0, 1.0).unwrap();
    let theta = prior.sample_batch(500, &mut rng_from_seed(3));
    let plain = simulate_batch(&TwoMoons, &theta, &opts(4)).unwrap();
    let plans = [
        None,
        Some(BatchPlan {
            batch_size: 7,
            concurrency: 2,
        }),
    ];
    for plan in plans {
        let sink = Recorder {
            x_dim: 2,
            fail_from: usize::MAX,
            seen: Default::default(),
        };
        let sims = match plan {
            None => in_pool(2, || {
                simulate_batch_with(&TwoMoons, &theta, &opts(4), Some(&sink))
            }),
            Some(plan) => {
                simulate_batch_with(&Batched(TwoMoons, plan), &theta, &opts(4), Some(&sink))
            }
        }
        .unwrap();
        // The same result as without a sink, and the sink saw exactly that.
        assert_eq!(bits(&sims.x), bits(&plain.x), "{plan:?}");
        assert_eq!(bits(&reassemble(&sink, 500)), bits(&plain.x), "{plan:?}");
        // One call per simulation without a plan, one per chunk with one.
        let calls = sink.seen.lock().unwrap().len();
        assert_eq!(
            calls,
            if plan.is_some() {
                500usize.div_ceil(7)
            } else {
                500
            }
        );

        // A sink that fails stops the batch with an error that says why.
        let failing = Recorder {
            x_dim: 2,
            fail_from: 100,
            seen: Default::default(),
        };
        let err = match plan {
            None => simulate_batch_with(&TwoMoons, &theta, &opts(4), Some(&failing)),
            Some(plan) => {
                simulate_batch_with(&Batched(TwoMoons, plan), &theta, &opts(4), Some(&failing))
            }
        }
        .unwrap_err();
        assert!(
            matches!(err, SimulatorError::Sink { .. }) && err.to_string().contains("disk is full"),
            "{err}"
        );
    }
}
