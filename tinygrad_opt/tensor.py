"""Tensor: a numpy array, its gradient, and the node that made it. No maths lives here:
every operator forwards to an op class in `tinygrad_opt.ops` (two hops: `Tensor.__mul__`
-> `MulFn.apply` -> `MulFn.forward`)."""
import numpy as np

from . import autograd
from .ops import elementwise as E
from .ops import movement as M
from .ops import reduce as R
from .ops.matmul import MatMulFn

_FLOATS = (np.float32, np.float64)


class Tensor:
    """An n-dimensional array that records the ops applied to it.

    Args:
        data: array-like; copied into a new numpy array.
        requires_grad: whether `backward()` should compute a gradient for this tensor.
        dtype: float32 (the default, for training) or float64 (for gradient checks).

    Attributes:
        data: the numpy array. grad: numpy array of the same shape, or None.
    """

    __array_priority__ = 100  # numpy scalars/arrays on the left defer to our operators

    def __init__(self, data, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        dtype = np.dtype(dtype if dtype is not None else np.float32)
        if dtype not in _FLOATS:
            raise TypeError(f"Tensor dtype must be float32 or float64, got {dtype}")
        self.data = np.array(data, dtype=dtype)
        self._grad = None
        self.requires_grad = bool(requires_grad)
        self._node = None

    @classmethod
    def _wrap(cls, array):
        """A tensor around an op's output array, without copying or casting it."""
        t = cls.__new__(cls)
        t.data, t._grad, t.requires_grad, t._node = array, None, False, None
        return t

    @property
    def grad(self):
        """d loss / d self after `backward()`: a numpy array of self's shape, or None."""
        if isinstance(self._grad, autograd.Outer):      # one sample's dense-layer weight
            self._grad = self._grad.materialize()       # gradient, kept factored so far
        return self._grad

    @grad.setter
    def grad(self, value):
        self._grad = value

    @property
    def stored_grad(self):
        """The gradient as `backward()` stored it, without building anything: a numpy
        array, or an `autograd.Outer` (one sample's dense-layer weight gradient, col ⊗ row,
        kept factored). For optimizers that can apply an outer product row by row
        (`optim/sgd.py`); everyone else reads `grad`, which is always the array."""
        return self._grad

    # --- plain properties -----------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    is_leaf = property(lambda self: self._node is None)

    def numpy(self):
        return self.data

    def item(self):
        return self.data.item()

    def detach(self):
        """The same data, cut from the graph (shares memory, requires no grad)."""
        return Tensor._wrap(self.data)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        extra = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, precision=4)}, dtype={self.dtype}{extra})"

    # --- the graph ------------------------------------------------------------------
    def backward(self, grad=None):
        """Compute d self / d leaf for every leaf that requires grad, into `leaf.grad`.

        Args:
            grad: d loss / d self; may be omitted for a single-element tensor (then 1).
        Raises:
            RuntimeError: self does not require grad, or is not a scalar and no grad given.
            ValueError: `grad` has another shape than self.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require grad: none of the "
                "tensors it was computed from has requires_grad=True (or it was made "
                "under no_grad())")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar (one element); this "
                    f"tensor has shape {self.shape}: pass grad=array of that shape")
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad,
                              dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(grad): expected a gradient of shape "
                                 f"{self.shape}, got {grad.shape}")
        autograd.backward(self, grad)

    def zero_grad(self):
        self.grad = None

    # --- operators (each one line to its op) ----------------------------------------
    def _lift(self, other):
        return other if isinstance(other, Tensor) else Tensor(other, dtype=self.dtype)

    def __add__(self, other): return E.AddFn.apply(self, self._lift(other))
    def __radd__(self, other): return E.AddFn.apply(self._lift(other), self)
    def __sub__(self, other): return E.SubFn.apply(self, self._lift(other))
    def __rsub__(self, other): return E.SubFn.apply(self._lift(other), self)
    def __mul__(self, other): return E.MulFn.apply(self, self._lift(other))
    def __rmul__(self, other): return E.MulFn.apply(self._lift(other), self)
    def __truediv__(self, other): return E.DivFn.apply(self, self._lift(other))
    def __rtruediv__(self, other): return E.DivFn.apply(self._lift(other), self)
    def __neg__(self): return E.NegFn.apply(self)
    def __matmul__(self, other): return MatMulFn.apply(self, self._lift(other))
    def __rmatmul__(self, other): return MatMulFn.apply(self._lift(other), self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor) or np.ndim(exponent) != 0:
            raise TypeError(f"** takes a scalar exponent, got {type(exponent).__name__}")
        return E.PowFn.apply(self, exponent=float(exponent))

    def exp(self): return E.ExpFn.apply(self)
    def log(self): return E.LogFn.apply(self)
    def relu(self): return E.ReLUFn.apply(self)

    def sum(self, axis=None, keepdims=False):
        return R.SumFn.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        """Mean as a derived op: sum times 1/count."""
        axes = range(self.ndim) if axis is None else np.atleast_1d(axis)
        count = int(np.prod([self.shape[a] for a in axes]))
        return self.sum(axis=axis, keepdims=keepdims) * (1.0 / count)

    def max(self, axis=None, keepdims=False):
        return R.MaxFn.apply(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return M.ReshapeFn.apply(self, shape=tuple(shape))

    def permute(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return M.PermuteFn.apply(self, axes=tuple(axes))

    def transpose(self, axis0=-2, axis1=-1):
        """Swap two axes (the last two by default, the matrix transpose)."""
        axes = list(range(self.ndim))
        axes[axis0], axes[axis1] = axes[axis1], axes[axis0]
        return self.permute(axes)

    @property
    def T(self):
        return self.permute(tuple(reversed(range(self.ndim))))


autograd.Tensor = Tensor    # Function.apply builds its results with it (see autograd.py)
