"""Each kind of user error is a Python exception with a clear message."""

import _thread
import signal
import threading
import time

import numpy as np
import pytest

import simfer
from simfer import NPE, BoxUniform, process_simulator, simulate_for_sbi

from conftest import linear_gaussian, prior_round


@pytest.fixture
def prior():
    return BoxUniform(low=-2 * np.ones(3), high=2 * np.ones(3))


@pytest.fixture(autouse=True)
def sigint_raises_keyboard_interrupt():
    """Python's own Ctrl-C handler for each test. A process started in the background by
    a shell without job control inherits SIGINT ignored, and then Python installs no
    handler and `_thread.interrupt_main` does nothing; the Ctrl-C tests press it that
    way, so they install the handler themselves."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_wrong_shapes_are_value_errors_naming_expected_and_found(prior):
    inference = NPE(prior, show_progress_bars=False, seed=1)
    with pytest.raises(ValueError, match=r"theta: expected shape \(10, 3\).*found \[10, 2\]"):
        inference.append_simulations(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="theta has 10 rows but x has 9"):
        inference.append_simulations(np.zeros((10, 3)), np.zeros((9, 3)))
    with pytest.raises(ValueError, match="expected a 2-D array"):
        inference.append_simulations(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="same length|expected"):
        BoxUniform(low=np.zeros(3), high=np.ones(2))
    with pytest.raises(ValueError, match=r"expected shape \(5, 3\)"):
        prior.log_prob(np.zeros((5, 4)))


def test_wrong_dtypes_are_type_errors(prior):
    inference = NPE(prior, show_progress_bars=False, seed=1)
    with pytest.raises(TypeError, match="found dtype complex128"):
        inference.append_simulations(np.zeros((10, 3), dtype=complex), np.zeros((10, 3)))
    with pytest.raises(TypeError, match="dtype"):
        inference.append_simulations(np.full((10, 3), "a"), np.zeros((10, 3)))
    with pytest.raises(TypeError, match="expected an array of real numbers"):
        inference.append_simulations("theta", np.zeros((10, 3)))
    with pytest.raises(TypeError, match="expected a simfer prior"):
        NPE(prior="a prior", show_progress_bars=False)


def test_nan_is_a_value_error(prior, seeded):
    inference = NPE(prior, show_progress_bars=False, seed=1)
    theta = prior.sample((50,))
    bad = theta.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"theta has a non-finite value \(NaN\) at row 4, column 1"):
        inference.append_simulations(bad, linear_gaussian(theta))
    prior_round(inference, prior)
    inference.train()
    posterior = inference.build_posterior()
    with pytest.raises(ValueError, match="x has a non-finite value"):
        posterior.sample((10,), x=np.array([0.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="no observation"):
        posterior.sample((10,))
    # NaN simulations after the first round are refused, as the reference does.
    posterior.set_default_x(np.zeros(3))
    theta, x = simulate_for_sbi(linear_gaussian, posterior, 20, show_progress_bar=False)
    x[3] = np.nan
    with pytest.raises(ValueError, match="1 simulations with NaN"):
        inference.append_simulations(theta, x, proposal=posterior)


class SimulatorFailure(Exception):
    pass


def test_an_exception_inside_the_simulator_comes_back_as_itself(prior):
    calls = []

    def failing(theta):
        calls.append(len(theta))
        if len(calls) == 3:
            raise SimulatorFailure("the model diverged")
        return linear_gaussian(theta)

    with pytest.raises(SimulatorFailure, match="the model diverged"):
        simulate_for_sbi(failing, prior, 100, simulation_batch_size=10, show_progress_bar=False)
    assert calls == [10, 10, 10]  # it stopped at the failing batch

    def bad_shape(theta):
        return np.zeros((len(theta) + 1, 3))

    with pytest.raises(ValueError, match=r"shape \[11, 3\] for a batch of 10"):
        simulate_for_sbi(bad_shape, prior, 30, simulation_batch_size=10, show_progress_bar=False)
    with pytest.raises(TypeError, match="expected a callable"):
        simulate_for_sbi(42, prior, 10)


def test_unknown_keyword_arguments_are_type_errors(prior, seeded):
    with pytest.raises(TypeError, match="num_sims"):
        simulate_for_sbi(linear_gaussian, prior, 10, num_sims=5)
    inference = NPE(prior, show_progress_bars=False)
    with pytest.raises(TypeError, match="learning_rat"):
        inference.train(learning_rat=1e-3)
    with pytest.raises(TypeError, match="densty_estimator"):
        NPE(prior, densty_estimator="nsf")
    with pytest.raises(TypeError, match="lows"):
        BoxUniform(lows=np.zeros(2), high=np.ones(2))
    prior_round(inference, prior)
    inference.train(max_num_epochs=2)
    with pytest.raises(TypeError, match="num_sample"):
        inference.build_posterior().sample((5,), x=np.zeros(3), num_sample=3)
    with pytest.raises(TypeError, match="unexpected"):
        simfer.pairplot(prior.sample((100,)), colour="red")


def test_bad_settings_and_steps_out_of_order_are_value_errors(prior, seeded):
    inference = NPE(prior, show_progress_bars=False)
    with pytest.raises(ValueError, match="call `train` first|no trained model"):
        inference.build_posterior()
    with pytest.raises(ValueError, match="density_estimator"):
        NPE(prior, density_estimator="made_up")
    prior_round(inference, prior)
    with pytest.raises(ValueError, match="learning_rate"):
        inference.train(learning_rate=-1.0)
    with pytest.raises(ValueError, match="validation_fraction"):
        inference.train(validation_fraction=1.5)


def test_a_posterior_of_another_inference_is_refused_as_proposal(prior, seeded):
    a, b = NPE(prior, show_progress_bars=False), NPE(prior, show_progress_bars=False)
    for inference in (a, b):
        prior_round(inference, prior)
        inference.train()
    foreign = b.build_posterior().set_default_x(np.zeros(3))
    theta, x = simulate_for_sbi(linear_gaussian, foreign, 50, show_progress_bar=False)
    with pytest.raises(ValueError, match="not this run's latest"):
        a.append_simulations(theta, x, proposal=foreign)


def test_ctrl_c_interrupts_training_and_leaves_the_inference_usable(prior, seeded):
    inference = NPE(prior, show_progress_bars=False)
    prior_round(inference, prior, n=2000)
    # Up to 1000 epochs (≈ 10 s): only the interruption stops it sooner. Ctrl-C is pressed after
    # 0.5 s and, as an impatient user would, every 2 s after that: on a heavily loaded
    # machine a single press has once gone unanswered for minutes (it can land while the
    # call is still setting up, before it watches for Ctrl-C); a press during training
    # must stop it within the 50 ms between checks.
    done = threading.Event()
    presses = []

    def press():
        delay = 0.5
        while not done.wait(delay):
            presses.append(time.monotonic())
            _thread.interrupt_main()
            delay = 2.0

    presser = threading.Thread(target=press, daemon=True)
    start = time.monotonic()
    presser.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            inference.train(max_num_epochs=1000, stop_after_epochs=1000)
    finally:
        stopped = time.monotonic()
        done.set()
        try:
            presser.join()
        except KeyboardInterrupt:  # a press that raced the end of training
            presser.join()
    assert presses, "training stopped before Ctrl-C"
    # Stopped within a second of the last press.
    assert stopped - presses[-1] < 1.0, (presses, stopped - start)
    # The object is consistent: it trains and samples afterwards.
    estimator = inference.train(max_num_epochs=3)
    assert estimator.epochs_trained == 3
    samples = inference.build_posterior().sample((100,), x=np.zeros(3))
    assert samples.shape == (100, 3)


def seconds_to_stop(delay, call):
    """Presses Ctrl-C once, `delay` seconds after starting `call`, which must raise
    KeyboardInterrupt; returns the seconds from the start until it did."""
    timer = threading.Timer(delay, _thread.interrupt_main)
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            call()
    finally:
        stopped = time.monotonic()
        timer.cancel()
    return stopped - start


def test_ctrl_c_interrupts_a_python_simulator(prior):
    def slow(theta):
        time.sleep(0.01)
        return linear_gaussian(theta)

    simulator = process_simulator(slow, prior)
    # 500 simulations of 10 ms: bounded (≈ 5 s) should Ctrl-C go unseen.
    seconds = seconds_to_stop(
        0.3, lambda: simulate_for_sbi(simulator, prior, 500, show_progress_bar=False)
    )
    # Seen at the next batch (one simulation here), not after all of them.
    assert seconds < 1.3, seconds


def test_ctrl_c_is_seen_after_many_earlier_calls(prior, seeded):
    # Every call installs a check for Ctrl-C and must remove it: calls that fail, that
    # are interrupted and that finish, one after another, leave training answering the
    # next press as promptly as the first.
    def failing(theta):
        raise RuntimeError("boom")

    inference = NPE(prior, show_progress_bars=False)
    prior_round(inference, prior, n=1000)
    for cycle in range(5):
        with pytest.raises(RuntimeError, match="boom"):
            simulate_for_sbi(failing, prior, 20, show_progress_bar=False)
        simfer.check_sbi_inputs(process_simulator(linear_gaussian, prior), prior)
        # Up to 1000 epochs (several seconds): only the interruption stops it sooner.
        seconds = seconds_to_stop(
            0.2, lambda: inference.train(max_num_epochs=1000, stop_after_epochs=1000)
        )
        assert seconds < 1.2, (cycle, seconds)
