"""The layers of the article's model (Keras names), layout NCHW everywhere."""
import numpy as np

from ..ops.conv import pair
from ..ops.dropout import dropout_key
from ..ops.fused import ConvPoolDropoutFn
from ..ops.fused_norm import BatchNormReluPoolFn
from ..ops.matmul import LinearFn
from ..ops.movement import DilateFn
from ..ops.norm import BatchNormFn, batch_stats
from ..tensor import Tensor, where
from . import functional as F
from .init import as_generator, default_seed, initializer
from .module import Module


def _param(array):
    return Tensor(array, requires_grad=True, dtype=array.dtype)


class Conv2D(Module):
    """2-D convolution with an optional fused relu (Keras' `activation='relu'`).

    Args:
        in_channels, out_channels, kernel_size (int or (KH, KW)), stride.
        padding: zeros around the input: "valid" (none, the default 0), "same" (the
            output keeps the input's size; stride 1, odd kernels), an int, or (rows,
            columns).
        activation: None or "relu" (fused into the kernel).
        rng: seed or numpy Generator for the kernel (None: the shared generator of
            `tinygrad_opt.manual_seed`); the bias starts at 0.
        dilation: the spacing of the kernel's taps (1: adjacent); a dilated kernel is run
            as the plain convolution with zeros between its taps.
        init: the kernel's initialiser (nn/init.py): glorot_uniform (Keras', the
            default), glorot_normal, he_uniform, he_normal (or xavier_*, kaiming_*).
    Shapes: input (N, in_channels, H, W) -> (N, out_channels, OH, OW),
        OH = (H + 2 padding_rows - KH) // stride + 1, and OW likewise.
    Attributes: weight (out_channels, in_channels, KH, KW), bias (out_channels,).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 activation=None, rng=None, dtype=np.float32, init="glorot_uniform",
                 dilation=1):
        kh, kw = pair(kernel_size)
        if dilation < 1:
            raise ValueError(f"Conv2D needs dilation >= 1, got {dilation}")
        self.dilation = dilation
        kh_seen, kw_seen = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
        if activation not in (None, "relu"):
            raise ValueError(f"Conv2D activation must be None or 'relu', got {activation!r}")
        if padding == "valid":
            padding = 0
        elif padding == "same":             # output size = input size (stride 1)
            if stride != 1 or kh % 2 == 0 or kw % 2 == 0:
                raise ValueError(f"Conv2D padding='same' needs stride 1 and an odd kernel "
                                 f"size, got stride {stride}, kernel {kh}x{kw}")
            padding = ((kh_seen - 1) // 2, (kw_seen - 1) // 2)
        padding = pair(padding) if not isinstance(padding, str) else padding
        if stride < 1 or isinstance(padding, str) or min(padding) < 0:
            raise ValueError(f"Conv2D needs stride >= 1 and padding 'same', 'valid', an int "
                             f">= 0 or (rows, columns), got stride {stride}, padding "
                             f"{padding!r}")
        fan_in, fan_out = in_channels * kh * kw, out_channels * kh * kw
        self.weight = _param(initializer(init)((out_channels, in_channels, kh, kw), fan_in,
                                               fan_out, as_generator(rng), dtype))
        self.bias = _param(np.zeros(out_channels, dtype=dtype))
        self.stride, self.padding, self.activation = stride, padding, activation

    def forward(self, x):
        w = self.weight if self.dilation == 1 else DilateFn.apply(self.weight,
                                                                  dilation=self.dilation)
        return F.conv2d(x, w, self.bias, self.stride, self.padding,
                        relu=self.activation == "relu")

    def extra_repr(self):
        f, c, kh, kw = self.weight.shape
        return (f"{c}, {f}, kernel_size=({kh}, {kw}), stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, "
                f"activation={self.activation}")


class _Pool2D(Module):
    """What the two poolings share: the window, the stride, their checks. `kernel_size`
    is PyTorch's name for Keras' `pool_size`."""

    def __init__(self, pool_size=None, stride=None, kernel_size=None):
        name = type(self).__name__
        if kernel_size is not None:
            if pool_size is not None and pool_size != kernel_size:
                raise ValueError(f"{name}: pool_size={pool_size} and kernel_size="
                                 f"{kernel_size} disagree; give one")
            pool_size = kernel_size
        pool_size = 2 if pool_size is None else pool_size
        if pool_size < 1 or (stride is not None and stride < 1):
            raise ValueError(f"{name} needs pool_size >= 1 and stride >= 1, got "
                             f"{pool_size}, {stride}")
        self.pool_size, self.stride = pool_size, stride

    def extra_repr(self):
        return f"pool_size={self.pool_size}, stride={self.stride or self.pool_size}"


class MaxPool2D(_Pool2D):
    """Max pooling over pool_size x pool_size windows every `stride` (default pool_size).
    Shapes: (N, C, H, W) -> (N, C, (H - k) // s + 1, (W - k) // s + 1)."""

    def forward(self, x):
        return F.max_pool2d(x, self.pool_size, self.stride)


class AvgPool2D(_Pool2D):
    """Average pooling over pool_size x pool_size windows every `stride` (default
    pool_size). Shapes: as MaxPool2D's."""

    def forward(self, x):
        return F.avg_pool2d(x, self.pool_size, self.stride)


class GlobalAvgPool2D(Module):
    """The mean of each channel over all its pixels. Shapes: (N, C, H, W) -> (N, C)."""

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"GlobalAvgPool2D expected input of shape (N, C, H, W), got "
                             f"{x.shape}")
        return x.mean(axis=(2, 3))


