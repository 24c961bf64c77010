"""`tinygrad-opt study`: plan the trials of a protocol, run those not yet finished on a
backend, store each as it finishes, and write the report.

Protocols:
- "article": every method at its defaults (plus `--set` overrides), `seeds` seeds each,
  trained on the training images and scored on the test images after every epoch, as
  the article does.
- "tuned" (DeepOBS's protocol, Schneider et al. 2019): the learning rate of each method
  chosen on a log grid (and any `--grid` values) by the validation accuracy on a split
  held out from the training images, on `tune_seeds` seeds; the best setting then
  trained on `seeds` fresh seeds (1000, 1001, ...) on the training images and scored on
  the test images.

A study folder holds study.json (the last command's settings), trials/ (one JSON file
per finished trial, written atomically: an interrupted study loses only the trials in
flight) and the report (report.md, table.csv, plots). A rerun skips finished trials.
"""
import json
import math
import os
import stat
import sys
import time

import numpy as np

from ..optim import METHODS, STUDY_METHODS
from ..optim.hyper import is_number
from ..store.files import OutputLock, atomic_write_text, check_writable, remove_temporaries
from .backends import make_backend
from .trials import make_spec, trial_id

LR_GRID = tuple(float(f"{v:.3g}") for v in np.logspace(-5, 0, 13))   # 1e-5 ... 1
FINAL_SEED = 1000                     # the tuned protocol's test runs: seeds 1000, 1001, ...


def plan(protocol, methods, datasets, seeds, epochs, limit, batch_size, sets=None,
         grids=None, lr_grid=None, tune_seeds=2, val_size=10000):
    """The first phase's specs (all of them, for the article protocol; the tuning runs
    for the tuned protocol)."""
    sets, grids = sets or {}, grids or {}
    specs = []
    for dataset in datasets:
        for method in methods:
            common = dict(dataset=dataset, epochs=epochs, limit=limit,
                          batch_size=batch_size)
            if protocol == "article":
                specs += [make_spec(method, seed=s, hyper=sets.get(method), **common)
                          for s in range(seeds)]
                continue
            for hyper in settings_grid(method, sets, grids, lr_grid):
                specs += [make_spec(method, seed=s, hyper=hyper, split="val",
                                    val_size=val_size, **common) for s in range(tune_seeds)]
    return specs


def lr_grids(methods, lr_grid=None):
    """Each method's learning rates for the tuned protocols: `lr_grid` (--lr-grid) for
    all, or where it is None, the method's own grid (`Method.lr_grid`) or LR_GRID."""
    return {m: list(lr_grid if lr_grid is not None else METHODS[m].lr_grid or LR_GRID)
            for m in methods}


def grid_of(config_grid, method):
    """A method's grid in a study.json: a dict per method, or (older studies) one list."""
    return config_grid.get(method, []) if isinstance(config_grid, dict) else config_grid


def settings_grid(method, sets, grids, lr_grid):
    """Every combination of the method's learning-rate grid (lr_grid: a list, or a dict
    per method) and its --grid values."""
    combos = [dict(sets.get(method, {}))]
    axes = dict(lr=list(grid_of(lr_grid, method)), **grids.get(method, {}))
    for key, values in axes.items():
        combos = [dict(c, **{key: v}) for c in combos for v in values]
    return combos


def final_specs(tuning, seeds):
    """The tuned protocol's second phase: per data set and method, the setting with the
    best mean final validation accuracy (diverged runs count as 0), on fresh seeds."""
    best = {}
    for key, runs in _group(tuning, lambda r: (r["spec"]["dataset"], r["spec"]["method"],
                                               json.dumps(r["spec"]["hyper"], sort_keys=True))):
        score = np.mean([_final_acc(r) for r in runs])
        if key[:2] not in best or score > best[key[:2]][0]:
            best[key[:2]] = (score, runs[0]["spec"])
    specs = []
    for (_dataset, _method), (_score, spec) in sorted(best.items()):
        for s in range(seeds):
            specs.append(make_spec(spec["method"], spec["dataset"], FINAL_SEED + s,
                                   spec["hyper"], spec["epochs"], spec["limit"],
                                   spec["batch_size"], "test", spec["val_size"]))
    return specs


def _final_acc(result):
    h = result["history"]
    return 0.0 if result["diverged"] or not h else h[-1]["val_acc"]


def _group(results, key):
    groups = {}
    for r in results:
        groups.setdefault(key(r), []).append(r)
    return sorted(groups.items())


class StudyFolder:
    """The folder's trials: read the finished ones, store a new one atomically. Nothing
    is written or deleted outside the folder: a `trials/` that is a symbolic link is
    refused, and a read-only one is found before any trial trains."""

    def __init__(self, out):
        from ..train.experiment import OutputError
        self.out, self.trials = out, os.path.join(out, "trials")
        if os.path.islink(self.trials):
            raise OutputError(f"{self.trials} is a symbolic link; refusing to write (and "
                              f"clean up) through it")
        os.makedirs(self.trials, exist_ok=True)
        check_writable(self.trials)
        remove_temporaries(self.out)        # what a kill -9 during a write left
        remove_temporaries(self.trials)

    def path(self, spec):
        return os.path.join(self.trials, trial_id(spec) + ".json")

    def finished(self, spec):
        """The stored result of spec, or None: no file, or one that is not a regular file,
        not JSON, or not a valid result of this spec (set aside with a one-line note, and
        the trial run again)."""
        path = self.path(spec)
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):   # a named pipe: never opened
                return None
            with open(path, encoding="utf-8") as f:
                result = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as e:
            return self._set_aside(path, f"unreadable ({type(e).__name__})")
        why = invalid_result(result, spec)
        return result if why is None else self._set_aside(path, why)

    @staticmethod
    def _set_aside(path, why):
        if why != "another spec":               # a spec that changed is no damage
            print(f"tinygrad-opt: note: {path}: {why}; running the trial again",
                  file=sys.stderr, flush=True)
        return None

    def store(self, result):
        atomic_write_text(self.path(result["spec"]), json.dumps(result, indent=1))


