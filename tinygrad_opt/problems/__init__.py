"""The suite's problems: which optimizer, for which problem?

A problem is everything a comparison of update rules holds fixed: a model (drawn from a
seed), its data (a training and a validation set), its loss, the metric on the
validation set that decides (and whether higher is better), a batch size, a budget (in
epochs, each followed by an evaluation) and a target on the metric. One file per
problem, as DeepOBS (Schneider et al. 2019) lays its test problems out; `PROBLEMS` holds
them by name, `tinygrad-opt problems` lists them, `tinygrad-opt study --problems`
trains rules on them (docs/suite.md), and `get_problem("package.module:function")` loads
a problem of one's own (docs/your-own-problem.md).
"""
import importlib
import math
from dataclasses import dataclass, replace
from typing import Callable

from ..nn.functional import softmax_cross_entropy

METRICS = {"accuracy": "val_acc", "mse": "val_mse", "loss": "val_loss"}


@dataclass(frozen=True)
class Problem:
    """A test problem (see the module docstring).

    Attributes:
        name: its registry key. title: the name in tables and plots.
        model: model(seed) -> a Module whose weights are drawn from `seed`.
        data: data(data_dir) -> (train, valid), each what `Trainer.fit` takes (an
            (inputs, targets) pair of arrays, a dataset, or a re-iterable of batches).
            data_dir: None, or the folder of the data set's files.
        metric: "accuracy" (higher is better), "mse" or "loss" (lower is better): the
            validation value the target and the ranking are about.
        target: the validation metric a run must reach within its budget.
        batch_size, epochs: samples per step, and the budget: evaluations after each
            epoch (a re-iterable's pass is an epoch).
        loss: loss(outputs, targets) -> scalar Tensor. transform: applied to each
            batch of inputs (Trainer's). clip_grad_norm: Trainer's, or None.
        size: the model and data in a line, and where a size was reduced from the
            original problem's (and why).
        calibration: how the target was set (the runs behind it).
        quick: quick() -> this problem on a small budget (`make suite-quick`); None:
            2 epochs at most, on the first 1,000 training and validation samples.
    """
    name: str
    title: str
    model: Callable
    data: Callable
    metric: str
    target: float
    batch_size: int
    epochs: int
    loss: Callable = softmax_cross_entropy
    transform: Callable = None
    clip_grad_norm: float = None
    size: str = ""
    calibration: str = ""
    quick: Callable = None

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ValueError(f"problem {self.name!r}: metric must be one of "
                             f"{', '.join(METRICS)}, got {self.metric!r}")
        for key in ("batch_size", "epochs"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"problem {self.name!r}: {key} must be a whole number "
                                 f">= 1, got {value!r}")
        if not isinstance(self.target, (int, float)) or not math.isfinite(self.target):
            raise ValueError(f"problem {self.name!r}: target must be a finite number, "
                             f"got {self.target!r}")

    @property
    def higher_is_better(self):
        return self.metric == "accuracy"

    @property
    def key(self):
        """The history's key of the metric: val_acc, val_mse or val_loss."""
        return METRICS[self.metric]

    def reached(self, value):
        """Whether a validation metric value meets the target."""
        return value >= self.target if self.higher_is_better else value <= self.target


    def quick_variant(self):
        """This problem on a small budget, for a quick look and for the tests."""
        if self.quick is not None:
            return self.quick()

        def data(data_dir=None, seed=0):
            train, valid = self.data(data_dir, seed)
            return _head(train, QUICK_SAMPLES), _head(valid, QUICK_SAMPLES)

        return replace(self, epochs=min(self.epochs, 2), data=data)


QUICK_SAMPLES = 1000


def _head(data, n):
    """The first n samples of an (inputs, targets) pair of arrays; other forms as given."""
    if isinstance(data, tuple) and len(data) == 2:
        return data[0][:n], data[1][:n]
    return data


def _registry():
    from . import (austen_char_transformer, fmnist_2c2d, mnist_autoencoder, mnist_cnn,
                   mnist_logreg, mnist_mlp, quadratic_deep)
    found = [quadratic_deep.PROBLEM, mnist_logreg.PROBLEM, mnist_mlp.PROBLEM,
             mnist_cnn.PROBLEM, fmnist_2c2d.PROBLEM, mnist_autoencoder.PROBLEM,
             austen_char_transformer.PROBLEM]
    return {p.name: p for p in found}


PROBLEMS = _registry()


def get_problem(name):
    """The registered problem `name`, or a user's: "package.module:function" imports the
    module and calls the function (no arguments), which returns a Problem. This runs
    the user's code, by intent. Raises ValueError naming what is wrong."""
    if isinstance(name, Problem):
        return name
    if name in PROBLEMS:
        return PROBLEMS[name]
    if ":" not in str(name):
        raise ValueError(f"unknown problem {name!r}; known: {', '.join(PROBLEMS)}, or "
                         f"package.module:function for one of your own")
    module_name, _, function = str(name).partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"problem {name!r}: cannot import {module_name!r} ({e})") from None
    make = getattr(module, function, None)
    if not callable(make):
        raise ValueError(f"problem {name!r}: {module_name} has no function {function!r}")
    problem = make()
    if not isinstance(problem, Problem):
        raise ValueError(f"problem {name!r}: {function}() returned a "
                         f"{type(problem).__name__}, not a tinygrad_opt.problems.Problem")
    return problem


def train(problem, method="adam", seed=0, hyper=None, quick=False):
    """Train one run of `method` (a name of `optim.METHODS`) on `problem` (a Problem or
    a name) in this process, as the study's trials train: its model from `seed`, the
    problem's batch size, evaluated after every epoch. Returns the trial's result: a
    dict whose "history" holds one dict per epoch (train_loss, val_loss, `value` the
    problem's metric, updates, seconds) and "diverged"."""
    from ..study.trials import make_problem_spec, run_problem_trial
    problem = get_problem(problem)
    spec = make_problem_spec(problem, method, seed, hyper, quick=quick)
    return run_problem_trial(spec, problem=problem)


__all__ = ["Problem", "PROBLEMS", "METRICS", "get_problem", "train"]
