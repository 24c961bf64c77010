"""Command line: `tinygrad-opt mnist ...` (or `python -m tinygrad_opt mnist ...`)."""
import argparse
import math
import os
import signal
import sys

from .data import DataError
from .optim import ARTICLE_METHODS, METHODS, STUDY_METHODS, parse_assignments
from .store.checkpoint import CheckpointError
from .store.files import FolderBusy, check_writable
from .study import TrialFailed, run_study
from .study.suite import DEFAULT_RULES, PROTOCOLS, run_suite
from .train.experiment import OutputError, WorkerDied, run_experiment


def _methods(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown method(s) {', '.join(unknown) or '(none given)'}; known: "
            f"{', '.join(METHODS)}")
    return _once(names)


def _once(names):
    """A name listed twice would run (or count) its trials twice."""
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{', '.join(twice)} listed twice")
    return names


def _whole(low):
    """An argparse type: a whole number >= low."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            word = "positive whole number" if low == 1 else f"whole number >= {low}"
            raise argparse.ArgumentTypeError(f"expected a {word}, got {text!r}")
        return value
    return parse


_positive, _count = _whole(1), _whole(0)


def _common():
    """The options both commands take, declared once (a new parser for each command:
    argparse's parents share their actions, and one command's defaults would become
    the other's)."""
    c = argparse.ArgumentParser(add_help=False)
    c.add_argument("--optimizers", type=_methods,
                   help=f"comma-separated methods (known: {','.join(METHODS)})")
    c.add_argument("--epochs", type=_positive, default=10)
    c.add_argument("--batch-size", type=_positive, default=None,
                   help="override every method's batch size (default: each method's)")
    c.add_argument("--limit", type=_positive, default=None,
                   help="use only the first N training images")
    c.add_argument("--data-dir", type=_folder, default=None,
                   help="folder with the IDX files (one data set)")
    c.add_argument("--out")
    c.add_argument("--set", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="override one hyperparameter of one method (repeatable), e.g. "
                        "--set adam.lr=0.003")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    return c


def _mnist_parser(sub, common):
    m = sub.add_parser("mnist", parents=[common],
                       help="the article's MNIST experiment, one run per method")
    m.set_defaults(optimizers=list(ARTICLE_METHODS), out="results/mnist")
    m.add_argument("--preset", choices=("keras", "torch", "paper"), default=None,
                   help="whose defaults and formulas: keras (the article's), torch "
                        "(PyTorch 2.13's) or paper (default: each rule's own, keras "
                        "where Keras ships the rule)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist")
    m.add_argument("--workers", type=_positive, default=None,
                   help="train the methods side by side in this many processes, cores // "
                        "workers threads each (default: one per core); the numbers are "
                        "the same for any count")
    again = m.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the methods' runs from OUT/checkpoints (refused if a "
                            "checkpoint's settings differ from this run's)")
    again.add_argument("--overwrite", action="store_true",
                       help="replace the results and checkpoints already in OUT. Without "
                            "--resume or --overwrite, a run refuses to touch the results "
                            "of a method already in OUT (those of other methods are kept)")


