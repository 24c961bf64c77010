"""One trial of a study: a method with its hyperparameters, trained from a seed on a data
set for some epochs, scored after every epoch. A trial is a plain dict (its *spec*), so it
can cross to a worker process or a Ray task and name its result file; `run_trial` is
all a worker runs.

Determinism: the model's weights, its dropout masks and the shuffling all come from the
trial's seed; the kernels' results do not depend on the thread count (Numba's parallel
loops write independent outputs; see jit.py), so a trial gives the same history on any
backend, any worker count and on a rerun (tests/test_study.py checks it).
"""
import hashlib
import json
import math
import os
import re
import time

import numpy as np

from .. import __version__

# The held-out split of the tuned protocol: the last VAL_SIZE training images of a fixed
# permutation (seed VAL_SEED), the same for every trial; the test images are never used
# to choose a setting.
VAL_SEED = 20261129
SPEC_KEYS = ("method", "dataset", "seed", "hyper", "epochs", "limit", "batch_size", "split",
             "val_size")       # what defines a trial; the report's target does not
PROBLEM_KEYS = ("problem", "method", "seed", "hyper", "epochs", "quick", "phase")


def make_spec(method, dataset="mnist", seed=0, hyper=None, epochs=10, limit=None,
              batch_size=None, split="test", val_size=10000):
    """A trial's spec. split: "test" (train on the training images, score on the test
    images) or "val" (train on the training images less a held-out split, score on it)."""
    return dict(method=method, dataset=dataset, seed=int(seed), hyper=dict(hyper or {}),
                epochs=int(epochs), limit=limit, batch_size=batch_size, split=split,
                val_size=int(val_size))


def make_problem_spec(problem, method, seed=0, hyper=None, epochs=None, quick=False,
                      phase="final"):
    """A trial of the suite: `method` on the problem named `problem` (a registered name
    or "package.module:function"), `epochs` of its budget (None: all of it), the quick
    variant if `quick`; phase: "tuning" or "final" (which step of a protocol it is).
    problem may also be a Problem itself (its name goes in the spec)."""
    from ..problems import Problem, get_problem
    p = get_problem(problem)
    budget = p.quick_variant().epochs if quick else p.epochs
    name = problem.name if isinstance(problem, Problem) else str(problem)
    return dict(problem=name, method=method, seed=int(seed),
                hyper=dict(hyper or {}), epochs=int(budget if epochs is None else epochs),
                quick=bool(quick), phase=phase)


