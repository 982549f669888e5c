//! The sequential runner every method shares: draw a round's θ's from the current
//! proposal, simulate them (or take simulations made elsewhere), keep them with the
//! proposal that produced them and their invalid simulations, train, build the posterior,
//! and propose the next round from it.
//!
//! A [`Method`] supplies, per round, the training (its loss), the posterior and the next
//! proposal; [`Sequential`] keeps everything else: each round's data, proposal, invalid
//! counts and training history, and the random streams derived from the run's seed
//! ([`streams`](crate::streams)).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use nalgebra::DMatrix;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use simfer_distributions::{Prior, SeededRng, derive_rng};
use simfer_simulators::{SimulationOptions, Simulator, simulate_batch};
use simfer_snpe::{TrainingData, TrainingHistory};

use crate::streams;
use crate::{InferenceError, Posterior};

/// What to do with simulations that contain NaN or ±∞ (spec §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum InvalidPolicy {
    /// As the reference: exclude (and report) them in round 0; error in later rounds,
    /// where excluding them would bias the atomic loss.
    #[default]
    ExcludeFirstRoundOnly,
    /// Always exclude and report them (later rounds: the posterior may be biased).
    Exclude,
    /// Error in every round.
    Error,
}

/// Where a round's θ's came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProposalSource {
    /// The prior (round 0).
    Prior,
    /// The posterior trained on rounds up to `trained_on_round`, at the observation `x_o`.
    Posterior {
        /// The last round of data the proposal posterior was trained on.
        trained_on_round: usize,
        /// The observation it was conditioned on.
        x_o: Vec<f64>,
    },
    /// The prior truncated to the highest-density region of the posterior trained on
    /// rounds up to `trained_on_round` at `x_o` (TSNPE).
    Truncated {
        /// The last round of data the posterior was trained on.
        trained_on_round: usize,
        /// The observation it was conditioned on.
        x_o: Vec<f64>,
        /// The posterior mass left out of the region.
        quantile: f64,
        /// The region's prior mass (the acceptance rate of the prior).
        prior_mass: f64,
    },
}

impl ProposalSource {
    /// Whether the θ's are draws from the prior itself.
    pub fn is_prior(&self) -> bool {
        matches!(self, ProposalSource::Prior)
    }
}

impl std::fmt::Display for ProposalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProposalSource::Prior => f.write_str("prior"),
            ProposalSource::Posterior {
                trained_on_round, ..
            } => write!(f, "posterior after round {trained_on_round}"),
            ProposalSource::Truncated {
                trained_on_round,
                prior_mass,
                ..
            } => write!(
                f,
                "prior truncated by the posterior after round {trained_on_round} (prior mass \
                 {prior_mass:.3})"
            ),
        }
    }
}

/// The invalid simulations of a round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InvalidCounts {
    /// Indices (in the round's simulation order) of simulations with a NaN.
    pub nan: Vec<usize>,
    /// Indices of simulations with ±∞ and no NaN.
    pub inf: Vec<usize>,
}

impl InvalidCounts {
    /// Scans the columns of x.
    pub fn scan(x: &DMatrix<f64>) -> Self {
        let mut counts = Self::default();
        for (j, col) in x.column_iter().enumerate() {
            if col.iter().any(|v| v.is_nan()) {
                counts.nan.push(j);
            } else if col.iter().any(|v| v.is_infinite()) {
                counts.inf.push(j);
            }
        }
        counts
    }

    /// Number of invalid simulations.
    pub fn total(&self) -> usize {
        self.nan.len() + self.inf.len()
    }
}

