//! One entry point for a whole run of any method: [`Inference`], a builder that states the
//! method and the estimator by name, runs every round and hands back each round's
//! posterior and what each round did.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use simfer_distributions::Prior;
use simfer_flows::{ClassifierConfig, EstimatorConfig, EstimatorKind, Precision};
use simfer_mcmc::SliceSettings;
use simfer_simulators::Simulator;
use simfer_snpe::{NreVariant, TrainingConfig, TrainingHistory};

use crate::durable::{RunLog, durable_round};
use crate::methods::nle::NleConfig;
use crate::methods::npe::{NpeProposal, SnpeConfig};
use crate::methods::nre::NreConfig;
use crate::sequential::{InvalidCounts, InvalidPolicy, Method, ProposalSource, Sequential};
use crate::truncated::TruncationOptions;
use crate::{DirectPosterior, InferenceError, Posterior, SamplingOptions};
use crate::{Snle, Snpe, Snre};

/// The inference methods, by name (`npe`, `snpe`, `tsnpe`, `nle`, `snle`, `nre`, `snre`).
///
/// The names without `s` are one round (amortized); the others are sequential, each
/// later round focused on the observation.
///
/// ```
/// use simfer_inference::MethodKind;
/// let m: MethodKind = "SNLE".parse()?;
/// assert_eq!(m, MethodKind::Snle);
/// assert!(m.is_sequential());
/// assert!("abc".parse::<MethodKind>().is_err());
/// # Ok::<(), simfer_inference::InferenceError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodKind {
    /// Neural posterior estimation, one round.
    Npe,
    /// Sequential NPE with the atomic loss (SNPE-C / APT).
    Snpe,
    /// Sequential NPE with truncated proposals.
    Tsnpe,
    /// Neural likelihood estimation, one round.
    Nle,
    /// Sequential NLE.
    Snle,
    /// Neural ratio estimation, one round.
    Nre,
    /// Sequential NRE.
    Snre,
}

impl MethodKind {
    /// Every method, in a fixed order.
    pub const ALL: [MethodKind; 7] = [
        MethodKind::Npe,
        MethodKind::Snpe,
        MethodKind::Tsnpe,
        MethodKind::Nle,
        MethodKind::Snle,
        MethodKind::Nre,
        MethodKind::Snre,
    ];

    /// The method's name.
    pub fn name(self) -> &'static str {
        match self {
            MethodKind::Npe => "npe",
            MethodKind::Snpe => "snpe",
            MethodKind::Tsnpe => "tsnpe",
            MethodKind::Nle => "nle",
            MethodKind::Snle => "snle",
            MethodKind::Nre => "nre",
            MethodKind::Snre => "snre",
        }
    }

    /// Whether later rounds focus on the observation (several rounds).
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            MethodKind::Snpe | MethodKind::Tsnpe | MethodKind::Snle | MethodKind::Snre
        )
    }

    /// Whether the method trains a density estimator (all but NRE, which trains a
    /// classifier).
    pub fn uses_estimator(self) -> bool {
        !matches!(self, MethodKind::Nre | MethodKind::Snre)
    }
}

impl std::fmt::Display for MethodKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MethodKind {
    type Err = InferenceError;
    fn from_str(s: &str) -> Result<Self, InferenceError> {
        let lower = s.trim().to_ascii_lowercase();
        MethodKind::ALL
            .iter()
            .copied()
            .find(|m| m.name() == lower)
            .ok_or_else(|| InferenceError::InvalidConfig {
                name: "method",
                message: format!(
                    "expected one of {}, found `{s}`",
                    MethodKind::ALL.map(|m| m.name()).join(", ")
                ),
            })
    }
}

/// What happened in one round of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundReport {
    /// The round (0-based).
    pub round: usize,
    /// Where its θ's came from.
    pub proposal: ProposalSource,
    /// Simulations run.
    pub simulations: usize,
    /// Invalid simulations (excluded).
    pub invalid: InvalidCounts,
    /// The training of this round.
    pub history: TrainingHistory,
    /// Seconds proposing and simulating.
    pub seconds_simulate: f64,
    /// Seconds training.
    pub seconds_train: f64,
}

