"""The methods the experiments run: an update rule, its hyperparameters, and a batch
regime. The article's eight first (`ARTICLE_METHODS`, the default of `make mnist`), then
the rules that came after Adam.

Gradient descent, stochastic gradient descent and mini-batch gradient descent share one
update rule (`SGD`) and differ only in how many samples feed each step; the optimizer
stays pure and the method carries the batch regime, which the trainer reads.

| name      | rule     | hyperparameters        | samples per step    | article's row      |
|-----------|----------|------------------------|---------------------|--------------------|
| gd        | SGD      | lr 0.01                | the whole train set | (discussed, not run) |
| sgd       | SGD      | lr 0.01                | 1                   | (discussed, not run) |
| minibatch | SGD      | lr 0.01                | 64                  | SGD                |
| momentum  | SGD      | lr 0.001, momentum 0.9 | 64                  | SGD with momentum  |
| adagrad   | Adagrad  | Keras defaults         | 64                  | Adagrad            |
| rmsprop   | RMSprop  | Keras defaults         | 64                  | RMSprop            |
| adadelta  | Adadelta | Keras defaults         | 64                  | Adadelta           |
| adam      | Adam     | Keras defaults         | 64                  | Adam               |

The momentum row: the article's "SGD with momentum" tracks its plain-SGD row almost
exactly (0.9697 against 0.9693 at epoch 10), which Keras' defaults (lr 0.01, momentum
0.9) would not: with momentum 0.9 the effective step is lr / (1 - momentum), ten times
the plain row's at lr 0.01, while lr 0.001 gives the plain-SGD step of 0.01. Our `make mnist` run
with it: 0.9150, 0.9563, 0.9687 at epochs 1, 5 and 10, against the article's 0.9168,
0.9585, 0.9697 (docs/results/mnist/). We use it.

The rules after Adam run with their published defaults (each rule's default preset:
Keras' where Keras ships the rule, PyTorch's for RAdam and Rprop, the authors' package's
for the Schedule-Free rules and Prodigy) and the article's batch
of 64; `nesterov` takes the momentum row's lr 0.001 and momentum 0.9 (neither library
gives SGD a default momentum):

| name     | rule  | hyperparameters                 | preset |
|----------|-------|---------------------------------|--------|
| nesterov | SGD   | lr 0.001, momentum 0.9, nesterov | keras |
| amsgrad  | Adam  | amsgrad=True                    | keras  |
| adamw    | AdamW | defaults (weight decay 0.004)   | keras  |
| nadam    | NAdam | defaults                        | keras  |
| radam    | RAdam | defaults                        | torch  |
| lion     | Lion  | defaults                        | keras  |
| muon     | Muon  | defaults (AdamW for the rest)   | keras  |
| rprop    | Rprop | defaults                        | torch  |
| adamax   | Adamax | defaults                       | keras  |
| lamb     | Lamb  | defaults                        | keras  |
| adafactor | Adafactor | defaults                   | keras  |
"""
from dataclasses import dataclass, field

from ..tensor import Tensor

from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .lamb import Lamb
from .lbfgs import LBFGS
from .lion import Lion
from .muon import Muon
from .nadam import NAdam
from .prodigy import Prodigy
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .schedule_free import AdamWScheduleFree, SGDScheduleFree
from .sgd import SGD
from .soap import SOAP

FULL_BATCH = None   # batch_size of gradient descent: every training sample in one step


@dataclass(frozen=True)
class Method:
    """One of the article's methods.

    Attributes:
        name: registry key. title: the name in tables and plots.
        optimizer: the update rule's class. hyperparameters: overrides of its preset.
        batch_size: samples per step; FULL_BATCH (None) for the whole training set.
        article_row: the row of the article's results table it corresponds to, or None.
        lr_grid: the learning rates the tuned protocols try where none are given
            (`--lr-grid`); None: the study's log grid from 1e-5 to 1. A rule whose lr is
            a multiplier around 1 (Prodigy's) or whose default is at 1 (Schedule-Free
            SGD's) has its own.
    """
    name: str
    title: str
    optimizer: type
    hyperparameters: dict = field(default_factory=dict)
    batch_size: int = 64
    article_row: str = None
    lr_grid: tuple = None

    def make(self, params, preset=None, **overrides):
        """The optimizer for `params`: preset values (None: the rule's default preset),
        then this method's, then overrides."""
        return self.optimizer(params, preset=preset, **{**self.hyperparameters, **overrides})


