"""Loss landscapes (Li, Xu, Taylor, Studer & Goldstein 2018, "Visualizing the loss
landscape of neural nets"): the loss and the metric of a model along filter-normalised
random directions (1-D and 2-D), along the line between two solutions, and over the
plane of a training trajectory's two principal directions.

Filter normalisation: a random Gaussian direction d is rescaled filter by filter,
d_f ← d_f / ‖d_f‖ · ‖θ_f‖, so that a step of 1 along d changes each filter as much as
the filter's own size, whatever the scale the network happens to use (a ReLU network's
loss is unchanged when one layer is scaled up and the next down; unnormalised plots
compare those scales, not sharpness). A filter is one output unit's weights: a Conv2D
kernel's out-channel slice, a Dense weight's column (its weight is (in, out)), a row of
anything else. Vectors (biases, normalisation parameters) get zero in the direction, as
Li et al.'s `ignore='biasbn'`.

Each evaluation is one pass of the model over `data` in eval mode: a 2-D surface of
n x n points costs n² passes."""
import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor
from ..train.trainer import metric_sum


def filter_normalized_direction(params, seed=0, values=None):
    """A random Gaussian direction (a list of arrays of the parameters' shapes), filter
    normalised to `values` (the weights the direction is taken around; default the
    parameters' current values); zero for parameters of fewer than two dimensions."""
    rng = np.random.default_rng(seed)
    values = [p.data for p in params] if values is None else values
    out = []
    for p, w in zip(params, values):
        w = np.asarray(w, dtype=np.float64)
        if w.ndim < 2:
            out.append(np.zeros_like(w))
            continue
        d = rng.standard_normal(w.shape)
        axis = 1 if getattr(p, "in_out", False) else 0     # the output-unit axis
        wf, df = np.moveaxis(w, axis, 0), np.moveaxis(d, axis, 0)   # views of w and d
        scale = np.linalg.norm(wf.reshape(len(wf), -1), axis=1) / np.maximum(
            np.linalg.norm(df.reshape(len(df), -1), axis=1), 1e-12)
        df *= scale.reshape((-1,) + (1,) * (w.ndim - 1))
        out.append(d)
    return out


class Evaluator:
    """The loss and the metric of `model` on `data` at given parameter values; the
    model's parameters are put back after every evaluation.

    loss: loss(outputs, targets) -> scalar Tensor (the Trainer's). metric: "accuracy",
    "mse" or None. transform: applied to each batch of inputs (as the Trainer's)."""

    def __init__(self, model, loss, data, metric="accuracy", transform=None,
                 batch_size=1000):
        self.model, self.loss, self.metric, self.transform = model, loss, metric, transform
        self.x, self.y = data
        self.batch_size = batch_size
        self.params = model.parameters()
        self.evaluations = 0

    def current(self):
        return [p.data.copy() for p in self.params]

    def __call__(self, values=None):
        """(loss, metric) at `values` (a list of arrays; None: the current parameters)."""
        saved = self.current()
        was_training = self.model.training
        self.model.eval()
        total = right = 0.0
        try:
            if values is not None:
                for p, v in zip(self.params, values):
                    p.data[...] = v
            with no_grad():
                for i in range(0, len(self.x), self.batch_size):
                    x, y = self.x[i:i + self.batch_size], self.y[i:i + self.batch_size]
                    x = np.asarray(x if self.transform is None else self.transform(x))
                    out = self.model(Tensor(x.astype(self.params[0].dtype, copy=False)))
                    total += self.loss(out, y).item() * len(y)
                    right += metric_sum(self.metric, out, y)
        finally:
            for p, v in zip(self.params, saved):
                p.data[...] = v
            self.model.train(was_training)
        self.evaluations += 1
        n = len(self.x)
        return total / n, (right / n if self.metric else None)


def surface_1d(evaluate, center, direction, alphas):
    """(losses, metrics) at center + α·direction for each α."""
    rows = [evaluate([c + a * d for c, d in zip(center, direction)]) for a in alphas]
    return [r[0] for r in rows], [r[1] for r in rows]


def surface_2d(evaluate, center, d1, d2, alphas, betas, progress=None):
    """(losses, metrics) as (len(betas), len(alphas)) arrays at center + α d1 + β d2."""
    losses = np.zeros((len(betas), len(alphas)))
    metrics = np.full_like(losses, np.nan)
    for j, b in enumerate(betas):
        for i, a in enumerate(alphas):
            loss, metric = evaluate([c + a * u + b * v for c, u, v in zip(center, d1, d2)])
            losses[j, i] = loss
            metrics[j, i] = np.nan if metric is None else metric
            if progress:
                progress.update(1)
    return losses, metrics


def interpolation(evaluate, start, end, alphas):
    """(losses, metrics) along (1 - α)·start + α·end: α = 0 is `start`, 1 is `end`."""
    rows = [evaluate([(1 - a) * s + a * e for s, e in zip(start, end)]) for a in alphas]
    return [r[0] for r in rows], [r[1] for r in rows]


