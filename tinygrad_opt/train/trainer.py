"""The training loop: batches, forward, loss, backward, step, evaluation, checkpoints."""
import math
import os
import time

import numpy as np

from .. import __version__
from ..autograd import no_grad
from ..data.loader import batch_indices, chunks
from ..nn.functional import softmax_cross_entropy
from ..nn.utils import clip_grad_norm_
from ..optim import Optimizer, get_method
from ..optim.hyper import check_whole
from ..tensor import Tensor
from ..store.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..store.files import check_writable


class NonFiniteLoss(FloatingPointError):
    """The training loss became NaN or infinite."""


class _Source:
    """Training or validation data in one of the forms `Trainer.fit` takes, giving each
    epoch's steps as (inputs, targets, index) triples: the batch is inputs[index]."""

    def __init__(self, data, what):
        self.what = what
        if isinstance(data, tuple) and len(data) == 2:      # (inputs, targets)
            self.kind = "arrays"
            self.inputs, self.targets = (a if isinstance(a, np.ndarray) else np.asarray(a)
                                         for a in data)
            if len(self.inputs) != len(self.targets):
                raise ValueError(f"{what} data: {len(self.inputs)} inputs for "
                                 f"{len(self.targets)} targets")
        elif hasattr(data, "__getitem__") and hasattr(data, "__len__") and \
                not isinstance(data, (tuple, list)):
            self.kind, self.inputs, self.targets = "dataset", _Gather(data, 0), _Gather(data, 1)
        elif hasattr(data, "__iter__"):
            if iter(data) is data:
                raise ValueError(f"{what} data: an iterator is used up after one epoch; "
                                 f"give a list of batches or an object whose __iter__ "
                                 f"starts afresh")
            self.kind, self.batches = "batches", data
        else:
            raise TypeError(f"{what} data must be (inputs, targets) arrays, a dataset or an "
                            f"iterable of batches, got {type(data).__name__}")
        if self.kind != "batches" and len(self.inputs) == 0 or \
                self.kind == "batches" and hasattr(data, "__len__") and len(data) == 0:
            raise ValueError(f"{what} data holds no samples")

    def steps(self, batch_size):
        """How many steps an epoch has (None when the batches do not say)."""
        if self.kind == "batches":
            return len(self.batches) if hasattr(self.batches, "__len__") else None
        n = len(self.inputs)
        return 1 if batch_size is None else -(-n // batch_size)

    def epoch(self, batch_size, rng):
        """The steps of one epoch: shuffled with rng (None: in order)."""
        if self.kind == "batches":
            for inputs, targets in self.batches:
                inputs, targets = np.asarray(inputs), np.asarray(targets)
                yield inputs, targets, np.arange(len(inputs))
            return
        n = len(self.inputs)
        if rng is None:
            size = n if batch_size is None else batch_size
            indices = [np.arange(i, min(i + size, n)) for i in range(0, n, size)]
        else:
            indices = batch_indices(n, batch_size, rng)
        for index in indices:
            yield self.inputs, self.targets, index


class _Gather:
    """Field k of a dataset's samples, indexed by an array of sample numbers."""

    def __init__(self, dataset, k):
        self.dataset, self.k = dataset, k

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return np.stack([np.asarray(self.dataset[int(i)][self.k]) for i in index])


class History(list):
    """The epochs of a run: a list of dicts (epoch, train_loss, val_loss, ...)."""

    def column(self, key):
        """One key over the epochs, e.g. history.column("val_loss")."""
        return [epoch.get(key) for epoch in self]


class EarlyStopping:
    """A callback that stops training once `monitor` has not improved by `min_delta` for
    `patience` epochs ("min" for losses, "max" for accuracies; "auto" decides by name),
    and says so in one line. restore_best_weights=True puts back the model's weights of
    the best epoch when it stops (Keras' option)."""

    def __init__(self, monitor="val_loss", patience=3, mode="auto", min_delta=0.0,
                 restore_best_weights=False):
        if mode == "auto":
            mode = "max" if monitor.endswith(("acc", "accuracy")) else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'min', 'max' or 'auto', got {mode!r}")
        self.monitor, self.patience, self.mode = monitor, patience, mode
        self.min_delta, self.restore_best_weights = min_delta, restore_best_weights
        self.best, self.best_epoch, self.waited = None, None, 0
        self.best_weights, self.stopped_epoch, self.message = None, None, None

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, which the epoch logs "
                           f"lack (they have {sorted(logs)})")
        value = logs[self.monitor]
        sign = 1 if self.mode == "min" else -1
        if self.best is None or sign * (self.best - value) > self.min_delta:
            self.best, self.best_epoch, self.waited = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = _evaluated_weights(trainer)
            return
        self.waited += 1
        if self.waited < self.patience:
            return
        trainer.stop_training, self.stopped_epoch = True, epoch
        self.message = (f"EarlyStopping: stopped after epoch {epoch}: {self.monitor} has "
                        f"not improved on {self.best:.4f} (epoch {self.best_epoch}) for "
                        f"{self.waited} epochs")
        if self.best_weights is not None:
            trainer.model.load_state_dict(self.best_weights)
            if getattr(trainer.optimizer, "training", False):   # Schedule-Free: the model
                trainer.optimizer.training = False              # now holds an x, eval mode
            self.message += f"; the weights of epoch {self.best_epoch} restored"
        if trainer.verbose:
            print(self.message, flush=True)


