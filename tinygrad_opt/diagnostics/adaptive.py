"""The preconditioned sharpness of an adaptive rule (Cohen et al. 2022, "Adaptive
gradient methods at the edge of stability"): the largest eigenvalue of P⁻¹ H, with P
the rule's current diagonal preconditioner written so that its update reads

    Adam:     w ← w - lr · P⁻¹ m,   m ← β1 m + (1 - β1) g      stable while λ1(P⁻¹H) < (2 + 2β1) / ((1 - β1) lr)
    RMSprop:  w ← w - lr · P⁻¹ g   (heavy-ball momentum μ)     stable while λ1(P⁻¹H) < (2 + 2μ) / lr
    Adagrad:  w ← w - lr · P⁻¹ g                              stable while λ1(P⁻¹H) < 2 / lr

on a quadratic with P frozen; 38/lr for Adam at β1 = 0.9. Each P is read off the rule's
state and its formula options (optim/adam.py, rmsprop.py, adagrad.py):

    Adam (Keras' eps):   P = (1 - β1^t) (sqrt(v) + eps) / sqrt(1 - β2^t)
    Adam (PyTorch's):    P = (1 - β1^t) (sqrt(v / (1 - β2^t)) + eps)    (v_max with AMSGrad)
    RMSprop:             P = sqrt(s + eps) or sqrt(s) + eps,  s = v (- ḡ² centred)
    Adagrad:             P = sqrt(a + eps) or sqrt(a) + eps

P⁻¹H has the eigenvalues of the symmetric P^(-1/2) H P^(-1/2), on which Lanczos runs.
"""
import math

import numpy as np

from ..optim import SGD, Adagrad, Adam, RMSprop
from .hessian import _flat, _Point, _split, lanczos


def _root(x, eps, eps_in_sqrt):
    return np.sqrt(x + eps) if eps_in_sqrt else np.sqrt(x) + eps


def preconditioner(optimizer):
    """(P as a list of arrays of the parameters' shapes, the stability threshold) of an
    Adam (AdamW), RMSprop or Adagrad optimizer that has taken at least one step."""
    if not isinstance(optimizer, (Adam, RMSprop, Adagrad)):
        raise TypeError(f"preconditioned sharpness: Adam, AdamW, RMSprop or Adagrad, got "
                        f"{type(optimizer).__name__}")
    if optimizer.t == 0:
        raise ValueError("preconditioned sharpness: the optimizer has taken no step yet "
                         "(its preconditioner is its state after a step)")
    t, out, thresholds = optimizer.t, [], set()
    for state, gi in zip(optimizer.state, optimizer._group_of):
        h = optimizer.param_groups[gi]
        if isinstance(optimizer, Adam):
            v = state.get("v_max", state["v"])
            b1, b2 = h["beta1"], h["beta2"]
            if h["eps_inside_correction"]:
                p = (1 - b1 ** t) * (np.sqrt(v / (1 - b2 ** t)) + h["eps"])
            else:
                p = (1 - b1 ** t) * (np.sqrt(v) + h["eps"]) / math.sqrt(1 - b2 ** t)
            thresholds.add((2 + 2 * b1) / ((1 - b1) * h["lr"]))
        elif isinstance(optimizer, RMSprop):
            s = state["v"] - state["g_avg"] ** 2 if h["centered"] else state["v"]
            p = _root(s, h["eps"], h["eps_in_sqrt"])
            thresholds.add((2 + 2 * h["momentum"]) / h["lr"])
        else:
            p = _root(state["a"], h["eps"], h["eps_in_sqrt"])
            thresholds.add(2 / h["lr"])
        out.append(np.asarray(p, dtype=np.float64))
    if len(thresholds) > 1:
        raise ValueError("preconditioned sharpness: the parameter groups have different "
                         "thresholds (learning rates or betas); give one group")
    return out, thresholds.pop()


def sharpness_threshold(optimizer):
    """The sharpness above which the rule's step is unstable on a quadratic: 2/lr for
    gradient descent and any rule measured without its preconditioner; (2 + 2μ)/lr for
    SGD with heavy-ball momentum μ, (2 + 2μ)/((1 + 2μ) lr) with Nesterov's."""
    h = optimizer.param_groups[0]
    if isinstance(optimizer, SGD) and h.get("momentum", 0) > 0:
        mu = h["momentum"]
        return (2 + 2 * mu) / (((1 + 2 * mu) if h.get("nesterov") else 1) * h["lr"])
    return 2 / h["lr"]


def preconditioned_sharpness(loss_fn, optimizer, max_iter=100, tol=1e-3, seed=0,
                             model=None):
    """The largest eigenvalue of P⁻¹ H at the parameters' current values, P the
    optimizer's current preconditioner (see the module's docstring), by Lanczos with the
    tolerance of `hessian_eigenvalues`.

    Returns: (the preconditioned sharpness, the rule's stability threshold).
    Cost: two gradients an iteration."""
    scale, threshold = preconditioner(optimizer)
    point = _Point(loss_fn, optimizer.params, model)
    inv_root = _flat([1 / np.sqrt(p) for p in scale], point.dtype)

    def matvec(x):
        return inv_root * _flat(point.hvp(_split(inv_root * x, point.theta)), point.dtype)

    start = np.random.default_rng(seed).standard_normal(inv_root.size).astype(point.dtype)
    values, _, _, _, _ = lanczos(matvec, start, max_iter, 1, tol)
    return float(values.max()), float(threshold)
