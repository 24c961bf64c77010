"""Models: the reference article's MNIST CNN, and a LeNet-5 with batch normalisation."""
import numpy as np

from .nn import (BatchNorm1D, BatchNorm2D, BatchNormReluPool, Conv2D, ConvPoolDropout, Dense,
                 Dropout, Flatten, MaxPool2D, ReLU, Sequential)
from .ops.conv import window_count


def article_cnn(seed=0, in_channels=1, image_size=28, filters=32, hidden=256, classes=10,
                dtype=np.float32, fused=True):
    """The article's model (Keras' Sequential, in NCHW):

        Conv2D(32, 3x3, relu) -> MaxPool 2x2 -> Dropout(0.25) -> Flatten
        -> Dense(256, relu) -> Dropout(0.5) -> Dense(10)

    The final softmax is fused into `softmax_cross_entropy`, so the model returns logits.
    All weights come from one Generator seeded with `seed` (Glorot-uniform, zero biases),
    and the dropout masks from seeds derived from it: a seed gives the same model and the
    same training run every time. The size arguments exist for small test variants.

    fused=True runs the first three layers as one `ConvPoolDropout` block (one fused
    kernel, same results, parameters named 0.conv.weight, ...); fused=False lists the
    article's eight layers one by one (parameters named 0.weight, ...).

    Shapes: (N, in_channels, image_size, image_size) -> (N, classes).
    """
    rng = np.random.default_rng(seed)
    pooled = window_count(window_count(image_size, 3), 2, 2)     # conv 3x3, pool 2x2
    block = [Conv2D(in_channels, filters, 3, activation="relu", rng=rng, dtype=dtype),
             MaxPool2D(2),
             Dropout(0.25, seed=2 * seed + 1)]
    return Sequential(
        *([ConvPoolDropout(*block)] if fused else block),
        Flatten(),                                   # (N, F, P, P) -> (N, F*P*P)
        Dense(filters * pooled * pooled, hidden, rng=rng, dtype=dtype),
        ReLU(),
        Dropout(0.5, seed=2 * seed + 2),
        Dense(hidden, classes, rng=rng, dtype=dtype),
    )


def lenet5(seed=None, classes=10, dtype=np.float32, fused=True):
    """LeNet-5 (LeCun et al. 1998) as it is trained today, with batch normalisation and
    ReLU, for 28x28 images (the first convolution pads to keep 28x28, as the original's
    32x32 input did):

        Conv2D(6, 5x5, same) -> BatchNorm -> ReLU -> MaxPool 2x2      (6, 14, 14)
        -> Conv2D(16, 5x5) -> BatchNorm -> ReLU -> MaxPool 2x2        (16, 5, 5)
        -> Flatten -> Dense(120) -> BatchNorm -> ReLU -> Dense(84) -> ReLU -> Dense(10)

    61,990 parameters (biases before a batch normalisation are kept, as PyTorch's
    counterpart in benchmarks/torch_article_cnn.py keeps them). seed: the weights' seed
    (None: the shared generator, `tinygrad_opt.manual_seed`).

    fused=True runs each BatchNorm -> ReLU -> MaxPool as one `BatchNormReluPool` (one
    fused op, same results; parameters named 1.norm.weight, ...); fused=False lists the
    layers one by one (1.weight, ...).

    Shapes: (N, 1, 28, 28) -> (N, classes).
    """
    rng = None if seed is None else np.random.default_rng(seed)

    def tail(channels):
        layers = [BatchNorm2D(channels, dtype=dtype), ReLU(), MaxPool2D(2)]
        return [BatchNormReluPool(*layers)] if fused else layers

    return Sequential(
        Conv2D(1, 6, 5, padding="same", rng=rng, dtype=dtype), *tail(6),
        Conv2D(6, 16, 5, rng=rng, dtype=dtype), *tail(16),
        Flatten(),
        Dense(400, 120, rng=rng, dtype=dtype), BatchNorm1D(120, dtype=dtype), ReLU(),
        Dense(120, 84, rng=rng, dtype=dtype), ReLU(),
        Dense(84, classes, rng=rng, dtype=dtype),
    )