def _evaluated_weights(trainer):
    """The model's weights as evaluated: for a rule with two points (Schedule-Free), the
    eval-mode x, taken without moving the training point y by a single bit."""
    opt = trainer.optimizer
    if not (getattr(opt, "training", False) and hasattr(opt, "eval")):
        return trainer.model.state_dict()
    held = [p.data.copy() for p in opt.params]
    opt.eval()
    weights = trainer.model.state_dict()
    for p, data in zip(opt.params, held):
        p.data[...] = data
    opt.training = True
    return weights


class ScheduleStepper:
    """A callback that steps a learning-rate schedule (optim.lr_scheduler): after every
    batch when its `interval` is "batch" (OneCycleLR), else after every epoch;
    ReduceLROnPlateau gets the epoch's `monitor` value. The Trainer adds one for its
    `lr_scheduler` argument; the epoch logs record the lr the epoch started with."""

    def __init__(self, scheduler, monitor="val_loss"):
        from ..optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"lr_scheduler must be one of optim.lr_scheduler's schedules, "
                            f"got {type(scheduler).__name__}")
        if scheduler.interval not in ("epoch", "batch"):
            raise ValueError(f"{type(scheduler).__name__}.interval must be 'epoch' or "
                             f"'batch', got {scheduler.interval!r}")
        self.scheduler, self.monitor = scheduler, monitor
        self.plateau = isinstance(scheduler, ReduceLROnPlateau)

    def on_epoch_begin(self, trainer, epoch):
        self.lr = trainer.optimizer.param_groups[0]["lr"]

    def on_batch_end(self, trainer, step, loss):
        if self.scheduler.interval == "batch" and not self.plateau:
            self.scheduler.step()

    def on_epoch_end(self, trainer, epoch, logs):
        logs["lr"] = self.lr
        if self.plateau:
            if self.monitor not in logs:
                raise KeyError(f"ReduceLROnPlateau monitors {self.monitor!r}, which the "
                               f"epoch logs lack (they have {sorted(logs)})")
            self.scheduler.step(logs[self.monitor])
        elif self.scheduler.interval == "epoch":
            self.scheduler.step()


def metric_sum(metric, outputs, targets):
    """The metric ("accuracy", "mse" or None) summed over a batch's samples (0.0 without
    a metric)."""
    if metric == "accuracy":
        return float(np.sum(outputs.data.argmax(axis=1) == targets))
    if metric == "mse":
        error = (outputs.data - np.asarray(targets, dtype=outputs.dtype)) ** 2
        return float(error.reshape(len(error), -1).mean(axis=1).sum())
    return 0.0