def trajectory_directions(checkpoints, center=None):
    """The two principal directions of a trajectory's checkpoints about `center` (the
    last checkpoint by default), as Li et al. draw trajectories: the top two right
    singular vectors of the matrix of the checkpoints' differences from the center.

    checkpoints: a list of parameter lists (arrays). Returns (d1, d2, coordinates (one
    (x, y) pair a checkpoint), the share of the differences' variance each direction
    explains). A trajectory's plane is not filter normalised."""
    center = checkpoints[-1] if center is None else center
    flat_center = np.concatenate([np.ravel(c) for c in center]).astype(np.float64)
    diffs = np.stack([np.concatenate([np.ravel(c) for c in cp]).astype(np.float64)
                      - flat_center for cp in checkpoints])
    _, s, vt = np.linalg.svd(diffs, full_matrices=False)
    explained = (s ** 2 / max(np.sum(s ** 2), 1e-300))[:2]
    directions = []
    for row in vt[:2]:
        parts, at = [], 0
        for c in center:
            parts.append(row[at:at + np.size(c)].reshape(np.shape(c)))
            at += np.size(c)
        directions.append(parts)
    coords = diffs @ vt[:2].T
    return directions[0], directions[1], coords, explained


def landscape(model, loss_fn, data, kind="2d", span=1.0, points=21, metric="accuracy",
              transform=None, seed=0, batch_size=1000):
    """The loss (and metric) of `model` on `data` around its current parameters along
    filter-normalised random directions.

    Args:
        loss_fn: loss(outputs, targets) -> scalar Tensor, as the Trainer takes it.
        data: (inputs, targets) arrays, a subset small enough for points² passes.
        kind: "1d" (one direction) or "2d" (two, independent).
        span: the surface covers α (and β) in [-span, span], `points` values each.
    Returns:
        a dict of alphas (and betas), loss and metric (lists, or nested lists for 2-D),
        the center's loss and metric, and the number of evaluations.
    Cost: points (1-D) or points² (2-D) passes over `data`."""
    if kind not in ("1d", "2d"):
        raise ValueError(f"landscape: kind must be '1d' or '2d', got {kind!r}")
    evaluate = Evaluator(model, loss_fn, data, metric, transform, batch_size)
    center = evaluate.current()
    alphas = np.linspace(-span, span, points)
    d1 = filter_normalized_direction(evaluate.params, seed)
    if kind == "1d":
        losses, metrics = surface_1d(evaluate, center, d1, alphas)
        out = dict(kind=kind, alphas=alphas.tolist(), loss=losses, metric=metrics)
    else:
        d2 = filter_normalized_direction(evaluate.params, seed + 1)
        losses, metrics = surface_2d(evaluate, center, d1, d2, alphas, alphas)
        out = dict(kind=kind, alphas=alphas.tolist(), betas=alphas.tolist(),
                   loss=losses.tolist(), metric=metrics.tolist())
    out["center"] = evaluate(None)
    out["evaluations"] = evaluate.evaluations
    return out


def plot_1d(result, path, title=""):
    """Loss (and metric, on a second axis) against α; returns the path."""
    from ..figures import pyplot, save
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(result["alphas"], result["loss"], color="#1f77b4", label="loss")
    ax.set_xlabel(result.get("xlabel", "α (filter-normalised direction)"))
    ax.set_ylabel("loss", color="#1f77b4")
    if result.get("metric") and result["metric"][0] is not None:
        ax2 = ax.twinx()
        ax2.plot(result["alphas"], result["metric"], color="#ff7f0e", ls="--")
        ax2.set_ylabel(result.get("metric_name", "accuracy"), color="#ff7f0e")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save(fig, path)


def plot_2d(result, path, title="", paths=(), levels=30):
    """Contours of the loss over (α, β) (log-spaced levels), with trajectories: `paths`
    a list of (label, coordinates (n, 2)) drawn on top; returns the path."""
    from ..figures import colors, pyplot, save
    plt = pyplot()
    a, b = np.asarray(result["alphas"]), np.asarray(result["betas"])
    z = np.asarray(result["loss"])
    fig, ax = plt.subplots(figsize=(6, 5))
    finite = z[np.isfinite(z)]
    lo, hi = max(finite.min(), 1e-12), finite.max()
    contour = ax.contour(a, b, np.clip(z, lo, hi), levels=np.geomspace(lo, hi, levels),
                         cmap="viridis", linewidths=0.8)
    fig.colorbar(contour, ax=ax, label="loss")
    for (label, coords), color in zip(paths, colors(len(paths))):
        coords = np.asarray(coords)
        ax.plot(coords[:, 0], coords[:, 1], ".-", color=color, lw=1.5, label=label)
        ax.plot(coords[-1, 0], coords[-1, 1], "*", color=color, ms=12)
    if paths:
        ax.legend(fontsize=8)
    ax.set_xlabel(result.get("xlabel", "α"))
    ax.set_ylabel(result.get("ylabel", "β"))
    if title:
        ax.set_title(title)
    return save(fig, path)
