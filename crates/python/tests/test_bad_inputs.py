"""The catalogue of bad inputs of the Python package (see docs/BAD-INPUTS.md): one test
each, named for the bad input. Each is a Python exception (never a pyo3 PanicException)
whose message names what was expected and what was found, and nothing computed before it
is lost: simulations done before a failure come back on the exception."""

import json

import numpy as np
import pytest

from simfer import NPE, BoxUniform, MultivariateNormal, Posterior, simulate_for_sbi

from conftest import linear_gaussian, prior_round


@pytest.fixture
def prior():
    return BoxUniform(low=-2 * np.ones(3), high=2 * np.ones(3))


@pytest.fixture
def posterior(prior, seeded):
    inference = NPE(prior, show_progress_bars=False)
    prior_round(inference, prior)
    inference.train(max_num_epochs=3)
    return inference.build_posterior()


class SimulatorFailure(Exception):
    pass


def no_panic(excinfo):
    assert "PanicException" not in type(excinfo.value).__name__


def test_x_of_another_width_than_the_rounds_before(prior):
    inference = NPE(prior, show_progress_bars=False, seed=1)
    prior_round(inference, prior, n=20)
    theta = prior.sample((20,))
    with pytest.raises(ValueError, match=r"x: expected shape \(20, 3\).*found \[20, 4\]") as e:
        inference.append_simulations(theta, np.zeros((20, 4)))
    no_panic(e)


def test_theta_as_a_3d_array(prior):
    inference = NPE(prior, show_progress_bars=False, seed=1)
    with pytest.raises(ValueError, match="expected a 2-D array.*found.*3") as e:
        inference.append_simulations(np.zeros((4, 3, 1)), np.zeros((4, 3)))
    no_panic(e)


def test_inf_in_x_of_a_later_round_is_refused_and_kept(prior, seeded):
    inference = NPE(prior, show_progress_bars=False, seed=1)
    prior_round(inference, prior)
    inference.train(max_num_epochs=2)
    inference.set_default_x(np.zeros(3))

    def sometimes_inf(theta):
        x = linear_gaussian(theta)
        x[2] = np.inf
        return x

    with pytest.raises(ValueError, match=r"0 simulations with NaN and 3 with ±∞ \(of 30\)") as e:
        inference.simulate_round(sometimes_inf, 30, simulation_batch_size=10)
    no_panic(e)
    theta, x = e.value.simulations
    assert theta.shape == (30, 3) and x.shape == (30, 3)
    assert np.isinf(x).any(axis=1).nonzero()[0].tolist() == [2, 12, 22]


def test_inf_in_theta(prior):
    inference = NPE(prior, show_progress_bars=False, seed=1)
    theta = prior.sample((10,))
    theta[3, 2] = np.inf
    with pytest.raises(ValueError, match=r"theta has a non-finite value \(inf\) at row 3, column 2"):
        inference.append_simulations(theta, linear_gaussian(theta))


def test_a_simulator_that_raises_keeps_the_simulations_done(prior):
    calls = []

    def failing(theta):
        calls.append(len(theta))
        if len(calls) == 3:
            raise SimulatorFailure("the model diverged")
        return theta * 2.0

    with pytest.raises(SimulatorFailure, match="the model diverged") as e:
        simulate_for_sbi(failing, prior, 100, simulation_batch_size=10, show_progress_bar=False,
                         seed=5)
    theta, x = e.value.simulations
    assert theta.shape == (20, 3) and x.shape == (20, 3)
    np.testing.assert_array_equal(x, theta * 2.0)
    # The same θ's as a run without the failure draws first.
    full, _ = simulate_for_sbi(lambda t: t * 2.0, prior, 100, simulation_batch_size=10,
                               show_progress_bar=False, seed=5)
    np.testing.assert_array_equal(theta, full[:20])
    notes = getattr(e.value, "__notes__", None)
    if notes is not None:  # Python 3.11 and later
        assert any("20 simulations (of 100)" in n for n in notes), notes


def test_a_simulator_returning_the_wrong_row_count_keeps_earlier_batches(prior):
    calls = []

    def short_third_batch(theta):
        calls.append(len(theta))
        if len(calls) == 3:
            return np.zeros((len(theta) - 1, 3))
        return linear_gaussian(theta)

    with pytest.raises(ValueError, match=r"shape \[9, 3\] for a batch of 10") as e:
        simulate_for_sbi(short_third_batch, prior, 50, simulation_batch_size=10,
                         show_progress_bar=False)
    no_panic(e)
    theta, x = e.value.simulations
    assert theta.shape == (20, 3) and x.shape == (20, 3)


