"""DeepOBS's `mnist_mlp`: a multi-layer perceptron 784-1000-500-100-10 with ReLU,
softmax cross-entropy, batch 128 (Glorot-uniform weights from the seed, zero biases;
DeepOBS draws a truncated normal of standard deviation 0.03). DeepOBS trains 100
epochs; here 5, the 2-core machine's budget."""
from ..nn import Dense, ReLU, Sequential
from . import Problem
from ._images import flat_float, image_splits


def model(seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    return Sequential(Dense(784, 1000, rng=rng), ReLU(), Dense(1000, 500, rng=rng), ReLU(),
                      Dense(500, 100, rng=rng), ReLU(), Dense(100, 10, rng=rng))


def data(data_dir=None, seed=0):
    return image_splits("mnist", data_dir)


PROBLEM = Problem(
    name="mnist_mlp", title="MLP 784-1000-500-100-10, MNIST", model=model, data=data,
    metric="accuracy", transform=flat_float, batch_size=128, epochs=5, target=0.0,
    size="1.34 M parameters, 50,000 training images; 5 epochs (DeepOBS: 100)")