/// One round's data and what happened to it.
#[derive(Debug, Clone)]
pub struct RoundData {
    /// The round (0 for prior data).
    pub round: usize,
    /// Where the θ's came from.
    pub proposal: ProposalSource,
    /// The posterior that proposed the θ's (none for the prior), e.g. for a loss that
    /// corrects for it analytically.
    pub proposer: Option<Box<dyn Posterior>>,
    /// Valid θ's, `theta_dim × n_valid`.
    pub theta: DMatrix<f64>,
    /// Valid x's, `x_dim × n_valid`.
    pub x: DMatrix<f64>,
    /// Simulations appended, valid or not.
    pub simulated: usize,
    /// The invalid simulations, which were excluded.
    pub invalid: InvalidCounts,
    /// Seconds spent proposing and simulating (0 for data simulated elsewhere).
    pub seconds_simulate: f64,
}

/// θ's drawn by [`Sequential::propose`], to be simulated and handed back with
/// [`Sequential::append_proposed`]. It carries its proposal, so the data cannot be
/// appended with the wrong one.
#[derive(Debug, Clone)]
pub struct Proposed {
    owner: u64,
    round: usize,
    source: ProposalSource,
    proposer: Option<Box<dyn Posterior>>,
    theta: DMatrix<f64>,
}

impl Proposed {
    /// The θ's to simulate, `theta_dim × n`.
    pub fn theta(&self) -> &DMatrix<f64> {
        &self.theta
    }

    /// The round the simulations will belong to.
    pub fn round(&self) -> usize {
        self.round
    }

    /// Where the θ's came from.
    pub fn source(&self) -> &ProposalSource {
        &self.source
    }
}

/// What a method's training sees.
pub struct TrainContext<'a> {
    /// The prior.
    pub prior: &'a Arc<dyn Prior>,
    /// Every round so far.
    pub rounds: &'a [RoundData],
    /// The latest round.
    pub round: usize,
    /// Draws the split, the minibatches and the atoms.
    pub rng: &'a mut SeededRng,
    /// Seeds a newly built network.
    pub build_seed: u64,
    /// Show a training spinner (on a terminal).
    pub progress: bool,
}

impl TrainContext<'_> {
    /// θ and x of the rounds from `first_round` on, pooled, with the true prior's
    /// log-densities and whether each came from the prior.
    ///
    /// # Errors
    /// [`InferenceError::NoValidSimulations`] when those rounds hold no valid simulation.
    pub fn pooled(&self, first_round: usize) -> Result<TrainingData, InferenceError> {
        let used: Vec<&RoundData> = self
            .rounds
            .iter()
            .filter(|r| r.round >= first_round)
            .collect();
        let n: usize = used.iter().map(|r| r.theta.ncols()).sum();
        if n == 0 {
            let total = used.iter().map(|r| r.simulated).sum();
            return Err(InferenceError::NoValidSimulations { total });
        }
        let d = self.prior.dim();
        let c = used[0].x.nrows();
        let mut theta = DMatrix::zeros(d, n);
        let mut x = DMatrix::zeros(c, n);
        let mut from_prior = Vec::with_capacity(n);
        let mut at = 0;
        for r in &used {
            let k = r.theta.ncols();
            theta.columns_mut(at, k).copy_from(&r.theta);
            x.columns_mut(at, k).copy_from(&r.x);
            from_prior.extend(std::iter::repeat_n(r.proposal.is_prior(), k));
            at += k;
        }
        Ok(TrainingData::with_prior(
            theta,
            x,
            self.prior.as_ref(),
            from_prior,
        )?)
    }
}

/// What a method needs to build its posterior or its next proposal.
pub struct PosteriorContext<'a> {
    /// The prior.
    pub prior: &'a Arc<dyn Prior>,
    /// The observation the rounds focus on, if set.
    pub x_o: Option<&'a [f64]>,
    /// Seeds the posterior's own randomness (acceptance-rate estimates, MCMC runs).
    pub seed: u64,
    /// The training history of every round so far.
    pub histories: &'a [TrainingHistory],
}

/// An inference method: what [`Sequential`] asks of it each round.
pub trait Method: Send + Sync {
    /// The posterior this method builds.
    type Posterior: Posterior + Clone + 'static;

    /// The method's name, e.g. `"snpe"`.
    fn name(&self) -> &'static str;

