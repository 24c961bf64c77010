"""Reading IDX files (the MNIST format), gzip-compressed or raw, with every check.

IDX layout: big-endian; a magic number 0x00000800 | type code << 8 | ndim (0x803 for
uint8 images of 3 dimensions, 0x801 for labels), then ndim uint32 sizes, then the data.
"""
import gzip
import hashlib
import os
import zlib

import numpy as np


class DataError(ValueError):
    """A data file is missing, truncated, of the wrong format, or corrupt."""


def read_idx(path, expected_magic=None, sha256=None):
    """Read an IDX file into a uint8 array of its stated shape.

    Args:
        path: the file; `path` itself, or `path + ".gz"`, may exist (gzip is detected).
        expected_magic: 0x803, 0x801, ...; anything else raises.
        sha256: hex digest of the decompressed bytes, or None to skip the check.
    Raises:
        DataError: naming the file and the fault (missing, unreadable gzip, truncated,
            wrong magic, checksum mismatch).
    """
    for candidate in (path, path + ".gz"):
        if os.path.exists(candidate):
            path = candidate
            break
    else:
        raise DataError(f"{path}: missing file (looked for {os.path.basename(path)} and "
                        f"{os.path.basename(path)}.gz)")
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise DataError(f"{path}: truncated or corrupt gzip data ({e})") from None
    if len(raw) < 4:
        raise DataError(f"{path}: truncated file ({len(raw)} bytes, no IDX header)")
    magic = int.from_bytes(raw[:4], "big")
    if (expected_magic is not None and magic != expected_magic) or magic >> 8 != 0x08:
        raise DataError(f"{path}: wrong magic number 0x{magic:08x}, expected "
                        f"0x{expected_magic or 0x800:08x} (not an IDX file of uint8?)")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated file (header of {header} bytes, got {len(raw)})")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    size = int(np.prod(dims))
    if len(raw) != header + size:
        raise DataError(f"{path}: truncated file: header says {dims} = {size} bytes of "
                        f"data, the file holds {len(raw) - header}")
    if sha256 is not None:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != sha256:
            raise DataError(f"{path}: checksum mismatch: SHA-256 of the decompressed data "
                            f"is {digest}, expected {sha256} (corrupt copy?)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
