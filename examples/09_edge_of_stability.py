"""The edge of stability (Cohen, Kaur, Li, Kolter & Talwalkar 2021; Cohen et al. 2022
for adaptive rules): full-batch gradient descent drives the sharpness, the Hessian's
largest eigenvalue, up to 2/lr and then hovers there while the loss keeps falling, not
smoothly; full-batch Adam does the same with its preconditioned sharpness and the
threshold 38/lr (at beta1 = 0.9).

    python examples/09_edge_of_stability.py [--fast] [--out DIR]

A tanh MLP 784-200-200-10 (Cohen et al.'s fc-tanh) on the first 2,000 images of MNIST
(500 with --fast; centred), the square loss 1/2 |f(x) - onehot(y)|² averaged over the images, trained
on all of them at once: gradient descent at three learning rates, Adam at two. Every
few steps the sharpness (or the preconditioned sharpness) of the full-batch loss is
measured by Lanczos (tinygrad_opt.diagnostics). Writes DIR/edge_of_stability.png and
DIR/edge_of_stability.json (the measurements), and prints, per run, the sharpness's
median over the last third of the run against its threshold. 7 minutes here (1,000
steps, a measurement every 20); --fast: 300 steps, about 25 seconds.
"""
import argparse
import json
import os
import time

import numpy as np

from tinygrad_opt import diagnostics, manual_seed, use_sleeping_threads
from tinygrad_opt.data import load
from tinygrad_opt.nn import Dense, Sequential, Tanh
from tinygrad_opt.optim import SGD, Adam
from tinygrad_opt.store.files import atomic_write_text
from tinygrad_opt.train import Trainer

GD_LRS = (0.1, 0.15, 0.2)
ADAM_LRS = (1e-3, 2e-3)


def square_loss(outputs, targets):
    """1/2 |f(x) - y|² summed over the classes, averaged over the images."""
    d = outputs - targets
    return (d * d).sum(axis=1).mean() * 0.5


def images(n):
    data = load("mnist")
    x = data.train_images[:n].reshape(n, -1).astype(np.float32) / 255
    return x - x.mean(axis=0), np.eye(10, dtype=np.float32)[data.train_labels[:n]]


def run(rule, lr, x, y, steps, every, tol):
    """Full-batch training with the curvature measured every `every` steps (Lanczos to
    the relative tolerance `tol`)."""
    manual_seed(0)                                   # the same initial weights each run
    model = Sequential(Dense(784, 200), Tanh(), Dense(200, 200), Tanh(), Dense(200, 10))
    opt = (SGD(model.parameters(), lr=lr) if rule == "gd"
           else Adam(model.parameters(), lr=lr, beta1=0.9, beta2=0.999))
    monitor = diagnostics.CurvatureMonitor(x, y, every=every, max_iter=40, tol=tol,
                                           preconditioned=rule == "adam")
    trainer = Trainer(model, opt, loss=square_loss, metric=None, batch_size=None,
                      chunk_size=len(x), verbose=0, callbacks=[monitor])
    trainer.fit((x, y), epochs=steps)               # one full-batch step an epoch
    losses = [h["train_loss"] for h in trainer.history]
    return dict(rule=rule, lr=lr, losses=losses, records=monitor.records)


def summary(result):
    key = "sharpness" if result["rule"] == "gd" else "preconditioned_sharpness"
    limit = "threshold" if result["rule"] == "gd" else "preconditioned_threshold"
    rows = [r for r in result["records"] if key in r]
    late = rows[len(rows) * 2 // 3:]
    value = float(np.median([r[key] for r in late]))
    return key, value, rows[-1][limit]


def plot(results, path):
    from tinygrad_opt.figures import colors, pyplot, save
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5), sharex="col")
    for col, rule in enumerate(("gd", "adam")):
        runs = [r for r in results if r["rule"] == rule]
        for r, color in zip(runs, colors(len(runs))):
            label = f"lr {r['lr']:g}"
            axes[0, col].plot(range(1, len(r["losses"]) + 1), r["losses"], color=color,
                              lw=1, label=label)
            key, _, _ = summary(r)
            limit = "threshold" if rule == "gd" else "preconditioned_threshold"
            rows = [q for q in r["records"] if key in q]
            axes[1, col].plot([q["step"] for q in rows], [q[key] for q in rows], ".-",
                              color=color, lw=1, ms=3, label=label)
            axes[1, col].axhline(rows[-1][limit], color=color, ls="--", lw=1)
        axes[0, col].set_yscale("log")
        axes[0, col].set_ylabel("training loss (full batch)")
        axes[0, col].legend(fontsize=8)
        axes[1, col].set_xlabel("step")
        axes[1, col].legend(fontsize=8)
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
    axes[0, 0].set_title("gradient descent")
    axes[0, 1].set_title("Adam (beta1 = 0.9), full batch")
    axes[1, 0].set_ylabel("sharpness λ1(H); dashed: 2 / lr")
    axes[1, 1].set_ylabel("preconditioned sharpness λ1(P⁻¹H);\ndashed: 38 / lr")
    fig.tight_layout()
    return save(fig, path)


def main(out, fast):
    n, steps, every, tol = (500, 300, 20, 1e-2) if fast else (2000, 1000, 20, 1e-3)
    x, y = images(n)
    results = []
    t0 = time.perf_counter()
    for rule, lrs in (("gd", GD_LRS), ("adam", ADAM_LRS)):
        for lr in lrs:
            results.append(run(rule, lr, x, y, steps, every, tol))
            key, value, limit = summary(results[-1])
            print(f"{rule:4s} lr {lr:<7g} {key} over the last third {value:10.1f}, "
                  f"threshold {limit:10.1f} (ratio {value / limit:.2f}); final loss "
                  f"{results[-1]['losses'][-1]:.4f}")
    os.makedirs(out, exist_ok=True)
    print(f"wrote {plot(results, os.path.join(out, 'edge_of_stability.png'))}")
    atomic_write_text(os.path.join(out, "edge_of_stability.json"),
                      json.dumps(dict(images=n, steps=steps, every=every, runs=results,
                                      seconds=time.perf_counter() - t0), indent=1) + "\n")
    return results


if __name__ == "__main__":
    use_sleeping_threads(reexec=True)   # idle BLAS and Numba threads sleep: threads.py
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="examples/out")
    ap.add_argument("--fast", action="store_true",
                    help="500 images, 300 steps, a looser tolerance (under a minute)")
    args = ap.parse_args()
    main(args.out, args.fast)
