"""Writes the one-step examples of docs/conventions.md: each difference between Keras'
and PyTorch's form of a rule (and the paper's, where the rule has a "paper" preset),
computed with this package's presets, which the tests hold to PyTorch's and Keras' own
trajectories (tests/test_conventions.py).

    python tools/conventions.py --write     (rewrites the table between the markers in
                                             docs/conventions.md; a test checks it)
"""
import os
import sys

import numpy as np

from tinygrad_opt import Tensor
from tinygrad_opt.optim import SGD, Adadelta, Adagrad, Adam, AdamW, Lion, Muon, NAdam, RAdam
from tinygrad_opt.optim import (LBFGS, Adafactor, Adamax, AdamWScheduleFree, Lamb, Prodigy,
                                RMSprop, Rprop, SGDScheduleFree, SOAP)

# (rule, what differs, class, keyword arguments (all presets), gradients per step,
#  lr per step or None)
EXAMPLES = [
    ("SGD", "default lr (0.01 / 0.001)", SGD, {}, [1.0], None),
    ("SGD", "momentum buffer (-lr·g summed / g summed) when lr drops from 0.1 to 0.01 at "
     "step 3, momentum 0.9", SGD, dict(momentum=0.9), [1.0, 1.0, 1.0], [0.1, 0.1, 0.01]),
    ("SGD", "weight_decay 0.1 (decoupled / coupled), lr 0.1", SGD,
     dict(lr=0.1, weight_decay=0.1), [0.0], None),
    ("Adagrad", "defaults: lr, initial accumulator (0.1 / 0), eps (1e-7 inside the root / "
     "1e-10 outside)", Adagrad, {}, [1e-3], None),
    ("RMSprop", "defaults: lr (0.001 / 0.01), rho (0.9 / 0.99), eps (1e-7 inside the root / "
     "1e-8 outside)", RMSprop, {}, [1e-3], None),
    ("RMSprop", "eps's place alone, lr 0.001, rho 0.9, eps 1e-7, g 1e-4", RMSprop,
     dict(lr=0.001, rho=0.9, eps=1e-7), [1e-4], None),
    ("Adadelta", "defaults: lr (0.001 / 1.0 / 1.0), rho (0.95 / 0.9 / 0.95), eps (1e-7 / "
     "1e-6 / 1e-6)", Adadelta, {}, [1.0], None),
    ("Adam", "eps (1e-7 beside sqrt(v) / 1e-8 beside sqrt(v/(1-beta2^t)) / 1e-8 beside "
     "sqrt(v)), g 1e-6", Adam, {}, [1e-6], None),
    ("Adam", "weight_decay 0.1 (decoupled / coupled), lr 0.01, g 1e-3", Adam,
     dict(lr=0.01, weight_decay=0.1), [1e-3], None),
    ("AdamW", "defaults: weight decay (0.004 / 0.01), eps (1e-7 / 1e-8), g 1e-3", AdamW, {},
     [1e-3], None),
    ("NAdam", "defaults: lr (0.001 / 0.002), momentum schedule (0.96^t / 0.96^(0.004·t)), "
     "eps, g 1", NAdam, {}, [1.0], None),
    ("NAdam", "the momentum schedule alone, lr 0.001, eps 1e-8, step 20 of g = 1", NAdam,
     dict(lr=0.001, eps=1e-8), [1.0] * 20, None),
    ("RAdam", "Keras ships none", RAdam, {}, [1.0] * 6, None),
    ("Lion", "PyTorch ships none", Lion, {}, [1e-3], None),
    ("Rprop", "Keras ships none; the first step size (0.01 / 0.1, the paper's Δ0), two "
     "steps of g = 1", Rprop, {}, [1.0, 1.0], None),
    ("Adamax", "defaults: lr (0.001 / 0.002), eps (1e-7 beside u / 1e-8 inside the "
     "maximum), g 1e-9", Adamax, {}, [1e-9], None),
    ("Adafactor", "defaults: lr (0.001 / 0.01, both times RMS(w) = 1), eps1 (1e-30 added "
     "to g² / clamped), g 1e-3", Adafactor, {}, [1e-3], None),
    ("Schedule-Free SGD", "neither ships it: the authors' package, lr 1.0, after eval() "
     "(the average x), two steps of g = 0.1", SGDScheduleFree, {}, [0.1, 0.1], None),
    ("Schedule-Free AdamW", "neither ships it: lr 0.0025, after eval(), two steps of "
     "g = 0.1", AdamWScheduleFree, {}, [0.1, 0.1], None),
    ("Prodigy", "neither ships it: the first step from d0 = 1e-6, g 1", Prodigy, {}, [1.0],
     None),
    ("SOAP", "neither ships it: the first step only sets up (a vector: Adam), two steps of "
     "g = 1e-3", SOAP, {}, [1e-3, 1e-3], None),
]
LAMB = ("LAMB", "PyTorch ships none; weight decay (0 / – / 0.01 inside the trust ratio), "
        "eps (1e-7 / 1e-6); w = [1, 2], g = [1, 0], entry 0")
