"""`tinygrad-opt problems`: the registered problems, each with its size, budget, target
and, measured here, what one run of its budget costs."""
import json
import math
import os
import subprocess
import sys
import time


def steps_per_epoch(train, batch_size):
    """Updates in one epoch of `train` (arrays, a dataset, or a re-iterable of batches)."""
    if isinstance(train, tuple):
        return math.ceil(len(train[0]) / batch_size)
    if hasattr(train, "steps"):
        return int(train.steps)
    if hasattr(train, "__getitem__") and hasattr(train, "__len__"):
        return math.ceil(len(train) / batch_size)
    return sum(1 for _ in train)


def seconds_per_step(problem, method="adam"):
    """The training seconds of one update, measured on the problem's quick variant (its
    second epoch, so that compiling is not counted)."""
    from ..study.trials import make_problem_spec, run_problem_trial
    spec = make_problem_spec(problem, method, quick=True)
    result = run_problem_trial(spec, problem=problem)
    last = result["history"][-1]
    return last["train_seconds"] / last["updates"]


def describe(problem, data=True):
    """A dict of what the listing shows for one problem; data=False: without loading
    its data (steps None). Raises DataError where the data is missing."""
    steps = None
    if data:
        train, _ = problem.data(None, seed=0)
        steps = steps_per_epoch(train, problem.batch_size) * problem.epochs
    return dict(name=problem.name, size=problem.size, metric=problem.metric,
                better="higher" if problem.higher_is_better else "lower",
                target=problem.target, batch_size=problem.batch_size, epochs=problem.epochs,
                steps=steps)


def _measure_all():
    """In a one-thread worker (see main): each problem's seconds per step, as JSON; a
    problem whose data is missing is left out (main says why)."""
    from ..data import DataError
    from . import PROBLEMS
    per_step = {}
    for name, p in PROBLEMS.items():
        try:
            per_step[name] = seconds_per_step(p)
        except DataError:
            pass
    print(json.dumps(per_step))


def main(timed=True, stream=None):
    """Print the listing; timed: measure what one run costs on one of the study's
    one-thread workers (a fresh process with the workers' thread settings)."""
    from ..data import DataError
    from . import PROBLEMS
    out = stream or sys.stdout
    t0 = time.perf_counter()
    per_step, missing = {}, {}
    if timed:
        from ..study.backends import worker_env
        done = subprocess.run([sys.executable, "-c", "from tinygrad_opt.problems.listing "
                               "import _measure_all; _measure_all()"],
                              env=dict(os.environ, **worker_env(1)), capture_output=True,
                              text=True)
        if done.returncode == 0:
            per_step = json.loads(done.stdout.strip().splitlines()[-1])
        else:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            print(f"could not measure the runs' cost: {last}", file=out)
    print(f"{'problem':24s} {'metric (better)':18s} {'target':>8s} {'batch':>5s} "
          f"{'budget':>17s} {'one run here':>13s}  size", file=out, flush=True)
    for problem in PROBLEMS.values():
        try:
            r = describe(problem)
        except DataError as e:
            missing[problem.name] = str(e)
            r = describe(problem, data=False)
        cost = (f"{per_step[r['name']] * r['steps']:.0f} s" if r["name"] in per_step
                else "–")
        budget = (f"{r['epochs']} ep, {r['steps']:,} st" if r["steps"] is not None
                  else f"{r['epochs']} ep")
        print(f"{r['name']:24s} {r['metric'] + ' (' + r['better'] + ')':18s} "
              f"{r['target']:8.4g} {r['batch_size']:5d} {budget:>17s} {cost:>13s}  "
              f"{r['size']}", file=out, flush=True)
    for name, why in missing.items():
        print(f"{name}: {why}", file=out)
    if timed:
        print(f"(one run: its training steps on one thread, as a study's worker runs it, "
              f"measured from a few steps of Adam; evaluation not counted; "
              f"{time.perf_counter() - t0:.0f} s to measure)", file=out)
