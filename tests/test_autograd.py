"""The engine: every op's forward against numpy and its gradient against central
differences (one table drives both), hand-computed 2x2 cases, and the bad inputs."""
import numpy as np
import pytest

from tinygrad_opt import Function, GradcheckError, Tensor, cat, gradcheck, no_grad, stack, where

RNG = np.random.default_rng(0)


def rand(*shape, low=-2.0, high=2.0):
    return RNG.uniform(low, high, size=shape)


def away_from_zero(*shape):
    """Values in +-[0.5, 2]: keeps relu off its kink and log/div off 0."""
    return RNG.uniform(0.5, 2.0, size=shape) * RNG.choice([-1.0, 1.0], size=shape)


def distinct(*shape):
    """A permutation of well-separated values: no ties for max."""
    return RNG.permutation(np.arange(np.prod(shape), dtype=float)).reshape(shape) * 0.37


SOFT = np.array([[0.5, 0.2, 0.1, 0.0], [0.3, 0.3, 0.3, 0.6], [1.0, 0.0, 0.0, 0.0]])  # rows:
# 0.8, 1.5 and 1.0: soft targets need not sum to 1 (PyTorch's class probabilities)


def softmax_ce(z):
    from tinygrad_opt.nn.functional import softmax_cross_entropy
    return softmax_cross_entropy(z, SOFT)


def softmax_ce_numpy(z):
    log_probs = z - z.max(1, keepdims=True)
    log_probs = log_probs - np.log(np.exp(log_probs).sum(1, keepdims=True))
    return -(SOFT * log_probs).sum() / len(z)


IDX = np.array([[0, 2, 2, 4], [4, 1, 0, 0]])     # repeated rows: their gradients add


def embed(w):
    from tinygrad_opt.nn.functional import embedding
    return embedding(IDX, w)


def gelu_fn(x, approximate="none"):
    from tinygrad_opt.nn.functional import gelu
    return gelu(x, approximate)


def gelu_numpy(x, approximate="none"):
    import math
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def layer_norm_fn(x, w, b):
    from tinygrad_opt.nn.functional import layer_norm
    return layer_norm(x, w, b)


def layer_norm_numpy(x, w, b):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * w + b


def attention_fn(q, k, v, causal=True):
    from tinygrad_opt.nn.functional import scaled_dot_product_attention
    return scaled_dot_product_attention(q, k, v, is_causal=causal)


def attention_numpy(q, k, v, causal=True):
    s = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], dtype=bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True) @ v


def linear_fn(x, w, b):
    from tinygrad_opt.nn.functional import linear
    return linear(x, w, b)


def norm_relu_pool(x, gamma, beta):
    """ops/fused_norm.py in training: batch statistics of x, the gradient through them."""
    from tinygrad_opt.ops.fused_norm import BatchNormReluPoolFn
    mean, var = x.data.mean(axis=(0, 2, 3)), x.data.var(axis=(0, 2, 3))
    return BatchNormReluPoolFn.apply(x, gamma, beta, mean=mean, var=var, training=True)


def norm_relu_pool_numpy(x, gamma, beta):
    mean, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    z = (x - mean) / np.sqrt(var + 1e-5) * gamma[:, None, None] + beta[:, None, None]
    n, c, h, w = z.shape
    return np.maximum(z, 0).reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


