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
    shape = property(lambda self: self.data.shape, doc="The shape, a tuple (numpy's).")
    dtype = property(lambda self: self.data.dtype, doc="float32 or float64.")
    ndim = property(lambda self: self.data.ndim, doc="The number of axes.")

    @property
    def size(self):
        """The number of elements (numpy's `x.size`); called, the shape or one size
        (PyTorch's `x.size()`, `x.size(0)`)."""
        return _Size(self.data.size, self.data.shape)

    def numel(self):
        """The number of elements (PyTorch's name)."""
        return self.data.size

    def dim(self):
        """The number of axes (PyTorch's name)."""
        return self.data.ndim
    is_leaf = property(lambda self: self._node is None,
                       doc="True for a tensor no recorded op made (a parameter, an input).")

    def numpy(self):
        """The data, as the numpy array it is (not a copy)."""
        return self.data

    def item(self):
        """The value of a one-element tensor, as a Python number."""
        return self.data.item()

    def __float__(self):
        if self.data.size != 1:
            raise TypeError(f"float() of a tensor needs one element; this one has shape "
                            f"{self.shape}")
        return float(self.data.item())

    def tolist(self):
        """The data as (nested) Python lists of numbers."""
        return self.data.tolist()

    def float(self):
        """The tensor in float32 (itself if it is), the gradient flowing back."""
        return self if self.dtype == np.float32 else E.CastFn.apply(self, dtype=np.float32)

    def double(self):
        """The tensor in float64 (itself if it is), the gradient flowing back."""
        return self if self.dtype == np.float64 else E.CastFn.apply(self, dtype=np.float64)

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
        """Forget the gradient (`grad` becomes None)."""
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

    # --- comparisons: boolean numpy arrays, no gradient ---------------------------
    __hash__ = object.__hash__        # (== compares elements; a Tensor still hashes by id)

    def _cmp(self, other, op):
        return op(self.data, other.data if isinstance(other, Tensor) else other)

    def __lt__(self, other): return self._cmp(other, np.less)
    def __le__(self, other): return self._cmp(other, np.less_equal)
    def __gt__(self, other): return self._cmp(other, np.greater)
    def __ge__(self, other): return self._cmp(other, np.greater_equal)
    def __eq__(self, other): return self._cmp(other, np.equal)
    def __ne__(self, other): return self._cmp(other, np.not_equal)

    # --- elementwise ----------------------------------------------------------------
    def exp(self):
        """e ** self, elementwise."""
        return E.ExpFn.apply(self)

    def log(self):
        """Natural logarithm, elementwise."""
        return E.LogFn.apply(self)

    def relu(self):
        """max(self, 0), elementwise (gradient 0 at 0)."""
        return E.ReLUFn.apply(self)

    def sqrt(self):
        """Square root, elementwise."""
        return E.SqrtFn.apply(self)

    def abs(self):
        """The absolute value, elementwise (gradient 0 at 0)."""
        return E.AbsFn.apply(self)

    def tanh(self):
        """Hyperbolic tangent, elementwise."""
        return E.TanhFn.apply(self)

    def sigmoid(self):
        """1 / (1 + exp(-self)), elementwise, without overflow."""
        return E.SigmoidFn.apply(self)

    def clip(self, low=None, high=None):
        """self limited to [low, high] (either may be None); no gradient where clipped."""
        return E.ClipFn.apply(self, low=low, high=high)

    # --- reductions (axis, numpy's word; dim, PyTorch's, is accepted too) -----------
    def sum(self, axis=None, keepdims=False, dim=None, keepdim=None):
        """Sum over `axis` (an int, a tuple, or None for all axes); `dim` and `keepdim`,
        PyTorch's words, work too, in every reduction."""
        return R.SumFn.apply(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim))

    def mean(self, axis=None, keepdims=False, dim=None, keepdim=None):
        """Mean over `axis`, as a derived op: the sum times 1/count."""
        axis = _axis(axis, dim)
        return self.sum(axis=axis, keepdims=_keep(keepdims, keepdim)) * (
            1.0 / self._count(axis))

    def var(self, axis=None, keepdims=False, ddof=0, dim=None, keepdim=None):
        """Variance over `axis`: mean squared deviation, divided by count - ddof (numpy's
        ddof=0 by default; PyTorch's default is ddof=1)."""
        axis = _axis(axis, dim)
        deviation = self - self.mean(axis=axis, keepdims=True)
        return (deviation * deviation).sum(axis=axis, keepdims=_keep(keepdims, keepdim)) * (
            1.0 / (self._count(axis) - ddof))

    def _count(self, axis):
        """How many elements a reduction over `axis` (None: all) takes together."""
        axes = range(self.ndim) if axis is None else np.atleast_1d(axis)
        return int(np.prod([self.shape[a] for a in axes]))

    def std(self, axis=None, keepdims=False, ddof=0, dim=None, keepdim=None):
        """Standard deviation over `axis`: sqrt(var) (same ddof convention)."""
        return self.var(axis=axis, keepdims=_keep(keepdims, keepdim), ddof=ddof,
                        dim=dim).sqrt()

    def max(self, axis=None, keepdims=False, dim=None, keepdim=None):
        """Maximum over `axis`; tied elements share the gradient."""
        return R.MaxFn.apply(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim))

    def min(self, axis=None, keepdims=False, dim=None, keepdim=None):
        """Minimum over `axis`; tied elements share the gradient."""
        return R.MinFn.apply(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim))

    def argmax(self, axis=None, dim=None):
        """Index of the maximum over `axis` (a numpy integer array: no gradient)."""
        return self.data.argmax(axis=_axis(axis, dim))

    def argmin(self, axis=None, dim=None):
        """Index of the minimum over `axis` (a numpy integer array: no gradient)."""
        return self.data.argmin(axis=_axis(axis, dim))

    def log_softmax(self, axis=None, dim=None):
        """log(softmax(self)) along `axis` (the last by default), without overflow."""
        axis = _axis(axis, dim)
        return R.LogSoftmaxFn.apply(self, axis=-1 if axis is None else axis)

    def softmax(self, axis=None, dim=None):
        """softmax along `axis` (the last by default): exp(log_softmax), without overflow."""
        return self.log_softmax(axis=axis, dim=dim).exp()

    # --- shapes -------------------------------------------------------------------------
    def reshape(self, *shape):
        """The same elements in another shape (one size may be -1)."""
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return M.ReshapeFn.apply(self, shape=tuple(shape))

    def view(self, *shape):
        """PyTorch's name for reshape (here always a new array of the same elements)."""
        return self.reshape(*shape)

    def flatten(self, start_dim=0, end_dim=-1):
        """Axes start_dim..end_dim merged into one (all of them by default)."""
        start, end = start_dim % self.ndim, end_dim % self.ndim
        shape = self.shape[:start] + (-1,) + self.shape[end + 1:]
        return self.reshape(shape)

    def squeeze(self, axis=None, dim=None):
        """Axes of size 1 removed (all of them, or the one given)."""
        axis = _axis(axis, dim)
        if axis is not None and self.shape[axis] != 1:
            raise ValueError(f"squeeze: axis {axis} has size {self.shape[axis]}, not 1 "
                             f"(shape {self.shape})")
        return self.reshape(np.squeeze(np.empty(self.shape, dtype=bool), axis).shape)

    def unsqueeze(self, axis=None, dim=None):
        """A new axis of size 1 at `axis`."""
        return self.reshape(np.expand_dims(np.empty(self.shape, dtype=bool),
                                           _axis(axis, dim)).shape)

    def expand(self, *shape):
        """Broadcast to `shape` without copying (-1 keeps a size), as numpy broadcasts."""
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return M.ExpandFn.apply(self, shape=tuple(shape))

    def permute(self, *axes):
        """The axes in the order given."""
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return M.PermuteFn.apply(self, axes=tuple(axes))

    def transpose(self, axis0=-2, axis1=-1):
        """Swap two axes (the last two by default, the matrix transpose)."""
        axes = list(range(self.ndim))
        axes[axis0], axes[axis1] = axes[axis1], axes[axis0]
        return self.permute(axes)

    @property
    def T(self):
        """All axes reversed."""
        return self.permute(tuple(reversed(range(self.ndim))))

    # --- indexing -------------------------------------------------------------------
    def __getitem__(self, index):
        """numpy's indexing: slices, integers, integer or boolean arrays (or Tensors),
        None, Ellipsis. The gradient goes back to the elements picked, summed where one
        is picked twice."""
        return M.IndexFn.apply(self, index=_index(index))

    def __setitem__(self, index, value):
        """Assign into the data in place; refused for a tensor that requires grad."""
        if self.requires_grad:
            raise RuntimeError(
                "in-place assignment to a tensor that requires grad would corrupt its "
                "gradient; assign to a copy (t.detach().data.copy()) or build the new "
                "values with ops (where, cat)")
        self.data[_index(index)] = value.data if isinstance(value, Tensor) else value


