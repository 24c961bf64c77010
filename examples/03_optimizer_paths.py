"""Optimizer paths on 2-D test surfaces: the package's optimizers stepping real Tensors.

Thirteen methods (the article's update rules and those after Adam) start from the same
point on four surfaces:
- an ill-conditioned quadratic (an elongated valley): momentum overshoots and damps,
  plain gradient descent crawls along the valley floor;
- Rosenbrock's banana: a curved valley, hard for everything;
- Beale's function: steep walls, flat plateaus;
- a saddle point: gradient descent started near the saddle stalls there, while the
  adaptive methods (per-coordinate scaling) slip off quickly.

"SGD (noisy)" steps on the gradient plus Gaussian noise: the stochastic gradient of a
sample instead of the exact one (which "GD" uses). Lion moves every coordinate by exactly
lr, so its path is a staircase of diagonal steps; Muon's point is a (1, 2) matrix, whose
orthogonalised update is the unit vector along its momentum (normalised gradient descent).
RAdam's first five steps are plain momentum steps of lr times the gradient (its variance
rectification has too few samples): at Rosenbrock's and Beale's steep starts, with a
learning rate meant for Adam's normalised steps, they leap off the surface.

Writes optimizer_paths.png (paths and losses on the four surfaces) and
optimizer_paths.gif (the paths growing step by step on Rosenbrock's valley and the saddle).

    python examples/03_optimizer_paths.py [--out DIR] [--fast]
"""
import argparse
import os

import numpy as np

from tinygrad_opt import Tensor, figures
from tinygrad_opt.optim import (SGD, Adadelta, Adagrad, Adam, AdamW, Lion, Muon, NAdam,
                                RAdam, RMSprop)


def quadratic(x, y):
    return 0.5 * (x * x + 25.0 * y * y)


def rosenbrock(x, y):
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


def beale(x, y):
    return ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2
            + (2.625 - x + x * y ** 3) ** 2)


def saddle(x, y):
    return x * x - y * y + 0.5 * y ** 4      # saddle at (0, 0), minima at (0, +-1)


# name, function, start, (x range, y range), minimum value, steps, learning rates per rule
SURFACES = [
    ("ill-conditioned quadratic", quadratic, (-4.0, 1.0), ((-4.5, 4.5), (-1.6, 1.6)), 0.0, 200,
     dict(gd=0.035, sgd=0.035, momentum=0.01, nesterov=0.01, adagrad=0.5, rmsprop=0.05,
          adadelta=1.0, adam=0.1, adamw=0.1, nadam=0.1, radam=0.1, lion=0.02, muon=0.05)),
    ("Rosenbrock", rosenbrock, (-1.5, 2.0), ((-2.0, 2.0), (-1.0, 3.0)), 0.0, 2000,
     dict(gd=0.0008, sgd=0.0008, momentum=0.0002, nesterov=0.0002, adagrad=0.5,
          rmsprop=0.01, adadelta=1.0, adam=0.05, adamw=0.05, nadam=0.05, radam=0.05,
          lion=0.003, muon=0.005)),
    ("Beale", beale, (1.0, 1.4), ((-0.5, 4.0), (-1.0, 2.0)), 0.0, 500,
     dict(gd=0.01, sgd=0.01, momentum=0.002, nesterov=0.002, adagrad=0.3, rmsprop=0.01,
          adadelta=1.0, adam=0.05, adamw=0.05, nadam=0.05, radam=0.05, lion=0.005,
          muon=0.01)),
    ("saddle point", saddle, (1.5, 1e-4), ((-1.7, 1.7), (-1.5, 1.5)), -0.5, 300,
     dict(gd=0.02, sgd=0.02, momentum=0.005, nesterov=0.005, adagrad=0.2, rmsprop=0.01,
          adadelta=1.0, adam=0.05, adamw=0.05, nadam=0.05, radam=0.05, lion=0.01,
          muon=0.02)),
]

RULES = {   # label: (optimizer factory given a learning rate, noise on the gradient)
    "GD": (lambda p, lr: SGD(p, lr=lr), 0.0),
    "SGD (noisy)": (lambda p, lr: SGD(p, lr=lr), 1.0),
    "momentum 0.9": (lambda p, lr: SGD(p, lr=lr, momentum=0.9), 0.0),
    "Nesterov 0.9": (lambda p, lr: SGD(p, lr=lr, momentum=0.9, nesterov=True), 0.0),
    "Adagrad": (lambda p, lr: Adagrad(p, lr=lr), 0.0),
    "RMSprop": (lambda p, lr: RMSprop(p, lr=lr), 0.0),
    "AdaDelta (Zeiler)": (lambda p, lr: Adadelta(p, preset="paper"), 0.0),
    "Adam": (lambda p, lr: Adam(p, lr=lr), 0.0),
    "AdamW": (lambda p, lr: AdamW(p, lr=lr), 0.0),
    "NAdam": (lambda p, lr: NAdam(p, lr=lr), 0.0),
    "RAdam": (lambda p, lr: RAdam(p, lr=lr), 0.0),
    "Lion": (lambda p, lr: Lion(p, lr=lr), 0.0),
    "Muon": (lambda p, lr: Muon(p, lr=lr, weight_decay=0.0, preset="torch"), 0.0),
}
KEYS = ["gd", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam",
        "adamw", "nadam", "radam", "lion", "muon"]
MATRIX = {"Muon"}           # rules stepping the point as a (1, 2) matrix
COLORS = figures.colors(len(RULES))      # no two alike (tinygrad_opt/figures.py)


