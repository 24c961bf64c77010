"""Each rule against the library that ships it: trajectories of 300 steps in float64
made by PyTorch 2.13 (tests/fixtures/reference/make_torch.py, run in a separate
environment; versions in VERSIONS.md there) and Keras, replayed here with the same
gradient sequence, on the kernels and on the numpy references."""
import json
import os

import numpy as np
import pytest

from tinygrad_opt import Tensor, reference
from tinygrad_opt.optim import (SGD, Adadelta, Adagrad, Adam, AdamW, Muon, NAdam, RAdam,
                                RMSprop, Rprop, Adamax, Adafactor)

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "reference")
OURS = {"SGD": SGD, "Adagrad": Adagrad, "RMSprop": RMSprop, "Adadelta": Adadelta,
        "Adam": Adam, "AdamW": AdamW, "NAdam": NAdam, "RAdam": RAdam, "Muon": Muon,
        "Rprop": Rprop, "Adamax": Adamax, "Adafactor": Adafactor}
RENAMED = {"alpha": "rho"}          # PyTorch's RMSprop calls rho alpha


def _load(name):
    with open(os.path.join(HERE, name + ".json")) as f:
        meta = json.load(f)
    arrays = np.load(os.path.join(HERE, name + ".npz"), allow_pickle=False)
    return meta, {k: arrays[k] for k in arrays.files}


def replay(meta, arrays, run, preset):
    """Our optimizer fed the fixture's gradients; the snapshots it passes through."""
    cls = OURS[run["optimizer"]]
    kwargs = {RENAMED.get(k, k): v for k, v in run["kwargs"].items()}
    params = [Tensor(arrays[f"start{i}"].copy(), requires_grad=True, dtype=np.float64)
              for i in range(len(meta["shapes"]))]
    opt = cls(params, preset=preset, **kwargs)
    snaps = {i: [] for i in range(len(params))}
    for t in range(1, meta["steps"] + 1):
        if run["lr_divided_by_10_after"] is not None and t == run["lr_divided_by_10_after"] + 1:
            opt.lr = opt.lr / 10
        for i, p in enumerate(params):
            p.grad = arrays[f"grad{i}"][t - 1].copy()
        opt.step()
        if t in meta["snapshots"]:
            for i, p in enumerate(params):
                snaps[i].append(p.data.copy())
    return snaps


TORCH = _load("torch_optim")


@pytest.mark.parametrize("path", ["kernel", "reference"])
@pytest.mark.parametrize("name", sorted(TORCH[0]["runs"]))
def test_preset_torch_follows_pytorchs_trajectory(name, path):
    meta, arrays = TORCH
    with reference(path == "reference"):
        snaps = replay(meta, arrays, meta["runs"][name], preset="torch")
    for i, got in snaps.items():
        np.testing.assert_allclose(np.stack(got), arrays[f"{name}.p{i}"], rtol=1e-12,
                                   atol=1e-15, err_msg=f"{name}, parameter {i}")


def test_the_torch_trajectories_are_not_each_others():
    """The runs differ enough for the comparison to mean something: a rule replayed with
    another rule's settings, or in Keras' form, would miss."""
    meta, arrays = TORCH
    run = dict(meta["runs"]["sgd_momentum_lr_drop"])
    keras_form = replay(meta, arrays, run, preset="keras")
    assert not np.allclose(np.stack(keras_form[0]), arrays["sgd_momentum_lr_drop.p0"],
                           rtol=1e-6)
    adam_keras = replay(meta, arrays, meta["runs"]["adam"], preset="keras")
    assert not np.allclose(np.stack(adam_keras[0]), arrays["adam.p0"], rtol=1e-6)


def test_nadam_schedules():
    """nadam.py's figures: PyTorch's mu_t reaches 0.9·beta1 after 9,856 steps, Keras'
    is within 1% of beta1 after 96."""
    torch_mu = [NAdam.mu(t, 0.9, 0.004) / 0.9 for t in (9856, 9857)]
    assert torch_mu[0] < 0.9 <= torch_mu[1]
    keras_mu = [NAdam.mu(t, 0.9, 1.0) / 0.9 for t in (95, 96)]
    assert keras_mu[0] < 0.99 <= keras_mu[1]


