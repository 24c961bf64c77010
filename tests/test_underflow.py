"""Optimizer state that underflows is set to zero (optim/underflow.py): no rule keeps a
subnormal value in a state it decays, the kernel and the reference flush alike, and the
flush changes no weight of a trained model."""
import contextlib

import numpy as np
import pytest

from tinygrad_opt import Tensor, nn, reference
from tinygrad_opt.optim import (SGD, Adadelta, Adafactor, Adam, Adamax, AdamW,
                                AdamWScheduleFree, Lamb, NAdam, Prodigy, RAdam, RMSprop, SOAP)
from tinygrad_opt.optim.underflow import keep_subnormals

# Each rule's decay rates at 0.5, so that a state falls from 1e-4 to float32's subnormal
# range within about 120 steps of zero gradient.
FLUSHING = {
    "momentum_keras": (SGD, dict(lr=0.1, momentum=0.5)),
    "nesterov_torch": (SGD, dict(lr=0.1, momentum=0.5, nesterov=True, preset="torch")),
    "adam": (Adam, dict(beta1=0.5, beta2=0.5)),
    "adam_torch_amsgrad": (Adam, dict(beta1=0.5, beta2=0.5, preset="torch", amsgrad=True)),
    "adamw_torch": (AdamW, dict(beta1=0.5, beta2=0.5, preset="torch")),
    "nadam": (NAdam, dict(beta1=0.5, beta2=0.5)),
    "radam": (RAdam, dict(beta1=0.5, beta2=0.5)),
    "rmsprop": (RMSprop, dict(rho=0.5)),
    "rmsprop_centered_momentum": (RMSprop, dict(rho=0.5, centered=True, momentum=0.5)),
    "rmsprop_torch_momentum": (RMSprop, dict(rho=0.5, momentum=0.5, preset="torch")),
    "adadelta": (Adadelta, dict(rho=0.5)),
    "adamax": (Adamax, dict(beta1=0.5, beta2=0.5)),
    "lamb": (Lamb, dict(beta1=0.5, beta2=0.5)),
    # PyTorch's form (Keras' adds eps1 = 1e-30 to g², a floor in the normal range);
    # weight t^-0.1 decays v by a factor of 0.1 to 0.4 a step
    "adafactor_torch": (Adafactor, dict(preset="torch", beta2_decay=-0.1)),
    "prodigy": (Prodigy, dict(beta1=0.5, beta2=0.5, beta3=0.5)),
    "soap": (SOAP, dict(beta1=0.5, beta2=0.5, weight_decay=0.0)),     # a vector: Adam
    "sf_adamw": (AdamWScheduleFree, dict(beta2=0.5)),
}
TINY = np.finfo(np.float32).tiny
DECAYING = ("m", "v", "b", "g_avg", "s", "u", "variance",     # v_max never decreases
            "L0", "L1")                                         # SOAP's factors


def _subnormals(opt):
    return sum(int(np.sum((a != 0) & (np.abs(a) < TINY)))
               for s in opt.state for k, a in s.items() if k in DECAYING)


def _run(cls, hyper, steps=200):
    """Two gradients of magnitude 1e-6..1e-3, then zeros: the most subnormal state values
    seen at any step, the weights and the state."""
    rng = np.random.default_rng(0)
    p = Tensor(rng.standard_normal(1000), requires_grad=True, dtype=np.float32)
    opt = cls([p], **hyper)
    if hasattr(opt, "train"):           # Schedule-Free: steps are taken in train mode
        opt.train()
    most = 0
    for t in range(steps):
        p.grad = (rng.choice([-1, 1], 1000) * 10.0 ** rng.uniform(-6, -3, 1000)
                  if t < 2 else np.zeros(1000)).astype(np.float32)  # SOAP: its first
                                                                     # step sets up only
        opt.step()
        most = max(most, _subnormals(opt))
    return most, [p.data] + [a for s in opt.state for a in s.values()]


@pytest.mark.parametrize("name", sorted(FLUSHING))
def test_decaying_state_holds_no_subnormal_numbers(name):
    cls, hyper = FLUSHING[name]
    runs = {}
    for path in ("kernel", "reference"):
        with reference(path == "reference"):
            runs[path] = _run(cls, hyper)
            with keep_subnormals():
                kept, _ = _run(cls, hyper)
        assert runs[path][0] == 0, f"{path}: {runs[path][0]} subnormal state values"
        assert kept > 100, f"{path}: the test never reached the subnormal range"
    for got, want in zip(runs["kernel"][1], runs["reference"][1]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("rule", ["adam", "rmsprop", "momentum"])
def test_the_flush_changes_no_weight_of_a_trained_model(rule, mnist_small):
    """A dense network trained on 20,000 MNIST images in float32 (one epoch, 1,250
    steps: the pixels near the border are rarely lit, and their weights' state decays
    between the images that light them) with
    the article's rules at their defaults: the weights bit for bit the same with and
    without the flush, after the unflushed run held subnormal state values."""
    x, y = mnist_small
    make = {"adam": lambda ps: Adam(ps), "rmsprop": lambda ps: RMSprop(ps),
            "momentum": lambda ps: SGD(ps, momentum=0.9)}[rule]
    weights, most = [], []
    for keep in (False, True):
        model = nn.Sequential(nn.Linear(784, 16, rng=0), nn.ReLU(), nn.Linear(16, 10, rng=1))
        opt = make(model.parameters())
        seen = 0
        with keep_subnormals() if keep else contextlib.nullcontext():
            for i in range(0, len(x), 16):
                opt.zero_grad()
                nn.functional.cross_entropy(model(Tensor(x[i:i + 16])),
                                            y[i:i + 16]).backward()
                opt.step()
                seen = max(seen, _subnormals(opt))
        weights.append([p.data.copy() for p in model.parameters()])
        most.append(seen)
    assert most[0] == 0 and most[1] > 0, most
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def mnist_small():
    from tinygrad_opt.data import load, to_float
    data = load("mnist")
    return to_float(data.train_images[:20000]).reshape(-1, 784), data.train_labels[:20000]


def test_soaps_shampoo_factors_hold_no_subnormal_numbers():
    """SOAP's L and R (lerp toward G·Gᵀ and Gᵀ·G, like a second moment) decay where a
    row or column of the gradient stops: on the article's CNN, units that go quiet left
    subnormal rows in the dense layer's 5,408 x 5,408 L, and its refresh's product L·Q
    then ran 48 to 77 times slower (docs/performance.md). They are flushed like m and v."""
    rng = np.random.default_rng(0)

    def run():
        p = Tensor(rng.standard_normal((30, 20)), requires_grad=True, dtype=np.float32)
        opt = SOAP([p], beta1=0.5, beta2=0.5, shampoo_beta=0.5, weight_decay=0.0,
                   precondition_frequency=5)
        most = 0
        for t in range(200):
            g = rng.choice([-1, 1], (30, 20)) * 10.0 ** rng.uniform(-6, -3, (30, 20))
            p.grad = (g if t < 3 else np.zeros((30, 20))).astype(np.float32)
            opt.step()
            most = max(most, _subnormals(opt))
            assert np.all(np.isfinite(p.data))
        return most

    assert run() == 0
    with keep_subnormals():
        assert run() > 100          # the test reaches the subnormal range
