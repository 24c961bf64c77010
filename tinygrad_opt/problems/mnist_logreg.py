"""DeepOBS's `mnist_logreg`: multinomial logistic regression on MNIST, one linear layer
784 -> 10 from zero weights (DeepOBS's initialisation; the loss is convex, so seeds
change the shuffling only), softmax cross-entropy, batch 128. DeepOBS trains 50 epochs;
here 10 (the 2-core machine's budget; the validation accuracy has levelled off by then)."""

from ..nn import Dense
from . import Problem
from ._images import flat_float, image_splits


def model(seed=0):
    layer = Dense(784, 10, rng=seed)
    layer.weight.data[...] = 0.0
    return layer


def data(data_dir=None, seed=0):
    return image_splits("mnist", data_dir)


CALIBRATION = (
    "SGD with momentum (lr 0.003 to 0.3) and Adam (lr 1e-4 to 0.01), five-point log grids "
    "(one seed each), the best rerun on seeds 1000-1002 (2026-12-06): Adam at lr 0.003 "
    "(final 0.9213, 0.9253, 0.9266) beat momentum at lr 0.1 (0.9176, 0.9197, 0.9224); the "
    "worst of Adam's three best accuracies, 0.9255, is the target.")


PROBLEM = Problem(
    name="mnist_logreg", title="Logistic regression, MNIST", model=model, data=data,
    metric="accuracy", transform=flat_float, batch_size=128, epochs=10, target=0.9255,
    size="7,850 parameters, 50,000 training images; 10 epochs (DeepOBS: 50)",
    calibration=CALIBRATION)