# name, tensor function, numpy function, inputs
OPS = [
    ("add", lambda a, b: a + b, lambda a, b: a + b, [rand(3, 4), rand(3, 4)]),
    ("add broadcast", lambda a, b: a + b, lambda a, b: a + b, [rand(2, 3, 4), rand(4)]),
    ("add broadcast 1", lambda a, b: a + b, lambda a, b: a + b, [rand(3, 1), rand(1, 4)]),
    ("sub broadcast", lambda a, b: a - b, lambda a, b: a - b, [rand(3, 4), rand(3, 1)]),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, [rand(3, 4), rand(3, 4)]),
    ("mul broadcast", lambda a, b: a * b, lambda a, b: a * b, [rand(5, 1, 3), rand(4, 1)]),
    ("div", lambda a, b: a / b, lambda a, b: a / b, [rand(3, 4), away_from_zero(3, 4)]),
    ("div broadcast", lambda a, b: a / b, lambda a, b: a / b, [rand(2, 3), away_from_zero(3)]),
    ("neg", lambda a: -a, lambda a: -a, [rand(3, 4)]),
    ("pow 3", lambda a: a ** 3, lambda a: a ** 3, [rand(3, 4)]),
    ("pow -0.5", lambda a: a ** -0.5, lambda a: a ** -0.5, [rand(3, 4, low=0.5)]),
    ("matmul", lambda a, b: a @ b, lambda a, b: a @ b, [rand(3, 4), rand(4, 5)]),
    ("matmul batched", lambda a, b: a @ b, lambda a, b: a @ b, [rand(2, 3, 4), rand(4, 5)]),
    ("matmul vec", lambda a, b: a @ b, lambda a, b: a @ b, [rand(4), rand(4, 3)]),
    ("matvec", lambda a, b: a @ b, lambda a, b: a @ b, [rand(3, 4), rand(4)]),
    ("sum", lambda a: a.sum(), lambda a: a.sum(), [rand(3, 4)]),
    ("sum axis", lambda a: a.sum(axis=1), lambda a: a.sum(axis=1), [rand(3, 4, 2)]),
    ("sum keepdims", lambda a: a.sum(axis=0, keepdims=True),
     lambda a: a.sum(axis=0, keepdims=True), [rand(3, 4)]),
    ("mean", lambda a: a.mean(), lambda a: a.mean(), [rand(3, 4)]),
    ("mean axes", lambda a: a.mean(axis=(0, 2)), lambda a: a.mean(axis=(0, 2)), [rand(3, 4, 2)]),
    ("max", lambda a: a.max(), lambda a: a.max(), [distinct(3, 4)]),
    ("max axis", lambda a: a.max(axis=1), lambda a: a.max(axis=1), [distinct(3, 4)]),
    ("max keepdims", lambda a: a.max(axis=0, keepdims=True),
     lambda a: a.max(axis=0, keepdims=True), [distinct(3, 4)]),
    ("exp", lambda a: a.exp(), np.exp, [rand(3, 4)]),
    ("log", lambda a: a.log(), np.log, [rand(3, 4, low=0.2)]),
    ("relu", lambda a: a.relu(), lambda a: np.maximum(a, 0), [away_from_zero(3, 4)]),
    ("reshape", lambda a: a.reshape(4, 3), lambda a: a.reshape(4, 3), [rand(3, 4)]),
    ("reshape -1", lambda a: a.reshape(-1), lambda a: a.reshape(-1), [rand(3, 4)]),
    ("permute", lambda a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), [rand(2, 3, 4)]),
    ("transpose", lambda a: a.transpose(), lambda a: a.swapaxes(-1, -2), [rand(2, 3, 4)]),
    ("T", lambda a: a.T, lambda a: a.T, [rand(3, 4)]),
    ("sqrt", lambda a: a.sqrt(), np.sqrt, [rand(3, 4, low=0.2)]),
    ("abs", lambda a: a.abs(), np.abs, [away_from_zero(3, 4)]),
    ("tanh", lambda a: a.tanh(), np.tanh, [rand(3, 4)]),
    ("sigmoid", lambda a: a.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), [rand(3, 4, low=-6, high=6)]),
    ("clip", lambda a: a.clip(-0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7), [distinct(3, 4) - 1.3]),
    ("min", lambda a: a.min(), lambda a: a.min(), [distinct(3, 4)]),
    ("min dim", lambda a: a.min(dim=1), lambda a: a.min(axis=1), [distinct(3, 4)]),
    ("sum dim", lambda a: a.sum(dim=(0, 2)), lambda a: a.sum(axis=(0, 2)), [rand(3, 4, 2)]),
    ("var", lambda a: a.var(axis=1), lambda a: a.var(axis=1), [rand(3, 4)]),
    ("std ddof 1", lambda a: a.std(dim=0, ddof=1), lambda a: a.std(axis=0, ddof=1), [rand(5, 3)]),
    ("log_softmax", lambda a: a.log_softmax(dim=1),
     lambda a: a - a.max(1, keepdims=True) - np.log(np.exp(a - a.max(1, keepdims=True)).sum(1, keepdims=True)),
     [rand(3, 5)]),
    ("softmax", lambda a: a.softmax(dim=1),
     lambda a: np.exp(a - a.max(1, keepdims=True)) / np.exp(a - a.max(1, keepdims=True)).sum(1, keepdims=True),
     [rand(3, 5)]),
    ("mean keepdim", lambda a: a.mean(1, keepdim=True), lambda a: a.mean(1, keepdims=True), [rand(3, 4)]),
    ("view", lambda a: a.view(2, -1), lambda a: a.reshape(2, -1), [rand(2, 3, 4)]),
    ("flatten", lambda a: a.flatten(1), lambda a: a.reshape(2, -1), [rand(2, 3, 4)]),
    ("squeeze", lambda a: a.squeeze(1), lambda a: a.squeeze(1), [rand(3, 1, 4)]),
    ("unsqueeze", lambda a: a.unsqueeze(dim=-1), lambda a: a[..., None], [rand(3, 4)]),
    ("expand", lambda a: a.expand(2, -1, 4), lambda a: np.broadcast_to(a, (2, 3, 4)), [rand(3, 1)]),
    ("index slices", lambda a: a[1:, ::2], lambda a: a[1:, ::2], [rand(3, 5)]),
    ("index ellipsis, integer, None", lambda a: a[..., 1, None], lambda a: a[..., 1, None],
     [rand(2, 3, 4)]),
    ("index repeated rows", lambda a: a[[0, 2, 0]], lambda a: a[[0, 2, 0]], [rand(3, 4)]),
    ("index int, None, ...", lambda a: a[1, None, ..., 2], lambda a: a[1, None, ..., 2], [rand(3, 4, 5)]),
    ("index repeated ints", lambda a: a[[0, 2, 0, 0]], lambda a: a[[0, 2, 0, 0]], [rand(3, 4)]),
    ("index bool", lambda a: a[np.array([True, False, True])], lambda a: a[[0, 2]], [rand(3, 4)]),
    ("cat", lambda a, b: cat([a, b * 2.0], dim=1), lambda a, b: np.concatenate([a, b * 2], 1),
     [rand(3, 2), rand(3, 4)]),
    ("stack", lambda a, b: stack([a, b], axis=1), lambda a, b: np.stack([a, b], 1),
     [rand(3, 4), rand(3, 4)]),
    ("where", lambda a, b: where(a.data > 0, a, b), lambda a, b: np.where(a > 0, a, b),
     [away_from_zero(3, 4), rand(3, 4)]),
    ("where broadcast scalar", lambda a: where(a.data > 0, a * 2.0, 0.0),
     lambda a: np.where(a > 0, a * 2, 0.0), [away_from_zero(3, 4)]),
    ("batchnorm relu maxpool", norm_relu_pool, norm_relu_pool_numpy,
     [distinct(2, 3, 4, 6), away_from_zero(3), rand(3)]),
    ("softmax cross-entropy, soft targets", softmax_ce, softmax_ce_numpy, [rand(3, 4)]),
    ("embedding, rows repeated", embed, lambda w: w[IDX], [rand(5, 3)]),
    ("layer norm", layer_norm_fn, layer_norm_numpy, [rand(2, 3, 6), rand(6), rand(6)]),
    ("gelu", lambda a: gelu_fn(a), lambda a: gelu_numpy(a), [rand(3, 4, low=-4, high=4)]),
    ("gelu tanh", lambda a: gelu_fn(a, "tanh"), lambda a: gelu_numpy(a, "tanh"),
     [rand(3, 4, low=-4, high=4)]),
    ("attention, causal", attention_fn, attention_numpy,
     [rand(2, 2, 6, 3), rand(2, 2, 6, 3), rand(2, 2, 6, 3)]),
    ("attention, 5 queries 7 keys", lambda q, k, v: attention_fn(q, k, v, False),
     lambda q, k, v: attention_numpy(q, k, v, False),
     [rand(1, 2, 5, 3), rand(1, 2, 7, 3), rand(1, 2, 7, 3)]),
    ("linear, (batch, time, in)", linear_fn, lambda x, w, b: x @ w.T + b,
     [rand(2, 3, 4), rand(5, 4), rand(5)]),
    ("composite", lambda a, b: ((a @ b).relu() * 2.0 + 1.0).log().mean(axis=0),
     lambda a, b: np.log(np.maximum(a @ b, 0) * 2 + 1).mean(axis=0),
     [rand(3, 4), rand(4, 5)]),
    ("scalar on left", lambda a: 2.0 - a / 3.0 * (1.0 / a.exp()),
     lambda a: 2.0 - a / 3.0 * (1.0 / np.exp(a)), [rand(3)]),
]


