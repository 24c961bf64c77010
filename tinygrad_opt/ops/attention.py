"""Scaled dot-product attention (Vaswani et al. 2017), one op each way, for q (B, H, T, D)
and k, v (B, H, S, D), per head of each sample:

    scores = q · kᵀ · c                  c = 1 / sqrt(D)              (T, S) per head
    P = softmax(scores) along S          (causal: scores[i, j] = -inf for j > i, so
                                          that position i attends to positions <= i,
                                          PyTorch's is_causal, aligned at the top left)
    out = P · v

and backward, with g the gradient of out:

    d v = Pᵀ · g
    d P = g · vᵀ
    d scores = P ⊙ (d P - rowsum(d P ⊙ P))       (softmax's backward, row by row)
    d q = d scores · k · c                d k = d scoresᵀ · q · c

The op keeps P (T x S per head) for the backward pass and nothing else of the scores.
The reference computes each line with numpy's batched products. The kernels run one
head per thread (heads in parallel: each writes only its own outputs), copy the head
into contiguous rows (the heads may be views of one fused projection: SelfAttentionFn),
take the queries four rows at a time (each key and value read serves four rows), add
four terms to each partial sum per pass (one load and store of it serves four products;
the terms are still added one after another, so the sums round as one term a pass
would), and keep a block's scores in cache between its products, its softmax and its
P · v; under a causal mask they skip the masked half of every product. Their sums run
in another order than BLAS's, so the two paths agree to rounding, not bit for bit
(tests/test_kernels.py); NaN and inf come out where the reference's products put them.
"""
import numpy as np

from ..autograd import Function
from ..jit import jit, prange, serial_or_parallel, use_reference
from .vecmath import exp32