def run(fn, start, make, lr, noise, steps, seed=0, matrix=False):
    """Optimise fn from `start`; return the path (steps+1, 2) and the losses."""
    rng = np.random.default_rng(seed)
    p = Tensor(np.reshape(start, (1, 2) if matrix else (2,)), requires_grad=True,
               dtype=np.float64)
    opt = make([p], lr)
    path, losses = [p.data.reshape(2).copy()], []
    for _ in range(steps):
        loss = fn(_coord(p, 0), _coord(p, 1))
        opt.zero_grad()
        loss.backward()
        if noise:
            p.grad = p.grad + noise * rng.standard_normal(p.shape) * np.abs(p.grad).mean()
        losses.append(loss.item())
        opt.step()
        if not np.all(np.isfinite(p.data)) or np.abs(p.data).max() > 1e3:
            break                          # diverged: stop drawing
        path.append(p.data.reshape(2).copy())
    return np.array(path), np.array(losses)


def _coord(p, i):
    """The i-th coordinate of a 2-vector (or (1, 2)) Tensor, as a differentiable scalar."""
    onehot = np.zeros(p.shape)
    onehot.reshape(2)[i] = 1.0
    return (p * Tensor(onehot, dtype=np.float64)).sum()


def all_paths(scale):
    """{surface title: {rule label: (path, losses)}}."""
    out = {}
    for title, fn, start, _, _, steps, lrs in SURFACES:
        steps = max(10, int(steps * scale))
        out[title] = {label: run(fn, start, make, lrs[KEYS[i]], noise, steps,
                                 matrix=label in MATRIX)
                      for i, (label, (make, noise)) in enumerate(RULES.items())}
    return out


def animate(paths, out, frames):
    """optimizer_paths.gif: the paths on Rosenbrock and the saddle, drawn step by step
    (matplotlib's animation, written by its Pillow writer)."""
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    shown = [s for s in SURFACES if s[0] in ("Rosenbrock", "saddle point")]
    colors = COLORS
    fig, axes = plt.subplots(1, len(shown), figsize=(11, 5))
    lines = []
    for ax, (title, fn, start, (xr, yr), fmin, _, _) in zip(axes, shown):
        xs, ys = np.meshgrid(np.linspace(*xr, 200), np.linspace(*yr, 200))
        ax.contour(xs, ys, np.log1p(fn(xs, ys) - fmin), levels=20, cmap="Greys",
                   linewidths=0.5)
        ax.plot(*start, "ko", ms=5)
        ax.set_xlim(xr)
        ax.set_ylim(yr)
        ax.set_title(title)
        lines.append([ax.plot([], [], color=colors[i], lw=2.2, label=label)[0]
                      for i, label in enumerate(RULES)])
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=7, fontsize=8)
    fig.tight_layout(rect=(0, 0.1, 1, 1))

    def draw(k):                 # each surface at the same fraction of its own steps
        for ax, row, (title, *_rest) in zip(axes, lines, shown):
            longest = max(len(p) for p, _ in paths[title].values())
            n = 1 + int((longest - 1) * (k + 1) / frames)
            for line, (path, _) in zip(row, paths[title].values()):
                line.set_data(path[:n, 0], path[:n, 1])
            ax.set_title(f"{title}: step {n - 1}")
        return [line for row in lines for line in row]

    anim = FuncAnimation(fig, draw, frames=frames, blit=False)
    path = os.path.join(out, "optimizer_paths.gif")
    anim.save(path, writer=PillowWriter(fps=10), dpi=70)   # thick lines: a GIF has 256
                                                          # colours, thin ones lose theirs
    plt.close(fig)
    print(f"wrote {path}")
    return path


def main(out="examples/out", scale=1.0):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out, exist_ok=True)
    paths = all_paths(scale)
    fig, axes = plt.subplots(2, len(SURFACES), figsize=(5 * len(SURFACES), 9.5))
    colors = COLORS
    for col, (title, fn, start, (xr, yr), fmin, steps, lrs) in enumerate(SURFACES):
        steps = max(10, int(steps * scale))
        ax, ax_loss = axes[0, col], axes[1, col]
        xs, ys = np.meshgrid(np.linspace(*xr, 300), np.linspace(*yr, 300))
        zs = fn(xs, ys) - fmin
        ax.contour(xs, ys, np.log1p(zs), levels=25, cmap="Greys", linewidths=0.6)
        for i, label in enumerate(RULES):
            path, losses = paths[title][label]
            ax.plot(path[:, 0], path[:, 1], color=colors[i], lw=1.3, label=label)
            ax_loss.semilogy(np.maximum(losses - fmin, 1e-12), color=colors[i], lw=1.2)
        ax.plot(*start, "ko", ms=6)
        ax.set_xlim(xr)
        ax.set_ylim(yr)
        ax.set_title(f"{title}: {steps} steps from {start}")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        start_loss = max(paths[title][label][1][0] for label in RULES) - fmin
        ax_loss.set_ylim(1e-12, 100 * start_loss)   # a diverging rule leaves the panel,
        ax_loss.set_title(f"{title}: loss above the minimum")  # not squashes it
        ax_loss.set_xlabel("step")
        ax_loss.set_ylabel("f(x, y) - min f")
        ax_loss.grid(True, alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=7, fontsize=10)
    fig.suptitle("Thirteen methods of tinygrad_opt.optim on four surfaces (contours: "
                 "log(1 + f); learning rates tuned per surface, see the source)", fontsize=13)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path = os.path.join(out, "optimizer_paths.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"wrote {path}")
    animate(paths, out, frames=12 if scale < 1 else 60)
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="examples/out")
    ap.add_argument("--fast", action="store_true", help="a tenth of the steps")
    args = ap.parse_args()
    main(args.out, 0.1 if args.fast else 1.0)