@pytest.mark.parametrize("name,fn,ref,arrays", OPS, ids=[o[0] for o in OPS])
def test_forward_matches_numpy(name, fn, ref, arrays):
    out = fn(*[Tensor(a, dtype=np.float64) for a in arrays])
    np.testing.assert_allclose(out.data, ref(*arrays), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,fn,ref,arrays", OPS, ids=[o[0] for o in OPS])
def test_gradient_matches_finite_differences(name, fn, ref, arrays):
    inputs = [Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    assert gradcheck(fn, *inputs)


def test_hand_computed_2x2():
    a = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = Tensor([[0.5, -1.0], [2.0, 0.0]], requires_grad=True)
    ((a * b).sum() + (a @ b).sum()).backward()
    # d/da sum(a*b) = b; d/da sum(a@b) = row sums of b, repeated per row: [-0.5, 2]
    np.testing.assert_array_equal(a.grad, [[0.0, 1.0], [1.5, 2.0]])
    # d/db sum(a*b) = a; d/db sum(a@b) = column sums of a, per column: [4, 6]
    np.testing.assert_array_equal(b.grad, [[5.0, 6.0], [9.0, 10.0]])


def test_hand_computed_broadcast_and_max():
    a = Tensor([[1.0, 5.0], [7.0, 3.0]], requires_grad=True)
    bias = Tensor([10.0, 20.0], requires_grad=True)
    (a + bias).max(axis=1).sum().backward()   # row maxima: 25 (col 1), 27 (col 1)
    np.testing.assert_array_equal(a.grad, [[0.0, 1.0], [0.0, 1.0]])
    np.testing.assert_array_equal(bias.grad, [0.0, 2.0])   # summed over the broadcast rows


def test_tensor_used_twice_accumulates():
    x = Tensor([3.0, -2.0], requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_array_equal(x.grad, [7.0, -3.0])      # 2x + 1
    (x * 2.0).sum().backward()                              # successive calls add up
    np.testing.assert_array_equal(x.grad, [9.0, -1.0])


def test_max_tie_splits_gradient():
    x = Tensor([2.0, 2.0, 1.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.5, 0.5, 0.0])


def test_leaves_intermediates_and_no_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    assert x.is_leaf and not y.is_leaf and y.requires_grad
    y.sum().backward()
    assert y.grad is None and x.grad is not None
    with no_grad():
        z = x * 3.0
    assert not z.requires_grad and z.is_leaf
    assert not x.detach().requires_grad


def test_dtype_defaults_and_float64():
    assert Tensor([1, 2]).dtype == np.float32
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert (Tensor([1.0], dtype=np.float64) * 2.0).dtype == np.float64
    with pytest.raises(TypeError, match="float32 or float64"):
        Tensor([1], dtype=np.int32)


def test_deep_chain_does_not_recurse():
    x = Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 0.0
    y.sum().backward()
    assert x.grad[0] == 1.0


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_shapes_that_do_not_broadcast(op):
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones((4,)))
    with pytest.raises(ValueError, match=r"shapes \(2, 3\) and \(4,\) do not broadcast"):
        eval(f"a {op} b")


def test_shapes_that_do_not_multiply():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not multiply"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))


def test_bad_reshape_and_permute():
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*into \(4, 2\)"):
        Tensor(np.ones((2, 3))).reshape(4, 2)
    with pytest.raises(ValueError, match="not a permutation"):
        Tensor(np.ones((2, 3))).permute(0, 0)


def test_backward_on_non_scalar_needs_grad():
    y = Tensor(np.ones((2, 2)), requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match=r"needs a scalar.*shape \(2, 2\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"expected a gradient of shape \(2, 2\), got \(3,\)"):
        y.backward(np.ones(3))


def test_backward_without_requires_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor([1.0]) * 2.0).backward()


def test_pow_needs_scalar_exponent():
    with pytest.raises(TypeError, match="scalar exponent"):
        Tensor([1.0]) ** Tensor([2.0])


def test_one_row_weight_gradient_is_kept_factored_and_exact():
    """x (1, K) @ W: W's gradient is an outer product, held as its factors until read."""
    from tinygrad_opt.autograd import Outer
    x = Tensor(rand(1, 5), dtype=np.float64)
    w = Tensor(rand(5, 3), requires_grad=True, dtype=np.float64)
    g = rand(1, 3)
    (x @ w).backward(g)
    assert isinstance(w.stored_grad, Outer)
    np.testing.assert_array_equal(w.grad, x.data.T @ g)      # read: the array, once
    assert isinstance(w.stored_grad, np.ndarray)
    (x @ w).backward(g)                                      # accumulates onto it
    np.testing.assert_allclose(w.grad, 2 * x.data.T @ g, rtol=1e-15)
    w.grad = None
    ((x @ w) * 2 + x @ w).sum().backward()                   # two paths: summed
    np.testing.assert_allclose(w.grad, 3 * x.data.T @ np.ones((1, 3)), rtol=1e-15)
    a = Tensor(rand(5, 3), requires_grad=True, dtype=np.float64)
    (x @ (a * 2)).sum().backward()                           # not a leaf: built at once
    np.testing.assert_allclose(a.grad, 2 * x.data.T @ np.ones((1, 3)), rtol=1e-15)


# --- a custom op's backward that cannot be right is an error, not a silent reshape ------
class _Transposed(Function):
    @staticmethod
    def forward(ctx, a):
        return a * 2

    @staticmethod
    def backward(ctx, g):
        return (g * 2).T                # the right size, the wrong layout


class _Flattened(_Transposed):
    @staticmethod
    def backward(ctx, g):
        return (g * 2).reshape(-1)


class _TwoForOne(_Transposed):
    @staticmethod
    def backward(ctx, g):
        return g * 2, g


class _OneForTwo(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, g):
        return (g,)


@pytest.mark.parametrize("op,message", [
    (_Transposed, r"_Transposed.backward, input 0: a gradient of shape \(3, 2\) for an input "
                  r"of shape \(2, 3\)"),
    (_Flattened, r"_Flattened.backward, input 0: a gradient of shape \(6,\) for an input of "
                 r"shape \(2, 3\)"),
    (_TwoForOne, r"_TwoForOne.backward returned 2 gradients for 1 tensor inputs"),
])
def test_a_gradient_that_cannot_belong_to_its_input_is_an_error(op, message):
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, dtype=np.float64)
    with pytest.raises(ValueError, match=message):
        op.apply(x).sum().backward()


def test_too_few_gradients_is_an_error():
    a, b = (Tensor(np.ones(3), requires_grad=True) for _ in range(2))
    with pytest.raises(ValueError, match=r"_OneForTwo.backward returned 1 gradients for 2"):
        _OneForTwo.apply(a, b).sum().backward()


def test_broadcasting_reductions_stay_legitimate():
    a = Tensor(np.ones((3, 1)), requires_grad=True, dtype=np.float64)
    b = Tensor(np.ones(4), requires_grad=True, dtype=np.float64)
    c = Tensor(np.ones(()), requires_grad=True, dtype=np.float64)
    ((a + b) * c).sum().backward()
    assert a.grad.tolist() == [[4.0]] * 3 and b.grad.tolist() == [3.0] * 4 and c.grad == 24.0



# --- indexing, comparisons and the ops without a gradient --------------------------------
def test_a_repeated_index_accumulates_its_gradient():
    x = Tensor(np.arange(4.0), requires_grad=True, dtype=np.float64)
    x[[1, 1, 3, 1]].sum().backward()
    assert x.grad.tolist() == [0.0, 3.0, 0.0, 1.0]


def test_assigning_into_a_tensor_that_requires_grad_is_refused():
    x = Tensor(np.zeros(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place assignment to a tensor that requires grad"):
        x[0] = 1.0
    y = Tensor(np.zeros(3))
    y[1:] = Tensor([2.0, 3.0])
    assert y.data.tolist() == [0.0, 2.0, 3.0]


def test_comparisons_argmax_and_argmin_carry_no_gradient():
    x = Tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]], requires_grad=True)
    assert (x > 1.5).tolist() == [[False, True, True], [True, False, True]]
    assert (x == Tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]])).sum() == 3
    assert ((x <= 2.0) & (x != 1.0)).sum() == 2 and (x >= 7.0).sum() == 2 and (x < 0.5).sum() == 1
    assert x.argmax(dim=1).tolist() == [1, 0] and x.argmin(axis=0).tolist() == [0, 1, 0]
    assert {x: 1}[x] == 1                       # still hashable, by identity


