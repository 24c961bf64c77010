"""tinygrad_opt: a from-scratch autograd engine on numpy and Numba, about optimizers."""
from .autograd import Function, no_grad
from .gradcheck import GradcheckError, gradcheck
from .tensor import Tensor

__version__ = "0.1.0"
__all__ = ["Tensor", "Function", "no_grad", "gradcheck", "GradcheckError"]
