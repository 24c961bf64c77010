"""Formula options: a preset is a table of defaults and named options, each option can be
set alone, is saved with the state and restored on load; no rule asks which preset it
was built with."""
import os
import re

import numpy as np
import pytest

from tinygrad_opt import Tensor
from tinygrad_opt.optim import SGD, Adagrad, Adam, Muon, RMSprop
from test_conventions import TORCH, replay

OPTIM = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "tinygrad_opt", "optim")


def test_no_rule_compares_its_preset():
    """The formula is chosen by options in the hyperparameters, never by the preset's
    name (13 places compared it; a loaded state then ran the constructor's formula)."""
    for name in sorted(os.listdir(OPTIM)):
        if name.endswith(".py") and name != "optimizer.py":
            with open(os.path.join(OPTIM, name), encoding="utf-8") as f:
                source = f.read()
            assert not re.search(r"self\.preset\b", source), name


# PyTorch's trajectories reproduced from Keras' preset by setting the options (and
# PyTorch's defaults) one by one
AS_TORCH = {
    "adam": (Adam, dict(eps=1e-8, eps_inside_correction=True)),
    "sgd_momentum_lr_drop": (SGD, dict(velocity_holds_lr=False)),
    "adagrad": (Adagrad, dict(lr=0.01, initial_accumulator_value=0.0, eps=1e-10,
                              eps_in_sqrt=False)),
    "rmsprop_momentum_lr_drop": (RMSprop, dict(rho=0.99, eps=1e-8, eps_in_sqrt=False,
                                               velocity_holds_lr=False)),
    "rmsprop_centered_momentum_wd": (RMSprop, dict(rho=0.99, eps=1e-8, eps_in_sqrt=False,
                                                   velocity_holds_lr=False,
                                                   decoupled_weight_decay=False)),
    "muon": (Muon, dict(ema_momentum=True, eps_as_floor=True, conv_as_matrix=True,
                        adam_eps_inside_correction=True, adjust_lr_fn="original",
                        weight_decay=0.1, adam_eps=1e-8, adam_weight_decay=0.01)),
}


@pytest.mark.parametrize("name", sorted(AS_TORCH))
def test_options_one_by_one_give_pytorchs_trajectory(name):
    cls, options = AS_TORCH[name]
    meta, arrays = TORCH
    run = dict(meta["runs"][name])
    run["kwargs"] = dict({"alpha" if k == "rho" else k: v for k, v in options.items()},
                         **run["kwargs"])
    snaps = replay(meta, arrays, run, preset="keras")
    for i, got in snaps.items():
        np.testing.assert_allclose(np.stack(got), arrays[f"{name}.p{i}"], rtol=1e-12,
                                   atol=1e-15, err_msg=f"{name}, parameter {i}")
    if cls is Muon:         # its two momentum forms differ by a factor the normalisation
        return              # removes (muon.py); eps's place moves the last bits only
    without = dict(run, kwargs={k: v for k, v in run["kwargs"].items()
                                if k not in ("eps_inside_correction", "velocity_holds_lr",
                                             "eps_in_sqrt", "ema_momentum")})
    missed = replay(meta, arrays, without, preset="keras")    # the options do matter
    assert not np.allclose(np.stack(missed[0]), arrays[f"{name}.p0"], rtol=1e-6)


def _steps(opt, params, grads):
    for g in grads:
        for p, gi in zip(params, g):
            p.grad = gi.copy()
        opt.step()


def test_a_state_saved_under_one_preset_continues_its_own_formula_in_another():
    """Loading restores the saved options (and the preset's name): the run goes on as
    it began, bit for bit, whatever the receiving optimizer was built with."""
    rng = np.random.default_rng(0)
    grads = [[rng.standard_normal(5) * 1e-4] for _ in range(6)]
    start = rng.standard_normal(5)
    p = Tensor(start, requires_grad=True, dtype=np.float64)
    torch_form = Adam([p], preset="torch", lr=0.01)
    _steps(torch_form, [p], grads)
    straight = p.data.copy()

    q = Tensor(start, requires_grad=True, dtype=np.float64)
    first = Adam([q], preset="torch", lr=0.01)
    _steps(first, [q], grads[:3])
    saved = first.state_dict()
    assert saved["preset"] == "torch" and saved["param_groups"][0]["eps_inside_correction"]
    second = Adam([q])                                  # Keras' preset and formula
    second.load_state_dict(saved)
    assert second.preset == "torch" and second.hyper["eps_inside_correction"] is True
    _steps(second, [q], grads[3:])
    np.testing.assert_array_equal(q.data, straight)


def test_an_option_shows_in_repr_and_is_typed():
    p = [Tensor([1.0], requires_grad=True)]
    assert "eps_in_sqrt=False" in repr(RMSprop(p, eps_in_sqrt=False))
    assert "velocity_holds_lr=False" in repr(SGD(p, preset="torch"))
    with pytest.raises(ValueError, match="RMSprop: eps_in_sqrt must be True or False, got 0"):
        RMSprop(p, eps_in_sqrt=0)


def test_a_state_saved_before_the_options_loads_with_this_optimizers():
    """A checkpoint of the version before the options has no option keys: they take the
    receiving optimizer's values (what that version ran for the same preset)."""
    p = Tensor(np.ones(3), requires_grad=True)
    opt = RMSprop([p], preset="torch")
    p.grad = np.ones(3, np.float32)
    opt.step()
    saved = opt.state_dict()
    del saved["preset"]
    for k in ("momentum", "centered", "eps_in_sqrt", "velocity_holds_lr"):
        del saved["param_groups"][0][k]
    fresh = RMSprop([p], preset="torch")
    fresh.load_state_dict(saved)
    assert fresh.t == 1 and fresh.hyper["eps_in_sqrt"] is False


def test_rmsprop_takes_pytorchs_alpha_and_refuses_a_disagreement():
    p = [Tensor([1.0], requires_grad=True)]
    assert RMSprop(p, alpha=0.95).hyper["rho"] == 0.95
    with pytest.raises(ValueError, match="alpha=0.95 and rho=0.9 disagree"):
        RMSprop(p, alpha=0.95, rho=0.9)


def test_rmsprop_momentum_turned_on_by_a_schedule_gets_its_buffer():
    """OneCycleLR cycles a group's momentum, as PyTorch's does for RMSprop: the buffer
    is made when momentum first becomes positive, on both paths."""
    from tinygrad_opt import reference
    for path in (False, True):
        p = Tensor(np.ones(3), requires_grad=True)
        opt = RMSprop([p])
        opt.param_groups[0]["momentum"] = 0.9
        p.grad = np.ones(3, np.float32)
        with reference(path):
            opt.step()
        assert set(opt.state[0]) == {"v", "b"}