KERAS = _load("keras_optim")
KERAS_NAMES = {"Nadam": "NAdam", "Lion": "Lion", "Lamb": "Lamb"}
KERAS_RENAMED = {"beta_1": "beta1", "beta_2": "beta2", "epsilon": "eps",
                 "beta_2_decay": "beta2_decay", "epsilon_1": "eps1", "epsilon_2": "eps2",
                 "clip_threshold": "d"}
KERAS_SAME_EITHER_WAY = {"relative_step"}     # adafactor.py: rho is min(lr, 1/sqrt(t)) in both


def replay_keras(name, path):
    """Keras' runs: the torch fixture's gradients, and a vector beside the two matrices."""
    from tinygrad_opt.optim import Lamb, Lion
    meta, arrays = KERAS
    tmeta, tarrays = TORCH
    run = meta["runs"][name]
    cls = {**OURS, "Nadam": NAdam, "Lion": Lion, "Lamb": Lamb}[run["optimizer"]]
    kwargs = {KERAS_RENAMED.get(k, k): (0.0 if v is None else v)
              for k, v in run["kwargs"].items() if k not in KERAS_SAME_EITHER_WAY}
    starts = [tarrays["start0"], tarrays["start1"], tarrays["start1"][0]]
    grads = [tarrays["grad0"], tarrays["grad1"], tarrays["grad1"][:, 1]]
    params = [Tensor(s.copy(), requires_grad=True, dtype=np.float64) for s in starts]
    with reference(path == "reference"):
        opt = cls(params, preset="keras", **kwargs)
        snaps = {i: [] for i in range(len(params))}
        for t in range(1, meta["steps"] + 1):
            for p, g in zip(params, grads):
                p.grad = np.ascontiguousarray(g[t - 1])
            opt.step()
            if t in meta["snapshots"]:
                for i, p in enumerate(params):
                    snaps[i].append(p.data.copy())
    return snaps


@pytest.mark.parametrize("path", ["kernel", "reference"])
@pytest.mark.parametrize("name", sorted(KERAS[0]["runs"]))
def test_preset_keras_follows_keras_trajectory(name, path):
    meta, arrays = KERAS
    for i, got in replay_keras(name, path).items():
        np.testing.assert_allclose(np.stack(got), arrays[f"{name}.p{i}"], rtol=1e-12,
                                   atol=1e-15, err_msg=f"{name}, parameter {i}")


SCHEDULES = json.load(open(os.path.join(HERE, "torch_schedules.json")))


def _schedule(name, kwargs, opt):
    from tinygrad_opt.optim import lr_scheduler as S
    base = name.split("_")[0]
    if base == "SequentialLR":
        warm = S.LinearLR(opt, start_factor=0.2, total_iters=5)
        cos = S.CosineAnnealingLR(opt, T_max=30, eta_min=0.0)
        return S.SequentialLR(opt, [warm, cos], milestones=[5])
    if base == "LambdaLR":
        return S.LambdaLR(opt, lambda t: 1 / (1 + 0.1 * t))
    return getattr(S, base)(opt, **kwargs)


@pytest.mark.parametrize("name", sorted(SCHEDULES["schedules"]))
def test_schedules_give_pytorchs_learning_rates(name):
    """60 steps of each schedule: the learning rates PyTorch 2.13 wrote, bit for bit (the
    same formulas in the same order)."""
    entry = SCHEDULES["schedules"][name]
    p = Tensor(np.zeros(1), requires_grad=True, dtype=np.float64)
    opt = SGD([p], lr=SCHEDULES["base_lr"])
    sched = _schedule(name, entry["kwargs"], opt)
    lrs = [opt.lr]
    for t in range(SCHEDULES["steps"]):
        p.grad = np.zeros(1)
        opt.step()
        if name.startswith("ReduceLROnPlateau"):
            sched.step(SCHEDULES["plateau_metric"][t])
        else:
            sched.step()
        lrs.append(opt.lr)
        assert sched.get_last_lr() == [opt.lr]
    assert lrs == entry["lrs"]
    assert len(set(np.round(entry["lrs"], 12))) > 2        # the schedule does move


