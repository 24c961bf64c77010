"""Gradient clipping, PyTorch's names: applied to the parameters' .grad between
`backward()` and `step()`."""
import math

import numpy as np


def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    """Scale every gradient by max_norm / total_norm when the total norm (of all the
    gradients together, as one vector) exceeds max_norm.

    Returns the total norm before clipping. A non-finite total norm (NaN or inf in a
    gradient) is returned and nothing is scaled: scaling by it would turn every gradient
    into NaN and hide where the fault was; the optimizer's step then reports it.
    """
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be positive, got {max_norm}")
    if not float(norm_type) > 0:                # 0 divides by zero, NaN clips nothing
        raise ValueError(f"clip_grad_norm_: norm_type must be a positive number or inf, "
                         f"got {norm_type}")
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    with np.errstate(over="ignore", invalid="ignore"):
        if norm_type == math.inf:
            total = max(float(np.abs(g).max(initial=0)) for g in grads)
        else:
            total = sum(float(np.sum(np.abs(g.astype(np.float64)) ** norm_type))
                        for g in grads) ** (1.0 / norm_type)
    if not math.isfinite(total):
        return total
    if total > max_norm:
        scale = max_norm / (total + 1e-6)            # PyTorch's 1e-6, against 0 / 0
        for g in grads:
            g *= g.dtype.type(scale)
    return total


def clip_grad_value_(parameters, clip_value):
    """Limit every gradient element to [-clip_value, clip_value], in place (NaN stays)."""
    if not clip_value > 0:
        raise ValueError(f"clip_grad_value_: clip_value must be positive, got {clip_value}")
    for p in parameters:
        if p.grad is not None:
            np.clip(p.grad, -clip_value, clip_value, out=p.grad)