    /// Trains on the rounds so far (choosing its loss) and returns the history.
    fn train(&mut self, ctx: &mut TrainContext<'_>) -> Result<TrainingHistory, InferenceError>;

    /// Whether a model has been trained.
    fn is_trained(&self) -> bool;

    /// The posterior of the model trained so far.
    fn posterior(&self, ctx: &PosteriorContext<'_>) -> Result<Self::Posterior, InferenceError>;

    /// The trained model as self-describing bytes, to checkpoint a run (`None` before
    /// training). The default: [`InferenceError::Unsupported`].
    fn save_model(&self) -> Result<Option<Vec<u8>>, InferenceError> {
        Err(InferenceError::Unsupported(format!(
            "the method `{}` cannot save its model",
            self.name()
        )))
    }

    /// Restores a model saved by [`save_model`](Self::save_model): afterwards the method
    /// is as it was when the model was saved. The default: [`InferenceError::Unsupported`].
    fn load_model(&mut self, bytes: &[u8]) -> Result<(), InferenceError> {
        let _ = bytes;
        Err(InferenceError::Unsupported(format!(
            "the method `{}` cannot load a model",
            self.name()
        )))
    }

    /// `n` θ's for the next round from the trained posterior (at the default x) and where
    /// they came from. The default draws from the posterior itself.
    fn propose(
        &self,
        posterior: Self::Posterior,
        trained_on_round: usize,
        n: usize,
        rng: &mut SeededRng,
    ) -> Result<(DMatrix<f64>, ProposalSource), InferenceError> {
        let x_o = posterior
            .default_x()
            .ok_or(InferenceError::NoObservation)?
            .to_vec();
        let theta = posterior.sample(n, None, rng)?;
        Ok((
            theta,
            ProposalSource::Posterior {
                trained_on_round,
                x_o,
            },
        ))
    }
}

static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// Settings of the runner itself (the method has its own).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunnerSettings {
    /// What to do with invalid simulations.
    pub invalid: InvalidPolicy,
    /// Show progress bars on simulation and training (only when stderr is a terminal).
    pub progress: bool,
}

/// A sequential inference: the rounds of a [`Method`] with the reference library's steps
/// (propose or append, train, build the posterior), where the runner itself records which
/// proposal produced each round's data, so there is no proposal argument to forget.
pub struct Sequential<M: Method> {
    prior: Arc<dyn Prior>,
    method: M,
    settings: RunnerSettings,
    seed: u64,
    owner: u64,
    x_o: Option<Vec<f64>>,
    rounds: Vec<RoundData>,
    trained_on_round: Option<usize>,
    histories: Vec<TrainingHistory>,
    proposals_drawn: u64,
    train_calls: u64,
}

impl<M: Method> Sequential<M> {
    /// A run of `method` for `prior`; `seed` determines every random choice of the run
    /// (proposals, simulations, splits, atoms, initializations, MCMC), whatever the
    /// number of threads.
    pub fn with_method(
        prior: Arc<dyn Prior>,
        method: M,
        settings: RunnerSettings,
        seed: u64,
    ) -> Self {
        Sequential {
            prior,
            method,
            settings,
            seed,
            owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
            x_o: None,
            rounds: Vec::new(),
            trained_on_round: None,
            histories: Vec::new(),
            proposals_drawn: 0,
            train_calls: 0,
        }
    }

    /// The prior.
    pub fn prior(&self) -> &Arc<dyn Prior> {
        &self.prior
    }

    /// The method.
    pub fn method(&self) -> &M {
        &self.method
    }

    /// The runner's settings.
    pub fn runner_settings(&self) -> &RunnerSettings {
        &self.settings
    }

    /// Every round's data.
    pub fn rounds(&self) -> &[RoundData] {
        &self.rounds
    }

    /// The training history of every `train` call.
    pub fn histories(&self) -> &[TrainingHistory] {
        &self.histories
    }

    /// The observation the later rounds focus on.
    pub fn default_x(&self) -> Option<&[f64]> {
        self.x_o.as_deref()
    }

