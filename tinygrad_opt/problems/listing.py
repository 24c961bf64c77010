"""`tinygrad-opt problems`: the registered problems, each with its size, budget, target
and, measured here, what one run of its budget costs."""
import math
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
    spec = make_problem_spec(problem.name, method, quick=True)
    result = run_problem_trial(spec, problem=problem)
    last = result["history"][-1]
    return last["train_seconds"] / last["updates"]


def describe(problem, timed=True):
    """A dict of what the listing shows for one problem."""
    train, _ = problem.data(None, seed=0)
    steps = steps_per_epoch(train, problem.batch_size) * problem.epochs
    row = dict(name=problem.name, size=problem.size, metric=problem.metric,
               better="higher" if problem.higher_is_better else "lower",
               target=problem.target, batch_size=problem.batch_size, epochs=problem.epochs,
               steps=steps, seconds_per_run=None)
    if timed:
        row["seconds_per_run"] = seconds_per_step(problem) * steps
    return row


def main(timed=True, stream=None):
    import sys
    from . import PROBLEMS
    import numba
    out = stream or sys.stdout
    t0 = time.perf_counter()
    print(f"{'problem':24s} {'metric (better)':18s} {'target':>8s} {'batch':>5s} "
          f"{'budget':>17s} {'one run here':>13s}  size", file=out, flush=True)
    for problem in PROBLEMS.values():
        r = describe(problem, timed)
        cost = "–" if r["seconds_per_run"] is None else f"{r['seconds_per_run']:.0f} s"
        budget = f"{r['epochs']} ep, {r['steps']:,} st"
        print(f"{r['name']:24s} {r['metric'] + ' (' + r['better'] + ')':18s} "
              f"{r['target']:8.4g} {r['batch_size']:5d} {budget:>17s} {cost:>13s}  "
              f"{r['size']}", file=out, flush=True)
    if timed:
        print(f"(one run: its training steps, measured on {numba.get_num_threads()} "
              f"thread(s) from a few steps of Adam, evaluation not counted; "
              f"{time.perf_counter() - t0:.0f} s to measure)", file=out)