class Trainer:
    """Trains a model with one optimizer, validating after every epoch.

    Args:
        model: a Module returning logits.
        optimizer: an Optimizer, or the name of one of the article's methods ("adam",
            "gd", ...), which also gives the batch regime.
        loss: loss(outputs, targets) -> scalar Tensor (softmax cross-entropy by default).
        transform: applied to each batch of inputs before the model, e.g. MNIST's
            `data.to_float` (uint8 images -> float in [0, 1], with the channel axis);
            None feeds the inputs as they are, in the model's dtype.
        metric: "accuracy" (argmax of the outputs against integer labels; the default),
            "mse" (mean squared error of outputs against targets), or None.
        callbacks: objects with any of on_epoch_begin(trainer, epoch),
            on_epoch_end(trainer, epoch, logs), on_batch_begin(trainer, step),
            on_after_backward(trainer, step) (the gradients are in the parameters'
            .grad, the step not taken yet), on_batch_end(trainer, step, loss); one may
            set `trainer.stop_training` (EarlyStopping does).
        clip_grad_norm: clip the gradients to this total norm before every step
            (`nn.utils.clip_grad_norm_`), or None.
        lr_scheduler: a schedule from optim.lr_scheduler on this optimizer, stepped per
            epoch or per batch as its `interval` says (ScheduleStepper); saved in the
            checkpoint with the optimizer. monitor: the log ReduceLROnPlateau watches.
        seed: seeds the shuffling; with a seeded model, same seed, same history.
        batch_size: samples per update; None = the whole training set (gradient
            descent). Default: the method's, or 64.
        preset: "keras", "torch" or "paper" (defaults and formula), when `optimizer` is a
            method name; None: the rule's default preset.
        verbose: 0 silent, 1 progress bars and epoch lines (the default), 2 epoch
            lines only (Keras' values).
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
                 batch_size="method", preset=None, verbose=1, chunk_size=1000,
                 checkpoint=None, settings=None, transform=None, metric="accuracy",
                 callbacks=(), lr_scheduler=None, monitor="val_loss", clip_grad_norm=None):
        method = None
        if isinstance(optimizer, str):
            method = get_method(optimizer)
            optimizer = method.make(model.parameters(), preset=preset)
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be an Optimizer or a method name, got "
                            f"{type(optimizer).__name__}")
        if isinstance(batch_size, str) and batch_size == "method":
            batch_size = method.batch_size if method else 64
        check_whole("batch_size", batch_size, none_means="the whole data set")
        check_whole("chunk_size", chunk_size)
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.batch_size, self.chunk_size = batch_size, chunk_size
        if metric not in ("accuracy", "mse", None):
            raise ValueError(f"metric must be 'accuracy', 'mse' or None, got {metric!r}")
        self.seed, self.checkpoint = seed, checkpoint
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        if clip_grad_norm is not None and not clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm must be a positive number or None, got "
                             f"{clip_grad_norm!r}")
        self.verbose, self.clip_grad_norm = verbose, clip_grad_norm
        self.transform, self.metric, self.callbacks = transform, metric, list(callbacks)
        self.lr_scheduler = lr_scheduler
        if lr_scheduler is not None:
            if lr_scheduler.optimizer is not optimizer:
                raise ValueError("lr_scheduler belongs to another optimizer than the "
                                 "Trainer's")
            self.callbacks.insert(0, ScheduleStepper(lr_scheduler, monitor))
        self.stop_training = False
        self.rng = np.random.default_rng(seed)
        self.dtype = optimizer.params[0].dtype    # inputs are fed in the model's dtype
        self.history = History()
        groups = [{k: v for k, v in g.items() if k != "params"}
                  for g in optimizer.param_groups]
        hyper = groups[0] if len(groups) == 1 else dict(param_groups=groups)
        self.settings = dict(method=method.name if method else None,
                             optimizer=type(optimizer).__name__, preset=optimizer.preset,
                             **hyper, batch_size=batch_size, seed=seed)
        self.settings.update(settings or {})
        self.settings["version"] = __version__

    def _input(self, inputs):
        """A batch of inputs -> a Tensor in the model's dtype, converted once."""
        x = np.asarray(inputs if self.transform is None else self.transform(inputs))
        return Tensor._wrap(x if x.dtype == self.dtype else x.astype(self.dtype))

    def _metric_sum(self, outputs, targets):
        return metric_sum(self.metric, outputs, targets)

    def _call(self, hook, *args):
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(self, *args)

    # --- one update ---------------------------------------------------------------------
    def accumulate_gradient(self, images, labels, index):
        """Gradient of the mean loss over `index`, through chunks of at most chunk_size,
        into the parameters' .grad (each chunk's loss weighted by its share).
        Returns (mean loss, the metric summed over the samples)."""
        self.optimizer.zero_grad()
        total_loss, correct = 0.0, 0.0
        for part in chunks(index, self.chunk_size):
            logits = self.model(self._input(images[part]))
            loss = self.loss(logits, labels[part])
            share = len(part) / len(index)
            (loss * share if share != 1.0 else loss).backward()
            total_loss += loss.item() * share
            correct += self._metric_sum(logits, labels[part])
        return total_loss, correct

    def _update(self, inputs, targets, index, step):
        """One update on the batch `index`: (its loss and metric before the update).
        A rule that takes a closure (L-BFGS) gets one that recomputes the gradient of
        this batch, as often as it asks."""
        def gradient():
            loss, right = self.accumulate_gradient(inputs, targets, index)
            if math.isfinite(loss):
                self._call("on_after_backward", step)
                if self.clip_grad_norm is not None:
                    clip_grad_norm_(self.optimizer.params, self.clip_grad_norm)
            return loss, right
        if not getattr(self.optimizer, "takes_closure", False):
            loss, right = gradient()
            if math.isfinite(loss):
                self.optimizer.step()
            return loss, right
        evaluations = []

        def closure():
            evaluations.append(gradient())
            if not math.isfinite(evaluations[-1][0]):
                raise NonFiniteLoss("")          # caught below: the caller reports it
            return evaluations[-1][0]
        try:
            self.optimizer.step(closure)
        except NonFiniteLoss:
            return evaluations[-1]
        return evaluations[0]                    # the batch's loss before the step

    # --- evaluation ---------------------------------------------------------------------
    def evaluate(self, data, targets=None, batch_size=1000):
        """Mean loss and metric in eval mode (no dropout), no graph recorded.

        data: inputs (with `targets`), an (inputs, targets) pair, a dataset object or a
        re-iterable of batches, as `fit` takes them."""
        source = _Source(data if targets is None else (data, targets), "validation")
        was_training = self.model.training
        optimizer_training = getattr(self.optimizer, "training", None)
        self.model.eval()
        self._optimizer_mode(False)
        total, correct, count = 0.0, 0.0, 0
        with no_grad():
            for inputs, y, index in source.epoch(batch_size, None):
                logits = self.model(self._input(inputs[index]))
                y = y[index]
                total += self.loss(logits, y).item() * len(y)
                correct += self._metric_sum(logits, y)
                count += len(y)
        self.model.train(was_training)
        self._optimizer_mode(optimizer_training)
        return total / count, correct / count

    def _optimizer_mode(self, training):
        """A rule with two points (Schedule-Free: gradients at y, evaluation at x) is put
        in train or eval mode (`opt.train()`, `opt.eval()`); None leaves it as it is."""
        switch = getattr(self.optimizer, {True: "train", False: "eval"}.get(training, ""),
                         None)
        if callable(switch):
            switch()

    # --- the loop -----------------------------------------------------------------------
    def fit(self, train, val=None, epochs=1, resume=False, desc="", validation_data=None):
        """Train `epochs` more epochs (a second call continues where the first stopped,
        as Keras' fit does), validating after each.

        Args:
            train, val: an (inputs, targets) tuple of arrays of any shape and dtype, the
                first axis the samples; or a dataset object (len(ds), ds[i] -> (input,
                target)); or a re-iterable of (inputs, targets) batches (a list, or an
                object whose __iter__ starts afresh: its batches are used as given, not
                shuffled). val may be None (no validation); `validation_data=` is
                Keras' name for it.
            resume: continue from `self.checkpoint` if it exists; `epochs` then counts
                the whole run, the checkpoint's epochs included, so that the same call
                run again finishes the same run.
        Returns:
            the history (a list, one dict per epoch: epoch, train_loss, val_loss,
            train_acc/val_acc or train_mse/val_mse with the metric, seconds, updates;
            `history.column("val_loss")` gives one key over the epochs).
        Raises:
            CheckpointError: resuming from a checkpoint that is unreadable or of
                another run (see `restore`).
            OSError: the checkpoint's folder cannot be written (found before training).
            NonFiniteLoss: the loss became NaN or inf (the history so far is kept in
                `self.history` and in the last checkpoint).
            KeyboardInterrupt: after the last finished epoch's checkpoint is in place.
        """
        if validation_data is not None:
            if val is not None:
                raise TypeError("fit: give val or validation_data (the same thing), not both")
            val = validation_data
        if resume and self.checkpoint:
            self.restore(epochs)
        last = epochs if resume else len(self.history) + epochs
        if self.checkpoint and os.path.isdir(self.checkpoint):   # found now, not after
            raise CheckpointError(f"{self.checkpoint}: is a folder, not a checkpoint "  # an
                                  f"file")                                           # epoch
        if self.checkpoint:                 # a read-only folder: found now, not after
            folder = os.path.dirname(os.path.abspath(self.checkpoint))   # an epoch
            os.makedirs(folder, exist_ok=True)
            check_writable(folder)
        source = _Source(train, "train")
        self.stop_training = False
        for epoch in range(len(self.history) + 1, last + 1):
            if self.stop_training:
                break
            self.model.train()
            self._optimizer_mode(True)
            self._call("on_epoch_begin", epoch)
            t0 = time.perf_counter()
            logs = self.train_epoch(source, epoch, f"{desc}epoch {epoch}/{last}")
            timing = {k: logs.pop(k) for k in ("train_seconds", "updates")}
            if val is not None:
                val_loss, val_metric = self.evaluate(val)
                logs["val_loss"] = val_loss
                if self.metric:
                    logs[f"val_{self._metric_name}"] = val_metric
            logs.update(seconds=time.perf_counter() - t0, **timing)
            self.history.append(logs)
            if self.verbose:
                shown = "".join(f" | {k} {v:.4f}" for k, v in logs.items()
                                if k.startswith(("train_", "val_")) and k != "train_seconds")
                print(f"{desc}epoch {epoch}:{shown} | {logs['seconds']:.1f} s", flush=True)
            self._call("on_epoch_end", epoch, logs)     # before the checkpoint: the
            if self.checkpoint:                          # schedule's next lr is in it
                self._save()
        self._optimizer_mode(False)          # the model holds the point to use, x
        return self.history

    @property
    def _metric_name(self):
        return {"accuracy": "acc", "mse": "mse", None: None}[self.metric]

    def train_epoch(self, source, epoch, desc):
        """One pass over the training data: the epoch's logs (train loss and metric,
        train_seconds, updates)."""
        t0 = time.perf_counter()
        total = source.steps(self.batch_size)
        bar = self._bar(total, desc)
        name = self._metric_name
        loss_sum = correct = seen = step = 0
        for step, (inputs, targets, index) in enumerate(
                source.epoch(self.batch_size, self.rng), start=1):
            self._call("on_batch_begin", step)
            loss, right = self._update(inputs, targets, index, step)
            if not math.isfinite(loss):
                bar.close()
                raise NonFiniteLoss(f"loss became {loss} at epoch {epoch}, step {step}; "
                                    f"training stopped, the {len(self.history)} "
                                    f"finished epochs are kept")
            self._call("on_batch_end", step, loss)
            loss_sum += loss * len(index)
            correct += right
            seen += len(index)
            bar.update(1)
            if step % 50 == 0 or step == total:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", refresh=False,
                                **({name: f"{correct / seen:.4f}"} if name else {}))
        bar.close()
        if not seen:
            raise ValueError("train data gave no samples this epoch")
        logs = dict(epoch=epoch, train_loss=loss_sum / seen)
        if name:
            logs[f"train_{name}"] = correct / seen
        return dict(logs, train_seconds=time.perf_counter() - t0, updates=step)

    def _bar(self, total, desc):
        from tqdm.auto import tqdm
        return tqdm(total=total, desc=desc, disable=self.verbose != 1, leave=False,
                    unit="step", mininterval=0.5, dynamic_ncols=True)

    # --- checkpoints --------------------------------------------------------------------
    def _save(self):
        save_checkpoint(self.checkpoint, dict(
            settings=self.settings, history=self.history, rng=self.rng.bit_generator.state,
            model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
            lr_scheduler=(self.lr_scheduler.state_dict() if self.lr_scheduler else None),
            lr_scheduler_type=(type(self.lr_scheduler).__name__ if self.lr_scheduler
                               else None)))

    def _check_schedule(self, state):
        """The checkpoint's schedule is this Trainer's kind (a StepLR state would load
        into a CosineAnnealingLR and run on as something neither is)."""
        saved = state.get("lr_scheduler_type")
        if self.lr_scheduler is None:
            if state.get("lr_scheduler") is not None:
                raise ValueError(f"the checkpoint has a learning-rate schedule "
                                 f"({saved or 'of an unrecorded kind'}); this Trainer has none")
            return
        if state.get("lr_scheduler") is None:
            raise ValueError("the checkpoint has no learning-rate schedule")
        if saved is not None and saved != type(self.lr_scheduler).__name__:
            raise ValueError(f"the checkpoint's schedule is a {saved}, this Trainer's a "
                             f"{type(self.lr_scheduler).__name__}")

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
        # A hyperparameter added since an older checkpoint was saved is missing from it;
        # loading fills it with this optimizer's value, which does what that version did.
        added = type(self.optimizer).added_since
        differ = [f"{k}: saved {saved.get(k)!r}, requested {self.settings.get(k)!r}"
                  for k in list(self.settings) + [k for k in saved if k not in self.settings]
                  if saved.get(k, "(not recorded)") != self.settings.get(k, "(not recorded)")
                  and not (k in added and k not in saved)]
        if differ:
            raise CheckpointError(f"{path}: the checkpoint is of another run; refusing to "
                                  f"resume it with different settings: " + "; ".join(differ))
        if epochs is not None and len(history) > epochs:
            raise CheckpointError(f"{path}: the checkpoint has {len(history)} epochs, more "
                                  f"than the {epochs} requested (only the number of epochs "
                                  f"may grow)")
        rng = np.random.default_rng()
        previous = (self.model.state_dict(), self.optimizer.state_dict(),
                    self.lr_scheduler.state_dict() if self.lr_scheduler else None)
        try:
            rng.bit_generator.state = state["rng"]
            self._check_schedule(state)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.lr_scheduler is not None:
                self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        except (KeyError, TypeError, ValueError) as e:      # a failed restore changes
            self.model.load_state_dict(previous[0])          # nothing
            self.optimizer.load_state_dict(previous[1])
            if self.lr_scheduler is not None:
                self.lr_scheduler.load_state_dict(previous[2])
            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            raise CheckpointError(f"{path}: does not fit this model and optimizer "
                                  f"({msg})") from None
        self.rng, self.history = rng, History(history)
        return True
