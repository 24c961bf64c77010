"""AdamW (Loshchilov & Hutter 2019, "Decoupled weight decay regularization").

Adam (adam.py) with the weight decay taken out of the gradient:

    w ← w·(1 - lr·weight_decay)                     (decoupled decay, first)
    m ← beta1·m + (1 - beta1)·g
    v ← beta2·v + (1 - beta2)·g²
    w ← w - Adam's step(m, v)

With the decay added to the gradient instead (Adam's `weight_decay` in PyTorch, an L2
term in the loss), the decay term is divided by sqrt(v) like the gradient: weights with
large gradients are barely decayed. Decoupled, every weight shrinks by the same factor,
which is what weight decay means for SGD; the paper shows it regularises Adam as L2 does
not. The paper scales the decay by the schedule multiplier η_t, not by lr; PyTorch and
Keras both multiply by lr, as here, so this rule has no "paper" preset.

Only the defaults differ from Adam's: Keras' (lr=0.001, eps=1e-7, weight_decay=0.004,
Keras' Adam formula) and, preset "torch", PyTorch's (lr=0.001, eps=1e-8,
weight_decay=0.01, PyTorch's Adam formula, see adam.py). `amsgrad=True` works as in Adam.
"""
from .adam import Adam


class AdamW(Adam):
    """Adam with decoupled weight decay (defaults: weight_decay 0.004 Keras, 0.01 PyTorch)."""

    presets = {"keras": dict(Adam.presets["keras"], weight_decay=0.004,
                             decoupled_weight_decay=True),
               "torch": dict(Adam.presets["torch"], weight_decay=0.01,
                             decoupled_weight_decay=True)}
    no_preset = {"paper": "Loshchilov & Hutter scale the decay by the schedule "
                          "multiplier, not lr, and fix no defaults"}
