//! The inference object behind `NPE`/`SNPE`, `TSNPE`, `NLE` and `NRE`: the reference's
//! steps (`append_simulations`, `train`, `build_posterior`) on simfer's sequential runner,
//! which records for every round where its θ's came from, plus simfer's own
//! `propose`/`simulate_round`.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nalgebra::DMatrix;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use simfer_distributions::Prior;
use simfer_flows::{ClassifierConfig, EstimatorKind};
use simfer_inference::{
    InferenceError, InvalidCounts, MethodKind, Nle, NleConfig, Npe, NpeProposal, Nre, NreConfig,
    Proposed, RunnerSettings, Sequential, SnpeConfig, TruncationOptions,
};
use simfer_snpe::{NreVariant, StopReason, TrainingConfig, TrainingHistory};

use crate::arrays;
use crate::error::{PyError, Result};
use crate::guard::{detached, guarded};
use crate::method::Adjustable;
use crate::posterior::{Inner, PyPosterior};
use crate::priors::{PyPrior, check_device, extract_prior};
use crate::seed::seed_or_next;
use crate::simulate::{PartialSimulations, keep_in_exception, simulate_python_keeping};
use crate::simulator::wrap;

/// The runner of each family of methods.
enum Runner {
    Npe(Sequential<Adjustable<Npe>>),
    Nle(Sequential<Adjustable<Nle>>),
    Nre(Sequential<Adjustable<Nre>>),
}

/// Runs `$body` with `$s` bound to the runner, whatever its method.
macro_rules! each {
    ($runner:expr, $s:ident => $body:expr) => {
        match $runner {
            Runner::Npe($s) => $body,
            Runner::Nle($s) => $body,
            Runner::Nre($s) => $body,
        }
    };
}

impl Runner {
    fn latest_posterior(&self) -> Result<Inner> {
        Ok(match self {
            Runner::Npe(s) => Inner::Direct(s.build_posterior()?),
            Runner::Nle(s) => Inner::Likelihood(s.build_posterior()?),
            Runner::Nre(s) => Inner::Ratio(s.build_posterior()?),
        })
    }

    fn x_dim(&self) -> Option<usize> {
        each!(self, s => s.rounds().first().map(|r| r.x.nrows()))
    }

    fn has_rounds(&self) -> bool {
        each!(self, s => !s.rounds().is_empty())
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What `train` returns: the training's history, and the posterior of the model as it
/// was right after it, which `build_posterior(density_estimator)` gives back.
#[pyclass(name = "DensityEstimator", module = "simfer", frozen)]
pub struct PyDensityEstimator {
    owner: u64,
    posterior: Inner,
    history: TrainingHistory,
}

#[pymethods]
impl PyDensityEstimator {
    /// Epochs trained.
    #[getter]
    fn epochs_trained(&self) -> usize {
        self.history.epochs_trained
    }
    /// The epoch whose weights were kept.
    #[getter]
    fn best_epoch(&self) -> usize {
        self.history.best_epoch
    }
    /// The validation loss of the kept weights.
    #[getter]
    fn best_validation_loss(&self) -> f64 {
        self.history.best_validation_loss
    }
    /// Mean training loss per epoch.
    #[getter]
    fn train_loss(&self) -> Vec<f64> {
        self.history.train_loss.clone()
    }
    /// Mean validation loss per epoch.
    #[getter]
    fn validation_loss(&self) -> Vec<f64> {
        self.history.validation_loss.clone()
    }
    /// Why training stopped: `"converged"` or `"max_epochs"`.
    #[getter]
    fn stop_reason(&self) -> &'static str {
        match self.history.stop_reason {
            StopReason::Converged => "converged",
            StopReason::MaxEpochs => "max_epochs",
        }
    }
    /// The round of the latest data trained on (0-based).
    #[getter]
    fn round(&self) -> usize {
        self.history.round
    }
    fn __repr__(&self) -> String {
        format!(
            "DensityEstimator(round={}, epochs_trained={}, best_validation_loss={:.4}, \
             stop_reason={})",
            self.history.round,
            self.history.epochs_trained,
            self.history.best_validation_loss,
            self.stop_reason()
        )
    }
}

/// The engine of simfer's inference classes (`simfer.NPE`, `simfer.NLE`, ...; use those).
#[pyclass(name = "Inference", module = "simfer")]
pub struct PyInference {
    id: u64,
    kind: MethodKind,
    prior: Arc<dyn Prior>,
    runner: Runner,
    proposed: Option<Proposed>,
    progress: bool,
}

fn nre_variant(loss: &str) -> Result<NreVariant> {
    match loss.to_ascii_lowercase().as_str() {
        "a" | "nre_a" => Ok(NreVariant::A),
        "b" | "nre_b" => Ok(NreVariant::default()),
        "c" | "nre_c" => Ok(NreVariant::c()),
        "bnre" => Ok(NreVariant::balanced()),
        other => Err(PyError::Value(format!(
            "nre_loss: expected one of a, b, c, bnre, found {other:?}"
        ))),
    }
}

impl PyInference {
    fn check_proposal_prior(&self, prior: &Arc<dyn Prior>) -> Result<()> {
        if Arc::ptr_eq(prior, &self.prior) || prior.spec() == self.prior.spec() {
            Ok(())
        } else {
            Err(PyError::Value(format!(
                "proposal: a prior other than the inference's ({:?} instead of {:?}); pass the \
                 inference's prior, or a posterior of this inference",
                prior, self.prior
            )))
        }
    }

