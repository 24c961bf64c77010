"""Parameter groups, weight decay, gradient clipping, and one sample's factored dense
gradient (applied by plain SGD without building it)."""
import math

import numpy as np
import pytest

from tinygrad_opt import Tensor
from tinygrad_opt.optim import SGD, Adam


def _one_sample_dense_grad(rate_zero=0.5, dtype=np.float32, seed=0):
    """A dense layer's weight and its one-sample gradient (autograd.Outer), with a share
    of zero inputs as relu and dropout leave them."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 40)).astype(dtype)
    x[0, rng.random(40) < rate_zero] = 0
    w = Tensor(rng.standard_normal((40, 7)).astype(dtype), requires_grad=True, dtype=dtype)
    (Tensor(x, dtype=dtype) @ w).backward(rng.standard_normal((1, 7)).astype(dtype))
    return w


@pytest.mark.parametrize("make", [lambda ps: SGD(ps), lambda ps: SGD(ps, momentum=0.9),
                                  Adam], ids=["sgd", "momentum", "adam"])
def test_factored_gradient_updates_equal_the_dense_ones(make):
    """Plain SGD applies an Outer gradient without building it; the result is the dense
    update's, bit for bit (other rules build the array first)."""
    from tinygrad_opt.autograd import Outer
    for dtype in (np.float32, np.float64):
        factored, dense = _one_sample_dense_grad(dtype=dtype), _one_sample_dense_grad(
            dtype=dtype)
        assert isinstance(factored.stored_grad, Outer)
        dense.grad = dense.grad.copy()                      # an ordinary array
        for w in (factored, dense):
            make([w]).step()
        np.testing.assert_array_equal(factored.data, dense.data)


def test_factored_gradient_nonfinite_values_and_overflow_are_caught():
    from tinygrad_opt.autograd import Outer
    w = _one_sample_dense_grad()
    w.stored_grad.row[2] = np.inf
    with pytest.raises(FloatingPointError, match="40 NaN or inf values"):
        SGD([w]).step()
    w = _one_sample_dense_grad(rate_zero=0.0)
    before = w.data.copy()
    w.grad = Outer(np.full(40, 1e20, np.float32), np.full(7, 1e20, np.float32))
    opt = SGD([w], nonfinite="skip")           # finite factors, overflowing products
    opt.step()
    assert opt.skipped_steps == 1 and opt.t == 0
    np.testing.assert_array_equal(w.data, before)


def test_clip_grad_norm_and_value():
    from tinygrad_opt.nn.utils import clip_grad_norm_, clip_grad_value_
    a, b = Tensor(np.zeros(2), requires_grad=True), Tensor(np.zeros(2), requires_grad=True)
    a.grad, b.grad = np.array([3.0, 0.0], np.float32), np.array([0.0, 4.0], np.float32)
    assert clip_grad_norm_([a, b], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad, b.grad]), [0.6, 0, 0, 0.8], rtol=1e-5)
    assert clip_grad_norm_([a, b], 10.0) == pytest.approx(1.0, rel=1e-5)   # under: as is
    np.testing.assert_allclose(a.grad, [0.6, 0], rtol=1e-5)
    a.grad = np.array([np.nan, 1.0], np.float32)
    assert math.isnan(clip_grad_norm_([a, b], 1.0))      # reported, nothing scaled
    assert b.grad.tolist() == pytest.approx([0.0, 0.8])
    b.grad = np.array([-3.0, 0.5], np.float32)
    clip_grad_value_([b], 1.0)
    assert b.grad.tolist() == [-1.0, 0.5]
    assert clip_grad_norm_([b], 0.5, norm_type=math.inf) == pytest.approx(1.0)


# --- parameter groups, weight decay, conventions -------------------------------------
def test_parameter_groups_take_their_own_hyperparameters():
    a = Tensor(np.ones(3), requires_grad=True, dtype=np.float64)
    b = Tensor(np.ones(2), requires_grad=True, dtype=np.float64)
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[0]["momentum"] == 0.0
    a.grad, b.grad = np.ones(3), np.ones(2)
    opt.step()
    np.testing.assert_allclose(a.data, 0.9)
    np.testing.assert_allclose(b.data, 0.5)       # Keras' momentum: v = -0.5, w += v
    with pytest.raises(AttributeError, match="2 parameter groups; use param_groups"):
        opt.lr
    state = opt.state_dict()
    assert [g["params"] for g in state["param_groups"]] == [[0], [1]]
    other = SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.state[1]["v"], opt.state[1]["v"])
    with pytest.raises(ValueError, match=r"groups of \[1, 1\] parameters saved"):
        SGD([a, b]).load_state_dict(state)


