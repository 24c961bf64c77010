"""Models: the reference article's MNIST CNN, a LeNet-5 with batch normalisation, and a
character-level transformer."""
import numpy as np

from .nn import (GELU, BatchNorm1D, BatchNorm2D, BatchNormReluPool, CausalSelfAttention,
                 Conv2D, ConvPoolDropout, Dense, Dropout, Embedding, Flatten, LayerNorm,
                 Linear, MaxPool2D, Module, ModuleList, ReLU, Sequential)
from .nn.init import as_generator
from .ops.conv import window_count


def article_cnn(seed=0, in_channels=1, image_size=28, filters=32, hidden=256, classes=10,
                dtype=np.float32, fused=True):
    """The article's model (Keras' Sequential, in NCHW):

        Conv2D(32, 3x3, relu) -> MaxPool 2x2 -> Dropout(0.25) -> Flatten
        -> Dense(256, relu) -> Dropout(0.5) -> Dense(10)

    The final softmax is fused into `softmax_cross_entropy`, so the model returns logits.
    All weights come from one Generator seeded with `seed` (Glorot-uniform, zero biases),
    and the dropout masks from seeds derived from it: a seed gives the same model and the
    same training run every time. The size arguments exist for small test variants.

    fused=True runs the first three layers as one `ConvPoolDropout` block (one fused
    kernel, same results, parameters named 0.conv.weight, ...); fused=False lists the
    article's eight layers one by one (parameters named 0.weight, ...).

    Shapes: (N, in_channels, image_size, image_size) -> (N, classes).
    """
    rng = np.random.default_rng(seed)
    pooled = window_count(window_count(image_size, 3), 2, 2)     # conv 3x3, pool 2x2
    block = [Conv2D(in_channels, filters, 3, activation="relu", rng=rng, dtype=dtype),
             MaxPool2D(2),
             Dropout(0.25, seed=2 * seed + 1)]
    return Sequential(
        *([ConvPoolDropout(*block)] if fused else block),
        Flatten(),                                   # (N, F, P, P) -> (N, F*P*P)
        Dense(filters * pooled * pooled, hidden, rng=rng, dtype=dtype),
        ReLU(),
        Dropout(0.5, seed=2 * seed + 2),
        Dense(hidden, classes, rng=rng, dtype=dtype),
    )


def lenet5(seed=None, classes=10, dtype=np.float32, fused=True):
    """LeNet-5 (LeCun et al. 1998) as it is trained today, with batch normalisation and
    ReLU, for 28x28 images (the first convolution pads to keep 28x28, as the original's
    32x32 input did):

        Conv2D(6, 5x5, same) -> BatchNorm -> ReLU -> MaxPool 2x2      (6, 14, 14)
        -> Conv2D(16, 5x5) -> BatchNorm -> ReLU -> MaxPool 2x2        (16, 5, 5)
        -> Flatten -> Dense(120) -> BatchNorm -> ReLU -> Dense(84) -> ReLU -> Dense(10)

    61,990 parameters (biases before a batch normalisation are kept, as PyTorch's
    counterpart in benchmarks/torch_article_cnn.py keeps them). seed: the weights' seed
    (None: the shared generator, `tinygrad_opt.manual_seed`).

    fused=True runs each BatchNorm -> ReLU -> MaxPool as one `BatchNormReluPool` (one
    fused op, same results; parameters named 1.norm.weight, ...); fused=False lists the
    layers one by one (1.weight, ...).

    Shapes: (N, 1, 28, 28) -> (N, classes).
    """
    rng = None if seed is None else np.random.default_rng(seed)

    def tail(channels):
        layers = [BatchNorm2D(channels, dtype=dtype), ReLU(), MaxPool2D(2)]
        return [BatchNormReluPool(*layers)] if fused else layers

    return Sequential(
        Conv2D(1, 6, 5, padding="same", rng=rng, dtype=dtype), *tail(6),
        Conv2D(6, 16, 5, rng=rng, dtype=dtype), *tail(16),
        Flatten(),
        Dense(400, 120, rng=rng, dtype=dtype), BatchNorm1D(120, dtype=dtype), ReLU(),
        Dense(120, 84, rng=rng, dtype=dtype), ReLU(),
        Dense(84, classes, rng=rng, dtype=dtype),
    )


class Block(Module):
    """A pre-norm transformer block: x + attention(LayerNorm(x)), then
    x + MLP(LayerNorm(x)), the MLP 4x as wide with GELU between its two Linears."""

    def __init__(self, d_model, n_heads, dropout, rng, dtype):
        self.norm1 = LayerNorm(d_model, dtype=dtype)
        self.attention = CausalSelfAttention(d_model, n_heads, dropout, rng=rng, dtype=dtype)
        self.norm2 = LayerNorm(d_model, dtype=dtype)
        self.mlp = Sequential(Linear(d_model, 4 * d_model, rng=rng, dtype=dtype), GELU(),
                              Linear(4 * d_model, d_model, rng=rng, dtype=dtype))

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CharTransformer(Module):
    """Token and position embeddings, `n_layers` pre-norm blocks, a final LayerNorm and a
    linear head: ids (batch, time <= context) -> logits (batch, time, vocab_size)."""

    def __init__(self, vocab_size, context, d_model, n_layers, n_heads, dropout, seed,
                 dtype=np.float32):
        rng = as_generator(np.random.default_rng(seed))
        self.context = context
        self.tokens = Embedding(vocab_size, d_model, rng=rng, dtype=dtype)
        self.positions = Embedding(context, d_model, rng=rng, dtype=dtype)
        self.blocks = ModuleList([Block(d_model, n_heads, dropout, rng, dtype)
                                  for _ in range(n_layers)])
        self.norm = LayerNorm(d_model, dtype=dtype)
        self.head = Linear(d_model, vocab_size, rng=rng, dtype=dtype)

    def forward(self, ids):
        ids = np.asarray(getattr(ids, "data", ids)).astype(np.int64)
        if ids.ndim != 2 or ids.shape[1] > self.context:
            raise ValueError(f"CharTransformer expected ids (batch, time <= "
                             f"{self.context}), got shape {ids.shape}")
        x = self.tokens(ids) + self.positions(np.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def char_transformer(vocab_size, context=128, d_model=128, n_layers=4, n_heads=4,
                     dropout=0.0, seed=0, dtype=np.float32):
    """A character-level transformer in nanoGPT's form (`CharTransformer`), its weights
    drawn from `seed`. Train it on `data.load("austen")` windows with the cross-entropy of
    logits.reshape(-1, vocab) against the next characters."""
    return CharTransformer(vocab_size, context, d_model, n_layers, n_heads, dropout, seed,
                           dtype)


def generate(model, prompt_ids, length, temperature=1.0, seed=0):
    """`length` more ids after `prompt_ids`, each drawn from the model's softmax at the
    last position divided by `temperature` (seeded), the context cut to the model's."""
    from . import no_grad
    if not temperature > 0:
        raise ValueError(f"generate: temperature must be > 0, got {temperature}")
    rng = np.random.default_rng(seed)
    ids = list(np.asarray(prompt_ids).reshape(-1))
    was_training = model.training
    model.eval()
    with no_grad():
        for _ in range(length):
            window = np.array(ids[-model.context:])[None]
            logits = model(window).data[0, -1].astype(np.float64) / temperature
            p = np.exp(logits - logits.max())
            ids.append(int(rng.choice(len(p), p=p / p.sum())))
    model.train(was_training)
    return np.array(ids)
