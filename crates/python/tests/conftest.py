import numpy as np
import pytest

import simfer


@pytest.fixture
def seeded():
    """Seeds simfer's and NumPy's generators, so every test is reproducible."""
    simfer.manual_seed(3)
    np.random.seed(3)


def linear_gaussian(theta):
    """The tutorial's simulator: x = θ + 1 + 0.1·ε."""
    return theta + 1.0 + np.random.standard_normal(theta.shape) * 0.1


def prior_round(inference, prior, n=300):
    """Appends n prior simulations of the tutorial's simulator."""
    theta = prior.sample((n,))
    return inference.append_simulations(theta, linear_gaussian(theta))