def test_sigmoid_and_log_softmax_are_stable_at_large_values():
    z = Tensor([[-1000.0, 0.0, 1000.0]], requires_grad=True, dtype=np.float64)
    assert z.sigmoid().data.tolist() == [[0.0, 0.5, 1.0]]
    out = z.log_softmax()
    assert np.isfinite(out.data).all() and out.data[0, 2] == 0.0
    out.sum().backward()
    assert np.isfinite(z.grad).all()


def test_dim_and_axis_together_must_agree():
    x = Tensor(np.ones((2, 3)))
    assert x.sum(axis=1, dim=1).shape == (2,)
    with pytest.raises(TypeError, match="give axis or dim, not both"):
        x.sum(axis=0, dim=1)


def test_every_public_tensor_member_has_a_docstring_and_the_api_page_is_current():
    import inspect
    import os
    import subprocess
    import sys
    undocumented = [name for name, member in inspect.getmembers(Tensor)
                    if not name.startswith("_") and (callable(member) or
                                                     isinstance(member, property))
                    and not inspect.getdoc(member)]
    assert undocumented == []
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, os.path.join(root, "tools", "api_reference.py")],
                         capture_output=True, text=True, check=True).stdout
    with open(os.path.join(root, "docs", "api.md")) as f:
        assert f.read() == out, "docs/api.md is stale: python tools/api_reference.py > docs/api.md"