    fn x_dim(&self) -> Option<usize> {
        self.rounds.first().map(|r| r.x.nrows())
    }

    /// Sets the observation x_o that later rounds focus on (checked: finite, and of the
    /// simulations' dimension once there are any).
    pub fn set_default_x(&mut self, x_o: &[f64]) -> Result<&mut Self, InferenceError> {
        if let Some((index, &value)) = x_o.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(InferenceError::NonFiniteObservation { index, value });
        }
        if let Some(d) = self.x_dim()
            && d != x_o.len()
        {
            return Err(InferenceError::DimensionMismatch {
                what: "length of the observation x_o, to match the simulations".into(),
                expected: d,
                found: x_o.len(),
            });
        }
        self.x_o = Some(x_o.to_vec());
        Ok(self)
    }

    fn next_round(&self, source: &ProposalSource) -> usize {
        if source.is_prior() {
            0
        } else {
            self.rounds
                .iter()
                .map(|r| r.round)
                .max()
                .map_or(1, |m| m + 1)
        }
    }

    /// Draws `n` θ's from the current proposal: the prior before any training, afterwards
    /// what the method proposes from its posterior at x_o (which must be set).
    pub fn propose(&mut self, n: usize) -> Result<Proposed, InferenceError> {
        let mut rng = derive_rng(self.seed, streams::PROPOSE + self.proposals_drawn);
        self.proposals_drawn += 1;
        let (theta, source, proposer) = match self.trained_on_round {
            Some(trained_on_round) if self.method.is_trained() => {
                let posterior = self.build_posterior()?;
                if posterior.default_x().is_none() {
                    return Err(InferenceError::NoObservation);
                }
                let proposer: Box<dyn Posterior> = Box::new(posterior.clone());
                let (theta, source) =
                    self.method
                        .propose(posterior, trained_on_round, n, &mut rng)?;
                (theta, source, Some(proposer))
            }
            _ => (
                self.prior.sample_batch(n, &mut rng),
                ProposalSource::Prior,
                None,
            ),
        };
        let round = self.next_round(&source);
        Ok(Proposed {
            owner: self.owner,
            round,
            source,
            proposer,
            theta,
        })
    }

    /// The proposal that [`propose`](Self::propose) made before, restored from a saved run
    /// instead of drawn again: the θ's and where they came from, as `propose` returned
    /// them. The run advances exactly as `propose` would have advanced it (its random
    /// streams included), so a resumed run ends as an uninterrupted one. The proposing
    /// posterior is rebuilt from the model trained so far (cheap: no sampling).
    ///
    /// # Errors
    /// θ's of the wrong dimension or not finite; a prior proposal after training, or a
    /// posterior proposal before it ([`InferenceError::OutOfOrder`]).
    pub fn restore_proposal(
        &mut self,
        theta: DMatrix<f64>,
        source: ProposalSource,
    ) -> Result<Proposed, InferenceError> {
        if theta.nrows() != self.prior.dim() {
            return Err(InferenceError::DimensionMismatch {
                what: "rows of the saved θ's, to match the prior".into(),
                expected: self.prior.dim(),
                found: theta.nrows(),
            });
        }
        let trained = self.trained_on_round.is_some() && self.method.is_trained();
        if trained == source.is_prior() {
            return Err(InferenceError::OutOfOrder(format!(
                "the saved proposal is the {source}, but the run {} trained yet",
                if trained { "has" } else { "has not" }
            )));
        }
        let proposer: Option<Box<dyn Posterior>> = if trained {
            Some(Box::new(self.build_posterior()?))
        } else {
            None
        };
        self.proposals_drawn += 1;
        let round = self.next_round(&source);
        Ok(Proposed {
            owner: self.owner,
            round,
            source,
            proposer,
            theta,
        })
    }

    /// Appends the simulations `x` (`x_dim × n`) of θ's drawn by [`propose`](Self::propose).
    /// Invalid simulations are handled by the [`InvalidPolicy`].
    pub fn append_proposed(
        &mut self,
        proposed: Proposed,
        x: DMatrix<f64>,
    ) -> Result<&RoundData, InferenceError> {
        self.append_inner(proposed, x, 0.0)
    }

