"""MNIST and Fashion-MNIST: the four IDX files, checked, as uint8 arrays.

MNIST ships with the package (`tinygrad_opt/data/mnist/`, CC BY-SA 3.0, by Yann LeCun,
Corinna Cortes and Christopher J.C. Burges; see the README there). Another copy can be
used with `data_dir=` or the environment variable TINYGRAD_OPT_DATA_DIR.
"""
import os
from dataclasses import dataclass

import numpy as np

from .idx import DataError, read_idx

PACKAGED_MNIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist")
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
MNIST_SHA256 = {  # of the decompressed files
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
DATASETS = ("mnist", "fashion-mnist")


@dataclass
class Dataset:
    """uint8 images (N, 28, 28) and labels (N,) of a train and a test split."""
    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: int = 10


def load(dataset="mnist", data_dir=None):
    """Load MNIST (checked against its SHA-256 sums) or Fashion-MNIST.

    Args:
        dataset: "mnist" or "fashion-mnist".
        data_dir: folder with the four files (gzip or raw). Default: TINYGRAD_OPT_DATA_DIR,
            else the packaged MNIST, or /usr/share/datasets/fashion-mnist.
    Raises:
        DataError: a file missing, truncated, of the wrong magic, or failing its checksum;
            a label outside 0..9; a count of images and labels that differ.
        ValueError: an unknown dataset name.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    data_dir = data_dir or os.environ.get("TINYGRAD_OPT_DATA_DIR") or (
        PACKAGED_MNIST if dataset == "mnist" else FASHION_DIR)
    if dataset == "fashion-mnist" and not os.path.isdir(data_dir):
        raise DataError(f"Fashion-MNIST not found in {data_dir}: install it with "
                        f"`apt-get install dataset-fashion-mnist` (Debian), or pass "
                        f"--data-dir with the four IDX files")
    sums = MNIST_SHA256 if dataset == "mnist" else {}
    arrays = {}
    for key, name in FILES.items():
        magic = 0x803 if key.endswith("images") else 0x801
        arrays[key] = read_idx(os.path.join(data_dir, name), magic, sums.get(name))
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        path = os.path.join(data_dir, FILES[f"{split}_labels"])
        if len(images) != len(labels):
            raise DataError(f"{path}: {len(labels)} labels for {len(images)} images")
        if labels.size and labels.max() > 9:
            bad = int(np.flatnonzero(labels > 9)[0])
            raise DataError(f"{path}: label {labels[bad]} out of range 0..9 at index {bad}")
    return Dataset(dataset, **arrays)


def to_float(images):
    """uint8 images (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1], for one batch."""
    return (images.astype(np.float32) * np.float32(1 / 255.0))[:, None]   # NCHW