def test_a_simulator_returning_the_wrong_width(prior):
    calls = []

    def wider_later(theta):
        calls.append(1)
        return np.zeros((len(theta), 3 if len(calls) == 1 else 4))

    with pytest.raises(ValueError, match="rows of length 4, but earlier rows had length 3") as e:
        simulate_for_sbi(wider_later, prior, 30, simulation_batch_size=10, show_progress_bar=False)
    no_panic(e)
    assert e.value.simulations[1].shape == (10, 3)


def test_a_simulator_returning_strings(prior):
    with pytest.raises(TypeError, match="expected an array of real numbers.*found dtype str") as e:
        simulate_for_sbi(lambda t: np.full((len(t), 3), "a"), prior, 10,
                         simulation_batch_size=10, show_progress_bar=False)
    no_panic(e)


def test_simulate_round_keeps_the_simulations_when_the_simulator_raises(prior):
    inference = NPE(prior, show_progress_bars=False, seed=1)
    calls = []

    def failing(theta):
        calls.append(1)
        if len(calls) == 2:
            raise SimulatorFailure("out of licences")
        return linear_gaussian(theta)

    with pytest.raises(SimulatorFailure, match="out of licences") as e:
        inference.simulate_round(failing, 40, simulation_batch_size=10)
    theta, x = e.value.simulations
    assert theta.shape == (10, 3) and x.shape == (10, 3)
    # They can be appended as prior simulations.
    inference.append_simulations(theta, x)
    assert len(inference.rounds()) == 1


def test_zero_simulation_batch_size(prior):
    with pytest.raises(ValueError, match="simulation_batch_size: expected at least 1, found 0"):
        simulate_for_sbi(linear_gaussian, prior, 10, simulation_batch_size=0)


def test_unknown_keyword_argument_to_simulate_round(prior):
    inference = NPE(prior, show_progress_bars=False, seed=1)
    with pytest.raises(TypeError, match="batch_size"):
        inference.simulate_round(linear_gaussian, 10, batch_size=5)


def test_too_few_simulations_to_train_keeps_them(prior, seeded):
    inference = NPE(prior, show_progress_bars=False, seed=1)
    theta = prior.sample((1,))
    inference.append_simulations(theta, linear_gaussian(theta))
    with pytest.raises(ValueError, match=r"1 valid rows, but at least 2 are needed") as e:
        inference.train(max_num_epochs=2)
    no_panic(e)
    prior_round(inference, prior, n=100)
    inference.train(max_num_epochs=2)


def test_sample_at_x_of_the_wrong_length(posterior):
    with pytest.raises(ValueError, match=r"x: expected one vector of shape \(3,\) or \(1, 3\), found shape \[2\]"):
        posterior.sample((5,), x=np.zeros(2))


def test_sample_shape_with_a_negative_count(posterior):
    with pytest.raises((ValueError, TypeError, OverflowError)) as e:
        posterior.sample((-5,), x=np.zeros(3))
    no_panic(e)


def test_box_uniform_with_low_not_below_high():
    with pytest.raises(ValueError, match="expected low < high, found low = 1, high = 1"):
        BoxUniform(low=np.array([0.0, 1.0]), high=np.array([1.0, 1.0]))


def test_box_uniform_with_a_nan_bound():
    with pytest.raises(ValueError, match="low: expected finite numbers, found NaN"):
        BoxUniform(low=np.array([np.nan, 0.0]), high=np.array([1.0, 1.0]))


def test_multivariate_normal_with_a_covariance_not_positive_definite():
    with pytest.raises(ValueError, match="not positive definite"):
        MultivariateNormal(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]))


def test_load_of_a_file_that_is_not_a_posterior(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something-else", "version": 1}))
    with pytest.raises(ValueError, match="simfer-posterior") as e:
        Posterior.load(str(path))
    assert str(path) in str(e.value)


def test_load_of_a_truncated_posterior_file(posterior, tmp_path):
    path = tmp_path / "posterior.json"
    posterior.save(str(path))
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError) as e:
        Posterior.load(str(path))
    no_panic(e)
    assert str(path) in str(e.value)


def test_load_of_a_missing_file(tmp_path):
    path = tmp_path / "nothing.json"
    with pytest.raises(OSError) as e:
        Posterior.load(str(path))
    assert str(path) in str(e.value)
