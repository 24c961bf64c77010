"""A Trainer callback that watches the curvature while training: every `every` steps
the sharpness (the Hessian's largest eigenvalue) of the training loss on a fixed
measurement set, for Adam, RMSprop and Adagrad also the preconditioned sharpness and
its threshold, the gradient's and the update's norms, and the gradient noise scale."""
import numpy as np

from ..optim import Adagrad, Adam, RMSprop
from .adaptive import preconditioned_sharpness, sharpness_threshold
from .hessian import hessian_eigenvalues, norm
from .noise import gradient_noise_scale, noise_scale_of


def trainer_closure(trainer, x, y):
    """loss_fn() of a Trainer's model and loss on (x, y), its inputs transformed as the
    Trainer feeds them."""
    def loss_fn():
        return trainer.loss(trainer.model(trainer._input(x)), y)
    return loss_fn


class CurvatureMonitor:
    """Trainer callback: `Trainer(..., callbacks=[CurvatureMonitor(x, y, every=10)])`.

    Every `every` steps (and on the first), before the step is taken, it measures on the
    measurement set (x, y) (inputs and targets as the Trainer is given them, a few
    thousand samples at most: every measurement evaluates the loss on all of them):

    - sharpness: the Hessian's largest eigenvalue of the mean loss over the set
      (`hessian_eigenvalues`, tolerance `tol`), and its threshold: 2/lr, (2 + 2μ)/lr
      for SGD with momentum μ (`sharpness_threshold`);
    - preconditioned_sharpness and its threshold for Adam, AdamW, RMSprop and Adagrad
      (`preconditioned_sharpness`; 38/lr for Adam at β1 = 0.9);
    - grad_norm: of the step's own minibatch gradient; update_norm: ‖θ_after − θ_before‖;
    - noise_scale (with `noise_batches` = k ≥ 2): B_simple from k disjoint batches of the
      Trainer's batch size drawn from the set, and its two estimates (noise.py).

    The model stays in training mode; its buffers (dropout counters, running
    estimates) are restored after every evaluation, so that the measurement changes
    nothing of the run: a run with the monitor trains exactly as one without.
    Each record (a dict, with the step, epoch and lr) goes to `self.records`, and an
    epoch's records to that epoch's history entry under "diagnostics". `plot(path)`
    draws them.

    Cost of a measurement: 2 gradients a Lanczos iteration (a few tens) on the set, as
    many again for the preconditioned sharpness, k gradients of a batch for the noise.
    """

    def __init__(self, x, y, every=10, tol=1e-3, max_iter=50, noise_batches=0,
                 preconditioned=True, seed=0):
        if every < 1:
            raise ValueError(f"CurvatureMonitor: every must be >= 1, got {every}")
        if noise_batches == 1 or noise_batches < 0:
            raise ValueError(f"CurvatureMonitor: noise_batches must be 0 or at least 2, "
                             f"got {noise_batches}")
        self.x, self.y, self.every, self.tol, self.max_iter = x, y, every, tol, max_iter
        self.noise_batches, self.preconditioned, self.seed = noise_batches, preconditioned, seed
        self.records, self._epoch_records, self.step = [], [], 0
        self._before = None


    def on_epoch_begin(self, trainer, epoch):
        self.epoch, self._epoch_records = epoch, []

    def on_batch_begin(self, trainer, step):
        self._before = None
        if self.step % self.every == 0:
            self._before = [p.data.copy() for p in trainer.optimizer.params]

    def on_after_backward(self, trainer, step):
        if self._before is None:
            return
        params, model = trainer.optimizer.params, trainer.model
        everything = trainer_closure(trainer, self.x, self.y)
        lr = trainer.optimizer.param_groups[0]["lr"]
        record = dict(step=self.step, epoch=self.epoch, lr=lr,
                      grad_norm=norm([p.grad for p in params if p.grad is not None]))
        record["sharpness"] = float(hessian_eigenvalues(
            everything, params, 1, self.max_iter, self.tol, self.seed, model)[0])
        record["threshold"] = sharpness_threshold(trainer.optimizer)
        if self.preconditioned and _adaptive(trainer.optimizer):
            record["preconditioned_sharpness"], record["preconditioned_threshold"] = \
                preconditioned_sharpness(everything, trainer.optimizer, self.max_iter,
                                         self.tol, self.seed, model)
        if self.noise_batches:
            b = trainer.batch_size or len(self.x) // self.noise_batches
            rng = np.random.default_rng(self.seed + self.step)
            order = rng.permutation(len(self.x))
            if b * self.noise_batches > len(self.x):
                raise ValueError(f"CurvatureMonitor: {self.noise_batches} batches of {b} "
                                 f"need {b * self.noise_batches} samples, the set has "
                                 f"{len(self.x)}")
            fns = [trainer_closure(trainer, self.x[idx], self.y[idx]) for idx in
                   (np.sort(order[i * b:(i + 1) * b]) for i in range(self.noise_batches))]
            record.update(gradient_noise_scale(fns, params, b, model))
        self._record = record

    def on_batch_end(self, trainer, step, loss):
        if self._before is not None:
            self._record["update_norm"] = norm(
                [p.data - b for p, b in zip(trainer.optimizer.params, self._before)])
            self._record["loss"] = loss
            self.records.append(self._record)
            self._epoch_records.append(self._record)
            self._before = None
        self.step += 1

    def on_epoch_end(self, trainer, epoch, logs):
        logs["diagnostics"] = list(self._epoch_records)

    def noise_scale(self):
        """B_simple from the averages of all records' estimates (McCandlish et al.)."""
        rows = [r for r in self.records if "trace_sigma" in r]
        if not rows:
            return float("nan")
        return noise_scale_of(np.mean([r["trace_sigma"] for r in rows]),
                              np.mean([r["grad_norm_sq"] for r in rows]))

    def plot(self, path, title=""):
        """The records as a figure: sharpness with 2/lr, the preconditioned sharpness
        with its threshold (when measured), the norms, the noise scale."""
        return plot_records(self.records, path, title)