    fn append(
        &mut self,
        py: Python<'_>,
        theta: DMatrix<f64>,
        x: DMatrix<f64>,
        proposal: Option<&Bound<'_, PyAny>>,
    ) -> Result<()> {
        let pending = self.proposed.take();
        if let (None, Some(p)) = (proposal, &pending)
            && p.theta() == &theta
        {
            let Some(p) = pending else {
                unreachable!("matched above")
            };
            let runner = &mut self.runner;
            return detached(py, move || {
                each!(runner, s => {
                    s.append_proposed(p, x).map(|_| ()).map_err(PyError::from)
                })
            });
        }
        self.proposed = pending;
        match proposal {
            None => {}
            Some(p) if p.is_none() => {}
            Some(p) => {
                if let Ok(prior) = p.cast::<PyPrior>() {
                    self.check_proposal_prior(&prior.get().inner)?;
                } else if let Ok(posterior) = p.cast::<PyPosterior>() {
                    if self.kind == MethodKind::Tsnpe {
                        return Err(PyError::Value(
                            "proposal: TSNPE's later rounds are drawn from the truncated prior, \
                             not from a posterior: use `simulate_round(simulator, n)`, or \
                             `propose(n)` and append its θ's"
                                .into(),
                        ));
                    }
                    let boxed = posterior.borrow().inner.as_dyn().clone_boxed();
                    let runner = &mut self.runner;
                    return detached(py, move || {
                        each!(runner, s => {
                            s.append_posterior_simulations(theta, x, boxed)
                                .map(|_| ())
                                .map_err(PyError::from)
                        })
                    });
                } else {
                    return Err(PyError::Type(format!(
                        "proposal: expected None, the prior or a posterior of this inference, \
                         found {}",
                        p.get_type()
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_else(|_| "an object".into())
                    )));
                }
            }
        }
        each!(&mut self.runner, s => s.append_prior_simulations(theta, x).map(|_| ()))?;
        Ok(())
    }

    fn training_config(
        training_batch_size: usize,
        learning_rate: f64,
        validation_fraction: f64,
        stop_after_epochs: usize,
        max_num_epochs: usize,
        clip_max_norm: Option<f64>,
    ) -> Result<TrainingConfig> {
        let config = TrainingConfig {
            batch_size: training_batch_size,
            learning_rate,
            validation_fraction,
            stop_after_epochs,
            max_num_epochs: (max_num_epochs < i32::MAX as usize).then_some(max_num_epochs),
            clip_max_norm,
        };
        config.check().map_err(InferenceError::from)?;
        Ok(config)
    }