/// The result of [`Inference::run`]: the posterior after each round and what each round
/// did.
#[derive(Debug, Clone)]
pub struct InferenceRun {
    /// The method run.
    pub method: MethodKind,
    /// The posterior after each round (the last one is the result), with x_o as its
    /// default x when one was given.
    pub posteriors: Vec<Box<dyn Posterior>>,
    /// One report per round.
    pub rounds: Vec<RoundReport>,
}

impl InferenceRun {
    /// The final posterior.
    pub fn posterior(&self) -> &dyn Posterior {
        self.posteriors
            .last()
            .map(|p| p.as_ref())
            .expect("a run has at least one round")
    }

    /// The final posterior as a [`DirectPosterior`] (NPE, SNPE, TSNPE), for what only it
    /// has: acceptance rates, save/load, batched sampling.
    pub fn direct_posterior(&self) -> Option<&DirectPosterior> {
        self.posterior().as_any().downcast_ref::<DirectPosterior>()
    }
}

/// A whole run, stated step by step: the prior, the method and estimator by name, the
/// rounds, the observation and a seed; [`run`](Self::run) with a simulator does every
/// round. Every setting has the reference library's default.
///
/// ```
/// use simfer_distributions::BoxUniform;
/// use simfer_inference::Inference;
/// use simfer_simulators::FnSimulator;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // x = θ + 1 + 0.1·ε in 2-D, observed at x_o = (0, 0): the posterior is near (−1, −1).
/// let simulator = FnSimulator::new(2, 2, |theta: &[f64], rng: &mut dyn rand::RngCore| {
///     use rand_distr::Distribution;
///     theta
///         .iter()
///         .map(|t| {
///             let e: f64 = rand_distr::StandardNormal.sample(rng);
///             t + 1.0 + 0.1 * e
///         })
///         .collect::<Vec<f64>>()
/// });
/// let run = Inference::new(BoxUniform::uniform(2, -2.0, 2.0)?)
///     .method("snpe")
///     .estimator("maf")
///     .rounds(2)
///     .simulations_per_round(500)
///     .observation(&[0.0, 0.0])
///     .seed(1)
///     .run(&simulator)?;
/// let samples = run.posterior().sample(1000, None, &mut simfer_distributions::rng_from_seed(2))?;
/// assert!((samples.row(0).mean() + 1.0).abs() < 0.1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Inference {
    prior: Arc<dyn Prior>,
    method: String,
    estimator: Option<EstimatorChoice>,
    classifier: ClassifierConfig,
    nre: NreVariant,
    rounds: Option<usize>,
    simulations_per_round: usize,
    x_o: Option<Vec<f64>>,
    seed: u64,
    training: TrainingConfig,
    sampling: SamplingOptions,
    mcmc: SliceSettings,
    truncation: TruncationOptions,
    invalid: InvalidPolicy,
    precision: Option<Precision>,
    num_atoms: usize,
    use_combined_loss: bool,
    retrain_from_scratch: bool,
    discard_prior_samples: bool,
    progress: bool,
}

/// Each round's posterior and report.
type RoundsOutcome = (Vec<Box<dyn Posterior>>, Vec<RoundReport>);

/// An estimator given by name or with its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum EstimatorChoice {
    /// A kind by name (`maf`, `nsf`, `mdn`), with the reference's settings of it.
    Name(String),
    /// A kind with its settings.
    Config(EstimatorConfig),
}

impl From<&str> for EstimatorChoice {
    fn from(s: &str) -> Self {
        EstimatorChoice::Name(s.into())
    }
}

impl From<String> for EstimatorChoice {
    fn from(s: String) -> Self {
        EstimatorChoice::Name(s)
    }
}

impl From<EstimatorKind> for EstimatorChoice {
    fn from(k: EstimatorKind) -> Self {
        EstimatorChoice::Config(k.default_config())
    }
}

