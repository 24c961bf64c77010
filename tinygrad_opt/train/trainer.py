"""The training loop: batches, forward, loss, backward, step, evaluation, checkpoints."""
import math
import os
import time

import numpy as np

from .. import __version__
from ..autograd import no_grad
from ..data.loader import batch_indices, chunks
from ..data.mnist import to_float
from ..nn.functional import softmax_cross_entropy
from ..optim import Optimizer, get_method
from ..tensor import Tensor
from ..store.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..store.files import check_writable


class NonFiniteLoss(FloatingPointError):
    """The training loss became NaN or infinite."""


class Trainer:
    """Trains a model with one optimizer, validating after every epoch.

    Args:
        model: a Module returning logits.
        optimizer: an Optimizer, or the name of one of the article's methods ("adam",
            "gd", ...), which also gives the batch regime.
        loss: loss(logits, labels) -> scalar Tensor (softmax cross-entropy by default).
        seed: seeds the shuffling; with a seeded model, same seed, same history.
        batch_size: samples per update; None = the whole training set (gradient
            descent). Default: the method's, or 64.
        preset: "keras" or "paper" defaults, when `optimizer` is a method name.
        quiet: no progress bars.
        chunk_size: the largest batch that goes through the model at once; bigger
            batches (gradient descent) accumulate their gradient over chunks.
        checkpoint: path of the checkpoint (an .npz file, see store/checkpoint.py) written at
            the end of every epoch, or None.
        settings: more of what defines the run (data set, its size, ...), recorded in the
            checkpoint beside the optimizer's class and hyperparameters, the batch size,
            the seed and the package version; resuming refuses a checkpoint whose
            settings differ.
    """

    def __init__(self, model, optimizer, loss=softmax_cross_entropy, seed=0,
                 batch_size="method", preset="keras", quiet=False, chunk_size=1000,
                 checkpoint=None, settings=None):
        method = None
        if isinstance(optimizer, str):
            method = get_method(optimizer)
            optimizer = method.make(model.parameters(), preset=preset)
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be an Optimizer or a method name, got "
                            f"{type(optimizer).__name__}")
        if batch_size == "method":
            batch_size = method.batch_size if method else 64
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.batch_size, self.chunk_size = batch_size, chunk_size
        self.seed, self.quiet, self.checkpoint = seed, quiet, checkpoint
        self.rng = np.random.default_rng(seed)
        self.dtype = optimizer.params[0].dtype    # inputs are fed in the model's dtype
        self.history = []
        self.settings = dict(method=method.name if method else None,
                             optimizer=type(optimizer).__name__, preset=optimizer.preset,
                             **optimizer.hyper, batch_size=batch_size, seed=seed)
        self.settings.update(settings or {})
        self.settings["version"] = __version__

    def _input(self, images):
        """uint8 images -> a Tensor in the model's dtype, converted once (no extra copy)."""
        x = to_float(images)
        return Tensor._wrap(x if x.dtype == self.dtype else x.astype(self.dtype))

    # --- one update ---------------------------------------------------------------------
    def accumulate_gradient(self, images, labels, index):
        """Gradient of the mean loss over `index`, through chunks of at most chunk_size,
        into the parameters' .grad (each chunk's loss weighted by its share).
        Returns (mean loss, number correct)."""
        self.optimizer.zero_grad()
        total_loss, correct = 0.0, 0
        for part in chunks(index, self.chunk_size):
            logits = self.model(self._input(images[part]))
            loss = self.loss(logits, labels[part])
            share = len(part) / len(index)
            (loss * share if share != 1.0 else loss).backward()
            total_loss += loss.item() * share
            correct += int(np.sum(logits.data.argmax(axis=1) == labels[part]))
        return total_loss, correct

    # --- evaluation ---------------------------------------------------------------------
    def evaluate(self, images, labels, batch_size=1000):
        """Mean loss and accuracy in eval mode (no dropout), no graph recorded."""
        self.model.eval()
        total, correct = 0.0, 0
        with no_grad():
            for i in range(0, len(images), batch_size):
                logits = self.model(self._input(images[i:i + batch_size]))
                y = labels[i:i + batch_size]
                total += self.loss(logits, y).item() * len(y)
                correct += int(np.sum(logits.data.argmax(axis=1) == y))
        self.model.train()
        return total / len(images), correct / len(images)

    # --- the loop -----------------------------------------------------------------------
    def fit(self, train, val, epochs, resume=False, desc=""):
        """Train for `epochs` epochs in all (a resumed run counts those already done).

        Args:
            train, val: (uint8 images (N, 28, 28), labels (N,)) pairs.
            resume: continue from `self.checkpoint` if it exists.
        Returns:
            the history: one dict per epoch (epoch, train_loss, train_acc, val_loss,
            val_acc, seconds, updates).
        Raises:
            CheckpointError: resuming from a checkpoint that is unreadable or of
                another run (see `restore`).
            OSError: the checkpoint's folder cannot be written (found before training).
            NonFiniteLoss: the loss became NaN or inf (the history so far is kept in
                `self.history` and in the last checkpoint).
            KeyboardInterrupt: after the last finished epoch's checkpoint is in place.
        """
        if resume and self.checkpoint:
            self.restore(epochs)
        if self.checkpoint:                 # a read-only folder: found now, not after
            folder = os.path.dirname(os.path.abspath(self.checkpoint))   # an epoch
            os.makedirs(folder, exist_ok=True)
            check_writable(folder)
        images, labels = train
        self.model.train()
        for epoch in range(len(self.history) + 1, epochs + 1):
            t0 = time.perf_counter()
            batches = batch_indices(len(images), self.batch_size, self.rng)
            bar = self._bar(len(batches), f"{desc}epoch {epoch}/{epochs}")
            loss_sum = correct = seen = 0
            for step, index in enumerate(batches, start=1):
                loss, right = self.accumulate_gradient(images, labels, index)
                if not math.isfinite(loss):
                    bar.close()
                    raise NonFiniteLoss(f"loss became {loss} at epoch {epoch}, step {step}; "
                                        f"training stopped, the {len(self.history)} "
                                        f"finished epochs are kept")
                self.optimizer.step()
                loss_sum += loss * len(index)
                correct += right
                seen += len(index)
                bar.update(1)
                if step % 50 == 0 or step == len(batches):
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}",
                                    refresh=False)
            bar.close()
            train_seconds = time.perf_counter() - t0
            val_loss, val_acc = self.evaluate(*val)
            self.history.append(dict(
                epoch=epoch, train_loss=loss_sum / seen, train_acc=correct / seen,
                val_loss=val_loss, val_acc=val_acc, seconds=time.perf_counter() - t0,
                train_seconds=train_seconds, updates=len(batches)))
            if not self.quiet:
                print(f"{desc}epoch {epoch}: train loss {loss_sum / seen:.4f} acc "
                      f"{correct / seen:.4f} | val loss {val_loss:.4f} acc {val_acc:.4f} | "
                      f"{self.history[-1]['seconds']:.1f} s", flush=True)
            if self.checkpoint:
                self._save()
        return self.history

    def _bar(self, total, desc):
        from tqdm.auto import tqdm
        return tqdm(total=total, desc=desc, disable=self.quiet, leave=False,
                    unit="step", mininterval=0.5, dynamic_ncols=True)

    # --- checkpoints --------------------------------------------------------------------
    def _save(self):
        save_checkpoint(self.checkpoint, dict(
            settings=self.settings, history=self.history, rng=self.rng.bit_generator.state,
            model=self.model.state_dict(), optimizer=self.optimizer.state_dict()))

    def restore(self, epochs=None):
        """Continue from `self.checkpoint`: model, optimizer, shuffling and history.

        Returns False (and changes nothing) when there is no checkpoint file.
        Raises:
            CheckpointError: naming the file: unreadable or not a checkpoint; or saved by
                another run, listing each setting that differs (saved vs requested); or
                holding more epochs than `epochs` (only the number of epochs may grow).
                Nothing is changed.
        """
        path = self.checkpoint
        if not os.path.lexists(path):
            return False
        state = load_checkpoint(path)
        try:
            saved, history = dict(state["settings"]), list(state["history"])
            if [h["epoch"] for h in history] != list(range(1, len(history) + 1)):
                raise ValueError("its history is not epochs 1, 2, ...")
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: not a training checkpoint ({e})") from None
        differ = [f"{k}: saved {saved.get(k)!r}, requested {self.settings.get(k)!r}"
                  for k in list(self.settings) + [k for k in saved if k not in self.settings]
                  if saved.get(k, "(not recorded)") != self.settings.get(k, "(not recorded)")]
        if differ:
            raise CheckpointError(f"{path}: the checkpoint is of another run; refusing to "
                                  f"resume it with different settings: " + "; ".join(differ))
        if epochs is not None and len(history) > epochs:
            raise CheckpointError(f"{path}: the checkpoint has {len(history)} epochs, more "
                                  f"than the {epochs} requested (only the number of epochs "
                                  f"may grow)")
        rng = np.random.default_rng()
        previous = self.model.state_dict()
        try:
            rng.bit_generator.state = state["rng"]
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, TypeError, ValueError) as e:
            self.model.load_state_dict(previous)
            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            raise CheckpointError(f"{path}: does not fit this model and optimizer "
                                  f"({msg})") from None
        self.rng, self.history = rng, history
        return True
