"""Data: IDX reading with checks, MNIST / Fashion-MNIST, Jane Austen's novels and plain
text of one's own as character ids, and batching (numpy only)."""
from .idx import DataError, read_idx
from .loader import DataLoader, batch_indices, chunks
from .mnist import Dataset, load, to_float
from .text import TextBatches, TextCorpus, load_text, windows

__all__ = ["DataError", "read_idx", "Dataset", "load", "to_float", "batch_indices", "chunks",
           "DataLoader", "TextBatches", "TextCorpus", "load_text", "windows"]