    fn print(py: Python<'_>, message: String) -> Result<()> {
        py.import("builtins")?.getattr("print")?.call1((message,))?;
        Ok(())
    }
}

#[pymethods]
impl PyInference {
    /// `method`: npe, snpe, tsnpe, nle, snle, nre, snre; `density_estimator`: maf, nsf,
    /// mdn (or what simfer-flows lists); NRE trains a `"resnet"` classifier with the loss
    /// `nre_loss` (a, b, c or bnre); TSNPE truncates at `quantile`, estimated from
    /// `num_samples_to_estimate_support` posterior draws.
    #[new]
    #[pyo3(signature = (
        method, prior, density_estimator = None, classifier = None, nre_loss = None,
        quantile = None, num_samples_to_estimate_support = None, seed = None,
        show_progress_bars = true, device = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        method: &str,
        prior: &Bound<'_, PyAny>,
        density_estimator: Option<&str>,
        classifier: Option<&str>,
        nre_loss: Option<&str>,
        quantile: Option<f64>,
        num_samples_to_estimate_support: Option<usize>,
        seed: Option<u64>,
        show_progress_bars: bool,
        device: Option<&str>,
    ) -> PyResult<Self> {
        Ok(guarded(|| {
            check_device(device)?;
            let prior = extract_prior(prior)?;
            let kind = MethodKind::from_str(method)?;
            let seed = seed_or_next(seed);
            let estimator = || -> Result<_> {
                let name = density_estimator.unwrap_or("maf");
                let kind = EstimatorKind::from_str(name)
                    .map_err(|e| PyError::Value(format!("density_estimator: {e}")))?;
                Ok(kind.default_config())
            };
            let settings = RunnerSettings {
                progress: show_progress_bars,
                ..RunnerSettings::default()
            };
            let runner = match kind {
                MethodKind::Npe | MethodKind::Snpe | MethodKind::Tsnpe => {
                    let proposal = if kind == MethodKind::Tsnpe {
                        NpeProposal::Truncated(TruncationOptions {
                            quantile: quantile.unwrap_or(1e-4),
                            num_samples_to_estimate_support: num_samples_to_estimate_support
                                .unwrap_or(1_000_000),
                            ..TruncationOptions::default()
                        })
                    } else {
                        NpeProposal::Posterior
                    };
                    let config = SnpeConfig {
                        estimator: estimator()?,
                        proposal,
                        progress: show_progress_bars,
                        ..SnpeConfig::default()
                    };
                    let method = Adjustable::new(Npe::new(config)?);
                    Runner::Npe(Sequential::with_method(
                        Arc::clone(&prior),
                        method,
                        settings,
                        seed,
                    ))
                }
                MethodKind::Nle | MethodKind::Snle => {
                    let config = NleConfig {
                        estimator: estimator()?,
                        progress: show_progress_bars,
                        ..NleConfig::default()
                    };
                    let method = Adjustable::new(Nle::new(config)?);
                    Runner::Nle(Sequential::with_method(
                        Arc::clone(&prior),
                        method,
                        settings,
                        seed,
                    ))
                }
                MethodKind::Nre | MethodKind::Snre => {
                    if let Some(c) = classifier.filter(|c| *c != "resnet") {
                        return Err(PyError::NotImplemented(format!(
                            "classifier: simfer's ratio classifier is the reference's \"resnet\", \
                             found {c:?}"
                        )));
                    }
                    let config = NreConfig {
                        classifier: ClassifierConfig::default(),
                        variant: nre_variant(nre_loss.unwrap_or("b"))?,
                        progress: show_progress_bars,
                        ..NreConfig::default()
                    };
                    let method = Adjustable::new(Nre::new(config)?);
                    Runner::Nre(Sequential::with_method(
                        Arc::clone(&prior),
                        method,
                        settings,
                        seed,
                    ))
                }
            };
            Ok(PyInference {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                kind,
                prior,
                runner,
                proposed: None,
                progress: show_progress_bars,
            })
        })?)
    }

