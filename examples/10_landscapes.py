"""Loss landscapes around two solutions of one problem (Li et al. 2018): the article's
CNN on MNIST (the suite's `mnist_cnn`) trained from the same initial weights by SGD
with momentum and by Adam, each at the learning rate the suite's calibration found best
(0.03 and 0.003).

    python examples/10_landscapes.py [--fast] [--out DIR]

Writes into DIR:
- landscape_interpolation.png: the loss and accuracy on held-out images along the line
  from the SGD solution (α = 0) to the Adam solution (α = 1), and beyond;
- landscape_2d.png: the loss around each solution over two filter-normalised random
  directions (the same two for both, same contour levels), and the plane of the two
  trajectories' principal directions, with both trajectories drawn on it;
- landscapes.json: every number of the figures.
"""
import argparse
import json
import os
import time

import numpy as np

from tinygrad_opt import diagnostics, use_sleeping_threads
from tinygrad_opt.optim import SGD, Adam
from tinygrad_opt.problems import get_problem
from tinygrad_opt.store.files import atomic_write_text
from tinygrad_opt.train import Trainer

RULES = {"SGD with momentum, lr 0.03": lambda ps: SGD(ps, lr=0.03, momentum=0.9),
         "Adam, lr 0.003": lambda ps: Adam(ps, lr=0.003)}


class Checkpoints:
    """Trainer callback: a copy of the parameters every `every` steps (and at the start)."""

    def __init__(self, every):
        self.every, self.step, self.saved = every, 0, []

    def on_batch_begin(self, trainer, step):
        if self.step % self.every == 0:
            self.saved.append([p.data.copy() for p in trainer.optimizer.params])
        self.step += 1


def train(problem, make, images, epochs, every):
    (x, y), _ = problem.data()
    model = problem.model(0)                        # the same initial weights for both
    checkpoints = Checkpoints(every)
    trainer = Trainer(model, make(model.parameters()), loss=problem.loss, verbose=0,
                      batch_size=problem.batch_size, transform=problem.transform,
                      callbacks=[checkpoints])
    trainer.fit((x[:images], y[:images]), epochs=epochs)
    checkpoints.saved.append([p.data.copy() for p in model.parameters()])
    return model, checkpoints.saved