impl From<EstimatorConfig> for EstimatorChoice {
    fn from(c: EstimatorConfig) -> Self {
        EstimatorChoice::Config(c)
    }
}

impl EstimatorChoice {
    fn config(&self) -> Result<EstimatorConfig, InferenceError> {
        match self {
            EstimatorChoice::Config(c) => Ok(c.clone()),
            EstimatorChoice::Name(n) => Ok(n
                .parse::<EstimatorKind>()
                .map_err(|e| InferenceError::InvalidConfig {
                    name: "estimator",
                    message: e.to_string(),
                })?
                .default_config()),
        }
    }
}

/// Anything that can be a run's prior: every prior (a concrete one, `Box<dyn Prior>` as a
/// benchmark task gives it, or `Arc<dyn Prior>`).
pub trait IntoPrior {
    /// The prior, shared.
    fn into_prior(self) -> Arc<dyn Prior>;
}

impl<P: Prior + 'static> IntoPrior for P {
    fn into_prior(self) -> Arc<dyn Prior> {
        Arc::new(self)
    }
}

impl Inference {
    /// A run for `prior` with every setting at its default: SNPE-C with the reference's
    /// MAF, 1000 simulations per round, seed 0.
    pub fn new(prior: impl IntoPrior) -> Self {
        Inference {
            prior: prior.into_prior(),
            method: "snpe".into(),
            estimator: None,
            classifier: ClassifierConfig::default(),
            nre: NreVariant::default(),
            rounds: None,
            simulations_per_round: 1000,
            x_o: None,
            seed: 0,
            training: TrainingConfig::default(),
            sampling: SamplingOptions::default(),
            mcmc: SliceSettings::default(),
            truncation: TruncationOptions::default(),
            invalid: InvalidPolicy::default(),
            precision: None,
            num_atoms: 10,
            use_combined_loss: false,
            retrain_from_scratch: false,
            discard_prior_samples: false,
            progress: false,
        }
    }

    /// The method by name or kind (`npe`, `snpe`, `tsnpe`, `nle`, `snle`, `nre`, `snre`;
    /// default `snpe`). An unknown name is an error of [`run`](Self::run).
    pub fn method(mut self, method: impl ToString) -> Self {
        self.method = method.to_string();
        self
    }

    /// The density estimator by name (`maf`, `nsf`, `mdn`), kind or settings (default:
    /// the reference's MAF). NRE trains a classifier instead (see
    /// [`classifier`](Self::classifier)).
    pub fn estimator(mut self, estimator: impl Into<EstimatorChoice>) -> Self {
        self.estimator = Some(estimator.into());
        self
    }

    /// NRE's classifier.
    pub fn classifier(mut self, classifier: ClassifierConfig) -> Self {
        self.classifier = classifier;
        self
    }

    /// NRE's loss (default NRE-B with 10 atoms).
    pub fn nre_loss(mut self, variant: NreVariant) -> Self {
        self.nre = variant;
        self
    }

    /// Rounds (default 1 for npe, nle, nre; 10 for the sequential methods).
    pub fn rounds(mut self, rounds: usize) -> Self {
        self.rounds = Some(rounds);
        self
    }

    /// Simulations per round (default 1000).
    pub fn simulations_per_round(mut self, n: usize) -> Self {
        self.simulations_per_round = n;
        self
    }

    /// The observation the rounds focus on (needed for more than one round; becomes the
    /// posteriors' default x).
    pub fn observation(mut self, x_o: &[f64]) -> Self {
        self.x_o = Some(x_o.to_vec());
        self
    }

    /// The seed of the whole run (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Training settings (the reference's by default).
    pub fn training(mut self, training: TrainingConfig) -> Self {
        self.training = training;
        self
    }

    /// How direct posteriors sample (rejection to the prior's support, with a budget).
    pub fn sampling(mut self, sampling: SamplingOptions) -> Self {
        self.sampling = sampling;
        self
    }

