"""tinygrad_opt: a from-scratch autograd engine on numpy and Numba, about optimizers."""
import os

__version__ = "0.1.0"   # first: the modules below may read it

# OpenBLAS's idle threads spin for a while after each matrix product before they sleep,
# taking the cores from the Numba kernels and the Python code that come next: on the
# 2-core machine this was written on, an epoch of the article model took 8.4 s with the
# default and 7.1 s with this (`bench.py --workload epoch`). OpenBLAS reads it when numpy
# first loads: import tinygrad_opt before numpy to get it, or set it in the environment.
# (Numba's own threads are told the same in _jit.py.)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from ._jit import reference
from .autograd import Function, no_grad
from .gradcheck import GradcheckError, gradcheck
from .tensor import Tensor

__all__ = ["Tensor", "Function", "no_grad", "reference", "gradcheck", "GradcheckError"]