def main(out, fast):
    images, epochs, every, points, held = ((3000, 1, 5, 9, 500) if fast
                                           else (50000, 1, 50, 21, 2000))
    t0 = time.perf_counter()
    problem = get_problem("mnist_cnn")
    _, (vx, vy) = problem.data()
    valid = (vx[:held], vy[:held])
    solutions, paths = {}, {}
    for name, make in RULES.items():
        model, paths[name] = train(problem, make, images, epochs, every)
        solutions[name] = paths[name][-1]
    evaluate = diagnostics.Evaluator(model, problem.loss, valid, transform=problem.transform)
    (sgd_name, sgd), (adam_name, adam) = solutions.items()
    result = dict(images=images, epochs=epochs, held_out=held)
    for name, sol in solutions.items():
        result[name] = dict(zip(("loss", "accuracy"), evaluate(sol)))
        print(f"{name}: held-out loss {result[name]['loss']:.4f}, accuracy "
              f"{result[name]['accuracy']:.4f}")

    alphas = np.linspace(-0.5, 1.5, 2 * points - 1)
    losses, accuracies = diagnostics.interpolation(evaluate, sgd, adam, alphas)
    result["interpolation"] = dict(alphas=alphas.tolist(), loss=losses, accuracy=accuracies)
    diagnostics.plot_1d(dict(alphas=alphas, loss=losses, metric=accuracies,
                             xlabel=f"α: (1 - α) {sgd_name} + α {adam_name}",
                             metric_name="accuracy"),
                        os.path.join(out, "landscape_interpolation.png"),
                        "From the SGD solution (α = 0) to the Adam solution (α = 1)")

    span = np.linspace(-1, 1, points)
    surfaces = {}
    for name, sol in solutions.items():       # the same two random draws, normalised to
        d1, d2 = (diagnostics.filter_normalized_direction(   # each solution's filters
            evaluate.params, seed, values=sol) for seed in (1, 2))
        surfaces[name] = diagnostics.surface_2d(evaluate, sol, d1, d2, span, span)[0]
    start = paths[sgd_name][0]
    u, v, coords, explained = diagnostics.trajectory_directions(
        paths[sgd_name] + paths[adam_name], center=start)
    both = np.array(coords)
    n_sgd = len(paths[sgd_name])
    lo, hi = both.min(axis=0), both.max(axis=0)
    pad = 0.15 * (hi - lo)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], points)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], points)
    plane = diagnostics.surface_2d(evaluate, start, u, v, xs, ys)[0]
    result["surfaces"] = {k: s.tolist() for k, s in surfaces.items()}
    result["plane"] = dict(x=xs.tolist(), y=ys.tolist(), loss=plane.tolist(),
                           explained=explained.tolist(), sgd=both[:n_sgd].tolist(),
                           adam=both[n_sgd:].tolist())
    _plot(surfaces, span, plane, xs, ys, both[:n_sgd], both[n_sgd:], explained,
          os.path.join(out, "landscape_2d.png"))
    result["seconds"] = time.perf_counter() - t0
    atomic_write_text(os.path.join(out, "landscapes.json"), json.dumps(result) + "\n")
    print(f"wrote {out}/landscape_interpolation.png, landscape_2d.png, landscapes.json "
          f"({result['seconds']:.0f} s, {evaluate.evaluations} evaluations)")
    return result


def _plot(surfaces, span, plane, xs, ys, sgd, adam, explained, path):
    from tinygrad_opt.figures import pyplot, save
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), layout="constrained")
    every = np.concatenate([s.ravel() for s in surfaces.values()])
    levels = np.geomspace(max(every.min(), 1e-4), min(every.max(), 20), 25)
    for ax, (name, z) in zip(axes, surfaces.items()):
        c = ax.contour(span, span, np.clip(z, levels[0], levels[-1]), levels=levels,
                       cmap="viridis", linewidths=0.8)
        ax.plot(0, 0, "k*", ms=10)
        ax.set_title(f"around the {name.split(',')[0]} solution")
        ax.set_xlabel("α (filter-normalised)")
    axes[0].set_ylabel("β (filter-normalised)")
    fig.colorbar(c, ax=axes[:2], label="held-out loss (the same levels)")
    ax = axes[2]
    levels = np.geomspace(max(plane.min(), 1e-4), plane.max(), 25)
    c2 = ax.contour(xs, ys, plane, levels=levels, cmap="viridis", linewidths=0.8)
    fig.colorbar(c2, ax=ax, label="held-out loss")
    for coords, label, color in ((sgd, "SGD with momentum", "#d62728"),
                                 (adam, "Adam", "#1f77b4")):
        ax.plot(coords[:, 0], coords[:, 1], ".-", color=color, lw=1.2, ms=3, label=label)
        ax.plot(coords[-1, 0], coords[-1, 1], "*", color=color, ms=12)
    ax.plot(0, 0, "ko", ms=5, label="the shared start")
    ax.legend(fontsize=8)
    ax.set_title("both trajectories on their principal plane")
    ax.set_xlabel(f"first direction ({explained[0]:.0%} of the variance)")
    ax.set_ylabel(f"second direction ({explained[1]:.0%})")
    return save(fig, path)


if __name__ == "__main__":
    use_sleeping_threads(reexec=True)   # idle BLAS and Numba threads sleep: threads.py
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="examples/out")
    ap.add_argument("--fast", action="store_true",
                    help="3,000 training images, 9x9 surfaces on 500 held-out images")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    main(args.out, args.fast)
