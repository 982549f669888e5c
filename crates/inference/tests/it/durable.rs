//! Durable runs: a run continued from its log after a failure at any point ends with the
//! same posterior, bit for bit, as an uninterrupted run, for every method; a log that does
//! not fit the settings is an error.

use std::sync::atomic::{AtomicUsize, Ordering};

use nalgebra::DMatrix;
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};
use simfer_distributions::{BoxUniform, rng_from_seed};
use simfer_inference::{
    Inference, InferenceError, MemoryLog, RunLog, SavedProposal, SavedTraining,
};
use simfer_simulators::FnSimulator;
use simfer_snpe::TrainingConfig;

/// A log that fails (as a killed process would stop) at its `fail_at`-th save, counting
/// every save of any kind, and otherwise passes everything to `inner`.
struct Failing<'a> {
    inner: &'a MemoryLog,
    saves: AtomicUsize,
    fail_at: usize,
}

impl Failing<'_> {
    fn save(&self) -> Result<(), String> {
        if self.saves.fetch_add(1, Ordering::SeqCst) + 1 >= self.fail_at {
            Err("killed".into())
        } else {
            Ok(())
        }
    }
}

fn killed(e: String) -> InferenceError {
    InferenceError::Format(e)
}

impl RunLog for Failing<'_> {
    fn proposal(&self, round: usize) -> Result<Option<SavedProposal>, InferenceError> {
        self.inner.proposal(round)
    }
    fn save_proposal(&self, round: usize, p: &SavedProposal) -> Result<(), InferenceError> {
        self.save().map_err(killed)?;
        self.inner.save_proposal(round, p)
    }
    fn simulations(&self, round: usize) -> Result<Vec<(usize, Vec<f64>)>, InferenceError> {
        self.inner.simulations(round)
    }
    fn save_simulations(
        &self,
        round: usize,
        first: usize,
        x: &[f64],
        x_dim: usize,
        failed: &[(usize, String)],
    ) -> Result<(), String> {
        self.save()?;
        self.inner.save_simulations(round, first, x, x_dim, failed)
    }
    fn training(&self, round: usize) -> Result<Option<SavedTraining>, InferenceError> {
        self.inner.training(round)
    }
    fn save_training(&self, round: usize, t: &SavedTraining) -> Result<(), InferenceError> {
        self.save().map_err(killed)?;
        self.inner.save_training(round, t)
    }
}

fn inference(method: &str) -> Inference {
    Inference::new(BoxUniform::uniform(2, -2.0, 2.0).unwrap())
        .method(method)
        .rounds(2)
        .simulations_per_round(150)
        .observation(&[0.5, -0.5])
        .training(TrainingConfig {
            max_num_epochs: Some(15),
            ..TrainingConfig::default()
        })
        // Short chains: the test is about the log, not the posterior's quality.
        .mcmc(simfer_mcmc::SliceSettings {
            chains: 4,
            warmup: 20,
            tuning: 10,
            convergence: None,
            ..simfer_mcmc::SliceSettings::default()
        })
        .truncation(simfer_inference::TruncationOptions {
            num_samples_to_estimate_support: 20_000,
            ..simfer_inference::TruncationOptions::default()
        })
        .seed(21)
}

fn simulator() -> impl simfer_simulators::Simulator {
    FnSimulator::new(2, 2, |t: &[f64], rng: &mut dyn RngCore| {
        t.iter()
            .map(|v| v + 0.3 * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng))
            .collect::<Vec<f64>>()
    })
}

