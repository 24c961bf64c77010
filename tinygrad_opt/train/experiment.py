"""The article's MNIST experiment: the article's CNN trained with each method, its
results table beside the article's, and plots."""
import json
import os
import platform
import sys
import time

import numpy as np

from ..data import load
from ..models import article_cnn
from ..optim import METHODS
from . import report
from .trainer import NonFiniteLoss, Trainer


def _environment():
    import numba
    return dict(python=sys.version.split()[0], numpy=np.__version__, numba=numba.__version__,
                machine=platform.machine(), processor=platform.processor(),
                system=platform.platform(), cpus=os.cpu_count())


def warm_up(seed=0):
    """Compile (or load from Numba's cache) every kernel a run uses, on two images, so
    that no method's first epoch pays for it. Returns the seconds it took."""
    from ..nn.functional import softmax_cross_entropy
    from ..tensor import Tensor

    t0 = time.perf_counter()
    for name in ("adam", "momentum", "minibatch", "adagrad", "rmsprop", "adadelta"):
        model = article_cnn(seed=seed)
        opt = METHODS[name].make(model.parameters())
        for batch in (2, 1):
            x = Tensor(np.zeros((batch, 1, 28, 28), dtype=np.float32))
            softmax_cross_entropy(model(x), np.zeros(batch, dtype=np.int64)).backward()
            opt.step()
        model.eval()
        model(x)
    return time.perf_counter() - t0


def run_experiment(methods=tuple(METHODS), epochs=10, batch_size=None, preset="keras",
                   seed=0, limit=None, out="results/mnist", dataset="mnist", data_dir=None,
                   resume=False, quiet=False):
    """Train the article's CNN with each method and write results.json, table.md,
    table.csv and the plots into `out`. Returns the list of runs.

    batch_size overrides the methods' own (None keeps them). On Ctrl-C the finished
    epochs of every method are written before the KeyboardInterrupt goes on.
    """
    data = load(dataset, data_dir)
    train = (data.train_images[:limit], data.train_labels[:limit])
    val = (data.test_images, data.test_labels)
    config = dict(methods=list(methods), epochs=epochs, batch_size=batch_size, preset=preset,
                  seed=seed, limit=limit, dataset=dataset, train_samples=len(train[0]),
                  val_samples=len(val[0]))
    runs = []
    started = time.perf_counter()
    if not quiet:
        print("compiling the Numba kernels (the first run on a machine; cached after)...",
              end=" ", flush=True)
    config["warm_up_seconds"] = warm_up(seed)
    if not quiet:
        print(f"{config['warm_up_seconds']:.1f} s", flush=True)
    try:
        for name in methods:
            method = METHODS[name]
            model = article_cnn(seed=seed)
            trainer = Trainer(model, name, seed=seed, preset=preset, quiet=quiet,
                              batch_size=method.batch_size if batch_size is None else batch_size,
                              checkpoint=os.path.join(out, "checkpoints", f"{name}.pkl"))
            run = dict(name=name, title=method.title, article_row=method.article_row,
                       optimizer=repr(trainer.optimizer), batch_size=trainer.batch_size,
                       history=trainer.history, stopped=None)
            runs.append(run)
            if not quiet:
                print(f"== {method.title}: {trainer.optimizer!r}, batch "
                      f"{trainer.batch_size or 'full'}", flush=True)
            try:
                trainer.fit(train, val, epochs, resume=resume, desc=f"{name} ")
            except NonFiniteLoss as e:
                run["stopped"] = str(e)
                print(f"{name}: {e}", file=sys.stderr)
            finally:
                run["history"] = trainer.history   # resuming replaces the list
            write_results(out, runs, config, time.perf_counter() - started)
    except KeyboardInterrupt:
        write_results(out, runs, config, time.perf_counter() - started, interrupted=True)
        raise
    return runs


def write_results(out, runs, config, seconds, interrupted=False):
    """results.json, table.md, table.csv and three plots: what is finished so far."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(dict(config=config, environment=_environment(), wall_seconds=seconds,
                       interrupted=interrupted, runs=runs), f, indent=1)
    mnist = config["dataset"] == "mnist"        # the article's numbers are MNIST's
    rows = report.table_rows(runs, with_article=mnist)
    report.write_csv(os.path.join(out, "table.csv"), rows)
    note = (f"Our run: {config['epochs']} epochs on {config['train_samples']:,} "
            f"{config['dataset']} training images, seed {config['seed']}, preset "
            f"{config['preset']}, wall time {seconds / 60:.1f} min"
            + (" (interrupted)" if interrupted else "") + "."
            + ("" if mnist else " The article's numbers are MNIST's: not shown."))
    report.write_markdown(os.path.join(out, "table.md"), rows, note)
    report.plot_curves(os.path.join(out, ""), runs, with_article=mnist,
                       dataset={"mnist": "MNIST"}.get(config["dataset"], "Fashion-MNIST"))
