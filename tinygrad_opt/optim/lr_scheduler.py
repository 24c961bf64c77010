"""Learning-rate schedules with PyTorch's names, arguments and numbers.

    opt = Adam(model.parameters(), lr=0.01)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    for epoch in range(10):
        train_one_epoch(...)        # opt.step() per batch
        sched.step()                # the next epoch's lr, written into opt.param_groups

A schedule writes each group's "lr" in `opt.param_groups`, and OneCycleLR (with
cycle_momentum) its "momentum" or "beta1" too; nothing else there (its own state stays
in the schedule: `state_dict()`); `step()` of the optimizer checks what it finds. For each schedule the sequence of learning rates equals PyTorch 2.13's for the
same arguments: the tests replay sequences PyTorch produced
(tests/fixtures/reference/torch_schedules.json). To get there the updates are PyTorch's
own, most of them recursive (this step's lr from the last one's), which a closed form
matches only up to rounding; a `closed_form` method beside gives each formula plainly.

`interval` says how often the Trainer steps a schedule: "epoch" (all but OneCycleLR, whose
total_steps counts batches) or "batch"; set it to change that.
"""
import math
import numbers
from bisect import bisect_right
from collections import Counter

from .hyper import check_whole
from .optimizer import Optimizer


class LRScheduler:
    """Base class: `get_lr()` gives each group's next learning rate from the current one.

    Attributes:
        last_epoch: how many times `step()` has run (0 after construction, which applies
            the schedule's first value, as PyTorch's do).
        base_lrs: each group's learning rate when the first schedule was attached.
    """

    interval = "epoch"

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} is not an "
                            f"Optimizer")
        if last_epoch != -1:
            raise ValueError(f"{type(self).__name__}: last_epoch other than -1 is not "
                             f"supported; restore a schedule with load_state_dict")
        self.optimizer = optimizer
        # shared by every schedule on this optimizer (PyTorch's group["initial_lr"])
        initial = getattr(optimizer, "initial_lrs", None)
        if initial is None or len(initial) != len(optimizer.param_groups):
            optimizer.initial_lrs = [g["lr"] for g in optimizer.param_groups]
        self.base_lrs = list(optimizer.initial_lrs)
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def _lrs(self):
        return [g["lr"] for g in self.optimizer.param_groups]

    def get_lr(self):
        raise NotImplementedError

    def step(self):
        """Move to the next epoch (or batch): write its learning rates into the groups."""
        self._step_count += 1
        self.last_epoch += 1
        self._write(self.get_lr())

    def _update_lr(self, epoch):
        """Jump to `epoch` (SequentialLR at a milestone): the closed form if there is one."""
        self.last_epoch = epoch
        closed = getattr(self, "closed_form", None)
        self._write(closed() if closed else self.get_lr())

    def _write(self, values):
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = self._lrs()

    def get_last_lr(self):
        """The learning rates the last `step()` wrote, one per group."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer (and functions), to save beside the optimizer's."""
        return {k: v for k, v in self.__dict__.items()
                if k not in ("optimizer", "lr_lambdas", "_schedulers")}

    def load_state_dict(self, state_dict):
        """Restore what `state_dict` saved, after checking it is this schedule's: the
        same keys (a StepLR's state is no CosineAnnealingLR's), each value of the kind
        this one holds (a whole number for last_epoch, numbers and not NaN for the rates).
        Nothing changes unless everything fits."""
        self._check_loadable(state_dict)
        self.__dict__.update(state_dict)

    def _check_loadable(self, state_dict):
        name = type(self).__name__
        mine = self.state_dict()
        if not isinstance(state_dict, dict) or set(state_dict) != set(mine):
            got = (sorted(state_dict) if isinstance(state_dict, dict)
                   else type(state_dict).__name__)
            raise ValueError(f"{name}.load_state_dict: the state holds {got}, a {name}'s "
                             f"holds {sorted(mine)} (a state of another schedule?)")
        for k, v in state_dict.items():
            if not _like(v, mine[k]):
                raise ValueError(f"{name}.load_state_dict: {k} is {v!r}, not a value of "
                                 f"the kind of {mine[k]!r}")

    def __repr__(self):
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr})"