fn final_samples(run: &simfer_inference::InferenceRun) -> Vec<u64> {
    let s: DMatrix<f64> = run
        .posterior()
        .sample(50, None, &mut rng_from_seed(5))
        .unwrap();
    s.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn a_run_continued_after_a_failure_at_any_save_ends_as_an_uninterrupted_one() {
    let sim = simulator();
    for method in ["snpe", "tsnpe", "snle", "snre"] {
        let plain = inference(method).run(&sim).unwrap();
        let expected = final_samples(&plain);

        // The log changes nothing.
        let log = MemoryLog::new();
        let logged = inference(method).run_logged(&sim, &log).unwrap();
        assert_eq!(final_samples(&logged), expected, "{method}: logged");
        assert_eq!(log.simulations_kept(), 300);
        assert_eq!(log.trainings_kept(), 2);
        // A complete log: the run is restored, not redone.
        let restored = inference(method).run_logged(&sim, &log).unwrap();
        assert_eq!(final_samples(&restored), expected, "{method}: restored");
        // Restored rounds did not simulate or train again: only their times differ.
        let strip = |r: &simfer_inference::RoundReport| {
            (
                r.round,
                r.proposal.clone(),
                r.simulations,
                r.invalid.clone(),
                r.history.clone(),
            )
        };
        assert!(
            restored
                .rounds
                .iter()
                .map(strip)
                .eq(logged.rounds.iter().map(strip))
        );

        // Fail at the 1st save (round 0's proposal), in round 0's simulations, at its
        // training, at round 1's proposal, in its simulations and at its training; then
        // again, several times in one run. (Without a batch plan each simulation is one
        // save: 1 + 150 + 1 saves per round.)
        let points: &[usize] = if method == "snpe" {
            &[1, 2, 80, 152, 153, 154, 250, 304]
        } else {
            &[80, 153, 250]
        };
        for &fail_at in points {
            let memory = MemoryLog::new();
            let mut fail_at = fail_at;
            let mut attempts = 0;
            let run = loop {
                attempts += 1;
                assert!(attempts < 10, "{method}: no progress");
                let failing = Failing {
                    inner: &memory,
                    saves: AtomicUsize::new(0),
                    fail_at,
                };
                match inference(method).run_logged(&sim, &failing) {
                    Ok(run) => break run,
                    Err(e) => {
                        assert!(e.to_string().contains("killed"), "{method}: {e}");
                        // Fail again later in the continued run.
                        fail_at += 97;
                    }
                }
            };
            assert!(attempts > 1, "{method}: the run never failed at {fail_at}");
            assert_eq!(
                final_samples(&run),
                expected,
                "{method}: failed at {fail_at}"
            );
        }
    }
}

#[test]
fn a_log_that_does_not_fit_the_settings_is_an_error() {
    let sim = simulator();
    let log = MemoryLog::new();
    inference("snpe").run_logged(&sim, &log).unwrap();
    let err = inference("snpe")
        .simulations_per_round(200)
        .run_logged(&sim, &log)
        .unwrap_err();
    assert!(
        matches!(err, InferenceError::Format(_)) && err.to_string().contains("150 θ's"),
        "{err}"
    );
    // The model of another estimator kind.
    let err = inference("snpe")
        .estimator("nsf")
        .run_logged(&sim, &log)
        .unwrap_err();
    assert!(err.to_string().contains("`maf`"), "{err}");
}

/// Found by the fuzz target `records` (fuzz/corpus/records/crash-proposal-size-overflow):
/// a saved proposal whose matrix size overflows when multiplied was a panic (with overflow
/// checks) or, without, a matrix of more columns than values. It is an error, and a proposal
/// still reads back as it was written.
#[test]
fn a_saved_proposal_whose_size_overflows_is_an_error() {
    let proposal = SavedProposal {
        theta: DMatrix::from_column_slice(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        source: simfer_inference::ProposalSource::Prior,
    };
    let json = serde_json::to_string(&proposal).unwrap();
    assert_eq!(
        serde_json::from_str::<SavedProposal>(&json).unwrap(),
        proposal
    );
    let big = 1u64 << 32;
    for (rows, cols, values) in [
        (big, big, "[]"),
        (2, 2, "[1.0]"),
        (u64::MAX, 2, "[1.0, 2.0]"),
    ] {
        let json = format!(r#"{{"theta": [{values}, {rows}, {cols}], "source": "Prior"}}"#);
        let e = serde_json::from_str::<SavedProposal>(&json).unwrap_err();
        assert!(e.to_string().contains(&format!("{rows} × {cols}")), "{e}");
    }
}
