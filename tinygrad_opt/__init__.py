"""tinygrad_opt: a from-scratch autograd engine on numpy and Numba, about optimizers."""
__version__ = "0.1.0"   # first: the modules below may read it

from . import jit
from .jit import reference
from .autograd import Function, no_grad
from .gradcheck import GradcheckError, gradcheck
from .nn.init import manual_seed
from .tensor import Tensor, cat, stack, tensor, where
from .threads import use_sleeping_threads
from . import memory

memory.keep_freed_memory()      # freed memory stays in malloc's heap for the next step

__all__ = ["Tensor", "tensor", "Function", "no_grad", "reference", "gradcheck",
           "GradcheckError", "use_sleeping_threads", "cat", "stack", "where", "manual_seed",
           "jit"]
