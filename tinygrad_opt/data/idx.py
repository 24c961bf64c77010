"""Reading IDX files (the MNIST format), gzip-compressed or raw, with every check.

IDX layout: big-endian; a magic number 0x00000800 | type code << 8 | ndim (0x803 for
uint8 images of 3 dimensions, 0x801 for labels), then ndim uint32 sizes, then the data.
"""
import gzip
import hashlib
import math
import os
import zlib
from contextlib import contextmanager

import numpy as np


class DataError(ValueError):
    """A data file is missing, truncated, of the wrong format, or corrupt."""


MAX_BYTES = 1 << 30   # the most data an IDX file may announce: 1 GiB (MNIST's largest
                      # file holds 47 MB; EMNIST's, 0.55 GB)


@contextmanager
def _open(path):
    """The file as a stream of its (decompressed) bytes, and the size gzip's trailer says
    it decompresses to (modulo 2^32; None for a raw file)."""
    with open(path, "rb") as f:
        if f.read(2) != b"\x1f\x8b":
            f.seek(0)
            yield f, None
            return
        isize = None
        if os.fstat(f.fileno()).st_size >= 18:          # the smallest gzip file
            f.seek(-4, os.SEEK_END)
            isize = int.from_bytes(f.read(4), "little")
        f.seek(0)
        with gzip.GzipFile(fileobj=f, mode="rb") as stream:
            yield stream, isize


def _read(stream, n, path):
    """Exactly n bytes (fewer only at the end of the data); gzip faults as DataError."""
    try:
        return stream.read(n)
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(f"{path}: truncated or corrupt gzip data ({e})") from None


def read_idx(path, expected_magic=None, sha256=None, shape=None):
    """Read an IDX file into a uint8 array of its stated shape.

    The header is read and checked first; the data is then read (and decompressed) only
    up to the size the header announces, so a small file that would decompress to
    gigabytes (a "gzip bomb") costs no more memory than its header claims, and never
    more than MAX_BYTES.

    Args:
        path: the file; `path` itself, or `path + ".gz"`, may exist (gzip is detected).
        expected_magic: 0x803, 0x801, ...; anything else raises.
        sha256: hex digest of the decompressed bytes, or None to skip the check.
        shape: the dimensions the caller needs after the first (count) one, e.g. (28, 28),
            or None to accept any.
    Raises:
        DataError: naming the file and the fault (missing, a folder, unreadable gzip,
            truncated or too long, wrong magic, dimensions that are zero, too large or
            not `shape`, checksum mismatch).
    """
    for candidate in (path, path + ".gz"):
        if os.path.lexists(candidate):
            path = candidate
            break
    else:
        raise DataError(f"{path}: missing file (looked for {os.path.basename(path)} and "
                        f"{os.path.basename(path)}.gz)")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, not an IDX file")
    try:
        with _open(path) as (stream, isize):
            header, dims, data = _parse(stream, isize, path, expected_magic, shape)
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror})") from None
    if sha256 is not None:
        digest = hashlib.sha256(header)
        digest.update(data)
        if digest.hexdigest() != sha256:
            raise DataError(f"{path}: checksum mismatch: SHA-256 of the decompressed data "
                            f"is {digest.hexdigest()}, expected {sha256} (corrupt copy, or "
                            f"another data set?)")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _parse(stream, isize, path, expected_magic, shape):
    """The header's bytes, the dimensions and the data, each checked before the next."""
    head = _read(stream, 4, path)
    if len(head) < 4:
        raise DataError(f"{path}: truncated file ({len(head)} bytes, no IDX header)")
    magic = int.from_bytes(head, "big")
    if (expected_magic is not None and magic != expected_magic) or magic >> 8 != 0x08:
        raise DataError(f"{path}: wrong magic number 0x{magic:08x}, expected "
                        f"0x{expected_magic or 0x800:08x} (not an IDX file of uint8?)")
    ndim = magic & 0xFF
    sizes = _read(stream, 4 * ndim, path)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: truncated file (header of {4 + 4 * ndim} bytes, got "
                        f"{4 + len(sizes)})")
    dims = [int.from_bytes(sizes[4 * i:4 * i + 4], "big") for i in range(ndim)]
    size = math.prod(dims)                  # Python integers: no overflow
    if ndim == 0 or dims[0] == 0:
        raise DataError(f"{path}: holds no items (dimensions {dims})")
    if size > MAX_BYTES:
        raise DataError(f"{path}: header announces dimensions {dims} = {size:,} bytes, "
                        f"more than the {MAX_BYTES:,} this reader accepts")
    if shape is not None and tuple(dims[1:]) != tuple(shape):
        raise DataError(f"{path}: items of shape {tuple(dims[1:])}, expected "
                        f"{tuple(shape)}")
    header = 4 + 4 * ndim
    if isize is not None and isize != (header + size) % 2 ** 32:
        raise DataError(f"{path}: truncated or corrupt gzip data: its trailer says it "
                        f"decompresses to {isize:,} bytes (mod 2^32), the IDX header "
                        f"announces {header + size:,} (a single-member gzip is expected)")
    data = _read(stream, size, path)
    if len(data) != size:
        raise DataError(f"{path}: truncated file: header says {dims} = {size} bytes of "
                        f"data, the file holds {len(data)}")
    if _read(stream, 1, path):
        raise DataError(f"{path}: more data than the header announces ({dims} = "
                        f"{size} bytes)")
    return head + sizes, dims, data
