"""The optimizer base: parameter groups, per-parameter state, the step counter,
presets, weight decay, validation, non-finite gradients and saving. The update rules
live one per file beside it.

Weight decay, for every rule, in one of two forms (`decoupled_weight_decay`):

    coupled (L2):   g ← g + weight_decay·w          before the rule sees g
    decoupled:      w ← w·(1 - lr·weight_decay)     before the rule's own update

For plain SGD the two are the same step. For the adaptive rules they differ: the coupled
term passes through the rule's per-coordinate scaling (divided by sqrt(v) in Adam), so
weights with large gradients are decayed less; the decoupled form shrinks every weight
by the same factor (Loshchilov & Hutter 2019, "Decoupled weight decay regularization",
which is AdamW). PyTorch's `weight_decay` is the coupled form (its AdamW, and Adam with
`decoupled_weight_decay=True`, the decoupled one); Keras' `weight_decay` is the
decoupled form on every optimizer. Each preset sets `decoupled_weight_decay` as its
library does; an explicit keyword overrides it.
"""
import math
import numbers

import numpy as np

from .._jit import prange, serial_or_parallel, use_reference
from ..autograd import Outer

# Each library's weight-decay convention: the preset's default for every rule.
WEIGHT_DECAY = {"keras": dict(weight_decay=0.0, decoupled_weight_decay=True),
                "torch": dict(weight_decay=0.0, decoupled_weight_decay=False),
                "paper": dict(weight_decay=0.0, decoupled_weight_decay=False)}


def coupled_decay_reference(g, w, weight_decay):
    """g + weight_decay·w, a new array (the parameter's own gradient is left as it is)."""
    return g + weight_decay * w


def decoupled_decay_reference(w, lr, weight_decay):
    """w ← w·(1 - lr·weight_decay), in place."""
    w *= 1 - lr * weight_decay


def _coupled_loops(g, w, weight_decay, out):
    for i in prange(g.size):
        out[i] = g[i] + weight_decay * w[i]


def _scale_loops(w, factor):
    for i in prange(w.size):
        w[i] *= factor


_coupled_kernel = serial_or_parallel(_coupled_loops)
_scale_kernel = serial_or_parallel(_scale_loops)


