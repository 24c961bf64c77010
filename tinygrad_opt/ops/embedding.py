"""Embedding: the rows of a weight table picked by integer indices of any shape.

    forward:    out[p, :] = weight[idx[p], :]                  for every position p
    backward:   d weight[r, :] = sum of g[p, :] over the positions p with idx[p] = r

A row picked twice gets both gradients (the sum); rows never picked get zero. The numpy
reference adds with `np.add.at`, which handles repeats but is slow; the kernel is the
same sum, position by position in the same order (so the same bits), serial because two
positions may write one row.
"""
import numpy as np

from ..autograd import Function
from ..jit import jit, use_reference


def check_indices(indices, num_embeddings):
    """Integer indices, each in [0, num_embeddings); ValueError naming the first other."""
    indices = np.asarray(indices)
    if not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"embedding: indices must be integers, got dtype {indices.dtype}")
    bad = (indices < 0) | (indices >= num_embeddings)
    if bad.any():
        raise ValueError(f"embedding: index {int(indices[bad].reshape(-1)[0])} out of range "
                         f"for {num_embeddings} embeddings")
    return indices.astype(np.int64, copy=False)


def embedding_forward_reference(indices, weight):
    return weight[indices]


def embedding_backward_reference(indices, g, num_embeddings):
    gw = np.zeros((num_embeddings, g.shape[-1]), dtype=g.dtype)
    np.add.at(gw, indices.reshape(-1), g.reshape(-1, g.shape[-1]))
    return gw


def _backward_loops(indices, g, gw):
    for p in range(indices.size):
        row = indices[p]
        for j in range(g.shape[1]):
            gw[row, j] += g[p, j]


_backward_kernel = jit(_backward_loops)


class EmbeddingFn(Function):
    """Input: weight (num_embeddings, dim); option: indices (any shape, integers).
    Output: indices.shape + (dim,)."""

    @staticmethod
    def forward(ctx, weight, indices=None):
        if weight.ndim != 2:
            raise ValueError(f"embedding: weight must be (num_embeddings, dim), got shape "
                             f"{weight.shape}")
        indices = check_indices(indices, weight.shape[0])
        ctx.save_for_backward(indices, weight.shape[0])
        return embedding_forward_reference(indices, weight)

    @staticmethod
    def backward(ctx, g):
        indices, num = ctx.saved
        if use_reference():
            return embedding_backward_reference(indices, g, num)
        gw = np.zeros((num, g.shape[-1]), dtype=g.dtype)
        _backward_kernel(np.ascontiguousarray(indices.reshape(-1)),
                         np.ascontiguousarray(g.reshape(-1, g.shape[-1])), gw)
        return gw
