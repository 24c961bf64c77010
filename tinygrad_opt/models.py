"""Models: the reference article's MNIST CNN."""
import numpy as np

from .nn import Conv2D, ConvPoolDropout, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential
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
