"""Files that are safe to write and to read: atomic writes, the folder lock (files.py),
and the checkpoint format, numpy's .npz plus JSON, never a pickle (checkpoint.py). Used by
train/ (checkpoints, results) and nn/ (Module.save, Module.load); imports nothing else of
the package."""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["CheckpointError", "load_checkpoint", "save_checkpoint"]