def _study_parser(sub, common):
    st = sub.add_parser("study", parents=[common],
                        help="many seeds, tuned learning rates, time to a target: is a "
                             "ranking real? (docs/study.md)")
    st.set_defaults(optimizers=None, out=None, epochs=None)
    st.add_argument("--protocol", choices=("article",) + PROTOCOLS, default=None,
                    help="article (the default) or tuned, on --dataset; with --problems: "
                         "oneshot (the default), tuned or random (docs/suite.md)")
    st.add_argument("--problems", type=_problems, default=None,
                    help="comma-separated problems of the suite (tinygrad-opt problems "
                         "lists them; 'all' for every one), or package.module:function "
                         "for one of your own (docs/your-own-problem.md)")
    st.add_argument("--quick", action="store_true",
                    help="with --problems: each problem on its small budget")
    st.add_argument("--trials", type=_positive, default=8,
                    help="random protocol: settings drawn per rule and problem (default 8)")
    st.add_argument("--seeds", type=_positive, default=3, help="seeds per setting (default 3)")
    st.add_argument("--dataset", type=_datasets, default=["mnist"],
                    help="mnist, fashion-mnist, or both: mnist,fashion-mnist")
    st.add_argument("--backend", choices=("local", "ray"), default="local")
    st.add_argument("--workers", type=_positive, default=None,
                    help="trials run at once (default: one per core, each with one "
                         "thread: the faster setting on a 2-core machine, see "
                         "docs/protocol.md)")
    st.add_argument("--threads", type=_positive, default=None,
                    help="threads per worker (default: cores // workers)")
    st.add_argument("--address", default=None,
                    help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)")
    st.add_argument("--grid", action="append", default=[], metavar="METHOD.KEY=V1,V2,...",
                    help="tuned protocol: more values to try for one hyperparameter")
    st.add_argument("--lr-grid", type=_floats, default=None,
                    help="tuned protocol: learning rates to try (default: 13 points, "
                         "log-spaced from 1e-5 to 1)")
    st.add_argument("--tune-seeds", type=_positive, default=2,
                    help="tuned protocol: seeds per tried setting (default 2: the "
                         "sensitivity plot's band spans them)")
    st.add_argument("--val-size", type=_positive, default=10000,
                    help="tuned protocol: training images held out to choose the setting")
    st.add_argument("--target", type=_fraction, default=0.98,
                    help="the accuracy whose steps and seconds are reported (default 0.98)")
    st.add_argument("--retries", type=_count, default=2,
                    help="runs of a trial whose worker died (default 2)")


def _problems(text):
    from .problems import PROBLEMS, get_problem
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(PROBLEMS)
    for name in names or ["(none given)"]:
        try:
            get_problem(name)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e))
    return _once(names)


def parser():
    p = argparse.ArgumentParser(prog="tinygrad-opt", description="tinygrad_opt experiments")
    sub = p.add_subparsers(dest="command", required=True)
    _mnist_parser(sub, _common())
    _study_parser(sub, _common())
    pr = sub.add_parser("problems", help="the suite's problems: size, budget, target and "
                                         "what a run costs here (docs/suite.md)")
    pr.add_argument("--no-time", action="store_true",
                    help="list without measuring what a run costs")
    _diagnose_parser(sub)
    return p


def _diagnose_parser(sub):
    from .optim import METHODS
    d = sub.add_parser("diagnose", help="why a rule behaves as it does on a problem: the "
                       "range test, sharpness and noise scale while training, the "
                       "Hessian and the landscape at the end (docs/diagnostics.md)")
    d.add_argument("problem", type=lambda t: _problems(t)[0],
                   help="a problem of the suite, or package.module:function")
    d.add_argument("--rule", default="adam", choices=list(METHODS))
    d.add_argument("--set", action="append", default=[], metavar="RULE.KEY=VALUE",
                   help="a hyperparameter of the rule, e.g. --set adam.lr=0.003")
    d.add_argument("--epochs", type=_positive, default=None,
                   help="train this many epochs (default: the problem's budget)")
    d.add_argument("--samples", type=_positive, default=512,
                   help="the measurement set: this many training samples (default 512)")
    d.add_argument("--measurements", type=_positive, default=20,
                   help="measurements of the sharpness during the run (default 20)")
    d.add_argument("--lr-steps", type=_positive, default=100,
                   help="steps of the learning-rate range test (default 100)")
    d.add_argument("--quick", action="store_true", help="the problem's quick variant")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default=None,
                   help="folder of the figures and diagnose.json (default: "
                        "results/diagnose/PROBLEM-RULE)")


def _datasets(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in ("mnist", "fashion-mnist")]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown data set(s) {', '.join(bad) or '(none)'}; "
                                         f"known: mnist, fashion-mnist")
    return _once(names)


def _floats(text):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    if not values or any(not 0 < v < math.inf for v in values):
        raise argparse.ArgumentTypeError(f"expected positive finite learning rates, got "
                                         f"{text!r}")
    return values


def _fraction(text):
    """An accuracy: a number in (0, 1] (0.98, not 98)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected an accuracy in (0, 1], e.g. 0.98, got "
                                         f"{text!r}")
    return value


def _folder(text):
    if not text.strip():
        raise argparse.ArgumentTypeError("empty folder name")
    return text


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: finished epochs are written, then the run stops."""


def _on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)     # once: let the results be written
    raise Terminated


