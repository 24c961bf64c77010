"""Data: IDX reading with checks, MNIST / Fashion-MNIST, and batching (numpy only)."""
from .idx import DataError, read_idx
from .loader import DataLoader, batch_indices, chunks
from .mnist import Dataset, load, to_float

__all__ = ["DataError", "read_idx", "Dataset", "load", "to_float", "batch_indices", "chunks",
           "DataLoader"]