def _adaptive(optimizer):
    """A rule `preconditioner` reads, past its first step."""
    return isinstance(optimizer, (Adam, RMSprop, Adagrad)) and optimizer.t > 0


def plot_records(records, path, title=""):
    """Sharpness (and its threshold), preconditioned sharpness, norms and noise scale
    against the step, one panel each (the panels with data); returns the path."""
    from ..figures import pyplot, save
    plt = pyplot()
    step = [r["step"] for r in records]

    def column(key):
        return [r.get(key, np.nan) for r in records]

    panels = [("sharpness", "threshold", "sharpness λ1(H)", "threshold (2 / lr for GD)")]
    if any("preconditioned_sharpness" in r for r in records):
        panels.append(("preconditioned_sharpness", "preconditioned_threshold",
                       "preconditioned sharpness λ1(P⁻¹H)", "the rule's threshold"))
    panels.append(("grad_norm", "update_norm", "gradient norm", "update norm"))
    if any("b_simple" in r for r in records):
        panels.append(("b_simple", None, "gradient noise scale B_simple", None))
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.3 * len(panels)), sharex=True,
                             squeeze=False)
    for ax, (key, other, label, other_label) in zip(axes[:, 0], panels):
        ax.plot(step, column(key), ".-", lw=1, label=label)
        if other:
            ax.plot(step, column(other), "--", lw=1, color="k" if "threshold" in other
                    else "#ff7f0e", label=other_label)
        shown = [v for v in column(key) + (column(other) if other else [])
                 if np.isfinite(v) and v > 0]
        if shown and max(shown) > 20 * min(shown):        # orders of magnitude apart
            ax.set_yscale("log")
        ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    if title:
        axes[0, 0].set_title(title)
    fig.tight_layout()
    return save(fig, path)
