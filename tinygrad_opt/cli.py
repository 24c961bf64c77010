"""Command line: `tinygrad-opt mnist ...` (or `python -m tinygrad_opt mnist ...`)."""
import argparse
import os
import sys

from .optim import METHODS


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
    m.add_argument("--optimizers", type=_methods, default=list(METHODS),
                   help=f"comma-separated methods (default: all: {','.join(METHODS)})")
    m.add_argument("--epochs", type=_positive, default=10)
    m.add_argument("--batch-size", type=_positive, default=None,
                   help="override every method's batch size (default: each method's)")
    m.add_argument("--preset", choices=("keras", "paper"), default="keras")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--limit", type=_positive, default=None,
                   help="use only the first N training images")
    m.add_argument("--out", default="results/mnist")
    m.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist")
    m.add_argument("--data-dir", default=None, help="folder with the four IDX files")
    m.add_argument("--resume", action="store_true",
                   help="continue from the checkpoints in OUT/checkpoints")
    m.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    try:
        os.makedirs(args.out, exist_ok=True)
        probe = os.path.join(args.out, ".write-test")
        open(probe, "w").close()
        os.unlink(probe)
    except OSError as e:
        p.error(f"output folder {args.out!r} is not writable: {e.strerror}")

    from .data import DataError
    from .train.experiment import run_experiment
    try:
        run_experiment(methods=args.optimizers, epochs=args.epochs, batch_size=args.batch_size,
                       preset=args.preset, seed=args.seed, limit=args.limit, out=args.out,
                       dataset=args.dataset, data_dir=args.data_dir, resume=args.resume,
                       quiet=args.quiet)
    except DataError as e:
        print(f"tinygrad-opt: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ntinygrad-opt: interrupted; finished epochs are in {args.out} (continue "
              f"with --resume)", file=sys.stderr)
        return 130
    print(f"results: {os.path.join(args.out, 'table.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
