"""Weight decay, for every rule, in one of two forms (`decoupled_weight_decay`):

    coupled (L2):   g ← g + weight_decay·w          before the rule sees g
    decoupled:      w ← w·(1 - lr·weight_decay)     before the rule's own update

For plain SGD the two are the same step. For the adaptive rules they differ: the coupled
term passes through the rule's per-coordinate scaling (divided by sqrt(v) in Adam), so
weights with large gradients are decayed less; the decoupled form shrinks every weight
by the same factor (Loshchilov & Hutter 2019, "Decoupled weight decay regularization",
which is AdamW). PyTorch's `weight_decay` is the coupled form (its AdamW, and Adam with
`decoupled_weight_decay=True`, the decoupled one); Keras' `weight_decay` is the
decoupled form on every optimizer. Each preset sets `decoupled_weight_decay` as its
library does; an explicit keyword overrides it.
"""
import numpy as np

from ..jit import prange, serial_or_parallel

# Each library's convention: the preset's default for every rule. A rule without presets
# (one of your own) gets PyTorch's.
WEIGHT_DECAY = {"keras": dict(weight_decay=0.0, decoupled_weight_decay=True),
                "torch": dict(weight_decay=0.0, decoupled_weight_decay=False),
                "paper": dict(weight_decay=0.0, decoupled_weight_decay=False),
                None: dict(weight_decay=0.0, decoupled_weight_decay=False)}


def coupled_decay_reference(g, w, weight_decay):
    """g + weight_decay·w, a new array (the parameter's own gradient is left as it is)."""
    return g + weight_decay * w


def decoupled_decay_reference(w, lr, weight_decay):
    """w ← w·(1 - lr·weight_decay), in place."""
    w *= 1 - lr * weight_decay


def _coupled_loops(g, w, weight_decay, out):
    for i in prange(g.size):
        out[i] = g[i] + weight_decay * w[i]


def _scale_loops(w, factor):
    for i in prange(w.size):
        w[i] *= factor


_coupled_kernel = serial_or_parallel(_coupled_loops)
_scale_kernel = serial_or_parallel(_scale_loops)


def apply_weight_decay(w, g, lr, weight_decay, decoupled, reference):
    """Decay w in place (decoupled) or return g with the decay added (coupled); g as it
    is when weight_decay is 0."""
    if not weight_decay:
        return g
    if decoupled:
        if reference:
            decoupled_decay_reference(w, lr, weight_decay)
        else:
            _scale_kernel(w.reshape(-1), w.dtype.type(1 - lr * weight_decay))
        return g
    if reference:
        return coupled_decay_reference(g, w, weight_decay)
    out = np.empty_like(g)
    _coupled_kernel(g.reshape(-1), w.reshape(-1), w.dtype.type(weight_decay),
                    out.reshape(-1))
    return out
