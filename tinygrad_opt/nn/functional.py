"""Functional forms of the layers and the losses: Tensors in, Tensor out."""
import numpy as np

from ..ops.conv import Conv2DFn
from ..ops.dropout import DropoutFn
from ..ops.embedding import EmbeddingFn
from ..ops.gelu import GELUFn
from ..ops.layer_norm import LayerNormFn
from ..ops.attention import AttentionFn, SelfAttentionFn
from ..ops.loss import SoftmaxCrossEntropyFn, labels_to_onehot
from ..ops.matmul import TorchLinearFn
from ..ops.pool import AvgPool2DFn, MaxPool2DFn
from ..tensor import Tensor


def conv2d(x, weight, bias, stride=1, padding=0, relu=False):
    """Shapes: x (N, C, H, W), weight (F, C, KH, KW), bias (F,) -> (N, F, OH, OW)."""
    return Conv2DFn.apply(x, weight, bias, stride=stride, padding=padding, relu=relu)


def max_pool2d(x, pool_size=2, stride=None):
    """Shapes: (N, C, H, W) -> (N, C, (H - k) // s + 1, (W - k) // s + 1)."""
    return MaxPool2DFn.apply(x, pool_size=pool_size, stride=stride)


def avg_pool2d(x, pool_size=2, stride=None):
    """Shapes: (N, C, H, W) -> (N, C, (H - k) // s + 1, (W - k) // s + 1)."""
    return AvgPool2DFn.apply(x, pool_size=pool_size, stride=stride)


def linear(input, weight, bias=None):
    """PyTorch's linear: input @ weight.T + bias, weight (out, in), input (..., in) ->
    (..., out); one op, one 2-D product each way (ops/matmul.py, TorchLinearFn)."""
    if bias is None:
        return TorchLinearFn.apply(input, weight)
    return TorchLinearFn.apply(input, weight, bias)


def embedding(indices, weight):
    """The rows of weight (num_embeddings, dim) picked by integer `indices` (any shape):
    shape indices.shape + (dim,). An index out of range is an error naming it."""
    indices = indices.data if isinstance(indices, Tensor) else indices
    return EmbeddingFn.apply(weight, indices=indices)


def softmax(x, dim=-1):
    """exp(x) / sum(exp(x)) along `dim` (the last by default), from log_softmax."""
    return x.softmax(dim=dim)


def scaled_dot_product_attention(q, k, v, is_causal=False):
    """softmax(q·kᵀ / sqrt(head_dim), masked) · v, as PyTorch's function of this name:
    q (batch, heads, time, head_dim), k and v (batch, heads, time_k, head_dim); with
    is_causal, query i attends to keys j <= i only (PyTorch's top-left alignment).

    One op each way (ops/attention.py: the formulas, the numpy reference and the
    kernels, which keep a head's scores in cache and skip the masked half); it keeps
    the softmax P of every head for the backward pass and nothing else of the scores."""
    if q.ndim != 4:
        raise ValueError(f"scaled_dot_product_attention: expected q (B, H, T, D), k and v "
                         f"(B, H, S, D); got q {q.shape}, k {k.shape}, v {v.shape}")
    return AttentionFn.apply(q, k, v, is_causal=bool(is_causal))


def self_attention(qkv, n_heads, is_causal=True):
    """Multi-head attention of a fused projection qkv (batch, time, 3·d_model): the
    queries, keys and values side by side, each split into n_heads heads. The same as
    splitting qkv into q, k, v, each into heads (batch, n_heads, time, d_model /
    n_heads), `scaled_dot_product_attention` and joining the heads into (batch, time,
    d_model), without a copy of any of them (ops/attention.py, SelfAttentionFn)."""
    return SelfAttentionFn.apply(qkv, n_heads=int(n_heads), is_causal=bool(is_causal))


def gelu(x, approximate="none"):
    """GELU, x·Φ(x) with the exact erf ("none", PyTorch's default) or its tanh
    approximation ("tanh"): ops/gelu.py."""
    return GELUFn.apply(x, approximate=approximate)


def layer_norm(x, weight, bias, eps=1e-5):
    """Layer normalisation over the last axis (ops/layer_norm.py), PyTorch's definition:
    x (..., D), weight and bias (D,)."""
    return LayerNormFn.apply(x, weight, bias, eps=eps)


def dropout(x, rate, key):
    """Inverted dropout with the counter-based mask of `key` (see ops/dropout.py)."""
    return DropoutFn.apply(x, rate=rate, key=key)


def softmax_cross_entropy(logits, labels, label_smoothing=0.0, reduction="mean"):
    """Softmax cross-entropy of logits (N, K) against labels: integer class indices (N,)
    or one-hot (N, K). With label_smoothing e, the target is (1 - e) onehot + e / K.
    The plain mean (e = 0) is one fused op: its gradient is (softmax(logits) - onehot) / N.

    Args:
        reduction: "mean" (the default), "sum" or "none" (one loss per sample).
    Raises:
        ValueError: logits not 2-D, labels of another length, a non-integer label or a
            label out of [0, K); label_smoothing outside [0, 1]; an unknown reduction.
    """
    labels = labels.data if isinstance(labels, Tensor) else labels
    if logits.ndim == 2 and logits.shape[1] == 1:
        raise ValueError("softmax_cross_entropy over 1 class is 0 whatever the logits "
                         "(got logits of shape (N, 1)); a one-output model wants mse or "
                         "binary_cross_entropy_with_logits")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    if label_smoothing == 0.0 and reduction == "mean":
        return SoftmaxCrossEntropyFn.apply(logits, labels=labels)
    k = logits.shape[1]
    target = labels_to_onehot(np.asarray(labels), logits.shape[0], k, logits.dtype)
    target = target * (1.0 - label_smoothing) + label_smoothing / k
    return _reduce(-(logits.log_softmax(axis=1) * target).sum(axis=1), reduction)


def cross_entropy(input, target, label_smoothing=0.0, reduction="mean"):
    """PyTorch's name for `softmax_cross_entropy` (logits, then class indices or one-hot
    targets)."""
    return softmax_cross_entropy(input, target, label_smoothing=label_smoothing,
                                 reduction=reduction)


def mse(prediction, target, reduction="mean"):
    """Mean squared error: mean of (prediction - target)² over every element."""
    difference = prediction - _tensor(target, prediction, "mse")
    return _reduce(difference * difference, reduction)


def binary_cross_entropy_with_logits(logits, targets, reduction="mean"):
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], computed from
    the logits as max(z, 0) - z·y + log(1 + exp(-|z|)): finite at logits of ±100 and
    beyond, where log(sigmoid(z)) would give -inf."""
    y = _tensor(targets, logits, "binary_cross_entropy_with_logits")
    return _reduce(logits.relu() - logits * y + ((-logits.abs()).exp() + 1.0).log(),
                   reduction)


def _tensor(value, like, loss):
    """The target as a Tensor of like's dtype; refused when broadcasting it would change
    the prediction's shape (targets (64,) against outputs (64, 1) make a (64, 64) loss)."""
    target = value if isinstance(value, Tensor) else Tensor(value, dtype=like.dtype)
    try:
        fits = np.broadcast_shapes(like.shape, target.shape) == like.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{loss}: target of shape {target.shape} against a prediction of "
                         f"shape {like.shape}; give the target the prediction's shape")
    return target


def _reduce(losses, reduction):
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