class _BatchNorm(Module):
    """Batch normalisation (Ioffe & Szegedy 2015), PyTorch's conventions: in training,
    each feature is normalised with the batch's mean and (biased) variance, and running
    estimates move by `momentum` toward the batch's mean and unbiased variance; in eval
    mode, the running estimates normalise. Then a learned scale (weight, ones) and shift
    (bias, zeros). One op forward and back (ops/norm.py: its formulas, a numpy reference
    and Numba kernels)."""

    axes = ()           # the axes averaged over, besides the batch axis

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32):
        self.num_features, self.eps, self.momentum = num_features, float(eps), float(momentum)
        self.weight = _param(np.ones(num_features, dtype=dtype))
        self.bias = _param(np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_var", np.ones(num_features, dtype=dtype))

    def statistics(self, x):
        """(mean, var) that normalise x: in training the batch's (the running estimates
        move toward them), in eval mode the running estimates. Checks x's shape."""
        axes = (0,) + self.axes
        if x.ndim != len(axes) + 1 or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__} expected input of shape (N, "
                             f"{self.num_features}{', H, W' if self.axes else ''}), got "
                             f"{x.shape}")
        if not self.training:
            return self.running_mean, self.running_var
        count = x.size // self.num_features
        if count < 2:
            raise ValueError(f"{type(self).__name__} in training needs more than one "
                             f"value per feature, got input of shape {x.shape}")
        mean, var = batch_stats(x.data)
        m = self.momentum
        self.running_mean[...] = (1 - m) * self.running_mean + m * mean
        self.running_var[...] = (1 - m) * self.running_var + m * var * count / (count - 1)
        return mean, var

    def forward(self, x):
        mean, var = self.statistics(x)
        return BatchNormFn.apply(x, self.weight, self.bias, mean=mean, var=var,
                                 training=self.training, eps=self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1D(_BatchNorm):
    """Batch normalisation of (N, C) inputs, per feature C."""


class BatchNorm2D(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, per channel C (over N, H and W)."""

    axes = (2, 3)


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability `rate` and scale
    the rest by 1 / (1 - rate); in eval mode, the identity.

    The mask of the k-th training call is a pure function of (seed, k): the layer keeps
    both in its buffer `rng` (saved by `state_dict`), so runs are reproducible and a
    checkpoint resumes with the same masks. `reseed(seed)` restarts the sequence. Without
    a seed, one is drawn from the shared generator (`tinygrad_opt.manual_seed`).
    """

    def __init__(self, rate, seed=None):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        seed = default_seed() if seed is None else seed   # None: two layers, two masks
        self.register_buffer("rng", np.array([seed, 0], dtype=np.uint64))  # seed, calls

    def _reseed(self, seed):
        self.rng[:] = (seed, 0)

    def next_key(self):
        """The mask key of this training call; advances the call counter."""
        key = dropout_key(self.rng[0], self.rng[1])
        self.rng[1] += np.uint64(1)
        return key

    def forward(self, x):
        if not self.training or self.rate == 0.0:
            return x
        return F.dropout(x, self.rate, self.next_key())

    def extra_repr(self):
        return f"rate={self.rate}"


class Flatten(Module):
    """Shapes: (N, d1, d2, ...) -> (N, d1 * d2 * ...)."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1)   # (N, C, H, W) -> (N, C*H*W)


class Dense(Module):
    """Fully connected layer: y = x @ weight + bias (weight stored (in, out), as Keras).

    Shapes: (N, in_features) -> (N, out_features). The weight Tensor carries
    `in_out = True`, so that a rule that cares which axis is the output (Muon's scale)
    reads it as PyTorch's Linear (out, in) weight.
    """

    def __init__(self, in_features, out_features, rng=None, dtype=np.float32,
                 init="glorot_uniform"):
        self.weight = _param(initializer(init)((in_features, out_features), in_features,
                                               out_features, as_generator(rng), dtype))
        self.weight.in_out = True
        self.bias = _param(np.zeros(out_features, dtype=dtype))

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.weight.shape[0]:
            raise ValueError(f"Dense expected input of shape (N, {self.weight.shape[0]}), "
                             f"got {x.shape}")
        return LinearFn.apply(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}"


class Embedding(Module):
    """A table of num_embeddings vectors of embedding_dim, looked up by integer indices
    (PyTorch's name and its initialisation: N(0, 1), drawn from `rng`, or from the
    generator of `tinygrad_opt.manual_seed`). Shapes: indices (...) -> (..., dim)."""

    def __init__(self, num_embeddings, embedding_dim, rng=None, dtype=np.float32):
        self.weight = _param(as_generator(rng).standard_normal(
            (num_embeddings, embedding_dim)).astype(dtype))

    def forward(self, indices):
        return F.embedding(indices, self.weight)

    def extra_repr(self):
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}"


class GELU(Module):
    """GELU, elementwise: approximate="none" (erf, PyTorch's default) or "tanh"."""

    def __init__(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got "
                             f"{approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)


class LayerNorm(Module):
    """Layer normalisation over the last axis (PyTorch's LayerNorm for an int or a
    one-element normalized_shape): weight (ones) and bias (zeros) of that size."""

    def __init__(self, normalized_shape, eps=1e-5, dtype=np.float32):
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(
            normalized_shape)
        if len(shape) != 1 or not shape[0] >= 1:
            raise ValueError(f"LayerNorm normalises the last axis: normalized_shape must "
                             f"be one size, got {normalized_shape!r}")
        self.eps = eps
        self.weight = _param(np.ones(shape, dtype=dtype))
        self.bias = _param(np.zeros(shape, dtype=dtype))

    def forward(self, x):
        return F.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.weight.shape[0]}, eps={self.eps:g}"


class Linear(Module):
    """PyTorch's fully connected layer: y = x @ weight.T + bias, weight stored (out, in)
    as PyTorch stores it (Dense stores (in, out), as Keras does).

    Both start as PyTorch's do, uniform in ±1/sqrt(in_features), drawn from `rng` (None:
    the generator of `tinygrad_opt.manual_seed`). bias=False: no bias.
    Shapes: (..., in_features) -> (..., out_features), any leading axes.
    """

    def __init__(self, in_features, out_features, bias=True, rng=None, dtype=np.float32):
        rng = as_generator(rng)
        bound = 1 / np.sqrt(in_features)
        self.weight = _param(rng.uniform(-bound, bound, (out_features, in_features))
                             .astype(dtype))
        self.bias = (_param(rng.uniform(-bound, bound, out_features).astype(dtype))
                     if bias else None)

    def forward(self, x):
        if x.ndim < 1 or x.shape[-1] != self.weight.shape[1]:
            raise ValueError(f"Linear expected input of shape (..., {self.weight.shape[1]}), "
                             f"got {x.shape}")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}, "
                f"bias={self.bias is not None}")


class CausalSelfAttention(Module):
    """Multi-head causal self-attention, nanoGPT's block: one Linear projects x (batch,
    time, d_model) to queries, keys and values of n_heads heads of d_model / n_heads;
    scaled dot-product attention over each head (position t sees positions <= t), read
    from the projection where each head lies (`functional.self_attention`); the heads,
    joined, are projected by a second Linear; dropout on the output.
    Weights drawn from `rng` (a seed or a Generator; None: `tinygrad_opt.manual_seed`'s)."""

    def __init__(self, d_model, n_heads, dropout=0.0, rng=None, dtype=np.float32):
        if n_heads < 1 or d_model % n_heads:
            raise ValueError(f"CausalSelfAttention: d_model {d_model} is not a multiple of "
                             f"n_heads {n_heads}")
        rng = as_generator(rng)
        self.n_heads = n_heads
        self.qkv = Linear(d_model, 3 * d_model, rng=rng, dtype=dtype)
        self.proj = Linear(d_model, d_model, rng=rng, dtype=dtype)
        self.drop = Dropout(dropout) if dropout else None

    def forward(self, x):
        if x.ndim != 3 or x.shape[2] != self.proj.weight.shape[0]:
            raise ValueError(f"CausalSelfAttention expected input (batch, time, "
                             f"{self.proj.weight.shape[0]}), got {x.shape}")
        y = self.proj(F.self_attention(self.qkv(x), self.n_heads, is_causal=True))
        return self.drop(y) if self.drop else y

    def extra_repr(self):
        return f"d_model={self.proj.weight.shape[0]}, n_heads={self.n_heads}"


class ReLU(Module):
    """max(x, 0), elementwise."""

    def forward(self, x):
        return x.relu()


class Tanh(Module):
    """tanh(x), elementwise."""

    def forward(self, x):
        return x.tanh()


class Sigmoid(Module):
    """1 / (1 + exp(-x)), elementwise, without overflow."""

    def forward(self, x):
        return x.sigmoid()


class LeakyReLU(Module):
    """x where x > 0, negative_slope * x elsewhere (PyTorch's default slope 0.01)."""

    def __init__(self, negative_slope=0.01):
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return where(x.data > 0, x, x * self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Softmax(Module):
    """exp(x) / sum(exp(x)) along `axis` (the last by default), from log_softmax."""

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        return x.log_softmax(axis=self.axis).exp()


class ConvPoolDropout(Module):
    """Conv2D(relu) -> MaxPool2D -> Dropout, the article's first block, run as one fused op
    (`ops/fused.py`) for the article's convolution: one input channel, 3x3, stride 1, no
    padding. Otherwise as the three layers one after the other, which are faster there
    since the convolution runs direct loops (`make bench`'s "fused block beyond the
    article's shape" rows).
    Both compute the same thing: the fusion saves passes over memory, not arithmetic.
    (Under the reference switch the fused op itself runs the three layers' numpy
    references.)

    Args: the three layers, which keep their parameters and buffers (named conv.*,
        dropout.*).
    Shapes: (N, C, H, W) -> (N, F, PH, PW), as the three layers.
    """

    def __init__(self, conv, pool, dropout):
        if conv.activation != "relu":
            raise ValueError("ConvPoolDropout fuses a Conv2D with activation='relu'")
        self.conv, self.pool, self.dropout = conv, pool, dropout

    def forward(self, x):
        if (self.conv.stride != 1 or self.conv.padding != (0, 0) or self.conv.dilation != 1
                or self.conv.weight.shape[1:] != (1, 3, 3)):
            return self.dropout(self.pool(self.conv(x)))
        rate, key = 0.0, 0
        if self.dropout.training and self.dropout.rate > 0:
            rate, key = self.dropout.rate, self.dropout.next_key()
        return ConvPoolDropoutFn.apply(x, self.conv.weight, self.conv.bias,
                                       pool_size=self.pool.pool_size,
                                       pool_stride=self.pool.stride, rate=rate, key=key)


class BatchNormReluPool(Module):
    """BatchNorm2D -> ReLU -> MaxPool2D, the tail of LeNet-5's convolution blocks, run as
    one fused op (`ops/fused_norm.py`): the same results as the three layers one after
    the other (the running estimates move the same way), in one pass over the
    convolution's output instead of three, forward and back. (Under the reference switch
    the fused op runs the three layers' numpy references.)

    Args: the three layers; the normalisation keeps its parameters and buffers (named
        norm.*).
    Shapes: (N, C, H, W) -> (N, C, PH, PW), as the three layers.
    """

    def __init__(self, norm, relu, pool):
        if not (isinstance(norm, BatchNorm2D) and isinstance(relu, ReLU)
                and isinstance(pool, MaxPool2D)):
            raise ValueError(f"BatchNormReluPool fuses BatchNorm2D, ReLU, MaxPool2D, got "
                             f"{type(norm).__name__}, {type(relu).__name__}, "
                             f"{type(pool).__name__}")
        self.norm, self.relu, self.pool = norm, relu, pool

    def forward(self, x):
        mean, var = self.norm.statistics(x)
        return BatchNormReluPoolFn.apply(x, self.norm.weight, self.norm.bias, mean=mean,
                                         var=var, training=self.norm.training,
                                         eps=self.norm.eps, pool_size=self.pool.pool_size,
                                         pool_stride=self.pool.stride)
