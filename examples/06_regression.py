"""A model of your own: an MLP fitting a noisy function of five inputs, with the mean
squared error, trained by the Trainer with each optimizer at Keras' defaults (Adagrad's
lr raised to 0.01: at 0.001 it barely moves in 40 epochs).

    python examples/06_regression.py [--out DIR] [--fast]

Writes DIR/regression.png: the validation loss per epoch, one curve per optimizer (log
scale). The data: y = sin(x1) + x2·x3 - 0.5·x4² + 0.1·noise, x5 irrelevant.
"""
import argparse
import os

import numpy as np

from tinygrad_opt import manual_seed, use_sleeping_threads
from tinygrad_opt.nn import Dense, Sequential, Tanh
from tinygrad_opt.nn.functional import mse
from tinygrad_opt.optim import SGD, Adagrad, Adam, RMSprop
from tinygrad_opt.train import Trainer

OPTIMIZERS = {
    "SGD (lr 0.01)": lambda p: SGD(p),
    "SGD with momentum 0.9": lambda p: SGD(p, momentum=0.9),
    "Adagrad (lr 0.01)": lambda p: Adagrad(p, lr=0.01),
    "RMSprop": lambda p: RMSprop(p),
    "Adam": lambda p: Adam(p),
}


def data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (n, 5))
    y = np.sin(x[:, 0]) + x[:, 1] * x[:, 2] - 0.5 * x[:, 3] ** 2
    return x, (y + 0.1 * rng.standard_normal(n))[:, None]


def main(out="examples/out", epochs=40, n=2000):
    train, val = data(n, 0), data(500, 1)
    histories = {}
    for name, make in OPTIMIZERS.items():
        manual_seed(0)                                    # the same initial weights
        model = Sequential(Dense(5, 64), Tanh(), Dense(64, 64), Tanh(), Dense(64, 1))
        trainer = Trainer(model, make(model.parameters()), loss=mse, metric=None,
                          batch_size=32, verbose=0)
        histories[name] = trainer.fit(train, val, epochs=epochs).column("val_loss")
        print(f"{name:24s} validation MSE after {epochs} epochs: {histories[name][-1]:.4f}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, losses in histories.items():
        ax.plot(range(1, epochs + 1), losses, label=name)
    ax.axhline(0.01, color="gray", linestyle=":", label="the noise (0.1²)")
    ax.set(xlabel="epoch", ylabel="validation MSE", yscale="log",
           title="An MLP regression, Keras' defaults (Adagrad at lr 0.01), batch 32")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "regression.png")
    fig.savefig(path, dpi=90)
    print(f"wrote {path}")
    return histories


if __name__ == "__main__":
    use_sleeping_threads(reexec=True)   # idle BLAS and Numba threads sleep: threads.py
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="examples/out")
    ap.add_argument("--fast", action="store_true", help="15 epochs on 1,000 samples")
    args = ap.parse_args()
    main(args.out, *((15, 1000) if args.fast else (40, 2000)))
