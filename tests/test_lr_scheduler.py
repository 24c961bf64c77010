"""Learning-rate schedules: restored from their state, bad arguments refused, closed forms
against the recursive updates (PyTorch's own sequences: tests/test_conventions.py)."""
import numpy as np
import pytest

from tinygrad_opt import Tensor
from tinygrad_opt.optim import SGD, lr_scheduler


SCHEDULE_MAKERS = {
    "StepLR": lambda o: lr_scheduler.StepLR(o, 3, 0.5),
    "MultiStepLR": lambda o: lr_scheduler.MultiStepLR(o, [2, 5], 0.5),
    "ExponentialLR": lambda o: lr_scheduler.ExponentialLR(o, 0.9),
    "CosineAnnealingLR": lambda o: lr_scheduler.CosineAnnealingLR(o, 6, 0.01),
    "LinearLR": lambda o: lr_scheduler.LinearLR(o, 0.1, 1.0, 8),
    "OneCycleLR": lambda o: lr_scheduler.OneCycleLR(o, 1.0, total_steps=30),
    "LambdaLR": lambda o: lr_scheduler.LambdaLR(o, lambda t: 0.9 ** t),
    "SequentialLR": lambda o: lr_scheduler.SequentialLR(
        o, [lr_scheduler.LinearLR(o, 0.5, total_iters=3),
            lr_scheduler.ExponentialLR(o, 0.8)], [3]),
}


@pytest.mark.parametrize("name", sorted(SCHEDULE_MAKERS))
def test_a_schedule_restored_from_its_state_dict_continues_the_same(name):
    import os
    import tempfile
    from tinygrad_opt.store import load_checkpoint, save_checkpoint

    def fresh():
        p = Tensor(np.zeros(1), requires_grad=True, dtype=np.float64)
        opt = SGD([p], lr=0.1, momentum=0.5)
        return opt, SCHEDULE_MAKERS[name](opt)
    opt, sched = fresh()
    for _ in range(7):
        sched.step()
    with tempfile.TemporaryDirectory() as d:       # through the checkpoint format
        path = os.path.join(d, "s.npz")
        save_checkpoint(path, dict(o=opt.state_dict(), s=sched.state_dict()))
        saved = load_checkpoint(path)
    opt2, sched2 = fresh()
    opt2.load_state_dict(saved["o"])
    sched2.load_state_dict(saved["s"])
    for _ in range(10):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr() and opt2.lr == opt.lr


@pytest.mark.parametrize("make,message", [
    (lambda o: lr_scheduler.StepLR(o, 0), r"StepLR: step_size must be a whole number >= 1, got 0"),
    (lambda o: lr_scheduler.ExponentialLR(o, -0.5), r"ExponentialLR: gamma must be a number in \(0, inf\], got -0.5"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0), r"LinearLR: start_factor must be a number in \(0, 1\]"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=2.5), r"T_max must be a whole number >= 1, got 2.5"),
    (lambda o: lr_scheduler.OneCycleLR(o, 0.1), r"give total_steps, or epochs and steps_per_epoch"),
    (lambda o: lr_scheduler.OneCycleLR(o, 0.1, 10, anneal_strategy="cosine"), r"anneal_strategy must be 'cos' or 'linear'"),
    (lambda o: lr_scheduler.OneCycleLR(o, [0.1, 0.2], 10), r"max_lr needs one value per parameter group \(1\), got 2"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), r"factor must be < 1"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.StepLR(o, 2)], [3]), r"1 schedules need 0 milestones, got 1"),
    (lambda o: lr_scheduler.StepLR("adam", 2), r"StepLR: str is not an Optimizer"),
])
def test_bad_schedule_arguments(make, message):
    opt = SGD([Tensor([1.0], requires_grad=True)], lr=0.1)
    with pytest.raises((ValueError, TypeError), match=message):
        make(opt)


def test_closed_forms_agree_with_the_recursive_updates():
    """The recursive updates (PyTorch's) and the plain formulas (`closed_form`) name the
    same schedule."""
    for name in ("StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR"):
        opt = SGD([Tensor([1.0], requires_grad=True)], lr=0.1)
        sched = SCHEDULE_MAKERS[name](opt)
        for _ in range(20):
            sched.step()
            assert sched.closed_form() == pytest.approx(sched.get_last_lr(), rel=1e-12), name


def test_a_schedule_loads_only_a_state_of_its_own_kind():
    """load_state_dict checked nothing: a StepLR state loaded into a CosineAnnealingLR,
    and {"optimizer": None} or last_epoch "3" were accepted, to fail later."""
    import math
    p = [Tensor([1.0], requires_grad=True)]
    cosine = lr_scheduler.CosineAnnealingLR(SGD(p, lr=0.1), T_max=3)
    before = cosine.state_dict()
    step = lr_scheduler.StepLR(SGD(p, lr=0.1), 2)
    for bad, message in [(step.state_dict(), "a state of another schedule"),
                         ({"optimizer": None}, "the state holds \\['optimizer'\\]"),
                         (dict(before, last_epoch="3"), "last_epoch is '3'"),
                         (dict(before, base_lrs=[math.nan]), "base_lrs is \\[nan\\]"),
                         ([1, 2], "the state holds list")]:
        with pytest.raises(ValueError, match=message):
            cosine.load_state_dict(bad)
        assert cosine.state_dict() == before
    seq = SCHEDULE_MAKERS["SequentialLR"](SGD(p, lr=0.1))
    saved = seq.state_dict()
    saved["_schedulers"][1]["gamma"] = "0.8"
    with pytest.raises(ValueError, match="_schedulers is"):
        SCHEDULE_MAKERS["SequentialLR"](SGD(p, lr=0.1)).load_state_dict(saved)


@pytest.mark.parametrize("kw", [dict(div_factor=0), dict(final_div_factor=0)])
def test_one_cycle_refuses_a_zero_factor_when_built(kw):
    p = [Tensor([1.0], requires_grad=True)]
    with pytest.raises(ValueError, match=f"OneCycleLR: {next(iter(kw))} must be a number"):
        lr_scheduler.OneCycleLR(SGD(p, lr=0.1, momentum=0.9), 1.0, total_steps=10, **kw)


def test_a_sequence_of_schedules_can_be_stepped_per_batch():
    """SequentialLR's interval sets its schedules' (a warm-up, then a cosine, stepped by
    the Trainer after every batch)."""
    opt = SGD([Tensor(np.zeros(2), requires_grad=True)], lr=1.0)
    schedule = lr_scheduler.SequentialLR(opt, [
        lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=3),
        lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.1)], milestones=[4])
    assert schedule.interval == "epoch"
    schedule.interval = "batch"
    assert schedule.interval == "batch" and all(
        s.interval == "batch" for s in schedule._schedulers)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        schedule.step()
    np.testing.assert_allclose(lrs[:4], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(lrs[4:], [0.1 + 0.9 * (1 + np.cos(np.pi * k / 4)) / 2
                                         for k in range(4)])
