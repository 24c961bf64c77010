"""Training: the Trainer and its callbacks, and the article's MNIST experiment with its
tables and plots (`experiment.py`, `report.py`). The checkpoint format is store's,
re-exported here."""
from ..store import CheckpointError, load_checkpoint, save_checkpoint
from .trainer import EarlyStopping, History, NonFiniteLoss, Trainer

__all__ = ["Trainer", "History", "EarlyStopping", "NonFiniteLoss", "CheckpointError",
           "save_checkpoint", "load_checkpoint"]
