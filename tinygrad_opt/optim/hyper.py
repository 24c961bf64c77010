"""Hyperparameters: what a value may be, checked where it enters (the constructor, a
parameter group, `opt.lr = ...`, a schedule's write, a loaded state).

A value is typed by its default's kind: a float default takes any real number (as a
Python float: no numpy float64 upcasting), a bool default only True or False (`lr=True`
is no learning rate, `nesterov=1.0` no switch), an int default only whole numbers, a
tuple default that many numbers; strings and None are left to the rule's `validate`.
"""
import math
import numbers

import numpy as np


def is_number(v):
    """A real number, not a bool and not NaN."""
    return (isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
            and not math.isnan(v))


def check_whole(name, value, low=1, none_means=None):
    """A whole number >= low (not a bool, a float or a string), or None where
    `none_means` says what None stands for; ValueError naming `name` otherwise."""
    if value is None and none_means:
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or value < low:
        extra = f" or None ({none_means})" if none_means else ""
        raise ValueError(f"{name} must be a whole number >= {low}{extra}, got {value!r}")


def typed(name, values, kinds):
    """`values` as Python values of the kinds of `kinds` (its defaults), or ValueError
    naming the rule `name`, the key and the value."""
    out = {}
    for k, v in values.items():
        kind = kinds.get(k, 0.0)
        if isinstance(kind, bool):
            if not isinstance(v, (bool, np.bool_)):
                raise ValueError(f"{name}: {k} must be True or False, got {v!r}")
            out[k] = bool(v)
        elif isinstance(kind, int):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
                raise ValueError(f"{name}: {k} must be a whole number, got {v!r}")
            out[k] = int(v)
        elif isinstance(kind, tuple):
            if not isinstance(v, (tuple, list)) or len(v) != len(kind) or not all(
                    is_number(x) for x in v):
                raise ValueError(f"{name}: {k} must be {len(kind)} numbers, got {v!r}")
            out[k] = tuple(float(x) for x in v)
        elif kind is None or isinstance(kind, str):
            out[k] = v
        else:
            if not is_number(v):
                raise ValueError(f"{name}: {k} must be a number, got {v!r}")
            out[k] = float(v)
    return out


def check_range(name, key, value, low=0.0, high=1.0):
    """low <= value < high (a decay rate: beta1, rho, momentum)."""
    if not low <= value < high:
        raise ValueError(f"{name}: {key} must be in [{low:g}, {high:g}), got {value}")


def check_positive(name, key, value):
    """0 < value < inf (eps)."""
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name}: {key} must be a positive finite number, got {value}")


def check_nonnegative(name, key, value):
    """0 <= value < inf (lr: 0 is where a cosine schedule ends; weight decay)."""
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"{name}: {key} must be a finite number >= 0, got {value}")


def keras_lr(name, hyper, learning_rate):
    """Keras' `learning_rate=` beside `lr=` (refused when the two disagree)."""
    if learning_rate is None:
        return hyper
    if hyper.get("lr") is not None and hyper["lr"] != learning_rate:
        raise ValueError(f"{name}: lr={hyper['lr']} and learning_rate={learning_rate} "
                         f"disagree; give one")
    return dict(hyper, lr=learning_rate)


def pair(name, value, first, second, what="betas", parts=("beta1", "beta2")):
    """PyTorch's tuple form (betas=(beta1, beta2), Rprop's etas and step_sizes) beside
    the two values by name, Keras' form (refused if they disagree)."""
    if value is None:
        return first, second
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name}: {what} must be ({parts[0]}, {parts[1]}), got {value!r}")
    if (first, second) != (None, None) and (first, second) != tuple(value):
        raise ValueError(f"{name}: {what}={tuple(value)} and {parts[0]}={first}, "
                         f"{parts[1]}={second} disagree; give one form")
    return tuple(value)