def invalid_result(result, spec):
    """Why a stored trial result cannot be this spec's (None: it can): the spec, the
    package version, a history of the spec's epochs (fewer only if it diverged), epoch
    numbers in order, losses finite, accuracies in [0, 1], counts and times >= 0."""
    if not isinstance(result, dict) or result.get("spec") != spec:
        return "another spec" if isinstance(result, dict) else "not a trial result"
    history, diverged = result.get("history"), result.get("diverged")
    if not isinstance(diverged, bool) or not isinstance(history, list):
        return "no history or diverged flag"
    if len(history) > spec["epochs"] or (len(history) < spec["epochs"] and not diverged):
        return f"{len(history)} epochs recorded for a trial of {spec['epochs']}"
    for i, h in enumerate(history, start=1):
        if not isinstance(h, dict) or h.get("epoch") != i:
            return f"epoch {i} of its history is not epoch {i}"
        if "problem" in spec:               # a suite trial: its metric is `value`
            keys = ("train_loss", "val_loss", "value", "updates", "seconds", "train_seconds")
            for key in keys:
                if not is_number(h.get(key)) or not math.isfinite(h[key]):
                    return f"epoch {i}: {key} is {h.get(key)!r}, not a finite number"
            continue
        for key in ("train_loss", "val_loss"):
            if not is_number(h.get(key)) or not math.isfinite(h[key]):
                return f"epoch {i}: {key} is {h.get(key)!r}, not a finite number"
        for key in ("train_acc", "val_acc"):
            if not is_number(h.get(key)) or not 0 <= h[key] <= 1:
                return f"epoch {i}: {key} is {h.get(key)!r}, not an accuracy in [0, 1]"
        for key in ("updates", "seconds", "train_seconds"):
            if not is_number(h.get(key)) or not 0 <= h[key] < math.inf:
                return f"epoch {i}: {key} is {h.get(key)!r}"
    return None


def run_specs(folder, specs, backend, quiet, what):
    """Run the specs without a stored result; return every spec's result, in order."""
    results = {trial_id(s): folder.finished(s) for s in specs}
    todo = [s for s in specs if results[trial_id(s)] is None]
    from tqdm.auto import tqdm
    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc=what, unit="trial",
               disable=quiet, dynamic_ncols=True)
    if not quiet and len(todo) < len(specs):
        bar.write(f"{what}: {len(specs) - len(todo)} of {len(specs)} trials already "
                  f"finished in {folder.trials}; running the other {len(todo)}",
                  file=sys.stderr)

    def done(result):
        folder.store(result)
        results[result["id"]] = result
        bar.update(1)

    try:
        if todo:
            backend.run(todo, done)
    finally:
        bar.close()
    return [results[trial_id(s)] for s in specs]


def run_study(protocol="article", methods=None, datasets=("mnist",), seeds=3, epochs=10,
              limit=None, batch_size=None, out="results/study", backend="local", workers=1,
              threads=None, address=None, sets=None, grids=None, lr_grid=None,
              tune_seeds=2, val_size=10000, target=0.98, quiet=False, retries=2,
              data_dir=None):
    """Plan, run and report a study (see the module docstring). Returns the report's
    summary (dict)."""
    from . import report
    methods = list(methods or STUDY_METHODS)
    lr_grid = lr_grids(methods, lr_grid)
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    os.makedirs(out, exist_ok=True)
    check_writable(out)
    config = dict(protocol=protocol, methods=methods, datasets=list(datasets), seeds=seeds,
                  epochs=epochs, limit=limit, batch_size=batch_size, backend=backend,
                  workers=workers, threads=threads, sets=sets or {}, grids=grids or {},
                  lr_grid=lr_grid, tune_seeds=tune_seeds, val_size=val_size,
                  target=target)
    from ..data import DataError, load
    for dataset in datasets:            # a missing or damaged data set: said now, once
        n = len(load(dataset, data_dir).train_images)
        if protocol == "tuned" and not val_size < n:
            raise DataError(f"--val-size {val_size}: {dataset} has {n:,} training images, "
                            f"and the held-out split must leave some to train on")
    t0 = time.perf_counter()
    with OutputLock(out):
        atomic_write_text(os.path.join(out, "study.json"), json.dumps(config, indent=1))
        folder = StudyFolder(out)
        runner = make_backend(backend, workers, threads, address, retries, data_dir)
        first = plan(protocol, methods, datasets, seeds, epochs, limit, batch_size, sets,
                     grids, lr_grid, tune_seeds, val_size)
        results = run_specs(folder, first, runner, quiet,
                            "tuning" if protocol == "tuned" else "trials")
        final = []
        if protocol == "tuned":
            final = run_specs(folder, final_specs(results, seeds), runner, quiet, "test runs")
        summary = report.write(out, config, results, final, time.perf_counter() - t0)
    return summary