def attention_reference(q, k, v, causal):
    """(out, P) in numpy, one line per formula line."""
    scores = q @ np.swapaxes(k, -1, -2) * q.dtype.type(1 / np.sqrt(q.shape[-1]))
    if causal:
        scores = np.where(causal_mask(q.shape[-2], k.shape[-2]), scores, -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    return p @ v, p


def attention_backward_reference(g, q, k, v, p):
    """(d q, d k, d v)."""
    c = q.dtype.type(1 / np.sqrt(q.shape[-1]))
    dv = np.swapaxes(p, -1, -2) @ g
    dp = g @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    return ds @ k * c, np.swapaxes(ds, -1, -2) @ q * c, dv


def causal_mask(t, s):
    """True where query i may attend to key j: j <= i (PyTorch's top-left alignment)."""
    return np.tril(np.ones((t, s), dtype=bool))


def _all_finite(a):
    """True when every element of `a` (a head's (T, D) rows) is finite: x - x is 0 only
    for a finite x."""
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            if a[i, j] - a[i, j] != 0:
                return False
    return True


_finite = jit(_all_finite, inline=True)


def _row_max(x, n):
    """max of x[:n] in eight interleaved lanes: eight independent comparisons a round,
    which the processor overlaps (one running maximum waits for each comparison)."""
    m = np.full(8, -np.inf, dtype=x.dtype)
    j = 0
    while j + 8 <= n:
        for u in range(8):
            m[u] = max(m[u], x[j + u])
        j += 8
    top = -np.inf
    for u in range(8):
        top = max(top, m[u])
    for i in range(j, n):
        top = max(top, x[i])
    return top


def _row_dot(x, y, n):
    """sum of x[:n]·y[:n] in eight interleaved lanes, as _row_max (an order of the sum
    of its own: the reference's numpy sums pairwise)."""
    acc = np.zeros(8, dtype=x.dtype)
    j = 0
    while j + 8 <= n:
        for u in range(8):
            acc[u] += x[j + u] * y[j + u]
        j += 8
    total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
    for i in range(j, n):
        total += x[i] * y[i]
    return total


def _add_four(o0, o1, o2, o3, w0, w1, w2, w3, x, n):
    """o_r[:n] += w_r · x[:n] for four rows r: one read of x serves four rows (the
    products of a block of four query rows)."""
    for j in range(n):
        xj = x[j]
        o0[j] += w0 * xj
        o1[j] += w1 * xj
        o2[j] += w2 * xj
        o3[j] += w3 * xj


def _add_four_by_four(o0, o1, o2, o3, r0, r1, r2, r3, u, x0, x1, x2, x3, n):
    """Four steps of _add_four at once, weights r_r[u..u+3] against rows x0..x3:
    o_r[:n] += r_r[u]·x0 + r_r[u+1]·x1 + r_r[u+2]·x2 + r_r[u+3]·x3, added one after the
    other, left to right, so each sum is rounded exactly as four calls of _add_four
    round it. One load and store of o_r serves four products instead of one."""
    a0, a1, a2, a3 = r0[u], r0[u + 1], r0[u + 2], r0[u + 3]
    b0, b1, b2, b3 = r1[u], r1[u + 1], r1[u + 2], r1[u + 3]
    c0, c1, c2, c3 = r2[u], r2[u + 1], r2[u + 2], r2[u + 3]
    e0, e1, e2, e3 = r3[u], r3[u + 1], r3[u + 2], r3[u + 3]
    for j in range(n):
        y0, y1, y2, y3 = x0[j], x1[j], x2[j], x3[j]
        o0[j] = (((o0[j] + a0 * y0) + a1 * y1) + a2 * y2) + a3 * y3
        o1[j] = (((o1[j] + b0 * y0) + b1 * y1) + b2 * y2) + b3 * y3
        o2[j] = (((o2[j] + c0 * y0) + c1 * y1) + c2 * y2) + c3 * y3
        o3[j] = (((o3[j] + e0 * y0) + e1 * y1) + e2 * y2) + e3 * y3


add_four = jit(_add_four, inline=True)
add_four_by_four = jit(_add_four_by_four, inline=True)
row_max = jit(_row_max, inline=True)
row_dot = jit(_row_dot, inline=True)


def _forward_loops(q, k, v, causal, c, out, p, float32):
    """Queries in blocks of four rows: each key and value read serves four rows."""
    batch, heads, t, d = q.shape
    s = k.shape[2]
    for n in prange(batch * heads):
        b, h = n // heads, n % heads
        qn, kn, vn, on = q[b, h], k[b, h], v[b, h], out[b, h]
        # Each head copied out of wherever it lies (a view of the fused projection):
        # the loops below then run over contiguous rows, which LLVM vectorises.
        kt = np.ascontiguousarray(kn.T)                 # (D, S): rows run along keys
        vc = np.ascontiguousarray(vn)
        qp = np.zeros((t + 3, d), dtype=q.dtype)        # q, padded to whole blocks
        qp[:t] = qn
        scores = np.empty((4, s), dtype=q.dtype)
        ones = np.ones(s, dtype=q.dtype)
        zeros = np.zeros(s, dtype=q.dtype)                # the rows past a last block
        o = np.empty((4, d), dtype=q.dtype)
        # The reference multiplies every value by its P, 0 where masked: an inf or NaN
        # value then gives NaN (0 * inf) even where masked, so the kernel reads masked
        # values too when a value of this head is not finite.
        read_masked = causal and not _finite(vn)
        for i0 in range(0, t, 4):
            rows = min(4, t - i0)
            seen = min(i0 + 4, s) if causal else s      # keys the block's rows may see
            scores[:, :seen] = 0
            s0, s1, s2, s3 = scores[0], scores[1], scores[2], scores[3]
            q0, q1, q2, q3 = qp[i0], qp[i0 + 1], qp[i0 + 2], qp[i0 + 3]
            for a in range(0, d - 3, 4):                # scores = q · kᵀ, four rows
                add_four_by_four(s0, s1, s2, s3, q0, q1, q2, q3, a,
                                 kt[a], kt[a + 1], kt[a + 2], kt[a + 3], seen)
            for a in range(d - d % 4, d):
                add_four(s0, s1, s2, s3, q0[a], q1[a], q2[a], q3[a], kt[a], seen)
            any_nan = False
            for r in range(rows):                       # softmax, row by row
                row, sr = p[n, i0 + r], scores[r]
                own = min(i0 + r + 1, s) if causal else s
                for j in range(own):
                    row[j] = sr[j] * c
                top = row_max(row, own)
                for j in range(own):
                    row[j] = exp32(row[j] - top) if float32 else np.exp(row[j] - top)
                total = row_dot(row, ones, own)
                for j in range(own, s):
                    row[j] = 0
                if total != total or top != top:        # a NaN or inf score, as numpy:
                    any_nan = True                      # the whole row NaN
                    for j in range(s):
                        row[j] = np.nan
                else:
                    for j in range(own):
                        row[j] = row[j] / total
            o[:] = 0
            o0, o1, o2, o3 = o[0], o[1], o[2], o[3]
            p0 = p[n, i0]
            p1 = p[n, i0 + 1] if rows > 1 else zeros
            p2 = p[n, i0 + 2] if rows > 2 else zeros
            p3 = p[n, i0 + 3] if rows > 3 else zeros
            keys = s if read_masked or any_nan else seen
            for j in range(0, keys - 3, 4):             # out = P · v
                add_four_by_four(o0, o1, o2, o3, p0, p1, p2, p3, j,
                                 vc[j], vc[j + 1], vc[j + 2], vc[j + 3], d)
            for j in range(keys - keys % 4, keys):
                add_four(o0, o1, o2, o3, p0[j], p1[j], p2[j], p3[j], vc[j], d)
            for r in range(rows):
                for a in range(d):
                    on[i0 + r, a] = o[r, a]


def _backward_loops(g, q, k, v, p, causal, c, dq, dk, dv):
    """Queries in blocks of four rows, as the forward pass."""
    batch, heads, t, d = q.shape
    s = k.shape[2]
    for n in prange(batch * heads):
        b, h = n // heads, n % heads
        gn, qn, kn, vn = g[b, h], q[b, h], k[b, h], v[b, h]
        dqn, dkn, dvn = dq[b, h], dk[b, h], dv[b, h]
        vt = np.ascontiguousarray(vn.T)                 # (D, S); contiguous copies, as
        kc = np.ascontiguousarray(kn)                   # in the forward pass
        dkc = np.zeros((s, d), dtype=q.dtype)
        dvc = np.zeros((s, d), dtype=q.dtype)
        qp = np.zeros((t + 3, d), dtype=q.dtype)        # q and g, padded to whole blocks
        qp[:t] = qn
        gp = np.zeros((t + 3, d), dtype=q.dtype)
        gp[:t] = gn
        zeros = np.zeros(s, dtype=q.dtype)                # the rows past a last block
        ds = np.empty((4, s), dtype=q.dtype)
        dqb = np.empty((4, d), dtype=q.dtype)
        # As in the forward pass: the reference's products read the masked entries (as
        # zeros of P), which matters only when something is not finite.
        read_masked = causal and not (_finite(gn) and _finite(qn) and _finite(kn)
                                      and _finite(vn))
        for i0 in range(0, t, 4):
            rows = min(4, t - i0)
            p0 = p[n, i0]
            p1 = p[n, i0 + 1] if rows > 1 else zeros
            p2 = p[n, i0 + 2] if rows > 2 else zeros
            p3 = p[n, i0 + 3] if rows > 3 else zeros
            nan_row = p0[0] != p0[0] or p1[0] != p1[0] or p2[0] != p2[0] or p3[0] != p3[0]
            seen = s if read_masked or nan_row or not causal else min(i0 + 4, s)
            g0, g1, g2, g3 = gp[i0], gp[i0 + 1], gp[i0 + 2], gp[i0 + 3]
            q0, q1, q2, q3 = qp[i0], qp[i0 + 1], qp[i0 + 2], qp[i0 + 3]
            for j in range(seen):                       # d v += Pᵀ · g, four rows
                w0, w1, w2, w3 = p0[j], p1[j], p2[j], p3[j]
                for a in range(d):
                    dvc[j, a] += w0 * g0[a] + w1 * g1[a] + w2 * g2[a] + w3 * g3[a]
            ds[:, :seen] = 0
            d0, d1, d2, d3 = ds[0], ds[1], ds[2], ds[3]
            for a in range(0, d - 3, 4):                # d P = g · vᵀ, four rows
                add_four_by_four(d0, d1, d2, d3, g0, g1, g2, g3, a,
                                 vt[a], vt[a + 1], vt[a + 2], vt[a + 3], seen)
            for a in range(d - d % 4, d):
                add_four(d0, d1, d2, d3, g0[a], g1[a], g2[a], g3[a], vt[a], seen)
            for r in range(4):                          # d scores, row by row
                row, dr = (p0, p1, p2, p3)[r], ds[r]
                dot = row_dot(dr, row, seen)
                for j in range(seen):
                    dr[j] = row[j] * (dr[j] - dot)
            dqb[:] = 0
            e0, e1, e2, e3 = dqb[0], dqb[1], dqb[2], dqb[3]
            for j in range(0, seen - 3, 4):             # d q = d scores · k
                add_four_by_four(e0, e1, e2, e3, d0, d1, d2, d3, j,
                                 kc[j], kc[j + 1], kc[j + 2], kc[j + 3], d)
            for j in range(seen - seen % 4, seen):
                add_four(e0, e1, e2, e3, d0[j], d1[j], d2[j], d3[j], kc[j], d)
            for j in range(seen):                       # d k += d scoresᵀ · q
                w0, w1, w2, w3 = d0[j], d1[j], d2[j], d3[j]
                for a in range(d):
                    dkc[j, a] += w0 * q0[a] + w1 * q1[a] + w2 * q2[a] + w3 * q3[a]
            for r in range(rows):
                for a in range(d):
                    dqn[i0 + r, a] = dqb[r, a] * c
        for j in range(s):
            for a in range(d):
                dkn[j, a] = dkc[j, a] * c
                dvn[j, a] = dvc[j, a]


_forward_kernel = serial_or_parallel(_forward_loops, parallel_from=1 << 12)
_backward_kernel = serial_or_parallel(_backward_loops, parallel_from=1 << 12)


def check_attention(q_shape, k_shape, v_shape):
    if len(q_shape) < 3 or len(k_shape) != len(q_shape) or k_shape != v_shape \
            or q_shape[-1] != k_shape[-1] or q_shape[:-2] != k_shape[:-2] \
            or k_shape[-2] < 1:
        raise ValueError(f"scaled_dot_product_attention: expected q (B, H, T, D), k and v "
                         f"(B, H, S, D); got q {q_shape}, k {k_shape}, v {v_shape}")


def _attention(q, k, v, causal, out):
    """Forward through the reference or the kernel, q, k, v (B, H, T, D) views of any
    layout, into out (B, H, T, D); returns P (B·H, T, S)."""
    if use_reference():
        out[...], p = attention_reference(q, k, v, causal)
        return p.reshape(-1, *p.shape[-2:])
    p = np.empty((q.shape[0] * q.shape[1], q.shape[2], k.shape[2]), dtype=q.dtype)
    _forward_kernel(q, k, v, causal, q.dtype.type(1 / np.sqrt(q.shape[-1])), out, p,
                    q.dtype == np.float32)
    return p


def _attention_backward(g, q, k, v, p, causal, dq, dk, dv):
    """Backward into dq, dk, dv (views of any layout)."""
    if use_reference():
        dq[...], dk[...], dv[...] = attention_backward_reference(
            g, q, k, v, p.reshape(q.shape[:2] + p.shape[1:]))
    else:
        _backward_kernel(g, q, k, v, p, causal, q.dtype.type(1 / np.sqrt(q.shape[-1])),
                         dq, dk, dv)


def _heads_last(shape, dtype):
    """An empty (B, H, T, D) array laid out as (B, T, H, D): joining its heads again,
    transpose(1, 2).reshape(B, T, H·D), is then a view, not a copy."""
    b, h, t, d = shape
    return np.empty((b, t, h, d), dtype=dtype).transpose(0, 2, 1, 3)


class AttentionFn(Function):
    """Inputs q (B, H, T, D), k and v (B, H, S, D), of any memory layout (the heads'
    views of one projection are read where they lie); option is_causal. Output
    (B, H, T, D), laid out so that joining the heads is a view."""

    @staticmethod
    def forward(ctx, q, k, v, is_causal=False):
        check_attention(q.shape, k.shape, v.shape)
        lead = q.shape[:-2]
        q, k, v = (a.reshape((-1, 1) + a.shape[-2:]) if a.ndim != 4 else a
                   for a in (q, k, v))
        k, v = k.astype(q.dtype, copy=False), v.astype(q.dtype, copy=False)
        out = _heads_last(q.shape, q.dtype)
        p = _attention(q, k, v, bool(is_causal), out)
        ctx.save_for_backward(q, k, v, p, bool(is_causal), lead)
        return out.reshape(lead + q.shape[-2:]) if len(lead) != 2 else out

    @staticmethod
    def backward(ctx, g):
        q, k, v, p, causal, lead = ctx.saved
        g = g.astype(q.dtype, copy=False).reshape(q.shape)
        dq, dk, dv = (_heads_last(a.shape, q.dtype) for a in (q, k, v))
        _attention_backward(g, q, k, v, p, causal, dq, dk, dv)
        return tuple(a.reshape(lead + a.shape[-2:]) for a in (dq, dk, dv))


class SelfAttentionFn(Function):
    """Attention of a fused projection, as nn.CausalSelfAttention makes it: input qkv
    (B, T, 3·D), the queries, keys and values of n_heads heads side by side; output
    (B, T, D), the heads joined. The same kernels read each head where it lies in qkv
    and write its gradient into one (B, T, 3·D) array: no split, no copy of a head."""

    @staticmethod
    def forward(ctx, qkv, n_heads=1, is_causal=True):
        if qkv.ndim != 3 or qkv.shape[2] % (3 * n_heads):
            raise ValueError(f"self-attention: expected qkv (B, T, 3·D) with D a multiple "
                             f"of {n_heads} heads, got {qkv.shape}")
        b, t, three_d = qkv.shape
        q, k, v = _split_heads(qkv, n_heads)
        out = _heads_last(q.shape, qkv.dtype)
        p = _attention(q, k, v, bool(is_causal), out)
        ctx.save_for_backward(qkv, p, n_heads, bool(is_causal))
        return out.transpose(0, 2, 1, 3).reshape(b, t, three_d // 3)

    @staticmethod
    def backward(ctx, g):
        qkv, p, n_heads, causal = ctx.saved
        b, t, three_d = qkv.shape
        q, k, v = _split_heads(qkv, n_heads)
        g = g.astype(qkv.dtype, copy=False).reshape(b, t, n_heads, -1).transpose(0, 2, 1, 3)
        dqkv = np.empty_like(qkv)
        _attention_backward(g, q, k, v, p, causal, *_split_heads(dqkv, n_heads))
        return dqkv


def _split_heads(qkv, n_heads):
    """Views q, k, v (B, H, T, D) of qkv (B, T, 3·H·D)."""
    b, t, three_d = qkv.shape
    parts = qkv.reshape(b, t, 3, n_heads, three_d // (3 * n_heads)).transpose(2, 0, 3, 1, 4)
    return parts[0], parts[1], parts[2]