MUON = ("Muon", "defaults: momentum (sum / EMA), scale (0.2·sqrt(max(rows, cols)) / "
        "sqrt(max(1, rows/cols))), weight decay (0.004 / 0.1), eps's place; the (3, 2) "
        "matrix of ones with gradient [[1, 0], [0, 1], [1, 1]], entry [0, 0]")


def one(cls, kwargs, grads, lrs, preset, start=1.0):
    p = Tensor(np.array([start]), requires_grad=True, dtype=np.float64)
    try:
        opt = cls([p], preset=preset, **kwargs)
    except ValueError:
        return None
    if hasattr(opt, "train"):              # Schedule-Free: gradients at y
        opt.train()
    for t, g in enumerate(grads):
        if lrs is not None:
            opt.lr = lrs[t]
        p.grad = np.array([g])
        opt.step()
    if hasattr(opt, "eval"):               # the value reported: the average x
        opt.eval()
    return p.data[0]


LBFGS_ROW = ("L-BFGS", "Keras ships none; one step(closure) on f(w) = (w - 3)²/2 from "
             "w = 1 (first t = min(1, 1/abs(g))·lr = 0.5, then the curvature pair: the "
             "minimum)")


def lbfgs(preset):
    p = Tensor(np.array([1.0]), requires_grad=True, dtype=np.float64)
    try:
        opt = LBFGS([p], preset=preset)
    except ValueError:
        return None

    def closure():
        p.grad = p.data - 3.0
        return float(0.5 * (p.data[0] - 3.0) ** 2)
    opt.step(closure)
    return p.data[0]


def lamb(preset):
    p = Tensor(np.array([1.0, 2.0]), requires_grad=True, dtype=np.float64)
    try:
        opt = Lamb([p], preset=preset)
    except ValueError:
        return None
    p.grad = np.array([1.0, 0.0])
    opt.step()
    return p.data[0]


def muon(preset):
    p = Tensor(np.ones((3, 2)), requires_grad=True, dtype=np.float64)
    opt = Muon([p], preset=preset)
    p.grad = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    opt.step()
    return p.data[0, 0]


def paper(cls, kwargs):
    """Whether the paper column applies: the rule has a paper preset, and the example
    is not about weight decay (which the Adam and Adadelta papers do not have)."""
    return "paper" in cls.presets and "weight_decay" not in kwargs


def fmt(x):
    return "none" if x is None else f"{x:.10g}"


def table():
    lines = ["| rule | what differs | steps | Keras | PyTorch | paper |",
             "|---|---|---|---|---|---|"]
    for rule, what, cls, kwargs, grads, lrs in EXAMPLES:
        cells = [fmt(one(cls, kwargs, grads, lrs, p)) for p in ("keras", "torch")]
        cells.append(fmt(one(cls, kwargs, grads, lrs, "paper")) if paper(cls, kwargs) else "–")
        lines.append(f"| {rule} | {what} | {len(grads)} | " + " | ".join(cells) + " |")
    lines.append(f"| {MUON[0]} | {MUON[1]} | 1 | {fmt(muon('keras'))} | {fmt(muon('torch'))} "
                 f"| none |")
    lines.append(f"| {LAMB[0]} | {LAMB[1]} | 1 | {fmt(lamb('keras'))} | {fmt(lamb('torch'))} "
                 f"| {fmt(lamb('paper'))} |")
    lines.append(f"| {LBFGS_ROW[0]} | {LBFGS_ROW[1]} | 1 | {fmt(lbfgs('keras'))} | "
                 f"{fmt(lbfgs('torch'))} | {fmt(lbfgs('paper'))} |")
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- examples: tools/conventions.py -->\n", "<!-- end of examples -->\n"
DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                   "conventions.md")


def current():
    """The doc as it should read: its text with the table between the markers redone."""
    text = open(DOC, encoding="utf-8").read()
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return head + BEGIN + table() + END + tail


if __name__ == "__main__":
    text = current()
    if "--write" in sys.argv:
        with open(DOC, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        print(table(), end="")
