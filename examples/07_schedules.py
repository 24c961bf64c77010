"""Learning-rate schedules on the article's model: Adam under a constant rate, step
decay, cosine annealing after a linear warm-up, and one cycle, from the same initial
weights on the same MNIST images, the Trainer stepping each schedule (per epoch, or per
batch for OneCycleLR).

    python examples/07_schedules.py [--out DIR] [--fast]

Writes DIR/schedules.png: the learning rate of every step (left) and the validation
accuracy after every epoch (right), one curve per schedule.
"""
import argparse
import os

import numpy as np

from tinygrad_opt import use_sleeping_threads
from tinygrad_opt.data import load, to_float
from tinygrad_opt.models import article_cnn
from tinygrad_opt.optim import Adam, lr_scheduler
from tinygrad_opt.train import Trainer

LR = 0.001          # Keras' Adam default, the article's


def schedules(epochs, steps_per_epoch):
    """name -> function(optimizer) -> a schedule (or None: constant)."""
    return {
        "constant 0.001": lambda opt: None,
        "step decay (x0.3 every 2 epochs)": lambda opt: lr_scheduler.StepLR(opt, 2, 0.3),
        "warm-up 1 epoch, then cosine": lambda opt: lr_scheduler.SequentialLR(
            opt, [lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=1),
                  lr_scheduler.CosineAnnealingLR(opt, T_max=epochs - 1)], milestones=[1]),
        "one cycle (max 0.003)": lambda opt: lr_scheduler.OneCycleLR(
            opt, max_lr=3 * LR, epochs=epochs, steps_per_epoch=steps_per_epoch),
    }


class RecordLR:
    """A callback keeping the lr of every step."""

    def __init__(self):
        self.lrs = []

    def on_batch_begin(self, trainer, step):
        self.lrs.append(trainer.optimizer.lr)


def main(out="examples/out", epochs=6, n=12000):
    data = load("mnist")
    train = (data.train_images[:n], data.train_labels[:n])
    val = (data.test_images[:5000], data.test_labels[:5000])
    steps = -(-n // 64)
    results = {}
    for name, make in schedules(epochs, steps).items():
        model = article_cnn(seed=0)                 # the same initial weights
        opt = Adam(model.parameters(), lr=LR)
        record = RecordLR()
        trainer = Trainer(model, opt, transform=to_float, batch_size=64, verbose=0,
                          lr_scheduler=make(opt), callbacks=[record])
        history = trainer.fit(train, val, epochs=epochs)
        results[name] = (record.lrs, history.column("val_acc"))
        print(f"{name:34s} val acc by epoch: "
              + " ".join(f"{a:.4f}" for a in history.column("val_acc")))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax_lr, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, (lrs, acc) in results.items():
        ax_lr.plot(np.arange(1, len(lrs) + 1) / steps, lrs, label=name)
        ax_acc.plot(range(1, epochs + 1), acc, marker="o", label=name)
    ax_lr.set(xlabel="epoch", ylabel="learning rate", title="Adam's learning rate, every step")
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy",
               title=f"validation accuracy ({len(val[0]):,} test images)")
    for ax in (ax_lr, ax_acc):
        ax.grid(True, alpha=0.3)
    ax_acc.legend(fontsize=8)
    fig.suptitle(f"The article's CNN, Adam, {n:,} MNIST training images, batch 64")
    fig.tight_layout()
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "schedules.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    use_sleeping_threads(reexec=True)   # idle BLAS and Numba threads sleep: threads.py
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="examples/out")
    ap.add_argument("--fast", action="store_true", help="3 epochs on 1,500 images")
    args = ap.parse_args()
    if args.fast:
        main(args.out, epochs=3, n=1500)
    else:
        main(args.out)
