"""The engine: differentiable functions, the graph they build, and reverse-mode backward.

An op is a `Function` subclass with two static methods:

    forward(ctx, *arrays, **options) -> array     plain numpy in, numpy out
    backward(ctx, grad_out) -> grad per input      one array (or None) per tensor input

`Function.apply` runs `forward` and, when a gradient is wanted, records a `Node` on the
result: which function made it, the context it saved and its parent tensors. `backward`
walks those nodes in reverse topological order. Broadcasting is undone in one place only,
`unbroadcast`, so an op's backward may return a gradient of the broadcast shape.
"""
from contextlib import contextmanager

import numpy as np

_grad_enabled = True


@contextmanager
def no_grad():
    """Context manager: ops inside it record no graph (evaluation, optimizer updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


# The one import cycle, said out loud: a Tensor's operators call the ops, the ops are
# Functions (this module), and Function.apply wraps its result in a Tensor. tensor.py
# imports this module, so this module cannot import tensor.py at its top; tensor.py
# hands its class over instead, right after defining it (`autograd.Tensor = Tensor`).
Tensor = None


class Context:
    """What a forward pass leaves for its backward pass."""

    def __init__(self, needs_input_grad=()):
        self.saved = ()
        self.needs_input_grad = needs_input_grad  # per tensor input: is its grad wanted?

    def save_for_backward(self, *values):
        self.saved = values


class Node:
    """One recorded op application: the function, its context, its parent tensors."""

    __slots__ = ("fn", "ctx", "parents")

    def __init__(self, fn, ctx, parents):
        self.fn, self.ctx, self.parents = fn, ctx, parents


class Function:
    """Base class of every differentiable op. Subclasses define forward and backward."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *tensors, **kwargs):
        ctx = Context(tuple(t.requires_grad for t in tensors))
        out = Tensor._wrap(cls.forward(ctx, *(t.data for t in tensors), **kwargs))
        if _grad_enabled and any(t.requires_grad for t in tensors):
            out.requires_grad = True
            out._node = Node(cls, ctx, tensors)
        return out


class Outer:
    """A gradient held as the outer product col[:, None] * row[None, :], not as the array.

    For one sample, the weight gradient of a dense layer, x^T g, is an outer product: in
    this form it is len(col) + len(row) numbers instead of len(col) * len(row) (1.4 million for
    the article's first dense layer), and plain SGD applies it without the array ever
    being written (optim/sgd.py). Only a leaf's sole gradient stays in this form;
    `Tensor.grad` turns it into the array the first time it is read, so a user never
    meets it.
    """

    __slots__ = ("col", "row")

    def __init__(self, col, row):
        self.col, self.row = col, row

    shape = property(lambda self: (self.col.size, self.row.size))
    dtype = property(lambda self: self.col.dtype)

    def materialize(self):
        """The array: the same products, rounded the same way, as col[:, None] * row."""
        return np.multiply.outer(self.col, self.row)

    def all_finite(self):
        """No NaN or inf among the products: both factors finite and max|col|·max|row|
        below the dtype's largest value, or else the products checked one by one."""
        if not (np.isfinite(self.col).all() and np.isfinite(self.row).all()):
            return False
        biggest = float(np.abs(self.col).max(initial=0)) * float(np.abs(self.row).max(initial=0))
        if biggest <= float(np.finfo(self.col.dtype).max):
            return True
        with np.errstate(over="ignore", invalid="ignore"):
            return bool(np.isfinite(self.materialize()).all())


def _dense(grad):
    return grad.materialize() if isinstance(grad, Outer) else grad