@pytest.mark.parametrize("change,message", [
    (lambda g: g.__setitem__("lr", -0.1), r"param_groups\[0\]: SGD: lr must be a finite number >= 0, got -0.1"),
    (lambda g: g.__setitem__("lr", "0.1"), r"param_groups\[0\]: SGD: lr must be a number, got '0.1'"),
    (lambda g: g.__setitem__("learning_rte", 0.1), r"param_groups\[0\] has keys .*learning_rte"),
    (lambda g: g["params"].append(Tensor([1.0], requires_grad=True)), r"param_groups\[0\]\['params'\] was changed; add parameters with add_param_group"),
])
def test_a_group_changed_badly_is_refused_at_the_next_step(change, message):
    """What a schedule (or a user) writes into param_groups is checked at step()."""
    p = Tensor(np.ones(2), requires_grad=True)
    opt = SGD([p], lr=0.1)
    p.grad = np.ones(2, np.float32)
    opt.step()
    change(opt.param_groups[0])
    with pytest.raises(ValueError, match=message):
        opt.step()
    np.testing.assert_allclose(p.data, 0.9)       # nothing changed


def test_group_keys_and_mixtures_are_refused_when_built():
    p = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="parameter group 0 has unknown key.*betas1"):
        Adam([{"params": [p], "betas1": 0.9}])
    with pytest.raises(TypeError, match="all Tensors or all dicts"):
        Adam([p, {"params": [Tensor([1.0], requires_grad=True)]}])
    with pytest.raises(ValueError, match="parameter 1 is the same Tensor as parameter 0"):
        Adam([{"params": [p]}, {"params": [p]}])
    with pytest.raises(TypeError, match="unknown hyperparameter.*momentum"):
        Adam([p], momentum=0.9)


def test_add_param_group_joins_the_next_step():
    a, b = (Tensor(np.ones(2), requires_grad=True, dtype=np.float64) for _ in range(2))
    opt = Adam([a], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 0.01})
    a.grad, b.grad = np.ones(2), np.ones(2)
    opt.step()
    assert len(opt.state) == 2 and opt.param_groups[1]["lr"] == 0.01
    assert 1 - b.data[0] == pytest.approx(0.01, rel=1e-3) and 1 - a.data[0] == pytest.approx(0.1, rel=1e-3)


def test_weight_decay_coupled_and_decoupled():
    """optimizer.py's two forms, by hand: for SGD the same step, for Adam not."""
    def one(cls, decoupled, **hyper):
        p = Tensor([2.0], requires_grad=True, dtype=np.float64)
        opt = cls([p], weight_decay=0.1, decoupled_weight_decay=decoupled, **hyper)
        p.grad = np.array([0.5])
        opt.step()
        return p.data[0]
    assert one(SGD, False, lr=0.1) == pytest.approx(2 - 0.1 * (0.5 + 0.1 * 2))
    assert one(SGD, True, lr=0.1) == pytest.approx(2 * (1 - 0.1 * 0.1) - 0.1 * 0.5)
    # Adam's first step is lr·sign(g) whatever g is: the coupled decay vanishes into the
    # normalisation (it only changes g's size), the decoupled one does not
    coupled = one(Adam, False, lr=0.1, eps=1e-12)
    decoupled = one(Adam, True, lr=0.1, eps=1e-12)
    assert coupled == pytest.approx(2 - 0.1)
    assert decoupled == pytest.approx(2 * (1 - 0.01) - 0.1)


def test_a_refused_param_group_adds_nothing():
    a, b = (Tensor(np.ones(2), requires_grad=True) for _ in range(2))
    opt = Adam([a])
    with pytest.raises(ValueError, match="parameter 2 is the same Tensor as parameter 0"):
        opt.add_param_group({"params": [b, a]})
    assert len(opt.params) == 1 and len(opt.state) == 1 and len(opt.param_groups) == 1
    a.grad = np.ones(2, np.float32)
    opt.step()                                  # still steps, as before the refusal
