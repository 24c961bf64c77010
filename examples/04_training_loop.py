"""The article's CNN trained by hand: everything the Trainer does, in one screen.

    python examples/04_training_loop.py [--fast] [--epochs N]
"""
import argparse
import time

import numpy as np

from tinygrad_opt import Tensor, no_grad, use_sleeping_threads
from tinygrad_opt.data import load, to_float
from tinygrad_opt.models import article_cnn
from tinygrad_opt.nn.functional import softmax_cross_entropy
from tinygrad_opt.optim import Adam


def evaluate(model, images, labels, batch=1000):
    model.eval()                                     # dropout off
    loss, correct = 0.0, 0
    with no_grad():                                  # no graph for evaluation
        for i in range(0, len(images), batch):
            logits = model(Tensor(to_float(images[i:i + batch])))
            loss += softmax_cross_entropy(logits, labels[i:i + batch]).item() * len(logits)
            correct += int((logits.numpy().argmax(1) == labels[i:i + batch]).sum())
    model.train()
    return loss / len(images), correct / len(images)


def main(epochs=1, limit=None, batch_size=64, seed=0):
    data = load("mnist")
    images, labels = data.train_images[:limit], data.train_labels[:limit]
    model = article_cnn(seed=seed)
    optimizer = Adam(model.parameters())             # Keras' defaults, as in the article
    rng = np.random.default_rng(seed)
    for epoch in range(1, epochs + 1):
        start, order = time.perf_counter(), rng.permutation(len(images))
        for i in range(0, len(order), batch_size):
            index = order[i:i + batch_size]
            x = Tensor(to_float(images[index]))      # (B, 1, 28, 28) float32 in [0, 1]
            loss = softmax_cross_entropy(model(x), labels[index])   # forward
            optimizer.zero_grad()
            loss.backward()                          # gradients into p.grad
            optimizer.step()                         # Adam's update, in place
        val_loss, val_acc = evaluate(model, data.test_images, data.test_labels)
        print(f"epoch {epoch}: last batch loss {loss.item():.4f}, val loss {val_loss:.4f}, "
              f"val acc {val_acc:.4f}, {time.perf_counter() - start:.1f} s")
    return val_acc


if __name__ == "__main__":
    use_sleeping_threads(reexec=True)   # idle BLAS and Numba threads sleep: threads.py
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--fast", action="store_true", help="the first 3,000 images only")
    args = ap.parse_args()
    main(args.epochs, 3000 if args.fast else None)
