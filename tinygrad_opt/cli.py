"""Command line: `tinygrad-opt mnist ...` (or `python -m tinygrad_opt mnist ...`)."""
import argparse
import os
import signal
import sys

from .optim import ARTICLE_METHODS, METHODS


def _methods(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown method(s) {', '.join(unknown) or '(none given)'}; known: "
            f"{', '.join(METHODS)}")
    return names


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value}")
    return value


def parser():
    p = argparse.ArgumentParser(prog="tinygrad-opt", description="tinygrad_opt experiments")
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("mnist", help="the article's MNIST experiment, one run per method")
    m.add_argument("--optimizers", type=_methods, default=list(ARTICLE_METHODS),
                   help=f"comma-separated methods (default: the article's eight: "
                        f"{','.join(ARTICLE_METHODS)}; also: "
                        f"{','.join(m for m in METHODS if m not in ARTICLE_METHODS)})")
    m.add_argument("--epochs", type=_positive, default=10)
    m.add_argument("--batch-size", type=_positive, default=None,
                   help="override every method's batch size (default: each method's)")
    m.add_argument("--preset", choices=("keras", "torch", "paper"), default=None,
                   help="whose defaults and formulas: keras (the article's), torch "
                        "(PyTorch 2.13's) or paper (default: each rule's own, keras "
                        "where Keras ships the rule)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--limit", type=_positive, default=None,
                   help="use only the first N training images")
    m.add_argument("--out", default="results/mnist")
    m.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist")
    m.add_argument("--data-dir", type=_folder, default=None,
                   help="folder with the four IDX files")
    again = m.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the methods' runs from OUT/checkpoints (refused if a "
                            "checkpoint's settings differ from this run's)")
    again.add_argument("--overwrite", action="store_true",
                       help="replace the results and checkpoints already in OUT. Without "
                            "--resume or --overwrite, a run refuses to touch the results "
                            "of a method already in OUT (those of other methods are kept)")
    m.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _folder(text):
    if not text.strip():
        raise argparse.ArgumentTypeError("empty folder name")
    return text


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: finished epochs are written, then the run stops."""


def _on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)     # once: let the results be written
    raise Terminated


def main(argv=None):
    """The command line. argv None: this process is the command (`tinygrad-opt ...`), and
    it sets the thread policy (threads.py) first, restarting itself if it must."""
    if argv is None:
        from .threads import use_sleeping_threads
        use_sleeping_threads(reexec=True)
    p = parser()
    args = p.parse_args(argv)
    try:
        os.makedirs(args.out, exist_ok=True)
        from .store.files import check_writable
        check_writable(args.out)
    except OSError as e:
        p.error(f"output folder {args.out!r} is not writable: {e.strerror}")

    if args.preset is not None:
        lacking = [m for m in args.optimizers if args.preset not in METHODS[m].optimizer.presets]
        if lacking:
            why = "; ".join(f"{m}: {METHODS[m].optimizer.no_preset.get(args.preset, '')}"
                            for m in lacking)
            p.error(f"--preset {args.preset}: the rules of {', '.join(lacking)} have none "
                    f"({why}); choose among "
                    + ", ".join(m for m in METHODS
                                if args.preset in METHODS[m].optimizer.presets))
    from .data import DataError
    from .store.checkpoint import CheckpointError
    from .train.experiment import OutputError, run_experiment
    from .store.files import FolderBusy
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:                      # not the main thread: no signal handlers
        previous = None
    try:
        runs = run_experiment(
            methods=args.optimizers, epochs=args.epochs, batch_size=args.batch_size,
            preset=args.preset, seed=args.seed, limit=args.limit, out=args.out,
            dataset=args.dataset, data_dir=args.data_dir, resume=args.resume,
            overwrite=args.overwrite, quiet=args.quiet)
    except (DataError, CheckpointError, OutputError, FolderBusy) as e:
        print(f"tinygrad-opt: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"tinygrad-opt: error: {e.filename or args.out}: {e.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        what = "terminated" if isinstance(e, Terminated) else "interrupted"
        print(f"\ntinygrad-opt: {what}; finished epochs are in {args.out} (continue "
              f"with --resume)", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(f"results: {os.path.join(args.out, 'table.md')}")
    stopped = [r["stopped"] for r in runs if r["stopped"]]
    for reason in stopped:
        print(f"tinygrad-opt: error: {reason}", file=sys.stderr)
    return 1 if stopped else 0


if __name__ == "__main__":
    sys.exit(main())
