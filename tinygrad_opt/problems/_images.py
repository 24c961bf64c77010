"""What the image problems share: MNIST and Fashion-MNIST split into a training set and
a validation set of 10,000 held-out training images (the study's tuned protocol's
split, `study.trials.VAL_SEED`), so that no choice is made on the test images."""
import functools

import numpy as np

VALID_SIZE = 10000


@functools.lru_cache(maxsize=4)
def image_splits(dataset, data_dir=None):
    """((train images, labels), (valid images, labels)), uint8 images (N, 28, 28)."""
    from ..data import load
    from ..study.trials import VAL_SEED
    data = load(dataset, data_dir)
    x, y = data.train_images, data.train_labels
    order = np.random.default_rng(VAL_SEED).permutation(len(x))
    held, kept = np.sort(order[-VALID_SIZE:]), np.sort(order[:-VALID_SIZE])
    return (x[kept], y[kept]), (x[held], y[held])


def flat_float(images):
    """uint8 images (N, 28, 28) -> float32 rows (N, 784) in [0, 1], for one batch."""
    return images.reshape(len(images), -1).astype(np.float32) * np.float32(1 / 255.0)
