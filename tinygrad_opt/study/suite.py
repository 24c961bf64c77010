"""`tinygrad-opt study --problems ...`: the study over the suite's problems
(tinygrad_opt/problems), with three protocols (docs/suite.md):

- "oneshot": every rule at its defaults (plus `--set`), `seeds` seeds each: Crowded
  Valley's one-shot budget (Schmidt et al. 2021), what a user who tunes nothing gets.
- "tuned": DeepOBS's protocol: the learning rate (and any `--grid` values) chosen on a
  log grid by the mean final validation metric over `tune_seeds` seeds, the best setting
  then trained on `seeds` fresh seeds (1000, 1001, ...).
- "random": a budgeted random search, as AlgoPerf's external tuning and Crowded Valley's
  small budget: `trials` settings per rule and problem, the learning rate log-uniform
  over [default / 30, default x 30] and, for a rule with a momentum or beta1, 1 - it
  log-uniform over [0.01, 0.3]; one seed each, the best rerun on fresh seeds. The report
  counts what tuning cost.

Trials are the study's (trials.make_problem_spec): stored one file each, atomically,
skipped on a rerun, identical on any backend and worker count.
"""
import json
import math
import os
import time
import zlib

import numpy as np

from ..optim import FULL_BATCH, METHODS
from ..store.files import OutputLock, atomic_write_text, check_writable
from .backends import make_backend
from .run import FINAL_SEED, StudyFolder, lr_grids, run_specs, settings_grid
from .trials import make_problem_spec

# The rules of the suite: every method but the full-batch and one-sample ones (gradient
# descent and one-sample SGD are mini-batch SGD at another batch size, and L-BFGS runs on
# the full batch; a problem fixes its own batch size).
SUITE_RULES = tuple(m for m, method in METHODS.items()
                    if method.batch_size not in (FULL_BATCH, 1))
DEFAULT_RULES = ("minibatch", "momentum", "adagrad", "rmsprop", "adadelta", "adam", "nadam",
                 "lion", "rprop", "adamax", "lamb", "adafactor", "sf_sgd", "sf_adamw",
                 "prodigy")
PROTOCOLS = ("oneshot", "tuned", "random")
SEARCH_SEED = 20261206


def _constructed(method):
    """The defaults of the method's optimizer (its preset's, then the method's), read
    from one built on a dummy parameter."""
    from ..tensor import Tensor
    return dict(METHODS[method].make([Tensor(np.zeros(1, np.float32),
                                             requires_grad=True)]).defaults)


def random_settings(problem, method, trials, sets=None):
    """`trials` settings drawn for (problem, method): see the module docstring. The
    draws depend only on the problem's and method's names and the trial's index."""
    defaults = _constructed(method)
    lr = defaults["lr"]
    momentum_key = next((k for k in ("momentum", "beta1") if defaults.get(k)), None)
    rng = np.random.default_rng([SEARCH_SEED, zlib.crc32(f"{problem}/{method}".encode())])
    out = []
    for _ in range(trials):
        hyper = dict(sets or {})
        hyper["lr"] = float(f"{lr * 30 ** rng.uniform(-1, 1):.4g}")
        one_minus = 10 ** rng.uniform(-2, math.log10(0.3))
        if momentum_key is not None:                 # not plain SGD's momentum of 0
            hyper[momentum_key] = float(f"{1 - one_minus:.4g}")
        out.append(hyper)
    return out


def plan(protocol, problems, rules, seeds, quick=False, sets=None, grids=None, lr_grid=None,
         tune_seeds=2, trials=8, epochs=None):
    """The first phase's specs: every run of the one-shot protocol, or the tuning runs."""
    sets, grids = sets or {}, grids or {}
    lr_grid = lr_grid if isinstance(lr_grid, dict) else lr_grids(rules, lr_grid)
    specs = []
    for problem in problems:
        for rule in rules:
            def spec(seed, hyper, phase):
                return make_problem_spec(problem, rule, seed, hyper, epochs, quick, phase)
            if protocol == "oneshot":
                specs += [spec(s, sets.get(rule), "final") for s in range(seeds)]
            elif protocol == "tuned":
                for hyper in settings_grid(rule, sets, grids, lr_grid):
                    specs += [spec(s, hyper, "tuning") for s in range(tune_seeds)]
            else:
                specs += [spec(0, hyper, "tuning")
                          for hyper in random_settings(problem, rule, trials, sets.get(rule))]
    return specs


def score(result, problem):
    """A run's final validation metric, oriented so that higher is better (a diverged
    run scores -inf)."""
    if result["diverged"] or not result["history"]:
        return -math.inf
    value = result["history"][-1]["value"]
    return value if problem.higher_is_better else -value


def final_specs(tuning, seeds):
    """Per problem and rule, the setting with the best mean score over its tuning runs,
    trained on fresh seeds."""
    from ..problems import get_problem
    groups = {}
    for r in tuning:
        s = r["spec"]
        key = (s["problem"], s["method"], json.dumps(s["hyper"], sort_keys=True))
        groups.setdefault(key, []).append(r)
    best = {}
    for (problem, rule, _), runs in groups.items():
        p = get_problem(problem)
        value = np.mean([score(r, p) for r in runs])
        if (problem, rule) not in best or value > best[(problem, rule)][0]:
            best[(problem, rule)] = (value, runs[0]["spec"])
    specs = []
    for (problem, rule), (_, spec) in best.items():
        specs += [make_problem_spec(problem, rule, FINAL_SEED + s, spec["hyper"],
                                    spec["epochs"], spec["quick"], "final")
                  for s in range(seeds)]
    return specs


def run_suite(problems, protocol="oneshot", rules=DEFAULT_RULES, seeds=3, quick=False,
              out="results/suite", backend="local", workers=1, threads=None, address=None,
              sets=None, grids=None, lr_grid=None, tune_seeds=2, trials=8, epochs=None,
              quiet=False, retries=2):
    """Plan, run and report a study over problems (see the module docstring); returns
    the report's summary."""
    from . import suite_report
    from ..problems import get_problem
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    problems = list(problems)
    for p in problems:                  # an unknown name or a broken module: said now
        get_problem(p)
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    lr_grid = lr_grids(rules, lr_grid)
    os.makedirs(out, exist_ok=True)
    check_writable(out)
    config = dict(protocol=protocol, problems=problems, methods=list(rules), seeds=seeds,
                  quick=quick, epochs=epochs, backend=backend, workers=workers,
                  threads=threads, sets=sets or {}, grids=grids or {},
                  lr_grid=lr_grid, tune_seeds=tune_seeds, trials=trials)
    t0 = time.perf_counter()
    with OutputLock(out):
        atomic_write_text(os.path.join(out, "study.json"), json.dumps(config, indent=1))
        folder = StudyFolder(out)
        runner = make_backend(backend, workers, threads, address, retries)
        first = plan(protocol, problems, rules, seeds, quick, sets, grids, lr_grid,
                     tune_seeds, trials, epochs)
        results = run_specs(folder, first, runner, quiet,
                            "trials" if protocol == "oneshot" else "tuning")
        tuning, final = [], results
        if protocol != "oneshot":
            tuning = results
            final = run_specs(folder, final_specs(results, seeds), runner, quiet, "final runs")
        summary = suite_report.write(out, config, tuning, final, time.perf_counter() - t0)
    return summary
