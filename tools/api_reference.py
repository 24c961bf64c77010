"""Writes docs/api.md, the API reference of every public module, from the docstrings.

    python tools/api_reference.py > docs/api.md      (a test checks that it is current)
"""
import inspect
import re

import tinygrad_opt
from tinygrad_opt import Tensor


def first_paragraph(obj):
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split()).replace("|", "\\|")


def main():
    lines = ["# API reference", "",
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
    for name in ("tensor", "cat", "stack", "where", "no_grad", "reference", "gradcheck",
                 "use_sleeping_threads", "manual_seed"):
        fn = getattr(tinygrad_opt, name)
        lines.append(f"| `tinygrad_opt.{name}{inspect.signature(fn)}` | "
                     f"{first_paragraph(fn)} |")
    for module in MODULES:
        lines += module_section(module)
    print("\n".join(lines))


MODULES = ["tinygrad_opt.nn", "tinygrad_opt.nn.functional", "tinygrad_opt.nn.utils",
           "tinygrad_opt.nn.init", "tinygrad_opt.models", "tinygrad_opt.optim",
           "tinygrad_opt.optim.lr_scheduler", "tinygrad_opt.optim.hyper",
           "tinygrad_opt.train", "tinygrad_opt.data", "tinygrad_opt.problems",
           "tinygrad_opt.diagnostics",
           "tinygrad_opt.jit",
           "tinygrad_opt.store"]


def signature(obj):
    try:
        text = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""
    text = text.replace("<class 'numpy.float32'>", "np.float32").replace(
        "<class 'numpy.float64'>", "np.float64")
    return re.sub(r"<function (\w+) at 0x[0-9a-f]+>", r"\1", text)   # no addresses


def module_section(name):
    """A module's public classes and functions: `__all__`, or what it defines itself
    without a leading underscore."""
    import importlib
    module = importlib.import_module(name)
    names = getattr(module, "__all__", None) or [
        k for k, v in vars(module).items() if not k.startswith("_")
        and (inspect.isclass(v) or inspect.isfunction(v)) and v.__module__ == name]
    lines = ["", f"## `{name}`", "", first_paragraph(module), "",
             "| name | what it is |", "|---|---|"]
    for k in names:
        obj = getattr(module, k)
        if inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)):
            continue
        lines.append(f"| `{k}{signature(obj)}` | {first_paragraph(obj)} |")
    return lines


if __name__ == "__main__":
    main()
