"""The optimizer base: parameter groups, per-parameter state, the step, saving and
loading. The update rules live one per file beside it; what a hyperparameter may be is
checked in hyper.py, weight decay is applied by weight_decay.py.

A rule of your own needs a constructor that passes its hyperparameters on, the state of
one parameter and one update (docs/your-own-optimizer.md walks through one):

    class SignSGD(Optimizer):
        def __init__(self, params, lr=0.01):
            super().__init__(params, lr=lr)          # the keyword defaults are its defaults

        def init_state(self, w, h):                  # w: the parameter's array, h: its group
            return {}

        def reference_update(self, w, g, state, h):  # numpy, in place
            w -= h["lr"] * np.sign(g)

A fused Numba `kernel_update(w, g, state, h)` beside it is optional (the reference runs
where there is none, and always under `tinygrad_opt.reference()`); `validate(**h)` may
refuse values. The rules shipped here add `presets`: tables of defaults and formula
options, one per library whose form they reproduce.
"""
import inspect
import numbers

import numpy as np

from ..jit import use_reference
from . import hyper as H
from .weight_decay import WEIGHT_DECAY, apply_weight_decay


class Optimizer:
    """Base class of the update rules.

    Args:
        params: the Tensors (float32 or float64) to update in place: an iterable of
            Tensors, or, as in PyTorch, of dicts {"params": [...], "lr": 0.01, ...}
            (parameter groups: each key given overrides the optimizer's defaults for
            that group's parameters).
        preset: for the rules that have `presets`, whose defaults and formula options
            fill the hyperparameters not given: "keras" (the article's), "torch"
            (PyTorch 2.13's) or "paper" (the method's publication); a rule lacks the
            presets whose source has no such rule or no defaults, and refuses them with
            the reason. None: the rule's `default_preset`.
        nonfinite: what `step()` does when a gradient holds NaN or inf: "raise" (default;
            `FloatingPointError`, nothing is updated) or "skip" (nothing is updated, the
            step is counted in `skipped_steps`, training goes on).
        learning_rate: Keras' name for lr (give one of them).
        **hyper: hyperparameters, formula options included; None means "the default".

    Attributes:
        param_groups: list of dicts, each with "params" (its Tensors) and every
            hyperparameter. A schedule changes them between steps (`group["lr"] = ...`);
            `step()` checks a changed value as the constructor does.
        defaults: the hyperparameters groups start from (preset, then keywords).
        t: number of updates applied so far (the first `step()` runs with t = 1).
        state: one dict of numpy arrays per parameter, in the order of `params` (every
            group's parameters, group after group).

    For subclasses: `init_state(w, h)`, `reference_update(w, g, state, h)` (numpy, in
    place), optionally `kernel_update` (the same, fused), `validate(**h)`, `presets`
    (tables of defaults and formula options, the hyperparameters that choose a formula
    rather than a number, such as Adam's `eps_inside_correction`), `added_since`
    (hyperparameters added after states were saved without them), `begin_step(hypers)`
    (what a rule computes once per group and step: Schedule-Free's averaging weight).
    """

    presets = {}                # preset -> defaults and formula options
    no_preset = {}              # preset -> why this rule has none
    default_preset = "keras"
    added_since = ()            # keys a saved state may lack (their values: this one's)
    state_names = ()
    kernel_update = None        # a rule without a kernel runs its reference

    def __init__(self, params, preset=None, nonfinite="raise", learning_rate=None,
                 **hyper):
        name = type(self).__name__
        hyper = H.keras_lr(name, hyper, learning_rate)
        if nonfinite not in ("raise", "skip"):
            raise ValueError(f"{name}: nonfinite must be 'raise' or 'skip', got {nonfinite!r}")
        self.preset, self.nonfinite = self.resolve_preset(preset), nonfinite
        self._kinds = self._default_values(hyper)
        unknown = set(hyper) - set(self._kinds)
        if unknown:
            raise TypeError(f"{name}: unknown hyperparameter(s) {', '.join(sorted(unknown))}; "
                            f"known: {', '.join(self._kinds)}")
        values = dict(self._kinds, **{k: v for k, v in hyper.items() if v is not None})
        self.defaults = self._typed(values)
        self.validate(**self.defaults)
        self.param_groups, self.params, self._group_of, self.state = [], [], [], []
        self._checked = []
        groups = list(params) if not isinstance(params, dict) else [params]
        if groups and all(isinstance(g, dict) for g in groups):
            for g in groups:
                self.add_param_group(g)
        elif any(isinstance(g, dict) for g in groups):
            raise TypeError(f"{name}: params must be all Tensors or all dicts (parameter "
                            f"groups), not a mixture")
        else:
            self.add_param_group({"params": groups})
        if not self.params:
            raise ValueError(f"{name}: got an empty parameter list")
        self.t = 0
        self.skipped_steps = 0

    @classmethod
    def resolve_preset(cls, preset):
        """The preset to run: the one asked for, or the rule's default; ValueError with
        the reason for a preset the rule does not have."""
        name = cls.__name__
        if not cls.presets:
            if preset is not None:
                raise ValueError(f"{name} has no presets (its defaults are its "
                                 f"constructor's); got preset={preset!r}")
            return None
        if preset is None:
            preset = (cls.default_preset if cls.default_preset in cls.presets
                      else next(iter(cls.presets)))
        if preset not in cls.presets:
            why = f" ({cls.no_preset[preset]})" if preset in cls.no_preset else ""
            raise ValueError(f"{name}: no preset {preset!r}{why}; known: "
                             f"{', '.join(cls.presets)}")
        return preset

    def _default_values(self, hyper):
        """Every hyperparameter with its default: the preset's table, or for a rule
        without presets the keyword defaults of its constructor (a value given with
        no default there counts as its own default)."""
        if self.preset is not None:
            return dict(WEIGHT_DECAY[self.preset], **self.presets[self.preset])
        signature = inspect.signature(type(self).__init__).parameters
        values = dict(WEIGHT_DECAY[None])
        for k, v in hyper.items():
            default = getattr(signature.get(k), "default", inspect.Parameter.empty)
            values[k] = v if default is None or default is inspect.Parameter.empty else default
            if values[k] is None:
                raise ValueError(f"{type(self).__name__}: {k} has no default; give a value")
        return values

    def add_param_group(self, group):
        """Add a group {"params": [...], key: value, ...}: its keys override `defaults`.
        Everything is checked before anything is added."""
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
        for i, p in enumerate(params, start=len(self.params)):
            first = seen.setdefault(id(p), i)
            if first != i:          # it would be updated twice per step
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
        self._checked.append(None)
        self.state += [self.init_state(p.data, hyper) for p in params]

    def _typed(self, values):
        return H.typed(type(self).__name__, values, self._kinds)

    # --- for subclasses ---------------------------------------------------------------
    def init_state(self, w, h):
        """The state of a parameter whose data is `w`, in a group with hyperparameters h."""
        return {k: np.zeros_like(w) for k in self.state_names}

    def validate(self, **hyper):
        """Raise ValueError for values the rule cannot run with (a subclass checks its
        own and calls this for lr and weight decay)."""
        name = type(self).__name__
        H.check_nonnegative(name, "lr", hyper.get("lr", 0.0))
        H.check_nonnegative(name, "weight_decay", hyper.get("weight_decay", 0.0))

    def begin_step(self, hypers):
        """Called once a step, after `t` is counted and before any parameter is updated,
        with each group's hyperparameters: returns them, with whatever a rule computes
        once per group and step added (Schedule-Free's averaging weight)."""
        return hypers

    def weight_decay_of(self, w, h):
        """The weight decay applied to parameter data w in a group with hyperparameters h
        (Muon decays its AdamW-stepped parameters by another amount)."""
        return h.get("weight_decay", 0.0)

    def gradient(self, p, h):
        """The gradient the update receives for parameter p (None: p is not updated).
        The array `p.grad`; plain SGD takes one sample's dense-layer gradient factored."""
        return p.grad

    def _check_range(self, key, value, low=0.0, high=1.0):
        H.check_range(type(self).__name__, key, value, low, high)

    def _check_positive(self, key, value):
        H.check_positive(type(self).__name__, key, value)

    def _check_moments(self, beta1, beta2, eps=None):
        """Adam's family: beta1 and beta2 in [0, 1), and eps > 0 where the rule has one."""
        self._check_range("beta1", beta1)
        self._check_range("beta2", beta2)
        if eps is not None:
            self._check_positive("eps", eps)

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
        name = type(self).__name__
        if len(self.param_groups) != len(self._checked) or not all(
                isinstance(g, dict) and "params" in g for g in self.param_groups):
            raise ValueError(f"{name}: param_groups holds {len(self.param_groups)} entries, "
                             f"not the {len(self._checked)} groups it was given; add a group "
                             f"with add_param_group, and remove none")
        out = []
        for i, group in enumerate(self.param_groups):
            key = tuple((k, v) for k, v in group.items() if k != "params")
            ids = tuple(map(id, group["params"]))
            if self._checked[i] is None or self._checked[i][:2] != (key, ids):
                if ids != tuple(id(p) for p, g in zip(self.params, self._group_of)
                                if g == i):
                    raise ValueError(f"{type(self).__name__}: param_groups[{i}]['params'] "
                                     f"was changed; add parameters with add_param_group")
                if set(group) - {"params"} != set(self.defaults):
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
    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (set_to_none=False: fill it with zeros)."""
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = np.zeros_like(p.data)

    def step(self):
        """Apply one update to every parameter that has a gradient."""
        hypers = self._group_hyper()
        grads = [self.gradient(p, hypers[gi]) for p, gi in zip(self.params, self._group_of)]
        self._check_gradients(grads)
        if not self._all_finite(grads):
            return                                  # nonfinite="skip": counted, skipped
        self.t += 1
        hypers = self.begin_step(hypers)
        reference = use_reference() or self.kernel_update is None
        update = self.reference_update if reference else self.kernel_update
        for p, g, state, gi in zip(self.params, grads, self.state, self._group_of):
            if g is None:
                continue
            h, w = hypers[gi], p.data
            if isinstance(g, np.ndarray):
                g = np.ascontiguousarray(g)
            g = apply_weight_decay(w, g, h["lr"], self.weight_decay_of(w, h),
                                   h["decoupled_weight_decay"], reference)
            update(w, g, state, h)

    def _check_gradients(self, grads):
        """Each gradient is an array (or a factored one, `materialize()`-able) of its
        parameter's shape and dtype: the kernels would read past the end otherwise."""
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if g is None:
                continue
            if not (isinstance(g, np.ndarray) or hasattr(g, "materialize")) \
                    or g.shape != p.data.shape or g.dtype != p.data.dtype:
                raise ValueError(
                    f"{type(self).__name__}: the gradient of parameter {i} is "
                    f"{type(g).__name__} of shape {getattr(g, 'shape', None)} and dtype "
                    f"{getattr(g, 'dtype', None)}; the parameter has shape "
                    f"{p.data.shape} and dtype {p.data.dtype}; nothing was updated")

    def _all_finite(self, grads):
        """True when no gradient holds NaN or inf; else count a skipped step or raise."""
        for i, g in enumerate(grads):
            if g is None or (g.all_finite() if hasattr(g, "all_finite")
                             else np.isfinite(g).all()):
                continue
            if self.nonfinite == "skip":
                self.skipped_steps += 1
                return False
            with np.errstate(over="ignore", invalid="ignore"):
                g = self.params[i].grad
            raise FloatingPointError(
                f"{type(self).__name__}: the gradient of parameter {i} (shape "
                f"{g.shape}) has {int(np.sum(~np.isfinite(g)))} NaN or inf values at "
                f"step {self.t + 1}; no parameter was updated")
        return True

    # --- saving -----------------------------------------------------------------------
    def state_dict(self):
        """Step counter, preset, parameter groups (every hyperparameter and formula
        option, and the indices of their parameters) and copies of every state array."""
        groups, start = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            groups.append({k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in group.items() if k != "params"}
                          | {"params": list(range(start, start + n))})
            start += n
        return {"t": self.t, "skipped_steps": self.skipped_steps, "preset": self.preset,
                "param_groups": groups,
                "state": [{k: v.copy() for k, v in s.items()} for s in self.state]}

    def load_state_dict(self, state_dict):
        """Restore what `state_dict` saved, the formula options included (a state saved
        under another preset continues with its own formula): the run then continues
        bit for bit. A state saved by an earlier version lacks the hyperparameters added
        since (`added_since`): they keep this optimizer's values, which do what that
        version did.
        Nothing changes unless everything is valid."""
        name = type(self).__name__
        saved = state_dict["state"]
        if len(saved) != len(self.state):
            raise ValueError(f"{name}.load_state_dict: {len(saved)} parameter states "
                             f"saved, this optimizer has {len(self.state)} parameters")
        groups = self._saved_groups(state_dict, len(saved))
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError(f"{name}.load_state_dict: groups of "
                             f"{[len(g['params']) for g in groups]} parameters saved, this "
                             f"optimizer has {[len(g['params']) for g in self.param_groups]}")
        hypers = []
        for g, mine in zip(groups, self.param_groups):
            hyper = {k: v for k, v in g.items() if k != "params"}
            hyper |= {k: mine[k] for k in self.added_since if k not in hyper}
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
        preset = state_dict.get("preset", self.preset)
        if preset != self.preset and preset not in self.presets:
            raise ValueError(f"{name}.load_state_dict: saved under preset {preset!r}, "
                             f"which this rule does not have")
        self.state = self._checked_state(saved, hypers)   # raises before changing anything
        for group, hyper in zip(self.param_groups, hypers):
            group.update(hyper)
        self.t, self.skipped_steps, self.preset = int(t), int(skipped), preset

    def _saved_groups(self, state_dict, n):
        """The saved parameter groups; the first version's record (one hyperparameters
        dict) as one group, the keys added since at this optimizer's defaults."""
        groups = state_dict.get("param_groups")
        if groups is not None:
            return groups
        old = state_dict["hyperparameters"]
        return [dict({k: v for k, v in self.defaults.items() if k not in old}, **old,
                     params=list(range(n)))]

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
                bad = int((~np.isfinite(value)).sum())
                if bad:                     # one step later the weights would be too
                    raise ValueError(f"{name}.load_state_dict: state {k!r} of parameter "
                                     f"{i} holds {bad} NaN or inf values")
                with np.errstate(over="ignore"):
                    np.copyto(mine[k], value, casting="same_kind")
                if not np.isfinite(mine[k]).all():
                    raise ValueError(f"{name}.load_state_dict: state {k!r} of parameter "
                                     f"{i} holds values beyond {mine[k].dtype}'s range")
        return fresh

    def __repr__(self):
        def show(v):
            return f"{v:g}" if isinstance(v, float) else repr(v)
        groups = [", ".join(f"{k}={show(v)}" for k, v in g.items() if k != "params")
                  for g in self.param_groups]
        if len(groups) == 1:
            return f"{type(self).__name__}({groups[0]})"
        return f"{type(self).__name__}({'; '.join(f'group {i}: {g}' for i, g in enumerate(groups))})"