def _axis(axis, dim):
    """`dim` (PyTorch's word) as an alias of `axis` (numpy's); not both."""
    if dim is None:
        return axis
    if axis is not None and axis != dim:
        raise TypeError(f"give axis or dim, not both (axis={axis}, dim={dim})")
    return dim


def _keep(keepdims, keepdim):
    """`keepdim` (PyTorch's word) as an alias of `keepdims` (numpy's)."""
    return keepdims if keepdim is None else bool(keepdim)


class _Size(int):
    """The number of elements, as numpy's `size` gives it, that can also be called as
    PyTorch's `size()` (the shape) or `size(dim)` (one axis's length)."""

    def __new__(cls, count, shape):
        self = super().__new__(cls, count)
        self.shape = shape
        return self

    def __call__(self, dim=None):
        return self.shape if dim is None else self.shape[dim]


def _index(index):
    """An index with Tensors replaced by their arrays (integer or boolean indices)."""
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    return index.data if isinstance(index, Tensor) else index


def cat(tensors, axis=None, dim=None):
    """Tensors joined along an existing axis, the first by default (numpy's concatenate,
    PyTorch's cat)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: got no tensors")
    axis = _axis(axis, dim)
    return M.CatFn.apply(*tensors, axis=0 if axis is None else axis)


def stack(tensors, axis=None, dim=None):
    """Tensors of one shape joined along a new axis, the first by default."""
    axis = _axis(axis, dim)
    axis = 0 if axis is None else axis
    return cat([t.unsqueeze(axis) for t in tensors], axis=axis)


def where(cond, a, b):
    """Elementwise cond ? a : b, with broadcasting; a and b may be Tensors or numbers, cond
    a boolean array (or the result of a comparison). No gradient flows to cond."""
    ref = a if isinstance(a, Tensor) else b
    dtype = ref.dtype if isinstance(ref, Tensor) else np.float32
    lift = lambda v: v if isinstance(v, Tensor) else Tensor(v, dtype=dtype)   # noqa: E731
    cond = cond.data if isinstance(cond, Tensor) else cond
    return E.WhereFn.apply(lift(a), lift(b), cond=np.asarray(cond, dtype=bool))


def tensor(data, requires_grad=False, dtype=None):
    """A new Tensor (PyTorch's `torch.tensor`): float32 unless dtype says float64."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


autograd.Tensor = Tensor    # Function.apply builds its results with it (see autograd.py)
