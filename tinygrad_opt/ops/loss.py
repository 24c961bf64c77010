"""Softmax cross-entropy, fused and numerically stable (log-sum-exp):

    loss = mean_n [ -sum_k y_nk log softmax(z_n)_k ]
         = mean_n [ s_n logsumexp(z_n) - sum_k y_nk z_nk ],     s_n = sum_k y_nk
    d loss / d z = (softmax(z)·s_n - y) / N

with y one-hot (or given as integer class indices: s_n = 1), or any soft targets, whose
rows need not sum to 1 (PyTorch's definition for class probabilities)."""
import numpy as np

from ..autograd import Function


def labels_to_onehot(labels, n, k, dtype):
    """Validate labels for N = n rows of K = k classes; return them one-hot (N, K)."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        if labels.shape != (n, k):
            raise ValueError(f"one-hot labels must have shape ({n}, {k}), got {labels.shape}")
        return labels.astype(dtype, copy=False)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"labels must be {n} class indices, shape ({n},), or one-hot of "
                         f"shape ({n}, {k}); got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.issubdtype(labels.dtype, np.floating) or np.any(labels != np.round(labels)):
            bad = labels[np.flatnonzero(labels != np.round(labels))[:1]] if \
                np.issubdtype(labels.dtype, np.floating) else labels[:1]
            raise ValueError(f"labels must be integer class indices in [0, {k}), got "
                             f"{bad[0].item()!r} (dtype {labels.dtype})")
        labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        bad = labels[(labels < 0) | (labels >= k)][0]
        raise ValueError(f"label {bad} out of range: expected class indices in [0, {k})")
    onehot = np.zeros((n, k), dtype=dtype)
    onehot[np.arange(n), labels] = 1
    return onehot


class SoftmaxCrossEntropyFn(Function):
    @staticmethod
    def forward(ctx, logits, labels):
        if logits.ndim != 2:
            raise ValueError(f"softmax_cross_entropy expected logits of shape (N, K), "
                             f"got {logits.shape}")
        n, k = logits.shape
        if k == 1:
            raise ValueError("softmax_cross_entropy over 1 class is 0 whatever the logits "
                             "(got logits of shape (N, 1)); a one-output model wants mse or "
                             "binary_cross_entropy_with_logits")
        y = labels_to_onehot(labels, n, k, logits.dtype)
        shifted = logits - logits.max(axis=1, keepdims=True)     # stability: max is 0
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
        log_probs = shifted - np.log(sum_exp)
        ctx.save_for_backward(exp / sum_exp, y)
        return np.asarray(-(y * log_probs).sum() / n, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, g):
        probs, y = ctx.saved
        return (probs * y.sum(axis=1, keepdims=True) - y) * (g / probs.shape[0])