    /// [`append_proposed`](Self::append_proposed), recording the seconds spent proposing
    /// and simulating.
    pub(crate) fn append_proposed_timed(
        &mut self,
        proposed: Proposed,
        x: DMatrix<f64>,
        seconds_simulate: f64,
    ) -> Result<&RoundData, InferenceError> {
        self.append_inner(proposed, x, seconds_simulate)
    }

    /// Appends simulations of θ's that the caller drew **from the prior** itself
    /// (round-0 data).
    pub fn append_prior_simulations(
        &mut self,
        theta: DMatrix<f64>,
        x: DMatrix<f64>,
    ) -> Result<&RoundData, InferenceError> {
        let proposed = Proposed {
            owner: self.owner,
            round: 0,
            source: ProposalSource::Prior,
            proposer: None,
            theta,
        };
        self.append_inner(proposed, x, 0.0)
    }

    /// Appends simulations of θ's that the caller drew from `posterior` itself, as the
    /// reference's `append_simulations(theta, x, proposal=posterior)`: the round is
    /// recorded as drawn from the posterior trained so far, at the posterior's default x
    /// ([`ProposalSource::Posterior`]), with `posterior` as its proposer.
    ///
    /// `posterior` must be this run's latest posterior, the one
    /// [`build_posterior`](Self::build_posterior) gives now: this is checked on (up to 16
    /// of) the θ's, whose log-densities under both must agree up to a constant (the
    /// normalization), which they do only for the same model.
    ///
    /// # Errors
    /// [`InferenceError::OutOfOrder`] before any training or for a posterior of another
    /// model (an older round, another run); [`InferenceError::NoObservation`] for a
    /// posterior without a default x; shapes and invalid simulations as
    /// [`append_proposed`](Self::append_proposed).
    pub fn append_posterior_simulations(
        &mut self,
        theta: DMatrix<f64>,
        x: DMatrix<f64>,
        posterior: Box<dyn Posterior>,
    ) -> Result<&RoundData, InferenceError> {
        let trained_on_round = match self.trained_on_round {
            Some(round) if self.method.is_trained() => round,
            _ => {
                return Err(InferenceError::OutOfOrder(
                    "no posterior has been trained in this run yet: append prior simulations \
                     and train first"
                        .into(),
                ));
            }
        };
        let x_o = posterior
            .default_x()
            .ok_or(InferenceError::NoObservation)?
            .to_vec();
        if theta.nrows() != self.prior.dim() {
            return Err(InferenceError::DimensionMismatch {
                what: "rows of θ (one sample per column), to match the prior".into(),
                expected: self.prior.dim(),
                found: theta.nrows(),
            });
        }
        let latest = self.build_posterior()?;
        if !same_model(&latest, posterior.as_ref(), &theta, &x_o)? {
            return Err(InferenceError::OutOfOrder(format!(
                "these θ's were drawn from a posterior that is not this run's latest (trained \
                 on the rounds up to {trained_on_round}): draw them from the posterior that \
                 `build_posterior` gives now"
            )));
        }
        let source = ProposalSource::Posterior {
            trained_on_round,
            x_o,
        };
        let proposed = Proposed {
            owner: self.owner,
            round: self.next_round(&source),
            source,
            proposer: Some(posterior),
            theta,
        };
        self.append_inner(proposed, x, 0.0)
    }

    /// Proposes `n` θ's, simulates them in parallel (seeded) and appends them: one round.
    pub fn simulate_round(
        &mut self,
        simulator: &dyn Simulator,
        n: usize,
    ) -> Result<&RoundData, InferenceError> {
        let start = Instant::now();
        let proposed = self.propose(n)?;
        let options = SimulationOptions {
            seed: self.simulation_seed(proposed.round),
            progress: self.settings.progress,
            ..SimulationOptions::default()
        };
        let sims = simulate_batch(simulator, proposed.theta(), &options)?;
        let seconds = start.elapsed().as_secs_f64();
        self.append_inner(proposed, sims.x, seconds)
    }

