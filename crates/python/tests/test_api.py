"""The rest of the Python API: saving and pickling posteriors, MAP, priors, the other
methods (TSNPE, NLE, NRE) and the pairplot."""

import pickle

import numpy as np
import pytest

import simfer
from simfer import NLE, NPE, NRE, TSNPE, BoxUniform, MultivariateNormal, LogNormal, Independent

from conftest import linear_gaussian, prior_round


@pytest.fixture
def prior():
    return BoxUniform(low=-2 * np.ones(3), high=2 * np.ones(3))


def trained_npe(prior):
    inference = NPE(prior, show_progress_bars=False)
    prior_round(inference, prior, n=500)
    inference.train()
    return inference.build_posterior().set_default_x(np.zeros(3))


def test_posteriors_save_load_and_pickle_to_the_same_posterior(prior, seeded, tmp_path):
    posterior = trained_npe(prior)
    path = tmp_path / "posterior.json"
    posterior.save(path)
    for loaded in (simfer.Posterior.load(path), simfer.load_posterior(path),
                   pickle.loads(pickle.dumps(posterior))):
        np.testing.assert_array_equal(loaded.default_x, np.zeros(3))
        np.testing.assert_array_equal(loaded.sample((50,), seed=4), posterior.sample((50,), seed=4))
        theta = posterior.sample((10,), seed=5)
        np.testing.assert_allclose(loaded.log_prob(theta), posterior.log_prob(theta))


def test_map_is_near_the_mode_and_log_prob_is_normalized_over_the_box(prior, seeded):
    posterior = trained_npe(prior)
    theta_map = posterior.map()
    assert theta_map.shape == (3,)
    assert np.all(np.abs(theta_map + 1.0) < 0.15), theta_map
    outside = np.array([[3.0, 0.0, 0.0]])
    assert posterior.log_prob(outside)[0] == -np.inf
    assert posterior.log_prob(np.array([-1.0, -1.0, -1.0])).shape == (1,)


def test_priors_sample_and_evaluate(seeded):
    normal = MultivariateNormal(np.zeros(2), covariance_matrix=np.eye(2) * 4.0)
    assert normal.sample((1000,)).std(axis=0) == pytest.approx([2.0, 2.0], rel=0.1)
    np.testing.assert_allclose(normal.log_prob(np.zeros(2)), [-np.log(2 * np.pi * 4.0)])
    lognormal = LogNormal(loc=np.zeros(2), scale=np.ones(2))
    assert np.all(lognormal.sample((100,)) > 0)
    product = Independent([BoxUniform(0.0, 1.0), normal])
    assert product.dim == 3 and product.sample((4,)).shape == (4, 3)
    with pytest.raises(ValueError, match="exactly one"):
        MultivariateNormal(np.zeros(2))


def test_tsnpe_rounds_come_from_the_truncated_prior(prior, seeded):
    inference = TSNPE(prior, show_progress_bars=False, num_samples_to_estimate_support=20_000)
    inference.set_default_x(np.zeros(3))
    for _ in range(2):
        inference.simulate_round(linear_gaussian, 300, simulation_batch_size=100)
        inference.train(max_num_epochs=20)
    proposals = [r["proposal"] for r in inference.rounds()]
    assert proposals[0] == "prior" and proposals[1].startswith("prior truncated")
    # TSNPE's rounds are drawn by simfer: a posterior proposal is refused.
    posterior = inference.build_posterior().set_default_x(np.zeros(3))
    theta = posterior.sample((10,))
    with pytest.raises(ValueError, match="truncated prior"):
        inference.append_simulations(theta, linear_gaussian(theta), proposal=posterior)


@pytest.mark.parametrize("method", [NLE, NRE])
def test_nle_and_nre_sample_by_mcmc(method, prior, seeded):
    inference = method(prior, show_progress_bars=False)
    prior_round(inference, prior, n=300)
    estimator = inference.train(max_num_epochs=10)
    assert estimator.epochs_trained == 10
    posterior = inference.build_posterior(
        estimator, mcmc_parameters={"num_chains": 4, "warmup_steps": 20}
    )
    assert posterior.kind == "mcmc"
    samples = posterior.sample((200,), x=np.full(3, 0.0))
    assert samples.shape == (200, 3) and np.all(np.abs(samples) <= 2.0)
    assert posterior.mcmc_diagnostics()["chains"] == 4


def test_propose_then_append_records_the_proposal(prior, seeded):
    inference = NPE(prior, show_progress_bars=False).set_default_x(np.zeros(3))
    theta = inference.propose(200)
    inference.append_simulations(theta, linear_gaussian(theta)).train(max_num_epochs=5)
    theta = inference.propose(200)
    inference.append_simulations(theta, linear_gaussian(theta)).train(max_num_epochs=5)
    assert [r["proposal"] for r in inference.rounds()] == ["prior", "posterior after round 0"]


def test_pairplot_writes_svg_and_returns_a_figure(tmp_path, seeded):
    samples = np.random.standard_normal((1000, 3))
    path = tmp_path / "plot.svg"
    fig, axes = simfer.pairplot([samples, samples + 1.0], points=np.zeros(3),
                                limits=[-4, 4], labels=["a", "b", "c"], upper="contour",
                                path=path)
    text = path.read_text()
    assert text.startswith("<svg") and "</svg>" in text
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert isinstance(fig, simfer.SvgFigure) and axes is None
        assert fig._repr_svg_() == text
    else:
        assert axes.shape == (3, 3)
