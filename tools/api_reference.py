"""Writes docs/api.md, the API reference of the Tensor, from the docstrings.

    python tools/api_reference.py > docs/api.md      (a test checks that it is current)
"""
import inspect

import tinygrad_opt
from tinygrad_opt import Tensor


def first_paragraph(obj):
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split()).replace("|", "\\|")


def main():
    lines = ["# API reference: Tensor and the functions beside it", "",
             "Generated from the docstrings by `tools/api_reference.py`; every op has a "
             "numpy forward and backward and a row in the float64 gradient test "
             "(`tests/test_autograd.py`).", "",
             "## `Tensor`", "", first_paragraph(Tensor), "", "| member | what it does |",
             "|---|---|"]
    for name, member in inspect.getmembers(Tensor):
        if name.startswith("_") and name not in ("__getitem__", "__setitem__"):
            continue
        if isinstance(member, property) or callable(member):
            sig = ""
            if callable(member) and not isinstance(member, type):
                try:
                    sig = str(inspect.signature(member)).replace("(self, ", "(").replace(
                        "(self)", "()")
                except (TypeError, ValueError):
                    sig = ""
            lines.append(f"| `{name}{sig}` | {first_paragraph(member)} |")
    lines += ["", "Operators: `+ - * / ** @`, unary `-`, comparisons `< <= > >= == !=` "
              "(boolean numpy arrays, no gradient), numpy broadcasting throughout.", "",
              "## Functions", "", "| function | what it does |", "|---|---|"]
    for name in ("cat", "stack", "where", "no_grad", "reference", "gradcheck",
                 "use_sleeping_threads"):
        fn = getattr(tinygrad_opt, name)
        lines.append(f"| `tinygrad_opt.{name}{inspect.signature(fn)}` | "
                     f"{first_paragraph(fn)} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