    /// The seed of round `round`'s simulations (simulation `i` draws from
    /// `derive_rng(seed, i)`).
    pub fn simulation_seed(&self, round: usize) -> u64 {
        streams::simulation_seed(self.seed, round)
    }

    fn append_inner(
        &mut self,
        proposed: Proposed,
        x: DMatrix<f64>,
        seconds_simulate: f64,
    ) -> Result<&RoundData, InferenceError> {
        if proposed.owner != self.owner {
            return Err(InferenceError::OutOfOrder(
                "these θ's were proposed by another run".into(),
            ));
        }
        let expected_round = self.next_round(&proposed.source);
        if proposed.round != expected_round {
            return Err(InferenceError::OutOfOrder(format!(
                "these θ's were proposed for round {}, but the next round is {expected_round}: \
                 propose again",
                proposed.round
            )));
        }
        let theta = &proposed.theta;
        if theta.nrows() != self.prior.dim() {
            return Err(InferenceError::DimensionMismatch {
                what: "rows of θ (one sample per column), to match the prior".into(),
                expected: self.prior.dim(),
                found: theta.nrows(),
            });
        }
        if x.ncols() != theta.ncols() {
            return Err(InferenceError::DimensionMismatch {
                what: "number of simulations (columns of x), to match the θ's".into(),
                expected: theta.ncols(),
                found: x.ncols(),
            });
        }
        if let Some(d) = self.x_dim().or(self.x_o.as_ref().map(Vec::len))
            && x.nrows() != d
        {
            return Err(InferenceError::DimensionMismatch {
                what: "rows of x (the simulation's output dimension)".into(),
                expected: d,
                found: x.nrows(),
            });
        }
        if let Some((j, _)) = theta
            .column_iter()
            .enumerate()
            .find(|(_, c)| c.iter().any(|v| !v.is_finite()))
        {
            return Err(InferenceError::Training(
                simfer_snpe::SnpeError::NonFiniteData { what: "θ", row: j },
            ));
        }
        let invalid = InvalidCounts::scan(&x);
        let round = proposed.round;
        let exclude = match self.settings.invalid {
            InvalidPolicy::Exclude => true,
            InvalidPolicy::ExcludeFirstRoundOnly => round == 0,
            InvalidPolicy::Error => false,
        };
        if invalid.total() > 0 && !exclude {
            return Err(InferenceError::InvalidSimulations {
                round,
                nan: invalid.nan.len(),
                inf: invalid.inf.len(),
                total: x.ncols(),
                proposed: Box::new(proposed),
                x: Box::new(x),
            });
        }
        let keep: Vec<usize> = (0..x.ncols())
            .filter(|j| {
                invalid.nan.binary_search(j).is_err() && invalid.inf.binary_search(j).is_err()
            })
            .collect();
        let simulated = x.ncols();
        let (theta, x) = if keep.len() == simulated {
            (proposed.theta, x)
        } else {
            (
                proposed.theta.select_columns(&keep),
                x.select_columns(&keep),
            )
        };
        self.rounds.push(RoundData {
            round,
            proposal: proposed.source,
            proposer: proposed.proposer,
            theta,
            x,
            simulated,
            invalid,
            seconds_simulate,
        });
        Ok(self.rounds.last().expect("just pushed"))
    }

    /// Trains the method on the rounds so far (what data and loss is the method's choice)
    /// and records the history.
    pub fn train(&mut self) -> Result<&TrainingHistory, InferenceError> {
        let round = self.rounds.iter().map(|r| r.round).max().ok_or_else(|| {
            InferenceError::OutOfOrder(
                "no simulations to train on: append or simulate a round first".into(),
            )
        })?;
        let mut rng: SeededRng = derive_rng(self.seed, streams::TRAIN + self.train_calls);
        let build_seed = derive_rng(self.seed, streams::BUILD + self.train_calls).next_u64();
        self.train_calls += 1;
        let mut ctx = TrainContext {
            prior: &self.prior,
            rounds: &self.rounds,
            round,
            rng: &mut rng,
            build_seed,
            progress: self.settings.progress,
        };
        let history = self.method.train(&mut ctx)?;
        self.trained_on_round = Some(round);
        self.histories.push(history);
        Ok(self.histories.last().expect("just pushed"))
    }

