"""L-BFGS (optim/lbfgs.py) in use: step(closure) as PyTorch takes it, the Trainer's
closure on the full batch, what it refuses. Its trajectories against PyTorch's:
tests/test_conventions.py."""
import copy
import math

import numpy as np
import pytest

from tinygrad_opt import Tensor
from tinygrad_opt.nn import Dense, Sequential, Tanh
from tinygrad_opt.nn.functional import mse
from tinygrad_opt.optim import LBFGS
from tinygrad_opt.train import Trainer


def _data(n=64, seed=0):
    """Inputs and targets that float32 holds exactly (the Trainer keeps data in float32)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32).astype(np.float64)
    y = np.sin(x @ np.array([[1.0], [-0.5], [2.0]])).astype(np.float32).astype(np.float64)
    return x, y


def _model():
    return Sequential(Dense(3, 8, rng=0, dtype=np.float64), Tanh(),
                      Dense(8, 1, rng=1, dtype=np.float64))


def _by_hand(model, x, y):
    """An L-BFGS and the closure a PyTorch user writes for it."""
    opt = LBFGS(model.parameters(), line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = mse(model(Tensor(x)), y)
        loss.backward()
        return loss
    return opt, closure


def test_step_closure_the_pytorch_way_lowers_the_loss():
    x, y = _data()
    opt, closure = _by_hand(_model(), x, y)
    first = opt.step(closure)
    assert first == pytest.approx(float(mse(_model()(Tensor(x)), y).data))
    assert opt.step(closure) < 0.2 * first
    with pytest.raises(TypeError, match="needs a closure"):
        opt.step()


def test_the_trainer_gives_lbfgs_a_closure_on_the_whole_batch():
    """One update an epoch, on every sample at once (in chunks), the loss reported the
    batch's before the update; the same numbers as the loop above."""
    x, y = _data()
    model = _model()
    trainer = Trainer(model, LBFGS(model.parameters(), line_search_fn="strong_wolfe"),
                      loss=mse, metric="mse", batch_size=None, chunk_size=16, verbose=0)
    history = trainer.fit((x, y), epochs=2)
    assert [h["updates"] for h in history] == [1, 1]
    by_hand = _model()
    opt, closure = _by_hand(by_hand, x, y)
    losses = [opt.step(closure) for _ in range(2)]
    np.testing.assert_allclose(history.column("train_loss"), losses, rtol=1e-10)
    for a, b in zip(model.parameters(), by_hand.parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-8, atol=1e-12)


def test_lbfgs_refuses_what_it_cannot_do():
    p = [Tensor(np.ones(2), requires_grad=True, dtype=np.float64)]
    with pytest.raises(ValueError, match="line_search_fn must be None or 'strong_wolfe'"):
        LBFGS(p, line_search_fn="armijo")
    with pytest.raises(ValueError, match="no weight decay"):
        LBFGS(p, weight_decay=0.1)
    with pytest.raises(ValueError, match="one parameter group only"):
        LBFGS([{"params": p}, {"params": [Tensor(np.ones(2), requires_grad=True)]}])
    with pytest.raises(ValueError, match="no preset 'keras'"):
        LBFGS(p, preset="keras")


def test_a_saved_lbfgs_continues_exactly(tmp_path):
    """The history of steps and gradient changes goes into a checkpoint (the safe
    format) and back: the run goes on as if never stopped."""
    from tinygrad_opt.store.checkpoint import load_checkpoint, save_checkpoint
    x, y = _data()
    straight = _model()
    opt, closure = _by_hand(straight, x, y)
    losses = [opt.step(closure) for _ in range(3)]
    stopped = _model()
    opt, closure = _by_hand(stopped, x, y)
    opt.step(closure)
    path = str(tmp_path / "lbfgs.ckpt")
    save_checkpoint(path, dict(model=stopped.state_dict(), optimizer=opt.state_dict()))
    saved = load_checkpoint(path)
    resumed = _model()
    resumed.load_state_dict(saved["model"])
    opt, closure = _by_hand(resumed, x, y)
    opt.load_state_dict(saved["optimizer"])
    assert [opt.step(closure) for _ in range(2)] == losses[1:]
    for a, b in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(ValueError, match="no valid L-BFGS memory"):
        opt.load_state_dict(dict(saved["optimizer"], lbfgs=dict(d=np.zeros(3))))


def test_a_nonfinite_loss_raises_or_is_skipped_as_asked():
    p = Tensor(np.ones(2), requires_grad=True, dtype=np.float64)

    def closure():
        p.grad = np.array([np.nan, 1.0])
        return 1.0
    with pytest.raises(FloatingPointError, match="1 NaN or inf gradient values at step 1"):
        LBFGS([p]).step(closure)
    opt = LBFGS([p], nonfinite="skip")
    assert np.isnan(opt.step(closure)) and opt.skipped_steps == 1
    np.testing.assert_array_equal(p.data, [1.0, 1.0])


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_a_nonfinite_loss_later_in_the_step_is_skipped_whole(line_search_fn):
    """A step's first evaluation is finite, a later one (after a move, or in the line
    search) is not: nonfinite="skip" leaves the weights and the memory as they were
    before the step, not at a half-taken move; "raise" raises, naming the step."""
    def make(nonfinite):
        p = Tensor(np.array([1.0, -2.0]), requires_grad=True, dtype=np.float64)
        calls, finite = [], [math.inf]            # evaluations, how many stay finite

        def closure():
            calls.append(1)
            p.grad = 2 * p.data
            return float((p.data ** 2).sum()) if len(calls) <= finite[0] else math.nan
        opt = LBFGS([p], max_iter=2, line_search_fn=line_search_fn, nonfinite=nonfinite)
        opt.step(closure)                          # a finite step: the memory holds a pair
        finite[0] = len(calls) + 1                 # the next step's first evaluation only
        return p, opt, closure
    p, opt, closure = make("raise")
    with pytest.raises(FloatingPointError, match="at step 2"):
        opt.step(closure)
    p, opt, closure = make("skip")
    before = p.data.copy(), copy.deepcopy(opt.state_dict()["lbfgs"])
    assert np.isnan(opt.step(closure)) and opt.skipped_steps == 1 and opt.t == 1
    np.testing.assert_array_equal(p.data, before[0])
    after = opt.state_dict()["lbfgs"]
    assert set(after) == set(before[1]) and before[1]["func_evals"] > 1
    for k, v in before[1].items():
        if isinstance(v, list):
            assert len(after[k]) == len(v) and all(np.array_equal(a, b)
                                                   for a, b in zip(after[k], v)), k
        else:
            np.testing.assert_array_equal(after[k], v, err_msg=k)