    /// The method's name.
    #[getter]
    fn method(&self) -> &'static str {
        self.kind.name()
    }

    /// The prior.
    #[getter]
    fn prior(&self) -> PyPrior {
        PyPrior::new(Arc::clone(&self.prior))
    }

    /// Appends simulations: `theta` `(n, theta_dim)` and `x` `(n, x_dim)`, drawn from
    /// `proposal` — the prior (or `None`), or a posterior of this inference (the latest,
    /// at its default x). θ's from `propose` need no proposal. `exclude_invalid_x`:
    /// `None` excludes NaN/±∞ simulations in the first round and refuses them later
    /// (SNPE-C's atomic loss), `True` drops them (with a warning), `False` refuses them.
    #[pyo3(signature = (theta, x, proposal = None, exclude_invalid_x = None, data_device = None))]
    fn append_simulations<'py>(
        mut slf: PyRefMut<'py, Self>,
        py: Python<'py>,
        theta: &Bound<'py, PyAny>,
        x: &Bound<'py, PyAny>,
        proposal: Option<&Bound<'py, PyAny>>,
        exclude_invalid_x: Option<bool>,
        data_device: Option<&str>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        guarded(|| {
            check_device(data_device)?;
            let theta = arrays::batch(theta, "theta", Some(slf.prior.dim()), false, true)?;
            let x_dim = slf.runner.x_dim();
            let mut x = arrays::batch(x, "x", x_dim, false, false)?;
            let mut theta = theta;
            if theta.ncols() != x.ncols() {
                return Err(PyError::Value(format!(
                    "theta has {} rows but x has {}: expected one simulation per θ",
                    theta.ncols(),
                    x.ncols()
                )));
            }
            let invalid = InvalidCounts::scan(&x);
            match exclude_invalid_x {
                Some(false) if invalid.total() > 0 => {
                    return Err(PyError::Value(format!(
                        "x has {} simulations with NaN and {} with ±∞ (of {}), and \
                         exclude_invalid_x=False",
                        invalid.nan.len(),
                        invalid.inf.len(),
                        x.ncols()
                    )));
                }
                Some(true) if invalid.total() > 0 => {
                    let mut bad = [invalid.nan.as_slice(), invalid.inf.as_slice()].concat();
                    bad.sort_unstable();
                    py.import("warnings")?.call_method1(
                        "warn",
                        (format!(
                            "excluding {} of {} simulations with NaN or ±∞",
                            bad.len(),
                            x.ncols()
                        ),),
                    )?;
                    theta = theta.remove_columns_at(&bad);
                    x = x.remove_columns_at(&bad);
                }
                _ => {}
            }
            slf.append(py, theta, x, proposal)
        })?;
        Ok(slf)
    }

    /// Trains on every round so far with the reference's training arguments and returns
    /// a `DensityEstimator`. The network continues from its current weights (a new one
    /// with `retrain_from_scratch`). Ctrl-C stops training between minibatches (the best
    /// weights so far are kept) and raises `KeyboardInterrupt`.
    #[pyo3(signature = (
        training_batch_size = 200, learning_rate = 5e-4, validation_fraction = 0.1,
        stop_after_epochs = 20, max_num_epochs = 2147483647, clip_max_norm = Some(5.0),
        num_atoms = 10, use_combined_loss = false, discard_prior_samples = false,
        retrain_from_scratch = false, force_first_round_loss = false,
        show_train_summary = false, resume_training = false, calibration_kernel = None,
        dataloader_kwargs = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn train(
        &mut self,
        py: Python<'_>,
        training_batch_size: usize,
        learning_rate: f64,
        validation_fraction: f64,
        stop_after_epochs: usize,
        max_num_epochs: usize,
        clip_max_norm: Option<f64>,
        num_atoms: usize,
        use_combined_loss: bool,
        discard_prior_samples: bool,
        retrain_from_scratch: bool,
        force_first_round_loss: bool,
        show_train_summary: bool,
        resume_training: bool,
        calibration_kernel: Option<&Bound<'_, PyAny>>,
        dataloader_kwargs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyDensityEstimator> {
        Ok(guarded(|| {
            let _ = resume_training; // the network always continues from its weights
            if calibration_kernel.is_some_and(|k| !k.is_none()) {
                return Err(PyError::NotImplemented(
                    "calibration_kernel: not supported by simfer".into(),
                ));
            }
            if dataloader_kwargs.is_some_and(|k| !k.is_none()) {
                return Err(PyError::NotImplemented(
                    "dataloader_kwargs: simfer has no data loader to configure".into(),
                ));
            }
            let training = Self::training_config(
                training_batch_size,
                learning_rate,
                validation_fraction,
                stop_after_epochs,
                max_num_epochs,
                clip_max_norm,
            )?;
            let unsupported = |name: &str| {
                PyError::NotImplemented(format!("{name}: not an option of {} in simfer", self.kind))
            };
            match &self.runner {
                Runner::Npe(s) => {
                    let later_rounds = s.rounds().iter().any(|r| !r.proposal.is_prior());
                    if force_first_round_loss && later_rounds && self.kind != MethodKind::Tsnpe {
                        return Err(PyError::NotImplemented(
                            "force_first_round_loss: SNPE-C trains later rounds with the atomic \
                             loss; for maximum likelihood on every round use TSNPE"
                                .into(),
                        ));
                    }
                    let mut config = s.method().next_settings();
                    config.training = training;
                    config.num_atoms = num_atoms;
                    config.use_combined_loss = use_combined_loss;
                    config.discard_prior_samples = discard_prior_samples;
                    config.retrain_from_scratch = retrain_from_scratch;
                    config.check()?;
                    s.method().request(config);
                }
                Runner::Nle(s) => {
                    if discard_prior_samples {
                        return Err(unsupported("discard_prior_samples"));
                    }
                    if retrain_from_scratch {
                        return Err(unsupported("retrain_from_scratch"));
                    }
                    let mut config = s.method().next_settings();
                    config.training = training;
                    s.method().request(config);
                }
                Runner::Nre(s) => {
                    if discard_prior_samples {
                        return Err(unsupported("discard_prior_samples"));
                    }
                    if retrain_from_scratch {
                        return Err(unsupported("retrain_from_scratch"));
                    }
                    let mut config = s.method().next_settings();
                    config.training = training;
                    if let NreVariant::B { .. } = config.variant {
                        config.variant = NreVariant::B { num_atoms };
                    }
                    config.variant.check().map_err(InferenceError::from)?;
                    s.method().request(config);
                }
            }
            let runner = &mut self.runner;
            let history = detached(
                py,
                move || each!(runner, s => s.train().cloned().map_err(PyError::from)),
            )?;
            let posterior = self.runner.latest_posterior()?;
            if self.progress || show_train_summary {
                let line = match history.stop_reason {
                    StopReason::Converged => format!(
                        " Neural network successfully converged after {} epochs.",
                        history.epochs_trained
                    ),
                    StopReason::MaxEpochs => format!(
                        " Training stopped at the epoch cap, after {} epochs.",
                        history.epochs_trained
                    ),
                };
                Self::print(py, line)?;
            }
            if show_train_summary {
                Self::print(
                    py,
                    format!(
                        "        -------------------------\n        ||||| ROUND {} STATS \
                         |||||:\n        -------------------------\n        Epochs trained: \
                         {}\n        Best validation performance: {:.4}\n        Best epoch: {}",
                        history.round + 1,
                        history.epochs_trained,
                        -history.best_validation_loss,
                        history.best_epoch
                    ),
                )?;
            }
            Ok(PyDensityEstimator {
                owner: self.id,
                posterior,
                history,
            })
        })?)
    }

    /// The posterior of the latest training, or of `density_estimator` (what a `train`
    /// call of this inference returned), with the inference's default x if set.
    /// `sample_with` must be the method's own kind ("direct" for NPE, "mcmc" for NLE and
    /// NRE); `mcmc_parameters` may set `num_chains`, `warmup_steps` and `thin`.
    #[pyo3(signature = (
        density_estimator = None, prior = None, sample_with = None, mcmc_method = None,
        mcmc_parameters = None
    ))]
    fn build_posterior(
        &self,
        density_estimator: Option<&Bound<'_, PyAny>>,
        prior: Option<&Bound<'_, PyAny>>,
        sample_with: Option<&str>,
        mcmc_method: Option<&str>,
        mcmc_parameters: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyPosterior> {
        Ok(guarded(|| {
            if let Some(p) = prior.filter(|p| !p.is_none()) {
                self.check_proposal_prior(&extract_prior(p)?).map_err(|_| {
                    PyError::NotImplemented(
                        "prior: a posterior is built with the inference's own prior".into(),
                    )
                })?;
            }
            let own = match self.runner {
                Runner::Npe(_) => "direct",
                _ => "mcmc",
            };
            if let Some(kind) = sample_with.filter(|k| *k != own) {
                return Err(PyError::NotImplemented(format!(
                    "sample_with={kind:?}: {} posteriors sample with {own:?} in simfer",
                    self.kind
                )));
            }
            if let Some(m) = mcmc_method.filter(|m| *m != "slice_np_vectorized") {
                return Err(PyError::NotImplemented(format!(
                    "mcmc_method={m:?}: simfer samples with \"slice_np_vectorized\""
                )));
            }
            let inner = match density_estimator.filter(|d| !d.is_none()) {
                None => self.runner.latest_posterior()?,
                Some(d) => {
                    let d = d.cast::<PyDensityEstimator>().map_err(|_| {
                        PyError::Type("density_estimator: expected what `train` returned".into())
                    })?;
                    let d = d.get();
                    if d.owner != self.id {
                        return Err(PyError::Value(
                            "density_estimator: it was trained by another inference object".into(),
                        ));
                    }
                    d.posterior.clone()
                }
            };
            let mut posterior = PyPosterior::new(inner);
            if let Some(params) = mcmc_parameters {
                posterior.configure_mcmc(params)?;
            }
            Ok(posterior)
        })?)
    }

    /// Sets the observation x_o that `propose` and `simulate_round` focus later rounds on.
    fn set_default_x(&mut self, x: &Bound<'_, PyAny>) -> PyResult<()> {
        Ok(guarded(|| {
            let x = arrays::vector(x, "x", self.runner.x_dim())?;
            each!(&mut self.runner, s => s.set_default_x(&x).map(|_| ()))?;
            Ok(())
        })?)
    }

    /// Draws `num_simulations` θ's from the current proposal — the prior before any
    /// training, then the method's own (the posterior at the default x, TSNPE's truncated
    /// prior) — as an `(n, theta_dim)` array; append their simulations with
    /// `append_simulations(theta, x)`.
    fn propose<'py>(
        &mut self,
        py: Python<'py>,
        num_simulations: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        Ok(guarded(|| {
            let runner = &mut self.runner;
            let proposed = detached(
                py,
                move || each!(runner, s => s.propose(num_simulations).map_err(PyError::from)),
            )?;
            let theta = arrays::to_numpy(py, proposed.theta())?.into_any();
            self.proposed = Some(proposed);
            Ok(theta)
        })?)
    }

    /// One round: `propose(num_simulations)`, simulate with `simulator` in batches of
    /// `simulation_batch_size`, append. Returns `(theta, x)`.
    #[pyo3(signature = (simulator, num_simulations, simulation_batch_size = 1))]
    fn simulate_round<'py>(
        &mut self,
        py: Python<'py>,
        simulator: &Bound<'py, PyAny>,
        num_simulations: usize,
        simulation_batch_size: usize,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (theta, x) = guarded(|| {
            if simulation_batch_size == 0 {
                return Err(PyError::Value(
                    "simulation_batch_size: expected at least 1, found 0".into(),
                ));
            }
            let sim = wrap(simulator, self.prior.dim())?;
            let runner = &mut self.runner;
            let proposed = detached(
                py,
                move || each!(runner, s => s.propose(num_simulations).map_err(PyError::from)),
            )?;
            let theta = proposed.theta().clone();
            let x = simulate_python_keeping(
                py,
                &sim.inner,
                &theta,
                simulation_batch_size,
                self.progress,
            )
            .map_err(|failure| {
                PyError::Python(keep_in_exception(py, *failure, &theta, num_simulations))
            })?;
            let runner = &mut self.runner;
            let kept = x.clone();
            detached(
                py,
                move || each!(runner, s => s.append_proposed(proposed, kept).map(|_| ()).map_err(PyError::from)),
            )
            .map_err(|error| {
                // Simulated but not appended (e.g. invalid simulations in a later round):
                // hand them back with the error.
                let failure = PartialSimulations {
                    error,
                    done: x.clone(),
                };
                PyError::Python(keep_in_exception(py, failure, &theta, num_simulations))
            })?;
            Ok((theta, x))
        })?;
        let theta = arrays::to_numpy(py, &theta)?.into_any();
        let x = arrays::to_numpy(py, &x)?.into_any();
        PyTuple::new(py, [theta, x])
    }

    /// Every round so far: its number, where its θ's came from, simulations and invalid
    /// ones.
    fn rounds<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let mut out = Vec::new();
        each!(&self.runner, s => {
            for r in s.rounds() {
                let d = PyDict::new(py);
                d.set_item("round", r.round)?;
                d.set_item("proposal", r.proposal.to_string())?;
                d.set_item("simulations", r.simulated)?;
                d.set_item("invalid", r.invalid.total())?;
                out.push(d);
            }
        });
        Ok(out)
    }

    /// Whether any simulations were appended.
    fn has_simulations(&self) -> bool {
        self.runner.has_rounds()
    }
}