def _like(value, ref):
    """value is of ref's kind: bools for bools, whole numbers for whole numbers, numbers
    (not NaN) for floats, sequences and dicts alike element by element."""
    if isinstance(ref, bool) or ref is None or isinstance(ref, str):
        return type(value) is type(ref)
    if isinstance(ref, numbers.Integral):
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if isinstance(ref, numbers.Real):
        return (isinstance(value, numbers.Real) and not isinstance(value, bool)
                and not math.isnan(value))
    if isinstance(ref, (list, tuple)):
        return (isinstance(value, (list, tuple)) and len(value) == len(ref)
                and all(_like(v, r) for v, r in zip(value, ref)))
    if isinstance(ref, dict):
        return (isinstance(value, dict) and set(value) == set(ref)
                and all(_like(value[k], ref[k]) for k in ref))
    return True


def _check_factor(name, value, low=0.0, high=math.inf, low_open=True):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) \
            or value < low or (low_open and value == low) or value > high:
        raise ValueError(f"{name} must be a number in {'(' if low_open else '['}{low:g}, "
                         f"{high:g}], got {value!r}")


class LambdaLR(LRScheduler):
    """lr = base_lr · lr_lambda(epoch) (one function, or one per group)."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups)
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(lambdas) != n or not all(callable(f) for f in lambdas):
            raise ValueError(f"LambdaLR: lr_lambda must be a function or {n} functions")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * f(self.last_epoch) for f, base in zip(self.lr_lambdas, self.base_lrs)]


class StepLR(LRScheduler):
    """lr multiplied by gamma every step_size epochs: base_lr · gamma^(epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        check_whole("StepLR: step_size", step_size)
        _check_factor("StepLR: gamma", gamma)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._lrs()
        return [lr * self.gamma for lr in self._lrs()]

    def closed_form(self):
        return [b * self.gamma ** (self.last_epoch // self.step_size) for b in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr multiplied by gamma at each milestone epoch."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        milestones = list(milestones)
        for m in milestones:
            check_whole("MultiStepLR: a milestone", m)
        _check_factor("MultiStepLR: gamma", gamma)
        self.milestones, self.gamma = Counter(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self._lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._lrs()]

    def state_dict(self):
        state = super().state_dict()
        state["milestones"] = sorted(self.milestones.elements())   # str keys only, saved
        return state

    def load_state_dict(self, state_dict):
        self._check_loadable(state_dict)
        self.__dict__.update(state_dict)
        self.milestones = Counter(state_dict["milestones"])

    def closed_form(self):
        milestones = sorted(self.milestones.elements())
        return [b * self.gamma ** bisect_right(milestones, self.last_epoch)
                for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr multiplied by gamma every epoch: base_lr · gamma^epoch."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        _check_factor("ExponentialLR: gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._lrs()
        return [lr * self.gamma for lr in self._lrs()]

    def closed_form(self):
        return [b * self.gamma ** self.last_epoch for b in self.base_lrs]


class LinearLR(LRScheduler):
    """Warm-up: the factor on base_lr goes linearly from start_factor to end_factor over
    total_iters epochs, then stays."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        _check_factor("LinearLR: start_factor", start_factor, 0.0, 1.0)
        _check_factor("LinearLR: end_factor", end_factor, 0.0, 1.0, low_open=False)
        check_whole("LinearLR: total_iters", total_iters)
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._lrs()
        d = self.end_factor - self.start_factor
        return [lr * (1.0 + d / (self.total_iters * self.start_factor
                                 + (self.last_epoch - 1) * d)) for lr in self._lrs()]

    def closed_form(self):
        return [b * (self.start_factor + (self.end_factor - self.start_factor)
                     * min(self.total_iters, self.last_epoch) / self.total_iters)
                for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min)·(1 + cos(pi·epoch/T_max))/2, continuing as a
    cosine past T_max (back up to base_lr at 2·T_max), as PyTorch's does."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        check_whole("CosineAnnealingLR: T_max", T_max)
        _check_factor("CosineAnnealingLR: eta_min", eta_min, 0.0, low_open=False)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, T, lo = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._lrs()
        if self._step_count == 1 and t > 0:
            return [lo + (b - lo) * (1 + math.cos(t * math.pi / T)) / 2 for b in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:
            return [lr + (b - lo) * (1 - math.cos(math.pi / T)) / 2
                    for b, lr in zip(self.base_lrs, self._lrs())]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (lr - lo) + lo for lr in self._lrs()]

    def closed_form(self):
        return [self.eta_min + (b - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for b in self.base_lrs]


class SequentialLR(LRScheduler):
    """One schedule after another: schedulers[i] runs from milestones[i-1] on (each one
    restarted at its milestone)."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise ValueError("SequentialLR: expects at least one schedule")
        for i, s in enumerate(schedulers):
            if isinstance(s, ReduceLROnPlateau):
                raise ValueError(f"SequentialLR: schedule {i} is a ReduceLROnPlateau, whose "
                                 f"step needs a metric")
            if getattr(s, "optimizer", None) is not optimizer:
                raise ValueError(f"SequentialLR: schedule {i} belongs to another optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: {len(schedulers)} schedules need "
                             f"{len(schedulers) - 1} milestones, got {len(milestones)}")
        self._schedulers, self._milestones = schedulers, milestones
        self.optimizer = optimizer
        self.base_lrs = list(optimizer.initial_lrs)
        self.last_epoch = last_epoch + 1
        for group, lr in zip(optimizer.param_groups, optimizer.initial_lrs):
            group["lr"] = lr
        for s in schedulers:                # undo their first steps
            s.last_epoch -= 1
        first = schedulers[bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self):
        self.last_epoch += 1
        i = bisect_right(self._milestones, self.last_epoch)
        s = self._schedulers[i]
        if i > 0 and self._milestones[i - 1] == self.last_epoch:
            s._update_lr(0)
        else:
            s.step()
        self._last_lr = s.get_last_lr()

    @property
    def interval(self):
        return self._schedulers[0].interval

    @interval.setter
    def interval(self, value):
        """Setting it sets every inner schedule's (a warm-up and a cosine per batch)."""
        for s in self._schedulers:
            s.interval = value

    def state_dict(self):
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        self._check_loadable(state_dict)
        state = dict(state_dict)
        inner = state.pop("_schedulers")
        self.__dict__.update(state)
        for s, saved in zip(self._schedulers, inner):
            s.load_state_dict(saved)


class OneCycleLR(LRScheduler):
    """Smith & Topin's one cycle, stepped every batch: lr rises from max_lr/div_factor to
    max_lr over pct_start of total_steps, then falls to max_lr/(div_factor·
    final_div_factor) (three_phase: back to the start first); momentum (or Adam's beta1)
    moves the other way, between max_momentum and base_momentum, when cycle_momentum."""

    interval = "batch"

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None,
                 steps_per_epoch=None, pct_start=0.3, anneal_strategy="cos",
                 cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        total_steps = _one_cycle_steps(total_steps, epochs, steps_per_epoch)
        _check_factor("OneCycleLR: pct_start", pct_start, 0.0, 1.0, low_open=False)
        _check_factor("OneCycleLR: div_factor", div_factor)
        _check_factor("OneCycleLR: final_div_factor", final_div_factor)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        self.total_steps, self.anneal_strategy = total_steps, anneal_strategy
        n = len(optimizer.param_groups)
        self.max_lrs = _per_group("max_lr", max_lr, n)
        self.initial = [m / div_factor for m in self.max_lrs]
        self.min_lrs = [i / final_div_factor for i in self.initial]
        self.phases = _one_cycle_phases(pct_start, total_steps, three_phase)
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.momentum_key = _momentum_key(optimizer)
            self.max_momentums = _per_group("max_momentum", max_momentum, n)
            self.base_momentums = _per_group("base_momentum", base_momentum, n)
            for g, m in zip(optimizer.param_groups, self.max_momentums):
                g[self.momentum_key] = m
        optimizer.initial_lrs = list(self.initial)
        super().__init__(optimizer, last_epoch)

    def anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {t} times, total_steps is "
                             f"{self.total_steps}")
        lrs = []
        for i, group in enumerate(self.optimizer.param_groups):
            values = dict(initial=self.initial[i], max=self.max_lrs[i], min=self.min_lrs[i])
            if self.cycle_momentum:
                values.update(max_m=self.max_momentums[i], base_m=self.base_momentums[i])
            start = 0.0
            for k, (end, lr0, lr1, m0, m1) in enumerate(self.phases):
                if t <= end or k == len(self.phases) - 1:
                    pct = (t - start) / (end - start)
                    lrs.append(self.anneal(values[lr0], values[lr1], pct))
                    if self.cycle_momentum:
                        group[self.momentum_key] = self.anneal(values[m0], values[m1], pct)
                    break
                start = end
        return lrs


def _one_cycle_steps(total_steps, epochs, steps_per_epoch):
    """OneCycleLR's length: total_steps, or epochs x steps_per_epoch."""
    if total_steps is not None:
        check_whole("OneCycleLR: total_steps", total_steps)
        return total_steps
    if epochs is None or steps_per_epoch is None:
        raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
    check_whole("OneCycleLR: epochs", epochs)
    check_whole("OneCycleLR: steps_per_epoch", steps_per_epoch)
    return epochs * steps_per_epoch


def _one_cycle_phases(pct_start, total_steps, three_phase):
    """(last step of the phase, lr from, lr to, momentum from, momentum to), PyTorch's."""
    up = float(pct_start * total_steps) - 1
    if three_phase:
        return [(up, "initial", "max", "max_m", "base_m"),
                (float(2 * pct_start * total_steps) - 2, "max", "initial", "base_m", "max_m"),
                (total_steps - 1, "initial", "min", "max_m", "max_m")]
    return [(up, "initial", "max", "max_m", "base_m"),
            (total_steps - 1, "max", "min", "base_m", "max_m")]


def _momentum_key(optimizer):
    """The hyperparameter OneCycleLR cycles: "momentum", or Adam's "beta1"."""
    for key in ("momentum", "beta1"):
        if key in optimizer.defaults:
            return key
    raise ValueError(f"OneCycleLR: {type(optimizer).__name__} has no momentum or beta1 to "
                     f"cycle; pass cycle_momentum=False")


def _per_group(name, value, n):
    """One value per parameter group: a list of n, or one value for all."""
    values = list(value) if isinstance(value, (list, tuple)) else [value] * n
    if len(values) != n:
        raise ValueError(f"OneCycleLR: {name} needs one value per parameter group ({n}), "
                         f"got {len(values)}")
    return values


class ReduceLROnPlateau(LRScheduler):
    """lr multiplied by factor when the metric passed to `step(metric)` has not improved
    (by more than threshold) for more than patience epochs; then cooldown epochs without
    counting; never below min_lr."""

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ReduceLROnPlateau: {type(optimizer).__name__} is not an "
                            f"Optimizer")
        _check_factor("ReduceLROnPlateau: factor", factor, 0.0, 1.0)
        if factor == 1.0:
            raise ValueError("ReduceLROnPlateau: factor must be < 1, got 1.0")
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max' and "
                             f"threshold_mode 'rel' or 'abs', got {mode!r}, "
                             f"{threshold_mode!r}")
        check_whole("ReduceLROnPlateau: patience", patience, 0)
        check_whole("ReduceLROnPlateau: cooldown", cooldown, 0)
        n = len(optimizer.param_groups)
        self.min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * n
        if len(self.min_lrs) != n:
            raise ValueError(f"ReduceLROnPlateau: expected {n} min_lrs, got {len(min_lr)}")
        self.optimizer, self.mode, self.factor = optimizer, mode, factor
        self.patience, self.cooldown, self.eps = patience, cooldown, eps
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.last_epoch = 0
        self._last_lr = self._lrs()
        self.best = math.inf if mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def is_better(self, a, best):
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics):
        """Record this epoch's metric (the Trainer passes the monitored one)."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, low in zip(self.optimizer.param_groups, self.min_lrs):
                old = float(group["lr"])
                new = max(old * self.factor, low)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._lrs()