def test_the_conventions_table_is_current():
    """docs/conventions.md's one-step examples are what tools/conventions.py computes."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tool = os.path.join(root, "tools", "conventions.py")
    table = subprocess.run([sys.executable, tool], capture_output=True, text=True,
                           check=True).stdout
    with open(os.path.join(root, "docs", "conventions.md"), encoding="utf-8") as f:
        doc = f.read()
    assert table in doc and table.count("\n") > 10, \
        "docs/conventions.md is stale: python tools/conventions.py --write"


@pytest.mark.parametrize("path", ["kernel", "reference"])
def test_adafactor_stays_finite_where_keras_float32_gives_nan(path):
    """adafactor.py: Keras' float32 v̂ underflows to 0 where a row and a column of the
    gradient are 0, and one step leaves the matrix NaN (the fixture script's count);
    sqrt(v̂) taken factor by factor stays finite, and the zero rows do not move."""
    from tinygrad_opt.optim import Adafactor
    meta, arrays = KERAS
    assert meta["adafactor_float32_nan_after_one_step"] == 50 * 40
    w, g = arrays["adafactor_float32.w"], arrays["adafactor_float32.g"]
    p = Tensor(w.copy(), requires_grad=True)
    with reference(path == "reference"):
        opt = Adafactor([p], preset="keras")
        p.grad = g.copy()
        opt.step()
    assert np.isfinite(p.data).all()
    np.testing.assert_array_equal(p.data[:5], w[:5])
    assert not np.array_equal(p.data[5:, 5:], w[5:, 5:])


PACKAGES = _load("packages_optim")


def replay_package(name, path):
    """The authors' packages' runs (make_packages.py): our rule under preset "paper",
    with the same train/eval switches at every snapshot."""
    from tinygrad_opt import optim
    meta, arrays = PACKAGES
    tmeta, tarrays = TORCH
    run = meta["runs"][name]
    starts, grads = [tarrays["start0"], tarrays["start1"]], [tarrays["grad0"], tarrays["grad1"]]
    if name.startswith("soap"):             # make_packages.py: a (3, 3) second matrix
        starts[1], grads[1] = starts[1][:, :3], grads[1][:, :, :3]
    params = [Tensor(np.ascontiguousarray(s), requires_grad=True, dtype=np.float64)
              for s in starts]
    snaps = {}
    with reference(path == "reference"):
        opt = getattr(optim, run["optimizer"])(params, preset="paper", **run["kwargs"])
        switches = hasattr(opt, "eval")
        if switches:
            opt.train()
        for t in range(1, meta["steps"] + 1):
            for i, p in enumerate(params):
                p.grad = np.ascontiguousarray(grads[i][t - 1])
            opt.step()
            if t in meta["snapshots"]:
                for i, p in enumerate(params):
                    snaps.setdefault(f"p{i}", []).append(p.data.copy())
                if switches:
                    opt.eval()
                    for i, p in enumerate(params):
                        snaps.setdefault(f"x{i}", []).append(p.data.copy())
                    opt.train()
    return snaps


# Prodigy's d is a ratio of sums over every parameter, recomputed each step, and its
# trajectories are more sensitive to rounding than the other rules': summed in another
# order (PyTorch: 8 lanes with fused multiply-adds) they part by more than 1e-12, as our
# own trajectory does when only its summation order or one ulp changes
# (test_prodigys_trajectories_move_by_rounding_alone).
# SOAP's eigen- and QR decompositions come from another LAPACK (PyTorch's) than
# numpy's, and differ in the last bits; one ulp of each QR factor moves our own
# trajectories by more than 1e-12, and by more than 1e-11 where the basis is refreshed
# every 3 steps (test_soaps_trajectories_move_by_rounding_alone).
RTOL = {"prodigy": 1e-11, "prodigy_decoupled_wd": 1e-11,
        "prodigy_coupled_wd_bias_correction": 1e-10,
        "soap": 1e-11, "soap_frequency_3_small_dims": 1e-9}


@pytest.mark.parametrize("path", ["kernel", "reference"])
@pytest.mark.parametrize("name", sorted(PACKAGES[0]["runs"]))
def test_preset_paper_follows_the_authors_package(name, path):
    meta, arrays = PACKAGES
    snaps = replay_package(name, path)
    assert sorted(snaps) == sorted(k.split(".")[1] for k in arrays if k.startswith(name + "."))
    for key, got in snaps.items():
        np.testing.assert_allclose(np.stack(got), arrays[f"{name}.{key}"],
                                   rtol=RTOL.get(name, 1e-12), atol=1e-15,
                                   err_msg=f"{name}, {key}")


def _largest_change(a, b):
    return max(float(np.max(np.abs(np.stack(a[k]) - np.stack(b[k])) / np.abs(np.stack(a[k]))))
               for k in a)


def test_soaps_trajectories_move_by_rounding_alone(monkeypatch):
    """RTOL's reason for SOAP: every QR factor one ulp off moves our own reference."""
    from tinygrad_opt.optim import soap
    power_iteration = soap.power_iteration

    def nudged(L, Q, v, axis):
        Q, v = power_iteration(L, Q, v, axis)
        return np.nextafter(Q, np.inf), v
    for name, least in (("soap", 1e-12), ("soap_frequency_3_small_dims", 1e-11)):
        plain = replay_package(name, "reference")
        with monkeypatch.context() as m:
            m.setattr(soap, "power_iteration", nudged)
            assert _largest_change(plain, replay_package(name, "reference")) > least


def test_prodigys_trajectories_move_by_rounding_alone(monkeypatch):
    """RTOL's reason: our own reference, with the inner products summed exactly rounded
    (math.fsum) instead of by np.dot, moves by more than 1e-12 on the default run; one
    ulp added to every weight at step 200 of the bias-corrected run moves its step 300
    by more than 1e-12 (its d grows 1.05x a step, and rounding grows with it)."""
    import math
    from tinygrad_opt.optim import prodigy
    plain = replay_package("prodigy", "reference")
    with monkeypatch.context() as m:
        m.setattr(prodigy.np, "dot", lambda x, y: math.fsum(x * y))
        assert _largest_change(plain, replay_package("prodigy", "reference")) > 1e-12
    name = "prodigy_coupled_wd_bias_correction"
    plain, step = replay_package(name, "reference"), prodigy.Prodigy.step

    def nudged(self):
        step(self)
        if self.t == 200:
            self.params[0].data[...] = np.nextafter(self.params[0].data, np.inf)
    monkeypatch.setattr(prodigy.Prodigy, "step", nudged)
    assert _largest_change(plain, replay_package(name, "reference")) > 1e-12


def _lbfgs_closure(params, arrays, calls):
    """make_torch.py's L-BFGS loss (two L2-regularised logistic regressions) and its
    gradients into .grad, in numpy float64."""
    def closure():
        calls[0] += 1
        loss = 0.0
        for p, x, t in zip(params, ("x1", "x2"), ("t1", "t2")):
            x, t = arrays[f"lbfgs.{x}"], arrays[f"lbfgs.{t}"]
            z = -t * (x @ p.data)
            loss += float(np.mean(np.logaddexp(0.0, z))) + 0.025 * float(np.sum(p.data ** 2))
            p.grad = x.T @ (-t / (1 + np.exp(-z)) / z.size) + 0.05 * p.data
        return loss
    return closure


@pytest.mark.parametrize("name", sorted(TORCH[0]["lbfgs"]["runs"]))
def test_lbfgs_follows_pytorchs_steps_and_closure_calls(name):
    """Each step(closure) of torch.optim.LBFGS, with and without its strong-Wolfe line
    search: the parameters after it, the loss it returns and how often it called the
    closure."""
    from tinygrad_opt.optim import LBFGS
    meta, arrays = TORCH
    run = meta["lbfgs"]["runs"][name]
    params = [Tensor(arrays[f"start{i}"].copy(), requires_grad=True, dtype=np.float64)
              for i in range(2)]
    calls = [0]
    closure = _lbfgs_closure(params, arrays, calls)
    opt = LBFGS(params, **run["kwargs"])
    for step in range(meta["lbfgs"]["steps"]):
        loss = opt.step(closure)
        assert loss == pytest.approx(run["losses"][step], rel=1e-12)
        assert calls[0] == run["closure_calls"][step]
        for i, p in enumerate(params):
            np.testing.assert_allclose(p.data, arrays[f"{name}.p{i}"][step], rtol=1e-12,
                                       atol=1e-15, err_msg=f"{name}, step {step + 1}")
