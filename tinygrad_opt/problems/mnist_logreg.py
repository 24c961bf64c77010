"""DeepOBS's `mnist_logreg`: multinomial logistic regression on MNIST, one linear layer
784 -> 10 from zero weights (DeepOBS's initialisation; the loss is convex, so seeds
change the shuffling only), softmax cross-entropy, batch 128. DeepOBS trains 50 epochs;
here 10 (the 2-core machine's budget; the validation accuracy has levelled off by then)."""
import numpy as np

from ..nn import Dense
from . import Problem
from ._images import flat_float, image_splits


def model(seed=0):
    layer = Dense(784, 10, rng=seed)
    layer.weight.data[...] = 0.0
    return layer


def data(data_dir=None, seed=0):
    return image_splits("mnist", data_dir)


PROBLEM = Problem(
    name="mnist_logreg", title="Logistic regression, MNIST", model=model, data=data,
    metric="accuracy", transform=flat_float, batch_size=128, epochs=10, target=0.0,
    size="7,850 parameters, 50,000 training images; 10 epochs (DeepOBS: 50)")