    /// The MCMC sampler of NLE's and NRE's posteriors.
    pub fn mcmc(mut self, mcmc: SliceSettings) -> Self {
        self.mcmc = mcmc;
        self
    }

    /// TSNPE's truncation.
    pub fn truncation(mut self, truncation: TruncationOptions) -> Self {
        self.truncation = truncation;
        self
    }

    /// What to do with invalid simulations.
    pub fn invalid(mut self, policy: InvalidPolicy) -> Self {
        self.invalid = policy;
        self
    }

    /// The precision of the training passes (default: the estimator's, `f32`).
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = Some(precision);
        self
    }

    /// Atoms of SNPE-C's atomic loss (default 10).
    pub fn num_atoms(mut self, n: usize) -> Self {
        self.num_atoms = n;
        self
    }

    /// SNPE-C's combined loss (default false).
    pub fn use_combined_loss(mut self, yes: bool) -> Self {
        self.use_combined_loss = yes;
        self
    }

    /// Rebuild NPE's network at every round (default false).
    pub fn retrain_from_scratch(mut self, yes: bool) -> Self {
        self.retrain_from_scratch = yes;
        self
    }

    /// Leave round-0 data out of SNPE-C's later rounds (default false).
    pub fn discard_prior_samples(mut self, yes: bool) -> Self {
        self.discard_prior_samples = yes;
        self
    }

    /// Progress bars on simulation, training and sampling (on a terminal).
    pub fn progress(mut self, yes: bool) -> Self {
        self.progress = yes;
        self
    }

    /// Every NPE setting at once (estimator, training, atoms, combined loss, retraining,
    /// discarding prior samples, invalid simulations, sampling, progress; TSNPE's
    /// truncation if `config.proposal` is truncated).
    pub fn with_snpe_config(mut self, config: SnpeConfig) -> Self {
        self.estimator = Some(EstimatorChoice::Config(config.estimator));
        self.training = config.training;
        self.num_atoms = config.num_atoms;
        self.use_combined_loss = config.use_combined_loss;
        self.retrain_from_scratch = config.retrain_from_scratch;
        self.discard_prior_samples = config.discard_prior_samples;
        self.invalid = config.invalid;
        self.sampling = config.sampling;
        if let NpeProposal::Truncated(t) = config.proposal {
            self.truncation = t;
        }
        self.progress = config.progress;
        self
    }

    /// The method this run will use (or the error of an unknown name).
    pub fn method_kind(&self) -> Result<MethodKind, InferenceError> {
        self.method.parse()
    }

    fn estimator_config(&self, kind: MethodKind) -> Result<EstimatorConfig, InferenceError> {
        if !kind.uses_estimator() {
            if self.estimator.is_some() {
                return Err(InferenceError::InvalidConfig {
                    name: "estimator",
                    message: format!(
                        "{kind} trains a ratio classifier, not a density estimator: set it \
                         with `classifier`"
                    ),
                });
            }
            return Ok(EstimatorConfig::default());
        }
        let mut config = match &self.estimator {
            Some(choice) => choice.config()?,
            None => EstimatorConfig::default(),
        };
        if let Some(p) = self.precision {
            config.set_precision(p);
        }
        Ok(config)
    }

    /// Runs every round: round 0 simulates from the prior, each later round from the
    /// method's proposal at the observation, and the model is trained after each.
    ///
    /// # Errors
    /// An unknown method or estimator, settings out of range, a simulator that does not fit
    /// the prior or the observation, and anything the rounds report.
    pub fn run(self, simulator: &dyn Simulator) -> Result<InferenceRun, InferenceError> {
        self.run_inner(simulator, None)
    }

    /// [`run`](Self::run), keeping everything the run does in `log` as it happens and
    /// continuing from what `log` already holds: each round's proposal, its simulations
    /// and its training are restored from the log where saved, and made and saved
    /// otherwise. A run killed at any moment and continued with the same settings and log
    /// ends with the same posteriors, bit for bit, as an uninterrupted run.
    ///
    /// # Errors
    /// Those of [`run`](Self::run); a log that cannot keep or give back what it holds; a
    /// log whose contents do not fit the settings (e.g. another number of simulations per
    /// round); [`InferenceError::Unsupported`] for an estimator that cannot be saved.
    pub fn run_logged(
        self,
        simulator: &dyn Simulator,
        log: &dyn RunLog,
    ) -> Result<InferenceRun, InferenceError> {
        self.run_inner(simulator, Some(log))
    }

    /// Checks the settings that need no simulator (the method's name, the number of
    /// rounds, the simulations per round against what training needs, an observation for
    /// several rounds), so that a caller can refuse them before it starts anything: a run
    /// makes these checks, and those of the simulator, before its first simulation.
    ///
    /// # Errors
    /// [`InferenceError::InvalidConfig`] naming the setting, with what was expected and
    /// what was found; [`InferenceError::NoObservation`] for several rounds without x_o.
    pub fn check(&self) -> Result<(), InferenceError> {
        self.checked_rounds().map(|_| ())
    }

    /// The method and the number of rounds, checked as [`check`](Self::check) says.
    fn checked_rounds(&self) -> Result<(MethodKind, usize), InferenceError> {
        let kind = self.method_kind()?;
        let rounds = self
            .rounds
            .unwrap_or(if kind.is_sequential() { 10 } else { 1 });
        if rounds == 0 {
            return Err(InferenceError::InvalidConfig {
                name: "rounds",
                message: "expected at least 1 round, found 0".into(),
            });
        }
        if rounds > 1 && !kind.is_sequential() {
            return Err(InferenceError::InvalidConfig {
                name: "rounds",
                message: format!(
                    "{kind} is one round, found rounds = {rounds}: use s{kind} for several \
                     rounds focused on the observation"
                ),
            });
        }
        if self.simulations_per_round == 0 {
            return Err(InferenceError::InvalidConfig {
                name: "simulations_per_round",
                message: "expected at least 1, found 0".into(),
            });
        }
        if self.x_o.is_none() && rounds > 1 {
            return Err(InferenceError::NoObservation);
        }
        self.estimator_config(kind)?;
        self.training.check()?;
        // Training splits each round's simulations into a training and a validation set,
        // and every batch of a contrastive loss needs rows to contrast: refuse a number of
        // simulations that cannot be trained on before anything is simulated.
        let per_part = match kind {
            MethodKind::Nre | MethodKind::Snre => self.nre.others() + 1,
            MethodKind::Npe | MethodKind::Snpe | MethodKind::Tsnpe if rounds > 1 => 2,
            _ => 1,
        };
        let fraction = self.training.validation_fraction;
        if let Some(needed) = simfer_snpe::DataSplit::min_rows(fraction, per_part)
            && self.simulations_per_round < needed
        {
            return Err(InferenceError::InvalidConfig {
                name: "simulations_per_round",
                message: format!(
                    "expected at least {needed}, found {}: training splits off a \
                         validation fraction of {fraction}, and {kind} needs at least \
                         {per_part} simulation(s) in the training and in the validation set",
                    self.simulations_per_round
                ),
            });
        }
        Ok((kind, rounds))
    }

    fn run_inner(
        self,
        simulator: &dyn Simulator,
        log: Option<&dyn RunLog>,
    ) -> Result<InferenceRun, InferenceError> {
        let (kind, rounds) = self.checked_rounds()?;
        if simulator.theta_dim() != self.prior.dim() {
            return Err(InferenceError::DimensionMismatch {
                what: "the simulator's θ dimension, to match the prior".into(),
                expected: self.prior.dim(),
                found: simulator.theta_dim(),
            });
        }
        match &self.x_o {
            Some(x) if x.len() != simulator.x_dim() => {
                return Err(InferenceError::DimensionMismatch {
                    what: "length of the observation x_o, to match the simulator's output".into(),
                    expected: simulator.x_dim(),
                    found: x.len(),
                });
            }
            None if rounds > 1 => return Err(InferenceError::NoObservation),
            _ => {}
        }
        let estimator = self.estimator_config(kind)?;
        let (posteriors, reports) = match kind {
            MethodKind::Npe | MethodKind::Snpe | MethodKind::Tsnpe => {
                let config = SnpeConfig {
                    estimator,
                    training: self.training.clone(),
                    num_atoms: self.num_atoms,
                    use_combined_loss: self.use_combined_loss,
                    retrain_from_scratch: self.retrain_from_scratch,
                    discard_prior_samples: self.discard_prior_samples,
                    invalid: self.invalid,
                    sampling: self.sampling.clone(),
                    proposal: if kind == MethodKind::Tsnpe {
                        NpeProposal::Truncated(self.truncation.clone())
                    } else {
                        NpeProposal::Posterior
                    },
                    progress: self.progress,
                };
                let seq = Snpe::new(Arc::clone(&self.prior), config, self.seed)?;
                self.rounds_of(seq, simulator, rounds, log)?
            }
            MethodKind::Nle | MethodKind::Snle => {
                let config = NleConfig {
                    estimator,
                    training: self.training.clone(),
                    mcmc: self.mcmc.clone(),
                    invalid: self.invalid,
                    progress: self.progress,
                };
                let seq = Snle::new(Arc::clone(&self.prior), config, self.seed)?;
                self.rounds_of(seq, simulator, rounds, log)?
            }
            MethodKind::Nre | MethodKind::Snre => {
                let mut classifier = self.classifier.clone();
                if let Some(p) = self.precision {
                    classifier.precision = p;
                }
                let config = NreConfig {
                    classifier,
                    variant: self.nre,
                    training: self.training.clone(),
                    mcmc: self.mcmc.clone(),
                    invalid: self.invalid,
                    progress: self.progress,
                };
                let seq = Snre::new(Arc::clone(&self.prior), config, self.seed)?;
                self.rounds_of(seq, simulator, rounds, log)?
            }
        };
        Ok(InferenceRun {
            method: kind,
            posteriors,
            rounds: reports,
        })
    }

    fn rounds_of<M: Method>(
        &self,
        mut seq: Sequential<M>,
        simulator: &dyn Simulator,
        rounds: usize,
        log: Option<&dyn RunLog>,
    ) -> Result<RoundsOutcome, InferenceError> {
        if let Some(x) = &self.x_o {
            seq.set_default_x(x)?;
        }
        let mut posteriors: Vec<Box<dyn Posterior>> = Vec::with_capacity(rounds);
        let mut reports = Vec::with_capacity(rounds);
        for r in 0..rounds {
            let (data, seconds_train) = match log {
                Some(log) => {
                    let done = durable_round(
                        &mut seq,
                        simulator,
                        self.simulations_per_round,
                        r,
                        log,
                        self.progress,
                    )?;
                    (done.data, Some(done.seconds_train))
                }
                None => (
                    seq.simulate_round(simulator, self.simulations_per_round)?,
                    None,
                ),
            };
            let (round, proposal, simulations, invalid, seconds_simulate) = (
                data.round,
                data.proposal.clone(),
                data.simulated,
                data.invalid.clone(),
                data.seconds_simulate,
            );
            let (history, seconds_train) = match seconds_train {
                Some(seconds) => (
                    seq.histories().last().cloned().ok_or_else(|| {
                        InferenceError::OutOfOrder("no training after a durable round".into())
                    })?,
                    seconds,
                ),
                None => {
                    let start = Instant::now();
                    let history = seq.train()?.clone();
                    (history, start.elapsed().as_secs_f64())
                }
            };
            posteriors.push(Box::new(seq.build_posterior()?));
            reports.push(RoundReport {
                round,
                proposal,
                simulations,
                invalid,
                history,
                seconds_simulate,
                seconds_train,
            });
        }
        Ok((posteriors, reports))
    }
}