def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`, undoing numpy broadcasting (the one place it is undone).

    Raises ValueError unless an array of `shape` broadcasts to grad's shape: a gradient of
    another shape (a transposed or flattened array of the right size) is a bug in the
    op's backward, never reshaped silently."""
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    try:
        fits = np.broadcast_shapes(shape, grad.shape) == grad.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"a gradient of shape {grad.shape} for an input of shape {shape}: "
                         f"it must have the input's shape, or the shape the input was "
                         f"broadcast to")
    extra = grad.ndim - len(shape)
    if extra > 0:  # leading axes that broadcasting added
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:  # axes of size 1 that broadcasting stretched
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _topological_order(root):
    """Tensors reachable from `root` through recorded nodes, parents before children."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:  # iterative DFS: deep graphs do not hit Python's recursion limit
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        if tensor._node is not None:
            for parent in tensor._node.parents:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def backward(root, grad):
    """Propagate `grad` (d out / d root) to every leaf that requires grad.

    Leaves accumulate into `.grad` (a tensor used twice gets the sum of both paths, and
    successive backward calls add up until `zero_grad`); intermediate tensors keep none.
    """
    grads = {id(root): grad}            # d root / d tensor, summed over the paths so far
    leaves = _LeafGrads(grad)
    for tensor in reversed(_topological_order(root)):     # every child before its parents
        g = grads.pop(id(tensor), None)
        if g is None:
            continue
        if tensor._node is None:                           # a leaf: keep its gradient
            leaves.accumulate(tensor, g)
            continue
        node = tensor._node                                # the chain rule, one op
        for parent, pg in zip(node.parents, _input_grads(node, g)):
            if pg is not None:
                key = id(parent)
                grads[key] = pg if key not in grads else _dense(grads[key]) + _dense(pg)


def _input_grads(node, g):
    """The gradients node.fn.backward returns, one per input, each checked and brought to
    its input's shape (undoing broadcasting) and dtype; None where none is wanted.

    Raises ValueError, naming the op and the input, for a wrong number of gradients or a
    gradient that cannot belong to its input."""
    fn, parents = node.fn, node.parents
    out = fn.backward(node.ctx, g)
    if not isinstance(out, (tuple, list)):
        out = (out,)
    if len(out) != len(parents):
        raise ValueError(f"{fn.__name__}.backward returned {len(out)} gradients for "
                         f"{len(parents)} tensor inputs (one per input, None where there "
                         f"is none)")
    fitted = []
    for i, (parent, pg) in enumerate(zip(parents, out)):
        if pg is None or not parent.requires_grad:
            fitted.append(None)
            continue
        dtype = parent.data.dtype
        if isinstance(pg, Outer) and parent._node is None and pg.shape == parent.shape:
            fitted.append(Outer(pg.col.astype(dtype), pg.row.astype(dtype)))   # speed: see
            continue                                                       # Outer
        try:
            fitted.append(unbroadcast(np.asarray(_dense(pg), dtype=dtype), parent.shape))
        except ValueError as e:
            raise ValueError(f"{fn.__name__}.backward, input {i}: {e}") from None
    return fitted


class _LeafGrads:
    """Speed, not semantics: stores each leaf's gradient as `leaf.grad += g` would, but
    without the copies that costs (a batch-64 step hands 1.4 million gradient numbers to
    the leaves):

    - an `Outer` (one sample's dense-layer weight gradient) is stored factored, as a
      leaf's first gradient; `Tensor.grad` builds the array when it is read;
    - a fresh array that no other leaf holds is stored as it is, not copied; a view, or
      an array already handed to another leaf (or the root's own gradient), is copied.
    """

    def __init__(self, root_grad):
        self.handed_out = {id(root_grad)}      # arrays a leaf may not keep without a copy

    def accumulate(self, leaf, g):
        if isinstance(g, Outer) and leaf.stored_grad is None:
            leaf.grad = g                      # kept factored until someone reads .grad
            return
        g = _dense(g)
        if leaf.stored_grad is not None:
            leaf.grad = leaf.grad + g
        elif g.base is None and id(g) not in self.handed_out and g.flags.writeable:
            leaf.grad = g                      # a fresh array nobody else holds
        else:
            leaf.grad = g.copy()
        self.handed_out.add(id(leaf.grad))