    /// The model trained so far as self-describing bytes (`None` before training), to
    /// checkpoint the run.
    ///
    /// # Errors
    /// [`InferenceError::Unsupported`] for a method or estimator that cannot be saved.
    pub fn save_model(&self) -> Result<Option<Vec<u8>>, InferenceError> {
        self.method.save_model()
    }

    /// A [`train`](Self::train) call made before, restored from a saved run instead of
    /// trained again: the model [`save_model`](Self::save_model) returned after it and its
    /// history. The run advances exactly as `train` would have advanced it.
    ///
    /// # Errors
    /// No data yet, a history of another round than the latest, or a model the method
    /// cannot load.
    pub fn restore_training(
        &mut self,
        model: &[u8],
        history: TrainingHistory,
    ) -> Result<&TrainingHistory, InferenceError> {
        let round = self.rounds.iter().map(|r| r.round).max().ok_or_else(|| {
            InferenceError::OutOfOrder(
                "no simulations yet: a training can only be restored after its round".into(),
            )
        })?;
        if history.round != round {
            return Err(InferenceError::OutOfOrder(format!(
                "the saved training is of round {}, but the latest round is {round}",
                history.round
            )));
        }
        self.method.load_model(model)?;
        self.train_calls += 1;
        self.trained_on_round = Some(round);
        self.histories.push(history);
        Ok(self.histories.last().expect("just pushed"))
    }

    /// The posterior of the model trained so far, with x_o as its default x if set and
    /// the training history so far.
    pub fn build_posterior(&self) -> Result<M::Posterior, InferenceError> {
        if !self.method.is_trained() {
            return Err(InferenceError::OutOfOrder(
                "no trained model: call `train` first".into(),
            ));
        }
        let seed = derive_rng(self.seed, streams::POSTERIOR + self.train_calls).next_u64();
        self.method.posterior(&PosteriorContext {
            prior: &self.prior,
            x_o: self.x_o.as_deref(),
            seed,
            histories: &self.histories,
        })
    }

    /// The seed of the run.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// `train` calls so far (each derives its own random streams).
    pub fn train_calls(&self) -> u64 {
        self.train_calls
    }
}

/// Whether `given` is the same model as `latest`: their kinds agree, and their
/// log-densities at (up to 16 of) the θ's, at `x_o`, are finite at the same θ's and agree
/// up to one constant (the normalization, which each posterior may estimate itself).
fn same_model(
    latest: &dyn Posterior,
    given: &dyn Posterior,
    theta: &DMatrix<f64>,
    x_o: &[f64],
) -> Result<bool, InferenceError> {
    if latest.kind() != given.kind()
        || latest.theta_dim() != given.theta_dim()
        || latest.x_dim() != given.x_dim()
    {
        return Ok(false);
    }
    let probe = theta.columns(0, theta.ncols().min(16)).into_owned();
    let a = latest.log_prob(&probe, Some(x_o))?;
    let b = given.log_prob(&probe, Some(x_o))?;
    let finite: Vec<usize> = (0..a.len()).filter(|&j| a[j].is_finite()).collect();
    if (0..b.len()).any(|j| b[j].is_finite() != a[j].is_finite()) {
        return Ok(false);
    }
    let close = |u: f64, v: f64| (u - v).abs() <= 1e-6 * (1.0 + u.abs().max(v.abs()));
    Ok(match finite.as_slice() {
        [] => true,
        [j] => close(a[*j], b[*j]),
        [first, rest @ ..] => rest
            .iter()
            .all(|&j| close(a[j] - a[*first], b[j] - b[*first])),
    })
}
