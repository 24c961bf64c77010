"""The IDX/MNIST loader's checks and the batch iterator."""
import gzip
import os
import shutil

import numpy as np
import pytest

from tinygrad_opt.data import DataError, batch_indices, chunks, load, read_idx, to_float
from tinygrad_opt.data.mnist import FILES, PACKAGED_MNIST


def _write_idx(path, array, magic, compress=True):
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw += array.astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(raw)
    return raw


@pytest.fixture
def tiny_dir(tmp_path):
    """A small MNIST-shaped data set (not the published data: loaded with checksums=False)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 5)):
        _write_idx(tmp_path / (FILES[f"{split}_images"] + ".gz"),
                   rng.integers(0, 256, (n, 28, 28)), 0x803)
        _write_idx(tmp_path / (FILES[f"{split}_labels"] + ".gz"), rng.integers(0, 10, n), 0x801)
    return tmp_path


def test_packaged_mnist_loads_and_verifies():
    d = load("mnist")
    assert d.train_images.shape == (60000, 28, 28) and d.train_images.dtype == np.uint8
    assert d.test_images.shape == (10000, 28, 28)
    assert np.bincount(d.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918,
                                                    6265, 5851, 5949]


def test_reads_raw_and_gzip(tmp_path):
    a = np.arange(24).reshape(2, 3, 4)
    _write_idx(tmp_path / "x", a, 0x803, compress=False)
    _write_idx(tmp_path / "y.gz", a, 0x803)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "x"), 0x803), a)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "y"), 0x803), a)


def test_missing_file(tiny_dir):
    os.remove(tiny_dir / (FILES["test_labels"] + ".gz"))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: missing file"):
        load("fashion-mnist", str(tiny_dir), checksums=False)


def test_truncated_file(tmp_path):
    raw = _write_idx(tmp_path / "t", np.zeros((3, 28, 28)), 0x803, compress=False)
    with open(tmp_path / "t", "wb") as f:
        f.write(raw[:-10])
    with pytest.raises(DataError, match=r"t: truncated file: header says \[3, 28, 28\]"):
        read_idx(str(tmp_path / "t"), 0x803)
    gz = gzip.compress(raw)
    with open(tmp_path / "u.gz", "wb") as f:
        f.write(gz[: len(gz) // 2])
    with pytest.raises(DataError, match=r"u.gz: truncated or corrupt gzip"):
        read_idx(str(tmp_path / "u"), 0x803)


def test_wrong_magic(tmp_path):
    _write_idx(tmp_path / "m", np.zeros(4), 0x801, compress=False)
    with pytest.raises(DataError, match=r"m: wrong magic number 0x00000801, expected 0x00000803"):
        read_idx(str(tmp_path / "m"), 0x803)


def test_flipped_byte_fails_checksum(tmp_path):
    for name in FILES.values():
        shutil.copy(os.path.join(PACKAGED_MNIST, name + ".gz"), tmp_path)
    path = tmp_path / (FILES["train_labels"] + ".gz")
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[100] ^= 0x01                                   # one label 5 -> 4, or similar
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: checksum mismatch"):
        load("mnist", str(tmp_path))


def test_label_out_of_range(tiny_dir):
    _write_idx(tiny_dir / (FILES["train_labels"] + ".gz"), np.array([1] * 11 + [12]), 0x801)
    with pytest.raises(DataError, match=r"label 12 out of range 0..9 at index 11"):
        load("fashion-mnist", str(tiny_dir), checksums=False)


def test_fashion_missing_says_how_to_install(tmp_path):
    with pytest.raises(DataError, match=r"apt-get install dataset-fashion-mnist"):
        load("fashion-mnist", str(tmp_path / "nowhere"))


def test_environment_variable_points_at_another_copy(tiny_dir, monkeypatch):
    monkeypatch.setenv("TINYGRAD_OPT_DATA_DIR", str(tiny_dir))
    assert load("fashion-mnist", checksums=False).train_images.shape == (12, 28, 28)


def test_to_float_is_per_batch_float32_nchw():
    x = to_float(np.array([[[0, 255]]], dtype=np.uint8))
    assert x.dtype == np.float32 and x.shape == (1, 1, 1, 2) and x.max() == 1.0


@pytest.mark.parametrize("n,bs", [(10, 1), (10, 3), (10, 10), (10, 64), (10, None)])
def test_batches_cover_every_sample_once(n, bs):
    batches = batch_indices(n, bs, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(n))
    assert len(batches) == (1 if bs is None else -(-n // bs))


def test_batches_are_shuffled_and_seeded():
    a = batch_indices(100, 10, np.random.default_rng(1))
    b = batch_indices(100, 10, np.random.default_rng(1))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(np.concatenate(a), np.arange(100))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        batch_indices(10, 0, np.random.default_rng(0))
    assert [len(c) for c in chunks(np.arange(7), 3)] == [3, 3, 1]


# --- the header is checked before the body is trusted ---------------------------------------
def _header(magic, dims):
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)


def test_a_gzip_bomb_is_refused_without_decompressing_it(tmp_path):
    """2 MB of gzip that decompress to gigabytes once drove memory to 4.2 GiB: now the
    body is read only up to the size the header announces."""
    import tracemalloc
    import zlib
    path = tmp_path / "bomb.gz"
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)         # 31: the gzip container
    zeros = bytes(1 << 20)
    with open(path, "wb") as f:
        f.write(packer.compress(_header(0x803, (10, 28, 28))))
        for _ in range(200):                                  # 200 MiB of zeros
            f.write(packer.compress(zeros))
        f.write(packer.flush())
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"bomb.gz: truncated or corrupt gzip data: its "
                                            r"trailer says it decompresses to"):
            read_idx(str(tmp_path / "bomb"), 0x803)
        trailer_peak = tracemalloc.get_traced_memory()[1]
        path.write_bytes(path.read_bytes()[:-4] + (16 + 7840).to_bytes(4, "little"))
        tracemalloc.reset_peak()
        with pytest.raises(DataError, match=r"bomb.gz: more data than the header announces"):
            read_idx(str(tmp_path / "bomb"), 0x803)     # a forged trailer: read, then stop
        forged_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert trailer_peak < 1 << 20 and forged_peak < 4 << 20


@pytest.mark.parametrize("dims,message", [
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), r"header announces dimensions \[4294967295, "
                                            r"4294967295, 4294967295\] = .* bytes, more than"),
    ((70000, 28, 28), r"header announces dimensions \[70000, 28, 28\] = 54,880,000"),
    ((0, 28, 28), r"holds no items \(dimensions \[0, 28, 28\]\)"),
    ((3, 32, 32), r"items of shape \(32, 32\), expected \(28, 28\)"),
])
def test_impossible_dimensions_are_refused_before_reading(tmp_path, dims, message, monkeypatch):
    from tinygrad_opt.data import idx
    monkeypatch.setattr(idx, "MAX_BYTES", 50_000_000)     # the limit, scaled down
    (tmp_path / "d").write_bytes(_header(0x803, dims) + bytes(100))
    with pytest.raises(DataError, match=r"d: " + message):
        read_idx(str(tmp_path / "d"), 0x803, shape=(28, 28))


def test_data_set_images_must_be_28x28(tiny_dir):
    _write_idx(tiny_dir / (FILES["test_images"] + ".gz"), np.zeros((5, 32, 32)), 0x803)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: items of shape \(32, 32\)"):
        load("mnist", str(tiny_dir), checksums=False)


def test_a_folder_in_place_of_a_file(tiny_dir):
    os.remove(tiny_dir / (FILES["train_labels"] + ".gz"))
    os.mkdir(tiny_dir / FILES["train_labels"])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: is a folder, not an IDX"):
        load("mnist", str(tiny_dir), checksums=False)


def test_an_empty_or_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match=r"data_dir is empty"):
        load("mnist", "")
    with pytest.raises(DataError, match=r"mnist not found: .*nowhere is not a folder"):
        load("mnist", str(tmp_path / "nowhere"))


def test_mnist_files_are_not_fashion_mnist(tmp_path):
    """MNIST pointed to as Fashion-MNIST once trained and was reported as Fashion-MNIST."""
    for name in FILES.values():
        shutil.copy(os.path.join(PACKAGED_MNIST, name + ".gz"), tmp_path)
    with pytest.raises(DataError, match=r"checksum mismatch: SHA-256 of the decompressed data "
                                        r"is ba891046.*expected c59f468a"):
        load("fashion-mnist", str(tmp_path))
