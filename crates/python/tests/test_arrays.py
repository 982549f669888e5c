"""Objects with `__array__` (as torch tensors have) give the same results as the NumPy
arrays they wrap; lists are arrays too."""

import numpy as np

import simfer
from simfer import NPE, BoxUniform, simulate_for_sbi

from conftest import linear_gaussian


class Wrapped:
    """An array-like that is no ndarray: NumPy reads it through `__array__`."""

    def __init__(self, array):
        self.array = np.asarray(array)

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)


def run(wrap, theta, x, x_o):
    prior = BoxUniform(low=wrap(-2 * np.ones(3)), high=wrap(2 * np.ones(3)))
    inference = NPE(prior, show_progress_bars=False, seed=7)
    inference.append_simulations(wrap(theta), wrap(x)).train(max_num_epochs=20)
    posterior = inference.build_posterior().set_default_x(wrap(x_o))
    samples = posterior.sample((500,), seed=11)
    log_prob = posterior.log_prob(wrap(samples[:20]), x=wrap(x_o))
    return samples, log_prob


def test_array_protocol_objects_give_the_same_results_as_their_arrays():
    np.random.seed(5)
    theta = np.random.uniform(-2, 2, size=(400, 3))
    x = linear_gaussian(theta)
    x_o = np.zeros(3)
    samples, log_prob = run(lambda a: a, theta, x, x_o)
    wrapped_samples, wrapped_log_prob = run(Wrapped, theta, x, x_o)
    np.testing.assert_array_equal(samples, wrapped_samples)
    np.testing.assert_array_equal(log_prob, wrapped_log_prob)
    # float32 and integer arrays, and lists, are converted to float64 the same way.
    listed_samples, _ = run(lambda a: np.asarray(a).tolist(), theta, x, x_o)
    np.testing.assert_array_equal(samples, listed_samples)


def test_a_simulator_may_return_array_protocol_objects():
    prior = BoxUniform(low=-np.ones(2), high=np.ones(2))
    theta, x = simulate_for_sbi(lambda t: Wrapped(2.0 * t), prior, 25,
                                simulation_batch_size=10, seed=3, show_progress_bar=False)
    assert x.dtype == np.float64 and x.shape == (25, 2)
    np.testing.assert_array_equal(x, 2.0 * theta)
    # The same seed draws the same θ's.
    theta_again, _ = simulate_for_sbi(lambda t: 2.0 * t, prior, 25, seed=3,
                                      show_progress_bar=False)
    np.testing.assert_array_equal(theta, theta_again)


def test_results_are_float64_arrays_one_sample_per_row():
    simfer.manual_seed(2)
    prior = BoxUniform(low=np.zeros(2), high=np.ones(2, dtype=np.float32))
    s = prior.sample((7,))
    assert s.dtype == np.float64 and s.shape == (7, 2)
    assert prior.sample().shape == (2,)
    assert prior.log_prob(s).shape == (7,)
    np.testing.assert_allclose(prior.log_prob(s), 0.0)
