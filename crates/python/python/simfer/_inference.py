"""The inference classes with the reference's signatures: ``NPE`` (``SNPE``), ``TSNPE``,
``NLE`` (``SNLE``) and ``NRE`` (``SNRE``, and ``NRE_A``, ``NRE_C``, ``BNRE``), over simfer's
engine (``simfer._simfer.Inference``), which records the proposal of every round itself."""

from __future__ import annotations

from typing import Any, Optional

from . import _simfer

_NO_CAP = 2**31 - 1


class _Inference:
    _method = "snpe"

    def _make(self, prior, show_progress_bars, device, seed, **kwargs):
        if prior is None:
            raise ValueError("prior: simfer needs a prior (e.g. BoxUniform)")
        self._engine = _simfer.Inference(
            self._method, prior, seed=seed, show_progress_bars=show_progress_bars,
            device=device, **kwargs,
        )

    @property
    def prior(self):
        """The prior."""
        return self._engine.prior

    def append_simulations(self, theta, x, proposal=None, exclude_invalid_x=None,
                           data_device=None):
        """Appends simulations ``theta`` ``(n, theta_dim)`` and ``x`` ``(n, x_dim)`` drawn
        from ``proposal``: the prior (or ``None``) or this inference's latest posterior at
        its default x. Returns ``self``, so ``.train()`` can follow."""
        self._engine.append_simulations(theta, x, proposal=proposal,
                                        exclude_invalid_x=exclude_invalid_x,
                                        data_device=data_device)
        return self

    def build_posterior(self, density_estimator=None, prior=None, sample_with=None,
                        mcmc_method=None, mcmc_parameters=None):
        """The posterior of the latest training (or of ``density_estimator``, what a
        ``train`` call returned), with this inference's default x if one was set."""
        return self._engine.build_posterior(density_estimator, prior=prior,
                                            sample_with=sample_with, mcmc_method=mcmc_method,
                                            mcmc_parameters=mcmc_parameters)

    def set_default_x(self, x_o):
        """Sets the observation that ``propose`` and ``simulate_round`` focus on; returns
        ``self``."""
        self._engine.set_default_x(x_o)
        return self

    def propose(self, num_simulations: int):
        """``num_simulations`` θ's from the current proposal (the prior before training,
        then the method's own at the default x) as an ``(n, theta_dim)`` array; append
        their simulations with ``append_simulations(theta, x)``."""
        return self._engine.propose(num_simulations)

    def simulate_round(self, simulator, num_simulations: int, simulation_batch_size: int = 1):
        """Proposes, simulates and appends one round; returns ``(theta, x)``."""
        return self._engine.simulate_round(simulator, num_simulations, simulation_batch_size)

    def rounds(self):
        """One dict per round: its number, proposal, simulations and invalid ones."""
        return self._engine.rounds()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prior={self.prior!r})"


class NPE(_Inference):
    """Neural posterior estimation; with proposals from its posteriors, SNPE-C (APT)."""

    _method = "snpe"

    def __init__(self, prior=None, density_estimator: str = "maf", device: str = "cpu",
                 logging_level: Any = "WARNING", summary_writer: Any = None,
                 tracker: Any = None, show_progress_bars: bool = True, *,
                 seed: Optional[int] = None):
        _unsupported(summary_writer=summary_writer, tracker=tracker)
        self._make(prior, show_progress_bars, device, seed,
                   density_estimator=density_estimator)

    def train(self, num_atoms: int = 10, training_batch_size: int = 200,
              learning_rate: float = 5e-4, validation_fraction: float = 0.1,
              stop_after_epochs: int = 20, max_num_epochs: int = _NO_CAP,
              clip_max_norm: Optional[float] = 5.0, calibration_kernel: Any = None,
              resume_training: bool = False, force_first_round_loss: bool = False,
              discard_prior_samples: bool = False, use_combined_loss: bool = False,
              retrain_from_scratch: bool = False, show_train_summary: bool = False,
              dataloader_kwargs: Any = None):
        """Trains on every round so far; later rounds from a posterior use the atomic
        loss. Returns a ``DensityEstimator`` (its history; ``build_posterior`` takes it)."""
        return self._engine.train(
            training_batch_size=training_batch_size, learning_rate=learning_rate,
            validation_fraction=validation_fraction, stop_after_epochs=stop_after_epochs,
            max_num_epochs=max_num_epochs, clip_max_norm=clip_max_norm, num_atoms=num_atoms,
            use_combined_loss=use_combined_loss, discard_prior_samples=discard_prior_samples,
            retrain_from_scratch=retrain_from_scratch,
            force_first_round_loss=force_first_round_loss,
            show_train_summary=show_train_summary, resume_training=resume_training,
            calibration_kernel=calibration_kernel, dataloader_kwargs=dataloader_kwargs)


