"""Checkpoints in a format that cannot carry code: one `.npz` file (numpy's zip of `.npy`
arrays, read with `allow_pickle=False`) holding every array, plus one member of plain
JSON for everything else (history, settings, random-generator state, step counter).

    save_checkpoint(path, payload)      payload: nested dicts/lists of numbers, strings,
    payload = load_checkpoint(path)     booleans, None and numpy arrays

An array in the payload is stored as the npz member `a<k>` and replaced in the JSON by
{"__array__": k}. The JSON member `__meta__` also records the format's name and version.

Why it is safe to load: `allow_pickle=False` makes numpy refuse any object array (the
only way an `.npy` file can hold code), the rest is `json.loads`, and every member must
be stored uncompressed, so no member can decompress to more than the file's own size.
A file that is empty, truncated, foreign (a pickle, another zip), of another format
version or otherwise unreadable raises `CheckpointError` naming the file and the fault.
Writing goes through `files.atomic_write`: a `kill -9` leaves the old or the new file.
"""
import json
import os
import stat
import zipfile

import numpy as np

from .files import atomic_write

FORMAT = "tinygrad_opt checkpoint"
VERSION = 1
_META = "__meta__"
_NUMERIC = "biuf"     # dtype kinds a checkpoint may hold: bool, int, uint, float


class CheckpointError(ValueError):
    """A checkpoint file cannot be used: unreadable, foreign, or of another run."""


def _split(value, arrays):
    """The payload with each array replaced by a reference, the arrays put in `arrays`."""
    if isinstance(value, np.ndarray):
        arrays.append(value)
        return {"__array__": len(arrays) - 1}
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise TypeError(f"checkpoint keys must be strings, got {k!r}")
        return {k: _split(v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split(v, arrays) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a checkpoint cannot hold a {type(value).__name__}")


def _join(value, arrays):
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        return {k: _join(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_join(v, arrays) for v in value]
    return value


def save_checkpoint(path, payload):
    """Write `payload` to `path` (an .npz file) atomically."""
    arrays = []
    tree = _split(payload, arrays)
    meta = json.dumps({"format": FORMAT, "version": VERSION, "payload": tree})
    # a.copy(order="C"), not np.ascontiguousarray, which turns a 0-d array into shape (1,)
    members = {f"a{k}": a if a.flags.c_contiguous else a.copy(order="C")
               for k, a in enumerate(arrays)}
    members[_META] = np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **members))


def load_checkpoint(path):
    """Read what `save_checkpoint` wrote. Raises CheckpointError naming `path`."""
    _check_head(path)
    members = _read_members(path)
    if _META not in members:
        raise CheckpointError(f"{path}: an .npz file without the {_META} record: not a "
                              f"tinygrad_opt checkpoint")
    meta = _read_meta(path, members.pop(_META))
    arrays = {}
    for name, a in members.items():
        if not (name[:1] == "a" and name[1:].isdigit()) or a.dtype.kind not in _NUMERIC:
            raise CheckpointError(f"{path}: unexpected member {name!r} of dtype {a.dtype}")
        arrays[int(name[1:])] = a
    try:
        return _join(meta.get("payload"), arrays)
    except (KeyError, TypeError):
        raise CheckpointError(f"{path}: its record refers to arrays the file lacks "
                              f"(truncated or altered)") from None


MAX_DEPTH = 64                  # the JSON record's nesting, far beyond what save writes


def _check_head(path):
    """A readable, non-empty regular file that is not a pickle (a named pipe would block
    the read forever; a device would be read to no end)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from None
    if stat.S_ISDIR(mode):
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path}: not a regular file (a pipe, a device, a socket)")
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from None
    if not head:
        raise CheckpointError(f"{path}: empty file (not a checkpoint)")
    if head[:1] == b"\x80":
        raise CheckpointError(f"{path}: a pickle (the format of an earlier version), which "
                              f"is never loaded: unpickling can run code. Remove it to "
                              f"start afresh")


def _read_members(path):
    """The .npz's arrays, every member stored uncompressed, no pickle allowed."""
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.compress_type != zipfile.ZIP_STORED:
                    raise CheckpointError(f"{path}: member {info.filename} is compressed; "
                                          f"a checkpoint stores its arrays uncompressed")
                _check_announced_size(path, z, info)
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated, or not an "
                              f".npz file: {e})") from None


def _check_announced_size(path, z, info):
    """An .npy member's header announces its array's shape and dtype: the bytes they
    need must be the bytes stored (a header announcing 7 TiB would have numpy try to
    allocate them). Other members, and arrays of objects (np.load refuses those without
    unpickling), are left to np.load's own checks."""
    if not info.filename.endswith(".npy"):
        return
    with z.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)
            shape, _, dtype = header(f, max_header_size=10000)
        except ValueError as e:
            raise CheckpointError(f"{path}: member {info.filename} is not a numpy array "
                                  f"({e})") from None
        if dtype.hasobject:
            return
        announced = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if announced != info.file_size - f.tell():
            raise CheckpointError(f"{path}: member {info.filename} announces {announced:,} "
                                  f"bytes and stores {info.file_size - f.tell():,} "
                                  f"(truncated or altered)")


def _depth(value):
    """How deeply lists and dicts nest in value (counted without recursion)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, d)
            todo.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def _read_meta(path, record):
    """The JSON record: this format, this version, nested no deeper than MAX_DEPTH."""
    try:
        meta = json.loads(record.tobytes().decode("utf-8"))
    except RecursionError:
        raise CheckpointError(f"{path}: its {_META} record nests too deeply") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{path}: its {_META} record is not valid JSON ({e})") from None
    if _depth(meta) > MAX_DEPTH:
        raise CheckpointError(f"{path}: its {_META} record nests deeper than {MAX_DEPTH}")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tinygrad_opt checkpoint")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {meta.get('version')!r}; "
                              f"this version of tinygrad_opt reads version {VERSION}")
    return meta