def _guarded(work, errors, out, kept):
    """Run work() with SIGTERM handled as Ctrl-C. Returns (its result, None), or (None,
    the exit status) after one line on stderr: 2 for `errors` and OSError, 130 or 143
    when interrupted (`kept` says what was kept)."""
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:                      # not the main thread: no signal handlers
        previous = None
    try:
        return work(), None
    except errors as e:
        print(f"tinygrad-opt: error: {e}", file=sys.stderr)
        return None, 2
    except OSError as e:
        print(f"tinygrad-opt: error: {e.filename or out}: {e.strerror}", file=sys.stderr)
        return None, 2
    except KeyboardInterrupt as e:
        what = "terminated" if isinstance(e, Terminated) else "interrupted"
        print(f"\ntinygrad-opt: {what}; {kept}", file=sys.stderr)
        return None, 143 if isinstance(e, Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def main(argv=None):
    """The command line. argv None: this process is the command (`tinygrad-opt ...`), and
    it sets the thread policy (threads.py) first, restarting itself if it must."""
    if argv is None:
        from .threads import use_sleeping_threads
        use_sleeping_threads(reexec=True)
    p = parser()
    args = p.parse_args(argv)
    if args.command == "problems":
        from .problems.listing import main as list_problems
        list_problems(timed=not args.no_time)
        return 0
    if args.command == "diagnose":
        return _diagnose(p, args)
    if args.command == "study":
        _study_defaults(p, args)
    try:
        args.set = parse_assignments(args.set)
        if args.command == "study":
            args.grid = parse_assignments(args.grid, "--grid")
            _check_study_overrides(args)
    except ValueError as e:
        p.error(str(e))
    try:
        os.makedirs(args.out, exist_ok=True)
        check_writable(args.out)
    except OSError as e:
        p.error(f"output folder {args.out!r} is not writable: {e.strerror}")

    if args.command == "study":
        return _study(p, args)
    if args.preset is not None:         # each rule's own refusal, for every method at once
        refused = {}
        for m in METHODS:
            try:
                METHODS[m].optimizer.resolve_preset(args.preset)
            except ValueError as e:
                refused[m] = str(e)
        if any(m in refused for m in args.optimizers):
            p.error(f"--preset {args.preset}: "
                    + "; ".join(f"{m}: {refused[m]}" for m in args.optimizers if m in refused)
                    + "; the methods that have it: "
                    + ", ".join(m for m in METHODS if m not in refused))
    runs, code = _guarded(lambda: run_experiment(
        methods=args.optimizers, epochs=args.epochs, batch_size=args.batch_size,
        preset=args.preset, seed=args.seed, limit=args.limit, out=args.out,
        dataset=args.dataset, data_dir=args.data_dir, resume=args.resume,
        overwrite=args.overwrite, quiet=args.quiet, sets=args.set,
        workers=args.workers or min(os.cpu_count() or 1, len(args.optimizers))),
        (DataError, CheckpointError, OutputError, FolderBusy, WorkerDied), args.out,
        f"finished epochs are in {args.out} (continue with --resume)")
    if code is not None:
        return code
    print(f"results: {os.path.join(args.out, 'table.md')}")
    stopped = [r["stopped"] for r in runs if r["stopped"]]
    for reason in stopped:
        print(f"tinygrad-opt: error: {reason}", file=sys.stderr)
    return 1 if stopped else 0


def _diagnose(p, args):
    from .diagnostics.run import diagnose
    try:
        sets = parse_assignments(args.set)
    except ValueError as e:
        p.error(str(e))
    other = [m for m in sets if m != args.rule]
    if other:
        p.error(f"--set {other[0]}.…: the rule diagnosed is {args.rule}")
    out = args.out or os.path.join("results", "diagnose",
                                   f"{args.problem.rsplit(':', 1)[-1]}-{args.rule}")
    try:
        os.makedirs(out, exist_ok=True)
        check_writable(out)
    except OSError as e:
        p.error(f"output folder {out!r} is not writable: {e.strerror}")
    _, code = _guarded(lambda: diagnose(
        args.problem, args.rule, sets.get(args.rule), out, args.seed, args.epochs,
        args.samples, args.measurements, args.lr_steps, args.quick), (DataError,), out,
        f"the figures finished so far are in {out}")
    return code or 0


def _study_defaults(p, args):
    """The study's defaults depend on what it studies: the article's CNN on --dataset,
    or the suite's --problems."""
    if args.problems is None:
        args.protocol = args.protocol or "article"
        if args.protocol not in ("article", "tuned"):
            p.error(f"--protocol {args.protocol} needs --problems (the article's data "
                    f"sets take article or tuned)")
        args.optimizers = args.optimizers or list(STUDY_METHODS)
        args.epochs = args.epochs or 10
        args.out = args.out or "results/study"
        if args.quick:
            p.error("--quick needs --problems")
        return
    args.protocol = args.protocol or "oneshot"
    if args.protocol == "article":
        p.error("--problems: the protocols are oneshot, tuned and random (the article "
                "protocol is the article's CNN on --dataset)")
    given = [name for name, value in (("--limit", args.limit),
                                      ("--batch-size", args.batch_size),
                                      ("--data-dir", args.data_dir)) if value is not None]
    if given:
        p.error(f"{', '.join(given)}: a problem fixes its own data and batch size")
    args.optimizers = args.optimizers or list(DEFAULT_RULES)
    regimes = [m for m in args.optimizers if m in ("gd", "sgd")]
    if regimes:
        p.error(f"--optimizers {','.join(regimes)}: a batch regime, not a rule (a "
                f"problem fixes its batch size; minibatch is the same rule)")
    args.out = args.out or "results/suite"


def _check_study_overrides(args):
    """--set and --grid must change what the study runs: a method not in --optimizers,
    or a grid under the article protocol (which tunes nothing), is refused."""
    for what, given in (("--set", args.set), ("--grid", args.grid)):
        outside = [m for m in given if m not in args.optimizers]
        if outside:
            raise ValueError(f"{what} {', '.join(outside)}: not among --optimizers "
                             f"{','.join(args.optimizers)}")
    if args.grid and args.protocol != "tuned":
        raise ValueError("--grid needs --protocol tuned (the article protocol tunes "
                         "nothing)")
    if args.protocol == "tuned":        # the learning rate is what the protocol tunes
        for what, given in (("--set", args.set), ("--grid", args.grid)):
            for method, keys in given.items():
                if "lr" in keys:
                    raise ValueError(f"{what} {method}.lr: under --protocol tuned the "
                                     f"learning rate is chosen from --lr-grid; give its "
                                     f"values there")


def _study(p, args):
    cores = os.cpu_count() or 1
    workers = args.workers or max(1, cores // (args.threads or 1))
    if args.threads and workers * args.threads > (os.cpu_count() or 1):
        print(f"tinygrad-opt: note: {workers} workers x {args.threads} threads exceed the "
              f"{os.cpu_count()} cores", file=sys.stderr)
    if args.problems is not None:
        return _suite(args, workers)
    return _reported(args, lambda: run_study(
        protocol=args.protocol, methods=args.optimizers, datasets=args.dataset,
        seeds=args.seeds, epochs=args.epochs, limit=args.limit,
        batch_size=args.batch_size, out=args.out, backend=args.backend,
        workers=workers, threads=args.threads, address=args.address, sets=args.set,
        grids=args.grid, lr_grid=args.lr_grid, tune_seeds=args.tune_seeds,
        val_size=args.val_size, target=args.target, quiet=args.quiet,
        retries=args.retries, data_dir=args.data_dir))


def _suite(args, workers):
    return _reported(args, lambda: run_suite(
        args.problems, protocol=args.protocol, rules=args.optimizers, seeds=args.seeds,
        quick=args.quick, out=args.out, backend=args.backend, workers=workers,
        threads=args.threads, address=args.address, sets=args.set, grids=args.grid,
        lr_grid=args.lr_grid, tune_seeds=args.tune_seeds, trials=args.trials,
        epochs=args.epochs, quiet=args.quiet, retries=args.retries))


def _reported(args, work):
    """Run a study (work), then name its report; errors and interruptions as _guarded."""
    summary, code = _guarded(work, (DataError, FolderBusy, TrialFailed, OutputError),
                             args.out, f"finished trials are in {args.out}/trials (run the "
                                       f"same command again to continue)")
    if code is not None:
        return code
    print(f"report: {os.path.join(args.out, 'report.md')} ({summary['trials']} trials)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
