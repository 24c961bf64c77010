"""Compare two `tinygrad-opt mnist` results.json files number by number: every method's
losses, accuracies and update counts at every epoch (not the times, which the machine
decides). Exit status 0 when every number is identical, 1 otherwise, listing each
difference.

    python tools/compare_results.py docs/results/mnist/results.json results/mnist/results.json
"""
import json
import sys

KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "updates")


def numbers(path):
    with open(path, encoding="utf-8") as f:
        runs = json.load(f)["runs"]
    return {(r["name"], h["epoch"], k): h[k] for r in runs for h in r["history"]
            for k in KEYS if k in h}


def main(a, b):
    left, right = numbers(a), numbers(b)
    differ = [(key, left.get(key), right.get(key)) for key in sorted(set(left) | set(right))
              if left.get(key) != right.get(key)]
    for (name, epoch, k), x, y in differ:
        print(f"{name} epoch {epoch} {k}: {x!r} / {y!r}")
    print(f"{len(left)} numbers in {a}, {len(right)} in {b}: "
          + ("identical" if not differ else f"{len(differ)} differ"))
    return 1 if differ else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
