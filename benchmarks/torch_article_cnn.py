"""The article's CNN and protocol in PyTorch: the yardstick for `make bench`'s figures.

    make bench-torch                      # its own virtual environment, .venv-torch
    .venv-torch/bin/python benchmarks/torch_article_cnn.py --opt adam --epochs 3
    .venv-torch/bin/python benchmarks/torch_article_cnn.py --model lenet --epochs 3

--model lenet: the LeNet-5 of `tinygrad_opt.models.lenet5` instead (padding, batch
normalisation, three dense layers), the same initialisation (Glorot-uniform weights,
zero biases; batch normalisation's defaults), Adam.

The same model as `tinygrad_opt.models.article_cnn` (Conv2D 32 3x3 relu, MaxPool 2x2,
Dropout 0.25, Flatten, Dense 256 relu, Dropout 0.5, Dense 10), Keras' initialisation
(Glorot-uniform weights, zero biases) and Keras' optimizer defaults, on the MNIST files
shipped in tinygrad_opt/data/mnist/. Prints, per epoch, the training time, samples per
second, the time to evaluate the 10,000 test images and the validation accuracy and loss.

Only for measuring side by side, on the same machine in the same sitting: tinygrad_opt
never imports PyTorch, and this script never imports tinygrad_opt. PyTorch's update rules
are its own (Adam places eps differently from Keras, see optim/adam.py), so compare the
times, not the last digits of the accuracies.
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST = os.path.join(ROOT, "tinygrad_opt", "data", "mnist")


def read_idx(name):
    """One gzip IDX file of the shipped MNIST, as a uint8 array of its stated shape."""
    with gzip.open(os.path.join(MNIST, name + ".gz"), "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def images(name):
    return torch.from_numpy(read_idx(name).astype(np.float32) / 255.0).unsqueeze(1)


def article_cnn():
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
        nn.Linear(32 * 13 * 13, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))
    for layer in model:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)       # Keras' glorot_uniform
            nn.init.zeros_(layer.bias)
    return model


def lenet5():
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.BatchNorm1d(120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))
    for layer in model:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return model


def optimizer(name, params, lr):
    """Keras' defaults, in PyTorch's classes."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr or 0.01)
    if name == "momentum":                              # the article's row: see methods.py
        return torch.optim.SGD(params, lr=lr or 0.001, momentum=0.9)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr or 0.001, initial_accumulator_value=0.1,
                                   eps=1e-7)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr or 0.001, alpha=0.9, eps=1e-7)
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr or 0.001, rho=0.95, eps=1e-7)
    return torch.optim.Adam(params, lr=lr or 0.001, betas=(0.9, 0.999), eps=1e-7)


def evaluate(model, x, y, batch=1000):
    model.eval()
    loss = correct = 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = model(x[i:i + batch])
            loss += nn.functional.cross_entropy(logits, y[i:i + batch], reduction="sum").item()
            correct += (logits.argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return loss / len(x), correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--opt", default="adam",
                    choices=("adam", "sgd", "momentum", "adagrad", "rmsprop", "adadelta"))
    ap.add_argument("--lr", type=float, default=None, help="default: Keras' for the rule")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--bs", type=int, default=64, help="batch size (1: one-sample SGD)")
    ap.add_argument("--limit", type=int, default=None, help="first N training images")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the epochs to this file")
    ap.add_argument("--model", choices=("article", "lenet"), default="article")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x, y = images("train-images-idx3-ubyte")[:args.limit], \
        torch.from_numpy(read_idx("train-labels-idx1-ubyte").astype(np.int64))[:args.limit]
    xv, yv = images("t10k-images-idx3-ubyte"), \
        torch.from_numpy(read_idx("t10k-labels-idx1-ubyte").astype(np.int64))
    model = lenet5() if args.model == "lenet" else article_cnn()
    opt = optimizer(args.opt, model.parameters(), args.lr)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.model}, "
          f"{args.opt}, "
          f"batch {args.bs}, {len(x):,} images", flush=True)
    epochs = []
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(x))
        t0 = time.perf_counter()
        for i in range(0, len(x), args.bs):
            index = order[i:i + args.bs]
            loss = nn.functional.cross_entropy(model(x[index]), y[index])
            opt.zero_grad()
            loss.backward()
            opt.step()
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        val_loss, val_acc = evaluate(model, xv, yv)
        eval_s = time.perf_counter() - t0
        epochs.append(dict(epoch=epoch, train_s=train_s, samples_per_s=len(x) / train_s,
                           eval_s=eval_s, val_acc=val_acc, val_loss=val_loss))
        print(f"epoch {epoch}: train {train_s:.2f} s ({len(x) / train_s:,.0f} samples/s), "
              f"eval {eval_s:.2f} s, val acc {val_acc:.4f} loss {val_loss:.4f}", flush=True)
    train = sorted(e["train_s"] for e in epochs)
    print(f"median train epoch {train[len(train) // 2]:.2f} s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(torch=torch.__version__, threads=args.threads, args=vars(args),
                           epochs=epochs), f, indent=1)


if __name__ == "__main__":
    main()