def trial_id(spec):
    """A stable name: readable fields and a hash of the whole spec."""
    keys = PROBLEM_KEYS if "problem" in spec else SPEC_KEYS
    text = json.dumps({k: spec[k] for k in keys}, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    lr = spec["hyper"].get("lr")
    tag = f"-lr{lr:.3g}" if lr is not None else ""
    if "problem" in spec:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", spec["problem"])
        return f"{name}-{spec['method']}{tag}-s{spec['seed']}-{spec['phase']}-{digest}"
    return f"{spec['dataset']}-{spec['method']}{tag}-s{spec['seed']}-{spec['split']}-{digest}"


_DATA = {}


def _data(dataset, data_dir=None):
    from ..data import load
    if dataset not in _DATA:
        _DATA[dataset] = load(dataset, data_dir)
    return _DATA[dataset]


def split_data(spec, data_dir=None):
    """(train, val) arrays for the spec: inputs and labels."""
    data = _data(spec["dataset"], data_dir)
    x, y = data.train_images, data.train_labels
    if spec["split"] == "val":
        order = np.random.default_rng(VAL_SEED).permutation(len(x))
        held, kept = order[-spec["val_size"]:], order[:-spec["val_size"]]
        kept = np.sort(kept)[:spec["limit"]]
        return (x[kept], y[kept]), (x[np.sort(held)], y[np.sort(held)])
    return (x[:spec["limit"]], y[:spec["limit"]]), (data.test_images, data.test_labels)


def run_trial(spec, data_dir=None):
    """Train the spec's trial; return its result (a dict: the spec, the history, and
    where and how fast it ran). A loss that becomes NaN or inf ends the trial early,
    with `diverged` set (a learning rate too large for the rule: a result, not an error)."""
    from ..train import NonFiniteLoss
    from ..train.experiment import make_trainer, processor

    if "problem" in spec:
        return run_problem_trial(spec)
    t0 = time.perf_counter()
    train, val = split_data(spec, data_dir)
    trainer = make_trainer(spec["method"], spec["seed"], batch_size=spec["batch_size"],
                           overrides=spec["hyper"])
    diverged = False
    try:
        trainer.fit(train, val, epochs=spec["epochs"])
    except NonFiniteLoss:
        diverged = True
    history = [dict(h) for h in trainer.history]
    return dict(spec=spec, id=trial_id(spec), history=history, diverged=diverged,
                train_samples=len(train[0]), val_samples=len(val[0]),
                seconds=time.perf_counter() - t0, pid=os.getpid(),
                threads=_threads(), version=__version__, processor=processor())


TRAINER_METRIC = {"accuracy": "accuracy", "mse": "mse", "loss": None}


def run_problem_trial(spec, problem=None):
    """Train a suite trial (make_problem_spec): the problem's model from the seed, the
    method's optimizer with the spec's hyperparameters (the problem's batch size for
    every method), evaluated after every epoch. Each epoch of the history carries
    `value`, the problem's validation metric; a loss or metric that becomes NaN or inf
    ends the trial with `diverged` set. problem: the Problem itself (default: the
    spec's, looked up by name)."""
    from ..optim import METHODS
    from ..problems import get_problem
    from ..train import NonFiniteLoss, Trainer
    from ..train.experiment import processor

    t0 = time.perf_counter()
    problem = problem or get_problem(spec["problem"])
    if spec["quick"]:
        problem = problem.quick_variant()
    train, valid = problem.data(None, seed=spec["seed"])
    model = problem.model(spec["seed"])
    optimizer = METHODS[spec["method"]].make(model.parameters(), **spec["hyper"])
    trainer = Trainer(model, optimizer, loss=problem.loss, seed=spec["seed"],
                      batch_size=problem.batch_size, verbose=0, transform=problem.transform,
                      metric=TRAINER_METRIC[problem.metric],
                      clip_grad_norm=problem.clip_grad_norm)
    diverged = False
    try:
        trainer.fit(train, valid, epochs=spec["epochs"])
    except NonFiniteLoss:
        diverged = True
    history = []
    for h in trainer.history:
        if not all(math.isfinite(v) for k, v in h.items() if k.startswith(("train_", "val_"))):
            diverged = True                   # a finite training loss, a non-finite metric
            break
        history.append(dict(h, value=h[problem.key]))
    return dict(spec=spec, id=trial_id(spec), history=history, diverged=diverged,
                seconds=time.perf_counter() - t0, pid=os.getpid(), threads=_threads(),
                version=__version__, processor=processor())


def _threads():
    import numba
    return int(numba.get_num_threads())


def deterministic(result):
    """The parts of a result that must not depend on where or how fast it ran."""
    keep = ("epoch", "train_loss", "train_acc", "train_mse", "val_loss", "val_acc",
            "val_mse", "value", "updates")
    return dict(id=result["id"], diverged=result["diverged"],
                history=[{k: h[k] for k in keep if k in h} for h in result["history"]])


def to_target(result, target):
    """(updates, train seconds) until the first epoch whose validation accuracy reaches
    target (or, target a function of an epoch's dict, for which it is true); (inf, inf)
    when none does."""
    reached = target if callable(target) else (lambda h: h["val_acc"] >= target)
    updates = seconds = 0.0
    for h in result["history"]:
        updates += h["updates"]
        seconds += h["train_seconds"]
        if reached(h):
            return updates, seconds
    return float("inf"), float("inf")