class Optimizer:
    """Base class: subclasses define `presets`, `state_names`, `init_state`, `validate`,
    `reference_update` (numpy, readable) and `kernel_update` (Numba, fused); the two
    updates receive `h`, the parameter's group hyperparameters.

    Args:
        params: the Tensors (float32 or float64) to update in place: an iterable of
            Tensors, or, as in PyTorch, of dicts {"params": [...], "lr": 0.01, ...}
            (parameter groups: each key given overrides the optimizer's defaults for
            that group's parameters).
        preset: whose defaults fill the hyperparameters not given, and whose formula
            runs: "keras" (the article's), "torch" (PyTorch 2.13's) or "paper" (the
            method's publication); a rule lacks the presets whose source has no such
            rule or no defaults, and refuses them with the reason. None: the rule's
            `default_preset` ("keras" for the article's rules).
        nonfinite: what `step()` does when a gradient holds NaN or inf: "raise" (default;
            `FloatingPointError`, nothing is updated) or "skip" (nothing is updated, the
            step is counted in `skipped_steps`, training goes on).
        learning_rate: Keras' name for lr (give one of them).
        **hyper: hyperparameters; None means "from the preset".

    Attributes:
        param_groups: list of dicts, each with "params" (its Tensors) and every
            hyperparameter. A schedule changes them between steps (`group["lr"] = ...`);
            `step()` checks a changed value as the constructor does.
        defaults: the hyperparameters groups start from (preset, then keywords).
        t: number of updates applied so far (the first `step()` runs with t = 1).
        state: one dict of numpy arrays per parameter (names in `state_names`), in the
            order of `params` (every group's parameters, group after group).
    """

    presets = {"keras": {}}
    no_preset = {}              # preset -> why this rule has none
    default_preset = "keras"
    state_names = ()

    def __init__(self, params, preset=None, nonfinite="raise", learning_rate=None,
                 **hyper):
        name = type(self).__name__
        if learning_rate is not None:       # Keras' word for lr
            if hyper.get("lr") is not None and hyper["lr"] != learning_rate:
                raise ValueError(f"{name}: lr={hyper['lr']} and learning_rate="
                                 f"{learning_rate} disagree; give one")
            hyper["lr"] = learning_rate
        preset = self.default_preset if preset is None else preset
        if preset not in self.presets:
            why = f" ({self.no_preset[preset]})" if preset in self.no_preset else ""
            raise ValueError(f"{name}: no preset {preset!r}{why}; known: "
                             f"{', '.join(self.presets)}")
        if nonfinite not in ("raise", "skip"):
            raise ValueError(f"{name}: nonfinite must be 'raise' or 'skip', got {nonfinite!r}")
        self.preset, self.nonfinite = preset, nonfinite
        values = dict(WEIGHT_DECAY[preset], **self.presets[preset])
        unknown = set(hyper) - set(values)
        if unknown:
            raise TypeError(f"{name}: unknown hyperparameter(s) {', '.join(sorted(unknown))}")
        values.update({k: v for k, v in hyper.items() if v is not None})
        self.defaults = values = self._typed(values)
        self.validate(**values)
        self.param_groups, self.params, self._group_of = [], [], []
        groups = list(params) if not isinstance(params, dict) else [params]
        if groups and all(isinstance(g, dict) for g in groups):
            for g in groups:
                self.add_param_group(g, _initial=True)
        elif any(isinstance(g, dict) for g in groups):
            raise TypeError(f"{name}: params must be all Tensors or all dicts (parameter "
                            f"groups), not a mixture")
        else:
            self.add_param_group({"params": groups}, _initial=True)
        if not self.params:
            raise ValueError(f"{name}: got an empty parameter list")
        self.t = 0
        self.skipped_steps = 0
        self._checked = [None] * len(self.param_groups)

    def add_param_group(self, group, _initial=False):
        """Add a group {"params": [...], key: value, ...}: its keys override `defaults`."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: a parameter group is a dict with a 'params' key, "
                            f"got {type(group).__name__}")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"{name}: parameter group {len(self.param_groups)} has unknown "
                             f"key(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(self.defaults)}")
        params = group["params"]
        params = [params] if hasattr(params, "data") else list(params)
        hyper = self._typed({**self.defaults, **{k: v for k, v in group.items()
                                                  if k != "params"}})
        self.validate(**hyper)
        seen = {id(p): i for i, p in enumerate(self.params)}
        for i, p in enumerate(params, start=len(self.params)):   # all checked first: a
            first = seen.setdefault(id(p), i)                     # refused group adds
            if first != i:          # it would be updated twice per step     # nothing
                raise ValueError(f"{name}: parameter {i} is the same Tensor as parameter "
                                 f"{first}; list each parameter once")
            data = getattr(p, "data", None)
            if not isinstance(data, np.ndarray) or data.dtype not in (np.float32, np.float64):
                raise TypeError(f"{name}: parameter {i} must be a Tensor of float32 or "
                                f"float64, got {type(p).__name__} of "
                                f"{getattr(data, 'dtype', None)}")
        for p in params:
            if not p.data.flags.c_contiguous:
                p.data = np.ascontiguousarray(p.data)
            self.params.append(p)
            self._group_of.append(len(self.param_groups))
        self.param_groups.append({"params": params, **hyper})
        if not _initial:
            self._checked.append(None)
        self.state = getattr(self, "state", []) + [
            self.init_state(p.data, hyper) for p in params]

    def _typed(self, values):
        """Hyperparameters as Python values of their default's kind: floats (no numpy
        float64 upcasting), bools where the default is a bool (`lr=True` is no learning
        rate, `nesterov=1.0` no switch), whole numbers where it is an int, tuples of
        floats where it is a tuple; strings and None are left to `validate`."""
        name = type(self).__name__
        kinds = dict(WEIGHT_DECAY["keras"], **self.presets[self.preset])
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
                        _is_number(x) for x in v):
                    raise ValueError(f"{name}: {k} must be {len(kind)} numbers, got {v!r}")
                out[k] = tuple(float(x) for x in v)
            elif kind is None or isinstance(kind, str):
                out[k] = v
            else:
                if not _is_number(v):
                    raise ValueError(f"{name}: {k} must be a number, got {v!r}")
                out[k] = float(v)   # Python floats: no numpy float64 upcasting
        return out

    # --- for subclasses ---------------------------------------------------------------
    def init_state(self, w, h):
        """The state of a parameter whose data is `w`, in a group with hyperparameters h."""
        return {k: np.zeros_like(w) for k in self.state_names}

    def validate(self, **hyper):
        lr = hyper.get("lr", 1.0)
        if not lr >= 0 or math.isinf(lr):   # 0 is where a cosine schedule ends
            raise ValueError(f"{type(self).__name__}: lr must be a finite number >= 0, "
                             f"got {lr}")
        wd = hyper.get("weight_decay", 0.0)
        if not wd >= 0 or math.isinf(wd):
            raise ValueError(f"{type(self).__name__}: weight_decay must be a finite number "
                             f">= 0, got {wd}")

    def weight_decay_of(self, w, h):
        """The weight decay applied to parameter data w in a group with hyperparameters h
        (Muon decays its AdamW-stepped parameters by another amount)."""
        return h["weight_decay"]

    def _check_range(self, name, value, low=0.0, high=1.0):
        if not low <= value < high:
            raise ValueError(f"{type(self).__name__}: {name} must be in [{low:g}, {high:g}), "
                             f"got {value}")

    def _check_positive(self, name, value):
        if not value > 0 or math.isinf(value):
            raise ValueError(f"{type(self).__name__}: {name} must be a positive finite "
                             f"number, got {value}")

    # --- hyperparameters --------------------------------------------------------------
    def _one_group(self, what):
        if len(self.param_groups) != 1:
            raise AttributeError(f"{type(self).__name__}.{what}: the optimizer has "
                                 f"{len(self.param_groups)} parameter groups; use "
                                 f"param_groups[i]")
        return self.param_groups[0]

    @property
    def hyper(self):
        """The hyperparameters of the one parameter group (a copy; change them through
        `param_groups` or `lr`)."""
        return {k: v for k, v in self._one_group("hyper").items() if k != "params"}

    @property
    def lr(self):
        """The learning rate of the one parameter group; setting it is checked as the
        constructor checks it (a schedule's way in: `opt.lr = 0.5 * opt.lr`)."""
        return self._one_group("lr")["lr"]

    @lr.setter
    def lr(self, value):
        group = self._one_group("lr")
        hyper = self._typed({k: v for k, v in group.items() if k != "params"} | {"lr": value})
        self.validate(**hyper)
        group["lr"] = hyper["lr"]

    def _group_hyper(self):
        """Each group's hyperparameters, checked again where a group changed since the
        last step (a schedule writes floats there; a typo must not train silently)."""
        out = []
        for i, group in enumerate(self.param_groups):
            key = tuple((k, v) for k, v in group.items() if k != "params")
            ids = tuple(map(id, group["params"]))
            if self._checked[i] is None or self._checked[i][0] != key \
                    or self._checked[i][1] != ids:
                if ids != tuple(id(p) for p, g in zip(self.params, self._group_of)
                                if g == i):
                    raise ValueError(f"{type(self).__name__}: param_groups[{i}]['params'] "
                                     f"was changed; add parameters with add_param_group")
                unknown = set(group) - set(self.defaults) - {"params"}
                if unknown or set(self.defaults) - set(group):
                    raise ValueError(f"{type(self).__name__}: param_groups[{i}] has keys "
                                     f"{sorted(k for k in group if k != 'params')}, "
                                     f"expected {sorted(self.defaults)}")
                try:
                    hyper = self._typed(dict(key))
                    self.validate(**hyper)
                except ValueError as e:
                    raise ValueError(f"param_groups[{i}]: {e}") from None
                self._checked[i] = (key, ids, hyper)
            out.append(self._checked[i][2])
        return out

    # --- the PyTorch verbs ------------------------------------------------------------
    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def outer_update(self, w, g, state, h):
        """Apply a gradient held as an outer product (`autograd.Outer`) without building
        the array, and return True; or return False to have it built and passed to
        `kernel_update`. The base class always builds it; plain SGD does not (sgd.py)."""
        return False

    def step(self):
        """Apply one update to every parameter that has a gradient."""
        hypers = self._group_hyper()
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
        for p, g, state, gi in zip(self.params, grads, self.state, self._group_of):
            if g is None:
                continue
            h, w = hypers[gi], p.data
            wd = self.weight_decay_of(w, h)
            if isinstance(g, Outer):
                if not reference and not wd and self.outer_update(w, g, state, h):
                    continue
                g = p.grad                                   # the array, built once
            g = np.ascontiguousarray(g)
            if wd and h["decoupled_weight_decay"]:
                if reference:
                    decoupled_decay_reference(w, h["lr"], wd)
                else:
                    _scale_kernel(w.reshape(-1), w.dtype.type(1 - h["lr"] * wd))
            elif wd:
                if reference:
                    g = coupled_decay_reference(g, w, wd)
                else:
                    out = np.empty_like(g)
                    _coupled_kernel(g.reshape(-1), w.reshape(-1), w.dtype.type(wd),
                                    out.reshape(-1))
                    g = out
            update(w, g, state, h)

    # --- saving -----------------------------------------------------------------------
    def state_dict(self):
        """Step counter, parameter groups (hyperparameters, and the indices of their
        parameters) and copies of every state array."""
        groups, start = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            groups.append({k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in group.items() if k != "params"}
                          | {"params": list(range(start, start + n))})
            start += n
        return {"t": self.t, "skipped_steps": self.skipped_steps, "param_groups": groups,
                "state": [{k: v.copy() for k, v in s.items()} for s in self.state]}

    def load_state_dict(self, state_dict):
        """Restore what `state_dict` saved: the run then continues bit for bit."""
        name = type(self).__name__
        saved = state_dict["state"]
        if len(saved) != len(self.state):
            raise ValueError(f"{name}.load_state_dict: {len(saved)} parameter states "
                             f"saved, this optimizer has {len(self.state)} parameters")
        groups = state_dict.get("param_groups")
        if groups is None:          # an earlier version's record: one group, without the
            old = state_dict["hyperparameters"]       # keys added since (weight decay,
            groups = [dict({k: v for k, v in self.defaults.items()   # amsgrad): their
                            if k not in old}, **old,                  # defaults, which
                           params=list(range(len(saved))))]           # do what it did
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError(f"{name}.load_state_dict: groups of "
                             f"{[len(g['params']) for g in groups]} parameters saved, this "
                             f"optimizer has {[len(g['params']) for g in self.param_groups]}")
        hypers = []
        for i, g in enumerate(groups):
            hyper = {k: v for k, v in g.items() if k != "params"}
            if set(hyper) != set(self.defaults):
                raise KeyError(f"{name}.load_state_dict: hyperparameters {sorted(hyper)} "
                               f"saved, this optimizer has {sorted(self.defaults)}")
            hyper = self._typed(hyper)
            self.validate(**hyper)
            hypers.append(hyper)
        t, skipped = state_dict["t"], state_dict.get("skipped_steps", 0)
        for k, v in (("t", t), ("skipped_steps", skipped)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"{name}.load_state_dict: {k} must be a whole number "
                                 f">= 0, got {v!r}")
        self.state = self._checked_state(saved, hypers)   # raises before changing anything
        for group, hyper in zip(self.param_groups, hypers):
            group.update(hyper)
        self.t, self.skipped_steps = int(t), int(skipped)

    def _checked_state(self, saved, hypers):
        """Fresh state arrays filled from `saved`, after checking names and shapes (which
        state exists can depend on the hyperparameters: SGD's momentum)."""
        name = type(self).__name__
        fresh = [self.init_state(p.data, hypers[gi])
                 for p, gi in zip(self.params, self._group_of)]
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
        def show(v):
            return f"{v:g}" if isinstance(v, float) else repr(v)
        groups = [", ".join(f"{k}={show(v)}" for k, v in g.items() if k != "params")
                  for g in self.param_groups]
        if len(groups) == 1:
            return f"{type(self).__name__}({groups[0]})"
        return f"{type(self).__name__}({'; '.join(f'group {i}: {g}' for i, g in enumerate(groups))})"


def _is_number(v):
    return (isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
            and not math.isnan(v))


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