class TSNPE(NPE):
    """NPE with truncated proposals (Deistler et al. 2022): later rounds are drawn from the
    prior restricted to the posterior's highest-density region (``quantile`` of mass left
    out, its threshold estimated from ``num_samples_to_estimate_support`` posterior draws)
    and every round is trained by maximum likelihood. Draw its rounds with
    ``simulate_round`` (or ``propose``), after ``set_default_x(x_o)``."""

    _method = "tsnpe"

    def __init__(self, prior=None, density_estimator: str = "maf", device: str = "cpu",
                 logging_level: Any = "WARNING", summary_writer: Any = None,
                 tracker: Any = None, show_progress_bars: bool = True, *,
                 quantile: float = 1e-4, num_samples_to_estimate_support: int = 1_000_000,
                 seed: Optional[int] = None):
        _unsupported(summary_writer=summary_writer, tracker=tracker)
        self._make(prior, show_progress_bars, device, seed,
                   density_estimator=density_estimator, quantile=quantile,
                   num_samples_to_estimate_support=num_samples_to_estimate_support)


class NLE(_Inference):
    """Neural likelihood estimation; the posterior is sampled by MCMC."""

    _method = "snle"

    def __init__(self, prior=None, density_estimator: str = "maf", device: str = "cpu",
                 logging_level: Any = "WARNING", summary_writer: Any = None,
                 tracker: Any = None, show_progress_bars: bool = True, *,
                 seed: Optional[int] = None):
        _unsupported(summary_writer=summary_writer, tracker=tracker)
        self._make(prior, show_progress_bars, device, seed,
                   density_estimator=density_estimator)

    def append_simulations(self, theta, x, exclude_invalid_x: Optional[bool] = None,
                           from_round: int = 0, algorithm: str = "NLE",
                           data_device=None, *, proposal=None):
        """Appends simulations (from the prior or, with ``proposal``, this inference's
        latest posterior); returns ``self``."""
        if from_round != 0:
            raise NotImplementedError("from_round: simfer numbers the rounds itself")
        return _Inference.append_simulations(self, theta, x, proposal=proposal,
                                             exclude_invalid_x=exclude_invalid_x,
                                             data_device=data_device)

    def train(self, training_batch_size: int = 200, learning_rate: float = 5e-4,
              validation_fraction: float = 0.1, stop_after_epochs: int = 20,
              max_num_epochs: int = _NO_CAP, clip_max_norm: Optional[float] = 5.0,
              resume_training: bool = False, discard_prior_samples: bool = False,
              retrain_from_scratch: bool = False, show_train_summary: bool = False,
              dataloader_kwargs: Any = None):
        """Trains the likelihood estimator on every round so far (maximum likelihood)."""
        return self._engine.train(
            training_batch_size=training_batch_size, learning_rate=learning_rate,
            validation_fraction=validation_fraction, stop_after_epochs=stop_after_epochs,
            max_num_epochs=max_num_epochs, clip_max_norm=clip_max_norm,
            discard_prior_samples=discard_prior_samples,
            retrain_from_scratch=retrain_from_scratch,
            show_train_summary=show_train_summary, resume_training=resume_training,
            dataloader_kwargs=dataloader_kwargs)


class NRE(_Inference):
    """Neural ratio estimation (NRE-B, the reference's ``NRE``/``SNRE``); the posterior is
    sampled by MCMC."""

    _method = "snre"
    _loss = "b"

    def __init__(self, prior=None, classifier: str = "resnet", device: str = "cpu",
                 logging_level: Any = "warning", summary_writer: Any = None,
                 tracker: Any = None, show_progress_bars: bool = True, *,
                 seed: Optional[int] = None):
        _unsupported(summary_writer=summary_writer, tracker=tracker)
        self._make(prior, show_progress_bars, device, seed, classifier=classifier,
                   nre_loss=self._loss)

    append_simulations = NLE.append_simulations

    def train(self, num_atoms: int = 10, training_batch_size: int = 200,
              learning_rate: float = 5e-4, validation_fraction: float = 0.1,
              stop_after_epochs: int = 20, max_num_epochs: int = _NO_CAP,
              clip_max_norm: Optional[float] = 5.0, resume_training: bool = False,
              discard_prior_samples: bool = False, retrain_from_scratch: bool = False,
              show_train_summary: bool = False, dataloader_kwargs: Any = None):
        """Trains the classifier on every round so far (``num_atoms`` for NRE-B)."""
        return self._engine.train(
            training_batch_size=training_batch_size, learning_rate=learning_rate,
            validation_fraction=validation_fraction, stop_after_epochs=stop_after_epochs,
            max_num_epochs=max_num_epochs, clip_max_norm=clip_max_norm, num_atoms=num_atoms,
            discard_prior_samples=discard_prior_samples,
            retrain_from_scratch=retrain_from_scratch,
            show_train_summary=show_train_summary, resume_training=resume_training,
            dataloader_kwargs=dataloader_kwargs)


class NRE_A(NRE):
    """NRE-A (binary cross-entropy, Hermans et al. 2020)."""

    _loss = "a"


class NRE_C(NRE):
    """NRE-C (Miller et al. 2022), 5 classes and γ = 1."""

    _loss = "c"


class BNRE(NRE):
    """Balanced NRE (Delaunoy et al. 2022), λ = 100."""

    _loss = "bnre"


def _unsupported(**options: Any) -> None:
    for name, value in options.items():
        if value is not None:
            raise NotImplementedError(f"{name}: not supported by simfer")
