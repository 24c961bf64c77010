"""The optimizer base: parameters, per-parameter state, the step counter, validation,
non-finite gradients and saving. The update rules live one per file beside it."""
import math
import numbers

import numpy as np

from .._jit import use_reference
from ..autograd import Outer


class Optimizer:
    """Base class: subclasses define `presets`, `state_names`, `init_state`, `validate`,
    `reference_update` (numpy, readable) and `kernel_update` (Numba, fused).

    Args:
        params: iterable of Tensors (float32 or float64) to update in place.
        preset: whose default hyperparameters fill those not given: "keras" (the
            article's, the default) or "paper" (the method's original paper, for the
            rules whose paper gives defaults of its own: Adam, Adadelta; the others
            refuse it rather than hand out Keras' numbers under the paper's name).
        nonfinite: what `step()` does when a gradient holds NaN or inf: "raise" (default;
            `FloatingPointError`, nothing is updated) or "skip" (nothing is updated, the
            step is counted in `skipped_steps`, training goes on).
        learning_rate: Keras' name for lr (give one of them).
        **hyper: hyperparameters; None means "from the preset".

    Attributes:
        t: number of updates applied so far (the first `step()` runs with t = 1).
        state: one dict of numpy arrays per parameter (names in `state_names`).
    """

    presets = {"keras": {}}
    no_paper_preset = None      # why a rule has no "paper" preset, if it has none
    state_names = ()

    def __init__(self, params, preset="keras", nonfinite="raise", learning_rate=None,
                 **hyper):
        name = type(self).__name__
        if learning_rate is not None:       # Keras' word for lr
            if hyper.get("lr") is not None and hyper["lr"] != learning_rate:
                raise ValueError(f"{name}: lr={hyper['lr']} and learning_rate="
                                 f"{learning_rate} disagree; give one")
            hyper["lr"] = learning_rate
        if preset not in self.presets:
            why = (f" ({self.no_paper_preset})" if preset == "paper" and
                   self.no_paper_preset else "")
            raise ValueError(f"{name}: no preset {preset!r}{why}; known: "
                             f"{', '.join(self.presets)}")
        if nonfinite not in ("raise", "skip"):
            raise ValueError(f"{name}: nonfinite must be 'raise' or 'skip', got {nonfinite!r}")
        values = dict(self.presets["keras"], **self.presets[preset])
        values.update({k: v for k, v in hyper.items() if v is not None})
        self.hyper = values = self._typed(values)
        self.validate(**values)
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{name}: got an empty parameter list")
        seen = {}
        for i, p in enumerate(self.params):
            first = seen.setdefault(id(p), i)
            if first != i:          # it would be updated twice per step
                raise ValueError(f"{name}: parameter {i} is the same Tensor as parameter "
                                 f"{first}; list each parameter once")
            data = getattr(p, "data", None)
            if not isinstance(data, np.ndarray) or data.dtype not in (np.float32, np.float64):
                raise TypeError(f"{name}: parameter {i} must be a Tensor of float32 or "
                                f"float64, got {type(p).__name__} of "
                                f"{getattr(data, 'dtype', None)}")
            if not data.flags.c_contiguous:
                p.data = np.ascontiguousarray(data)
        self.preset, self.nonfinite = preset, nonfinite
        self.t = 0
        self.skipped_steps = 0
        self.state = [self.init_state(p.data) for p in self.params]

    def _typed(self, values):
        """Hyperparameters as Python floats, and bools where the rule's default is a bool
        (nesterov): `lr=True` is no learning rate, `nesterov=1.0` no switch."""
        name, defaults = type(self).__name__, self.presets["keras"]
        for k, v in values.items():
            if isinstance(defaults.get(k), bool):
                if not isinstance(v, (bool, np.bool_)):
                    raise ValueError(f"{name}: {k} must be True or False, got {v!r}")
                values[k] = bool(v)
            elif isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) \
                    or math.isnan(v):
                raise ValueError(f"{name}: {k} must be a number, got {v!r}")
            else:
                values[k] = float(v)    # Python floats: no numpy float64 upcasting
        return values

    # --- for subclasses ---------------------------------------------------------------
    def init_state(self, w):
        return {k: np.zeros_like(w) for k in self.state_names}

    def validate(self, **hyper):
        if not hyper.get("lr", 1.0) > 0 or math.isinf(hyper.get("lr", 1.0)):
            raise ValueError(f"{type(self).__name__}: lr must be a positive finite number, "
                             f"got {hyper.get('lr')}")

    def _check_range(self, name, value, low=0.0, high=1.0):
        if not low <= value < high:
            raise ValueError(f"{type(self).__name__}: {name} must be in [{low:g}, {high:g}), "
                             f"got {value}")

    def _check_positive(self, name, value):
        if not value > 0 or math.isinf(value):
            raise ValueError(f"{type(self).__name__}: {name} must be a positive finite "
                             f"number, got {value}")

    @property
    def lr(self):
        """The learning rate; setting it is checked as the constructor checks it (a
        schedule's way in: `opt.lr = 0.5 * opt.lr`)."""
        return self.hyper["lr"]

    @lr.setter
    def lr(self, value):
        hyper = self._typed(dict(self.hyper, lr=value))
        self.validate(**hyper)
        self.hyper = hyper

    # --- the PyTorch verbs ------------------------------------------------------------
    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def outer_update(self, w, g, state):
        """Apply a gradient held as an outer product (`autograd.Outer`) without building
        the array, and return True; or return False to have it built and passed to
        `kernel_update`. The base class always builds it; plain SGD does not (sgd.py)."""
        return False

    def step(self):
        """Apply one update to every parameter that has a gradient."""
        grads = [p.stored_grad for p in self.params]   # arrays, or Outer (see sgd.py)
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if g is None:
                continue
            if not isinstance(g, (np.ndarray, Outer)) or g.shape != p.data.shape \
                    or _dtype(g) != p.data.dtype:   # the kernels would read past the end
                raise ValueError(
                    f"{type(self).__name__}: the gradient of parameter {i} is "
                    f"{type(g).__name__} of shape {getattr(g, 'shape', None)} and dtype "
                    f"{_dtype(g)}; the parameter has shape {p.data.shape} and dtype "
                    f"{p.data.dtype}; nothing was updated")
        for i, g in enumerate(grads):
            if g is not None and not _all_finite(g):
                if self.nonfinite == "skip":
                    self.skipped_steps += 1
                    return
                with np.errstate(over="ignore", invalid="ignore"):
                    g = self.params[i].grad
                raise FloatingPointError(
                    f"{type(self).__name__}: the gradient of parameter {i} (shape "
                    f"{g.shape}) has {int(np.sum(~np.isfinite(g)))} NaN or inf values at "
                    f"step {self.t + 1}; no parameter was updated")
        self.t += 1
        reference = use_reference()
        update = self.reference_update if reference else self.kernel_update
        for p, g, state in zip(self.params, grads, self.state):
            if g is None:
                continue
            if isinstance(g, Outer):
                if not reference and self.outer_update(p.data, g, state):
                    continue
                g = p.grad                                   # the array, built once
            update(p.data, np.ascontiguousarray(g), state)

    # --- saving -----------------------------------------------------------------------
    def state_dict(self):
        """Step counter, hyperparameters and copies of every state array."""
        return {"t": self.t, "skipped_steps": self.skipped_steps,
                "hyperparameters": dict(self.hyper),
                "state": [{k: v.copy() for k, v in s.items()} for s in self.state]}

    def load_state_dict(self, state_dict):
        """Restore what `state_dict` saved: the run then continues bit for bit."""
        name = type(self).__name__
        saved = state_dict["state"]
        if len(saved) != len(self.state):
            raise ValueError(f"{name}.load_state_dict: {len(saved)} parameter states "
                             f"saved, this optimizer has {len(self.state)} parameters")
        hyper = dict(state_dict["hyperparameters"])
        if set(hyper) != set(self.hyper):
            raise KeyError(f"{name}.load_state_dict: hyperparameters {sorted(hyper)} saved, "
                           f"this optimizer has {sorted(self.hyper)}")
        hyper = self._typed(hyper)
        self.validate(**hyper)
        t, skipped = state_dict["t"], state_dict.get("skipped_steps", 0)
        for k, v in (("t", t), ("skipped_steps", skipped)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"{name}.load_state_dict: {k} must be a whole number "
                                 f">= 0, got {v!r}")
        previous, self.hyper = self.hyper, hyper   # first: which state exists can depend
        try:                                       # on it (SGD's momentum)
            self.state = self._checked_state(saved)
        except (KeyError, ValueError):
            self.hyper = previous                  # a failed load changes nothing
            raise
        self.t, self.skipped_steps = int(t), int(skipped)

    def _checked_state(self, saved):
        """Fresh state arrays filled from `saved`, after checking names and shapes."""
        name = type(self).__name__
        fresh = [self.init_state(p.data) for p in self.params]
        for i, (mine, theirs) in enumerate(zip(fresh, saved)):
            if set(mine) != set(theirs):
                raise KeyError(f"{name}.load_state_dict: parameter {i} has state "
                               f"{sorted(mine)}, got {sorted(theirs)}")
            for k in mine:
                value = np.asarray(theirs[k])
                if mine[k].shape != value.shape:
                    raise ValueError(f"{name}.load_state_dict: state {k!r} of parameter "
                                     f"{i} has shape {mine[k].shape}, got {value.shape}")
                if value.dtype.kind not in "biuf":
                    raise ValueError(f"{name}.load_state_dict: state {k!r} of parameter "
                                     f"{i} is of dtype {value.dtype}, not numbers")
                if np.isnan(value).any():
                    raise ValueError(f"{name}.load_state_dict: state {k!r} of parameter "
                                     f"{i} holds {int(np.isnan(value).sum())} NaN values")
                np.copyto(mine[k], value, casting="same_kind")
        return fresh

    def __repr__(self):
        hyper = ", ".join(f"{k}={v:g}" if not isinstance(v, bool) else f"{k}={v}"
                          for k, v in self.hyper.items())
        return f"{type(self).__name__}({hyper})"


def _dtype(g):
    return g.col.dtype if isinstance(g, Outer) else getattr(g, "dtype", None)


def _all_finite(g):
    """No NaN or inf in the gradient g (an array, or an Outer col ⊗ row: its products are
    all finite when both factors are and max|col| * max|row| stays below the dtype's
    largest value)."""
    if not isinstance(g, Outer):
        return bool(np.isfinite(g).all())
    if not (np.isfinite(g.col).all() and np.isfinite(g.row).all()):
        return False
    biggest = float(np.abs(g.col).max(initial=0)) * float(np.abs(g.row).max(initial=0))
    if biggest <= float(np.finfo(g.col.dtype).max):
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(g.materialize()).all())
