"""Choosing a learning rate before training: Smith's learning-rate range test (Smith
2017, "Cyclical learning rates for training neural networks", section 3.3) and a
preview of any schedule's learning rates."""
import math

import numpy as np

from ..nn.functional import softmax_cross_entropy
from ..tensor import Tensor


def lr_range_test(model, optimizer, data, loss=softmax_cross_entropy, transform=None,
                  batch_size=64, start_lr=1e-7, end_lr=10.0, steps=200, smoothing=0.98,
                  stop_factor=4.0, seed=0):
    """Train `steps` steps with the learning rate grown exponentially from start_lr to
    end_lr, recording the loss of each step's batch; then put the model and the
    optimizer back as they were.

    The loss is smoothed exponentially (weight `smoothing` on the past, bias-corrected,
    as fastai's finder); the test stops early once the smoothed loss exceeds
    stop_factor times its lowest value (divergence). Smith reads the bounds of a good
    range off the plot: where the loss starts to fall and where it stops falling. Here:
    `low`, the first rate at which the smoothed loss has fallen by a tenth of its total
    fall, and `high`, the rate of its lowest value (often just below divergence: train
    below it); `steepest`, the rate between the two where the smoothed loss falls
    fastest per log-unit of rate, is the usual single suggestion. All three are None when
    the smoothed loss never falls (a model already trained, or start_lr too high).

    Args:
        data: (inputs, targets) arrays; batches are drawn at random (seeded).
        loss, transform: as the Trainer's.
    Returns:
        a dict of lrs, losses, smoothed (lists, one per step taken), low, high,
        steepest, and stopped_early.
    Cost: `steps` training steps."""
    x, y = data
    if not 0 < start_lr < end_lr:
        raise ValueError(f"lr_range_test: need 0 < start_lr < end_lr, got {start_lr}, "
                         f"{end_lr}")
    if steps < 3:
        raise ValueError(f"lr_range_test: steps must be at least 3, got {steps}")
    if getattr(optimizer, "takes_closure", False):
        raise ValueError(f"lr_range_test: {type(optimizer).__name__} searches its own "
                         f"step along each direction; a range test of its lr means nothing")
    saved_model, saved_opt = model.state_dict(), optimizer.state_dict()
    saved_lrs = [g["lr"] for g in optimizer.param_groups]
    rng = np.random.default_rng(seed)
    dtype = optimizer.params[0].dtype
    lrs, losses, smoothed, average, stopped = [], [], [], 0.0, False
    try:
        if hasattr(optimizer, "train"):      # Schedule-Free: gradients at y
            optimizer.train()
        for i in range(steps):
            lr = start_lr * (end_lr / start_lr) ** (i / (steps - 1))
            for g in optimizer.param_groups:
                g["lr"] = lr
            index = np.sort(rng.choice(len(x), size=min(batch_size, len(x)), replace=False))
            inputs = np.asarray(x[index] if transform is None else transform(x[index]))
            optimizer.zero_grad()
            value = loss(model(Tensor(inputs.astype(dtype, copy=False))), y[index])
            value.backward()
            current = value.item()
            if not math.isfinite(current):
                stopped = True
                break
            optimizer.step()
            average = smoothing * average + (1 - smoothing) * current
            lrs.append(lr)
            losses.append(current)
            smoothed.append(average / (1 - smoothing ** (i + 1)))
            if smoothed[-1] > stop_factor * min(smoothed):
                stopped = True
                break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_opt)
        for g, lr in zip(optimizer.param_groups, saved_lrs):
            g["lr"] = lr
        optimizer.zero_grad()
    return dict(lrs=lrs, losses=losses, smoothed=smoothed, stopped_early=stopped,
                **suggested_range(lrs, smoothed))


def suggested_range(lrs, smoothed):
    """low, high and steepest of a range test's smoothed losses (see lr_range_test)."""
    if len(smoothed) < 3:
        return dict(low=None, high=None, steepest=None)
    s = np.asarray(smoothed)
    lowest = int(np.argmin(s))
    if lowest == 0:                         # the loss never fell: no range to suggest
        return dict(low=None, high=None, steepest=None)
    fall = s[0] - s[lowest]
    first = next((i for i in range(lowest + 1) if s[0] - s[i] >= 0.1 * fall), 0)
    if lowest - first < 2:
        return dict(low=float(lrs[first]), high=float(lrs[lowest]),
                    steepest=float(lrs[first]))
    slope = np.gradient(s[first:lowest + 1], np.log(lrs[first:lowest + 1]))
    steepest = lrs[first + int(np.argmin(slope))]
    return dict(low=float(lrs[first]), high=float(lrs[lowest]), steepest=float(steepest))


def plot_lr_range(result, path, title=""):
    """The range test's losses against the learning rate (log axis), the smoothed
    curve, and the suggested range shaded; returns the path."""
    from ..figures import pyplot, save
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(result["lrs"], result["losses"], lw=0.6, alpha=0.4, label="loss of the batch")
    ax.plot(result["lrs"], result["smoothed"], lw=1.5, label="smoothed")
    if result["low"] is not None:
        ax.axvspan(result["low"], result["high"], color="#2ca02c", alpha=0.15,
                   label=f"suggested range {result['low']:.2g} to {result['high']:.2g}")
        ax.axvline(result["steepest"], color="k", ls="--", lw=1,
                   label=f"steepest fall {result['steepest']:.2g}")
    ax.set_xscale("log")
    top = max(result["smoothed"][:1] + [min(result["smoothed"] or [1])]) * 1.5
    ax.set_ylim(min(result["losses"] or [0]) * 0.9, top)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return save(fig, path)


def schedule_lrs(scheduler, steps):
    """The learning rates (of the first group) a schedule gives over its next `steps`
    calls of step(), without changing the schedule or its optimizer: the first value is
    the current one. ReduceLROnPlateau is refused (it depends on the metric)."""
    if type(scheduler).__name__ == "ReduceLROnPlateau":
        raise TypeError("schedule_lrs: ReduceLROnPlateau's rates depend on the metric "
                        "watched; there is nothing to preview")
    optimizer = scheduler.optimizer
    saved, saved_lrs = scheduler.state_dict(), [g["lr"] for g in optimizer.param_groups]
    try:
        lrs = [optimizer.param_groups[0]["lr"]]
        for _ in range(steps - 1):
            scheduler.step()
            lrs.append(optimizer.param_groups[0]["lr"])
        return lrs
    finally:
        scheduler.load_state_dict(saved)
        for g, lr in zip(optimizer.param_groups, saved_lrs):
            g["lr"] = lr


def plot_schedule(scheduler, steps, path, title=""):
    """A figure of `schedule_lrs(scheduler, steps)`, its x axis in the schedule's unit
    (epochs, or batches for OneCycleLR); returns the path."""
    from ..figures import pyplot, save
    plt = pyplot()
    lrs = schedule_lrs(scheduler, steps)
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.plot(range(len(lrs)), lrs, ".-" if steps <= 60 else "-", lw=1.2)
    ax.set_xlabel("batch" if scheduler.interval == "batch" else "epoch")
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3)
    ax.set_title(title or type(scheduler).__name__)
    return save(fig, path)
