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
# Fashion-MNIST by Han Xiao, Kashif Rasul and Roland Vollgraf (Zalando Research, MIT
# licence): the SHA-256 of the decompressed files, so that any gzip of the same bytes
# passes (Debian's dataset-fashion-mnist re-compresses them). Obtained by hashing the
# decompressed files of Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1; the
# same four hashes are published by projects that derived them from the archives
# matching Zalando's MD5 sums (train-images 8d4fb7e6c68d591d4c3dfef9ec88bf0d,
# train-labels 25c81989df183df01b3e8a0aad5dffbe, t10k-images
# bef4ecab320f06d8554ea6380940ec79, t10k-labels bb300cfdad3c16e7a12a480ee83cd310).
FASHION_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
SHA256 = {"mnist": MNIST_SHA256, "fashion-mnist": FASHION_SHA256}
DATASETS = tuple(SHA256)


@dataclass
class Dataset:
    """uint8 images (N, 28, 28) and labels (N,) of a train and a test split."""
    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def load(dataset="mnist", data_dir=None, checksums=True):
    """Load MNIST or Fashion-MNIST, each file checked against its SHA-256 sum; or, for
    "austen", Jane Austen's six novels as character ids (`data.text.TextCorpus`).

    Args:
        dataset: "mnist", "fashion-mnist" or "austen".
        data_dir: folder with the four files (gzip or raw). Default: TINYGRAD_OPT_DATA_DIR,
            else the packaged MNIST, or /usr/share/datasets/fashion-mnist.
        checksums: False reads files of the same layout that are not the published data
            (a subset, a test fixture): every other check still applies.
    Raises:
        DataError: an empty or missing folder; a file missing, a folder, truncated, of
            the wrong magic, of images other than 28x28, empty, or failing its checksum
            (another data set's file fails: MNIST's files are not Fashion-MNIST); a label
            outside 0..9; a count of images and labels that differ.
        ValueError: an unknown dataset name.
    """
    if dataset == "austen":
        from .text import load_austen
        return load_austen(data_dir)
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}, "
                         f"austen")
    if data_dir is not None and not str(data_dir).strip():
        raise DataError("data_dir is empty: give the folder that holds the four IDX files")
    data_dir = data_dir or os.environ.get("TINYGRAD_OPT_DATA_DIR") or (
        PACKAGED_MNIST if dataset == "mnist" else FASHION_DIR)
    if not os.path.isdir(data_dir):
        install = (" install it with `apt-get install dataset-fashion-mnist` (Debian), or"
                   if dataset == "fashion-mnist" else "")
        raise DataError(f"{dataset} not found: {data_dir} is not a folder;{install} pass "
                        f"--data-dir with the four IDX files")
    sums = SHA256[dataset] if checksums else {}
    arrays = {}
    for key, name in FILES.items():
        magic, shape = (0x803, (28, 28)) if key.endswith("images") else (0x801, ())
        arrays[key] = read_idx(os.path.join(data_dir, name), magic, sums.get(name), shape)
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