METHODS = {m.name: m for m in [
    Method("gd", "Gradient descent (full batch)", SGD, batch_size=FULL_BATCH),
    Method("sgd", "Stochastic gradient descent (1 sample)", SGD, batch_size=1),
    Method("minibatch", "Mini-batch gradient descent", SGD, article_row="SGD"),
    Method("momentum", "SGD with momentum", SGD, dict(lr=0.001, momentum=0.9),
           article_row="SGD with momentum"),
    Method("adagrad", "Adagrad", Adagrad, article_row="Adagrad"),
    Method("rmsprop", "RMSprop", RMSprop, article_row="RMSprop"),
    Method("adadelta", "AdaDelta", Adadelta, article_row="Adadelta"),
    Method("adam", "Adam", Adam, article_row="Adam"),
    Method("nesterov", "SGD with Nesterov momentum", SGD,
           dict(lr=0.001, momentum=0.9, nesterov=True)),
    Method("amsgrad", "Adam (AMSGrad)", Adam, dict(amsgrad=True)),
    Method("adamw", "AdamW", AdamW),
    Method("nadam", "NAdam", NAdam),
    Method("radam", "RAdam", RAdam),
    Method("lion", "Lion", Lion),
    Method("muon", "Muon", Muon),
    Method("rprop", "Rprop", Rprop),
    Method("adamax", "Adamax", Adamax),
    Method("lamb", "LAMB", Lamb),
    Method("adafactor", "Adafactor", Adafactor),
    Method("sf_sgd", "Schedule-Free SGD", SGDScheduleFree,
           lr_grid=(0.001, 0.00316, 0.01, 0.0316, 0.1, 0.316, 1.0, 3.16, 10.0)),
    Method("sf_adamw", "Schedule-Free AdamW", AdamWScheduleFree),
    Method("prodigy", "Prodigy", Prodigy,
           lr_grid=(0.1, 0.178, 0.316, 0.562, 1.0, 1.78, 3.16, 5.62, 10.0)),
    Method("soap", "SOAP", SOAP),
    Method("lbfgs", "L-BFGS (full batch)", LBFGS, dict(line_search_fn="strong_wolfe"),
           batch_size=FULL_BATCH),
]}
ARTICLE_METHODS = ("gd", "sgd", "minibatch", "momentum", "adagrad", "rmsprop", "adadelta",
                   "adam")
# `make study`'s: the article's batch-64 methods and full-batch GD (the one-sample row
# alone would take longer than all the others: docs/protocol.md)
STUDY_METHODS = ("gd", "minibatch", "momentum", "adagrad", "rmsprop", "adadelta", "adam")


def get_method(name):
    """The method called `name`. Raises ValueError listing the known names."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None


def parse_assignments(items, what="--set"):
    """["adam.lr=0.01", ...] -> {"adam": {"lr": 0.01}} (values: numbers, true/false, or
    comma-separated lists with --grid). Raises ValueError naming the bad item."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot or not name or not value:
            raise ValueError(f"{what} {item!r}: expected method.key=value")
        if method not in METHODS:
            raise ValueError(f"{what} {item!r}: unknown method {method!r}; known: "
                             f"{', '.join(METHODS)}")
        parsed = [_value(v, item, what) for v in value.split(",")]
        out.setdefault(method, {})[name] = parsed if what == "--grid" else parsed[0]
        if what == "--set" and len(parsed) > 1:
            raise ValueError(f"{what} {item!r}: one value (a list of values is --grid)")
        for v in parsed:              # the rule checks the name and every value now
            try:
                METHODS[method].make([Tensor([0.0], requires_grad=True)], **{name: v})
            except (TypeError, ValueError) as e:
                raise ValueError(f"{what} {item!r}: {e}") from None
    return out


def _value(text, item, what):
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{what} {item!r}: {text!r} is not a number") from None
    return int(number) if number.is_integer() and "." not in text and "e" not in \
        text.lower() else number
