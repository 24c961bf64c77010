"""A character-level transformer learns to write like Jane Austen: the engine's
embeddings, layer normalisation, causal self-attention and GELU in nanoGPT's form
(`tinygrad_opt.models.char_transformer`), trained by the Trainer with AdamW, a linear
warm-up then a cosine decay, and gradient clipping; it prints a sample of its text as
it learns, and the validation loss in nats and in bits per character.

    python examples/08_char_transformer.py [--fast] [--steps N] [--optimizer adamw|sgd]
                                           [--lr LR] [--seed S] [--out DIR]
    python examples/08_char_transformer.py --compare [--steps N] [--out DIR]

The model: context 128, d_model 128, 4 layers of 4 heads (0.8 million parameters),
batch 32 windows of Austen's six novels (the validation text is the last tenth of each
book). --fast trains a smaller model (context 64, d_model 64, 2 layers) for 400 steps.
--out DIR writes the run's history (char_transformer.json) and its learning curve
(char_transformer.png).

--compare puts AdamW against SGD with momentum (Nesterov's form off, PyTorch's SGD) at
each one's best learning rate: it trains each rule at each learning rate of GRID for
--sweep-steps (seed 0), keeps the one with the lowest validation loss, trains that for
--steps on two seeds, and draws the sweep and the curves (adam_vs_sgd.png, the numbers
in adam_vs_sgd.json).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

from tinygrad_opt import use_sleeping_threads
from tinygrad_opt.data import load
from tinygrad_opt.models import char_transformer, generate
from tinygrad_opt.nn.functional import cross_entropy
from tinygrad_opt.optim import SGD, AdamW, lr_scheduler
from tinygrad_opt.store.files import atomic_write_text
from tinygrad_opt.train import Trainer

FULL = dict(context=128, d_model=128, n_layers=4, n_heads=4, batch=32, steps=1500,
            warmup=100, eval_every=100, sample_every=500)
FAST = dict(context=64, d_model=64, n_layers=2, n_heads=4, batch=16, steps=400,
            warmup=20, eval_every=100, sample_every=100)
LR = {"adamw": 3e-3, "sgd": 0.3}
GRID = {"adamw": (1e-3, 3e-3, 1e-2, 3e-2), "sgd": (0.3, 1.0, 3.0, 10.0, 30.0)}
PROMPT = "It is a truth universally acknowledged"


def bits(nats):
    return nats / math.log(2)


def next_char_loss(logits, targets):
    """Cross-entropy of every position's logits (batch, time, vocab) against the next
    character (batch, time): the reshape is a view, no copy each way."""
    return cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


class Sampler:
    """After each evaluation: the losses in bits per character; every `sample_every`
    steps, a sample of `length` characters."""

    def __init__(self, corpus, every, length, sample_every):
        self.corpus, self.every, self.length = corpus, every, length
        self.sample_every = sample_every
        self.t0 = time.perf_counter()

    def on_epoch_end(self, trainer, epoch, logs):
        logs["step"] = epoch * self.every
        logs["seconds"] = time.perf_counter() - self.t0
        print(f"step {logs['step']:5d}  train {bits(logs['train_loss']):.3f}  "
              f"val {bits(logs['val_loss']):.3f} bits/char  ({logs['seconds']:.0f} s)",
              flush=True)
        if self.length and logs["step"] % self.sample_every == 0:
            ids = generate(trainer.model, self.corpus.encode(PROMPT), self.length,
                           temperature=0.8, seed=epoch)
            print("    " + self.corpus.decode(ids).replace("\n", " ") + "\n", flush=True)


def make_optimizer(name, params, lr):
    if name == "adamw":
        return AdamW(params, lr=lr, weight_decay=0.01, preset="torch")
    return SGD(params, lr=lr, momentum=0.9, preset="torch")


def train(corpus, size, optimizer="adamw", lr=None, seed=0, steps=None, sample=200,
          verbose=0):
    """One run; returns its history (one entry per evaluation)."""
    steps = steps or size["steps"]
    every = min(size["eval_every"], steps)
    model = char_transformer(corpus.vocab_size, context=size["context"],
                             d_model=size["d_model"], n_layers=size["n_layers"],
                             n_heads=size["n_heads"], seed=seed)
    lr = lr or LR[optimizer]
    opt = make_optimizer(optimizer, model.parameters(), lr)
    warmup = size["warmup"]
    schedule = lr_scheduler.SequentialLR(opt, [
        lr_scheduler.LinearLR(opt, start_factor=1 / warmup, total_iters=warmup - 1),
        lr_scheduler.CosineAnnealingLR(opt, T_max=steps - warmup, eta_min=lr / 10)],
        milestones=[warmup])
    schedule.interval = "batch"                 # stepped after every batch
    trainer = Trainer(model, opt, loss=next_char_loss, metric=None, seed=seed,
                      clip_grad_norm=1.0, lr_scheduler=schedule, verbose=verbose,
                      callbacks=[Sampler(corpus, every, sample, size["sample_every"])])
    batch, context = size["batch"], size["context"]
    history = trainer.fit(corpus.batches(batch, context, every, seed=seed),
                          corpus.batches(batch, context, 20, seed=10_000 + seed,
                                         split="val"),
                          epochs=steps // every, desc=f"{optimizer} ")
    return list(history)


def plot_curves(path, runs, title):
    """runs: label -> list of histories (seeds); val bits/char against steps."""
    from tinygrad_opt.figures import colors, legend_beside, pyplot, save
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for (label, histories), color in zip(runs.items(), colors(len(runs))):
        for i, h in enumerate(histories):
            steps = [e["step"] for e in h]
            ax.plot(steps, [bits(e["val_loss"]) for e in h], color=color, lw=1.5,
                    label=f"{label}, validation" if i == 0 else None)
            ax.plot(steps, [bits(e["train_loss"]) for e in h], color=color, lw=0.8, ls="--",
                    label=f"{label}, training (mean since the last point)" if i == 0
                    else None)
    ax.set_xlabel("step")
    ax.set_ylabel("bits per character")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    legend_beside(ax)
    save(fig, path)


def compare(corpus, size, steps, sweep_steps, out, grid=None):
    """The sweep, then the best learning rate of each rule on two seeds."""
    sweep_steps = sweep_steps or max(size["warmup"] + 1, steps // 5)
    sweep, runs = {}, {}
    for name, rates in (grid or GRID).items():
        for lr in rates:
            history = train(corpus, size, name, lr, 0, sweep_steps, sample=0)
            sweep.setdefault(name, {})[lr] = history[-1]["val_loss"]
            print(f"sweep {name} lr {lr:g}: {bits(history[-1]['val_loss']):.3f} bits/char "
                  f"after {sweep_steps} steps", flush=True)
    for name, losses in sweep.items():
        lr = min(losses, key=lambda k: (np.nan_to_num(losses[k], nan=np.inf), k))
        if lr in (min(losses), max(losses)):
            print(f"note: {name}'s best learning rate {lr:g} is at the edge of its grid "
                  f"{sorted(losses)}: widen GRID", flush=True)
        for seed in (0, 1):
            history = train(corpus, size, name, lr, seed, steps, sample=0)
            runs.setdefault(f"{name} lr {lr:g}", []).append(history)
    for label, histories in runs.items():
        final = [bits(h[-1]["val_loss"]) for h in histories]
        print(f"{label}: validation {', '.join(f'{b:.3f}' for b in final)} bits/char after "
              f"{steps} steps (seeds 0, 1)")
    if out:
        atomic_write_text(os.path.join(out, "adam_vs_sgd.json"), json.dumps(
            dict(size=size, steps=steps, sweep_steps=sweep_steps,
                 sweep={k: {str(lr): v for lr, v in d.items()} for k, d in sweep.items()},
                 runs=runs), indent=1))
        plot_comparison(os.path.join(out, "adam_vs_sgd.png"), sweep, sweep_steps, runs)


def plot_comparison(path, sweep, sweep_steps, runs):
    """Left: the sweep (validation loss against learning rate); right: the curves."""
    from tinygrad_opt.figures import colors, pyplot, save
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4),
                                      gridspec_kw=dict(width_ratios=(1, 1.6)))
    ceiling = 6.5          # above a uniform guess over the vocabulary (log2 81 = 6.34)
    for (name, losses), color in zip(sweep.items(), colors(len(sweep))):
        lrs = sorted(losses)
        values = [bits(losses[lr]) for lr in lrs]
        left.plot(lrs, np.minimum(values, ceiling), "o-", color=color, label=name)
        for lr, value in zip(lrs, values):
            if not value <= ceiling:         # diverged (or NaN): marked at the top
                left.plot([lr], [ceiling], "^", color=color, ms=9)
                left.annotate(f"{value:.0f}" if np.isfinite(value) else "NaN",
                              (lr, ceiling), textcoords="offset points", xytext=(0, -14),
                              ha="center", fontsize=7, color=color)
    left.set_ylim(top=ceiling + 0.15)
    left.set_xscale("log")
    left.set_xlabel("peak learning rate")
    left.set_ylabel("validation bits per character")
    left.set_title(f"sweep: {sweep_steps} steps, seed 0 (▲ diverged)", fontsize=10)
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    for (label, histories), color in zip(runs.items(), colors(len(runs))):
        for i, h in enumerate(histories):
            right.plot([e["step"] for e in h], [bits(e["val_loss"]) for e in h],
                       color=color, lw=1.5, ls="-" if i == 0 else "--",
                       label=f"{label}, seed {i}")
    right.set_xlabel("step")
    right.set_ylabel("validation bits per character")
    right.set_title("each rule at its best learning rate", fontsize=10)
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    save(fig, path)


def parse_grid(ap, text):
    """'adamw=1e-3,1e-2;sgd=0.3,3' -> {"adamw": (0.001, 0.01), "sgd": (0.3, 3.0)}."""
    grid = {}
    for part in text.split(";"):
        name, _, values = part.partition("=")
        name = name.strip()
        if name not in LR:
            ap.error(f"--grid: unknown optimizer {name!r} (choose from {sorted(LR)})")
        try:
            grid[name] = tuple(float(v) for v in values.split(","))
        except ValueError:
            ap.error(f"--grid: {values!r} is not a list of learning rates")
        if not all(v > 0 for v in grid[name]):
            ap.error(f"--grid: learning rates must be positive, got {values!r}")
    return grid


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="a small model, 400 steps")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--optimizer", choices=sorted(LR), default="adamw")
    ap.add_argument("--lr", type=float, default=None, help="peak learning rate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the history and figures here")
    ap.add_argument("--compare", action="store_true",
                    help="AdamW against SGD with momentum, two seeds each")
    ap.add_argument("--replot", metavar="DIR", default=None,
                    help="redraw DIR/adam_vs_sgd.png from DIR/adam_vs_sgd.json")
    ap.add_argument("--grid", default=None,
                    help="--compare's learning rates, e.g. 'adamw=1e-3,1e-2;sgd=0.3,3' "
                         "(default: GRID)")
    ap.add_argument("--sweep-steps", type=int, default=None,
                    help="steps of each learning rate of --compare's sweep (default: a "
                         "fifth of --steps)")
    args = ap.parse_args()
    size = FAST if args.fast else FULL
    if args.steps is not None and args.steps < size["warmup"] + 1:
        ap.error(f"--steps must be more than the warm-up's {size['warmup']} steps")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    if args.replot:
        saved = json.load(open(os.path.join(args.replot, "adam_vs_sgd.json")))
        sweep = {k: {float(lr): v for lr, v in d.items()} for k, d in saved["sweep"].items()}
        plot_comparison(os.path.join(args.replot, "adam_vs_sgd.png"), sweep,
                        saved["sweep_steps"], saved["runs"])
        return
    if args.compare:
        compare(load("austen"), size, args.steps or size["steps"], args.sweep_steps,
                args.out, parse_grid(ap, args.grid) if args.grid else None)
        return
    history = train(load("austen"), size, args.optimizer, args.lr, args.seed, args.steps)
    last = history[-1]
    print(f"validation loss {last['val_loss']:.4f} nats, {bits(last['val_loss']):.3f} "
          f"bits per character, after {last['step']} steps ({last['seconds']:.0f} s)")
    if args.out:
        atomic_write_text(os.path.join(args.out, "char_transformer.json"),
                          json.dumps(dict(size=size, optimizer=args.optimizer,
                                          lr=args.lr or LR[args.optimizer],
                                          seed=args.seed, history=history), indent=1))
        plot_curves(os.path.join(args.out, "char_transformer.png"),
                    {args.optimizer: [history]},
                    f"character transformer on Austen, {args.optimizer}")


if __name__ == "__main__":
    # idle BLAS and Numba threads sleep (threads.py), Numba's at once: its kernels
    # alternate with BLAS products
    use_sleeping_threads(reexec=True, spin=0)
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
