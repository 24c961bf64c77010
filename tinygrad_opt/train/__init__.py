"""Training: the Trainer, checkpoints, and the article's MNIST experiment."""
from ..store import CheckpointError, load_checkpoint, save_checkpoint
from .trainer import EarlyStopping, History, NonFiniteLoss, Trainer

__all__ = ["Trainer", "History", "EarlyStopping", "NonFiniteLoss", "CheckpointError",
           "save_checkpoint", "load_checkpoint"]
