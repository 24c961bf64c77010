"""Functional forms of the layers: Tensors in, Tensor out."""
from ..ops.conv import Conv2DFn
from ..ops.dropout import DropoutFn
from ..ops.loss import SoftmaxCrossEntropyFn
from ..ops.pool import MaxPool2DFn
from ..tensor import Tensor


def conv2d(x, weight, bias, stride=1, padding=0, relu=False):
    """Shapes: x (N, C, H, W), weight (F, C, KH, KW), bias (F,) -> (N, F, OH, OW)."""
    return Conv2DFn.apply(x, weight, bias, stride=stride, padding=padding, relu=relu)


def max_pool2d(x, pool_size=2, stride=None):
    """Shapes: (N, C, H, W) -> (N, C, (H - k) // s + 1, (W - k) // s + 1)."""
    return MaxPool2DFn.apply(x, pool_size=pool_size, stride=stride)


def dropout(x, rate, key):
    """Inverted dropout with the counter-based mask of `key` (see ops/dropout.py)."""
    return DropoutFn.apply(x, rate=rate, key=key)


def softmax_cross_entropy(logits, labels):
    """Mean softmax cross-entropy of logits (N, K) against labels: integer class indices
    (N,) or one-hot (N, K). Its gradient is (softmax(logits) - onehot) / N.

    Raises:
        ValueError: logits not 2-D, labels of another length, a non-integer label or a
            label out of [0, K).
    """
    labels = labels.data if isinstance(labels, Tensor) else labels
    return SoftmaxCrossEntropyFn.apply(logits, labels=labels)
