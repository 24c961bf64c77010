"""Attention: scaled dot-product attention against a numpy transcription, its gradient
in float64, causality, and the multi-head block."""
import numpy as np
import pytest

from tinygrad_opt import Tensor, gradcheck
from tinygrad_opt.nn import CausalSelfAttention
from tinygrad_opt.nn.functional import scaled_dot_product_attention as sdpa


def attention_numpy(q, k, v, causal):
    s = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], dtype=bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def _qkv(seed=0, shape=(2, 3, 5, 4)):
    rng = np.random.default_rng(seed)
    return [Tensor(rng.standard_normal(shape), requires_grad=True, dtype=np.float64)
            for _ in range(3)]


@pytest.mark.parametrize("causal", [False, True])
def test_attention_is_the_formula_and_its_gradient_checks(causal):
    q, k, v = _qkv()
    np.testing.assert_allclose(sdpa(q, k, v, is_causal=causal).data,
                               attention_numpy(q.data, k.data, v.data, causal),
                               rtol=1e-12, atol=1e-14)
    assert gradcheck(lambda q, k, v: sdpa(q, k, v, is_causal=causal), q, k, v)


def test_the_block_is_causal_and_its_weights_get_gradients():
    block = CausalSelfAttention(8, 2, rng=0, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((2, 5, 8))
    y = block(Tensor(x, dtype=np.float64)).data
    later = x.copy()
    later[:, -1] += 1.0                       # the last position changes ...
    y2 = block(Tensor(later, dtype=np.float64)).data
    np.testing.assert_array_equal(y[:, :-1], y2[:, :-1])   # ... and nothing before it
    assert not np.allclose(y[:, -1], y2[:, -1])
    assert gradcheck(lambda x: block(x), Tensor(x, requires_grad=True, dtype=np.float64))
    block(Tensor(x, dtype=np.float64)).sum().backward()
    assert all(p.grad is not None and np.isfinite(p.grad).all() for p in block.parameters())


def test_attention_refuses_shapes_that_do_not_fit():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="expected q \\(B, H, T, D\\), k and v"):
        sdpa(q, k, v[..., :3])
    with pytest.raises(ValueError, match="d_model 10 is not a multiple of n_heads 4"):
        CausalSelfAttention(10, 4)
    with pytest.raises(ValueError, match=r"expected input \(batch, time, 8\), got \(2, 8\)"):
        CausalSelfAttention(8, 2)(Tensor(np.ones((2, 8))))


@pytest.mark.parametrize("ref", [False, True], ids=["kernel", "reference"])
def test_self_attention_of_a_fused_projection_is_the_split_heads_attention(ref):
    """functional.self_attention(qkv, heads) = split qkv into q, k, v and heads, attend,
    join the heads: forward and gradient, through the kernels and the references."""
    from tinygrad_opt import reference
    from tinygrad_opt.nn.functional import self_attention
    b, t, h, d = 2, 6, 3, 4
    qkv = Tensor(np.random.default_rng(2).standard_normal((b, t, 3 * h * d)),
                 requires_grad=True, dtype=np.float64)

    def split(qkv):
        q, k, v = (qkv[..., i * h * d:(i + 1) * h * d].reshape(b, t, h, d).transpose(1, 2)
                   for i in range(3))
        return sdpa(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, h * d)

    with reference(ref):
        np.testing.assert_allclose(self_attention(qkv, h).data, split(qkv).data,
                                   rtol=1e-12, atol=1e-14)
        assert gradcheck(lambda a: self_attention(a, h), qkv)
    with pytest.raises(ValueError, match=r"expected qkv \(B, T, 3·D\) with D a multiple of "
                                         r"3 heads, got \(2, 6, 35\)"):
        self_attention(Tensor(np.ones((2, 6, 35))), 3)


def test_four_terms_a_pass_round_as_one_term_a_pass():
    """The kernels add four terms to a partial sum per pass (one load and store of it
    for four products); the sums must stay those of one term a pass, to the bit: the
    character transformer's committed results were made that way."""
    from tinygrad_opt.ops.attention import add_four, add_four_by_four
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 8)).astype(np.float32)            # weights r_r[u]
    x = rng.standard_normal((8, 37)).astype(np.float32) * 1e3     # rows x_u
    one = rng.standard_normal((4, 37)).astype(np.float32)
    four = one.copy()
    for u in range(8):
        add_four(*one, *w[:, u], x[u], 37)
    for u in (0, 4):
        add_four_by_four(*four, *w, u, *x[u:u + 4], 37)
    assert np.array_equal(one, four)
