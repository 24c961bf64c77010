"""Muon (Jordan et al. 2024, "Muon: an optimizer for hidden layers in neural networks").

Momentum, then the update matrix replaced by (nearly) the closest orthogonal matrix, so
every direction of a weight matrix moves by about the same amount, whatever the spread
of its singular values. For each weight matrix W (a convolution kernel is reshaped to
(out_channels, everything else)), with B its momentum buffer:

    PyTorch (preset "torch")                    Keras (preset "keras", the default)
    B ← momentum·B + (1 - momentum)·G            B ← momentum·B + G
    U = G + momentum·(B - G) if nesterov else B   U = G + momentum·B if nesterov else B
                                      (the formula option ema_momentum: True / False)
    X = U / max(‖U‖_F, eps)                       X = U / (‖U‖_F + eps)
                                      (eps_as_floor: True / False)
    ns_steps times (the Newton–Schulz iteration, X transposed first if it has more rows
    than columns, and back after):
        A = X·Xᵀ
        X ← a·X + (b·A + c·A·A)·X                 (a, b, c) = ns_coefficients
    W ← W·(1 - lr·weight_decay)                  (decoupled)
    W ← W - lr·s·X,   s = sqrt(max(1, rows/cols))           adjust_lr_fn="original"
                      s = 0.2·sqrt(max(rows, cols))         adjust_lr_fn="match_rms_adamw"

The quintic's coefficients push every singular value into roughly [0.7, 1.2] in five
steps, instead of converging to exactly 1: cheaper, and as good for training (Jordan).
The two libraries' momenta differ by the factor (1 - momentum), which the normalisation
removes; they differ in eps's place, in which parameters count as matrices (PyTorch's
Muon takes 2-D parameters only and leaves the rest to a separate AdamW, whose defaults
the "torch" preset's AdamW part uses, eps inside the bias correction as PyTorch's Adam
puts it, `adam_eps_inside_correction`; Keras sends everything that is not 2-D to its
built-in AdamW, so convolution kernels too: `conv_as_matrix` False), and in the
default scale (Keras: 0.2·sqrt(max(rows, cols)), "match_rms_adamw"). Parameters that are
not matrices (biases; and, without conv_as_matrix, convolution kernels) get an AdamW
step with the adam_* hyperparameters, on the same learning rate.

PyTorch computes the Newton–Schulz iteration in bfloat16; here it runs in the
parameter's dtype. The tests hold PyTorch's trajectories with the same iteration in
float64 (docs/conventions.md). rows and cols are a matrix's output and input sizes: a
convolution kernel's (out_channels, the rest), and for Dense's weight, stored (in, out)
as Keras stores it and marked `in_out`, (out, in), as PyTorch's Linear stores it, so that
the "original" scale is PyTorch's for the same layer.

State: B (momentum) for matrices; m, v for the AdamW part.
"""
import math

import numpy as np

from ..jit import prange, serial_or_parallel
from .adam import adam_kernel_update, adam_reference
from .optimizer import Optimizer


def newton_schulz(u, steps, a, b, c, eps, eps_as_floor):
    """An approximately orthogonal matrix with u's singular vectors (numpy, a copy)."""
    x = u.T if u.shape[0] > u.shape[1] else u
    norm = np.linalg.norm(x)
    x = x / (max(norm, eps) if eps_as_floor else norm + eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x.T if u.shape[0] > u.shape[1] else x


def scale(shape, adjust_lr_fn):
    """s, the factor on lr for a matrix of this (rows, cols) shape: (outputs, inputs)."""
    rows, cols = shape
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return math.sqrt(max(1, rows / cols))


def muon_reference(w, g, buf, lr, momentum, nesterov, ns_steps, a, b, c, eps,
                   adjust_lr_fn, ema_momentum, eps_as_floor, shape=None):
    """The rule in numpy, one line per formula line (in place). w, g, buf: matrices;
    shape: (outputs, inputs) for the scale, if not w's own shape."""
    if ema_momentum:                               # PyTorch's
        buf[...] = momentum * buf + (1 - momentum) * g
        u = g + momentum * (buf - g) if nesterov else buf
    else:
        buf[...] = momentum * buf + g
        u = g + momentum * buf if nesterov else buf
    x = newton_schulz(u, ns_steps, a, b, c, eps, eps_as_floor)
    w -= lr * scale(shape or w.shape, adjust_lr_fn) * x


def _momentum_loops(g, buf, u, momentum, nesterov, ema_momentum):
    for i in prange(g.size):
        if ema_momentum:
            buf[i] = momentum * buf[i] + (1 - momentum) * g[i]
            u[i] = g[i] + momentum * (buf[i] - g[i]) if nesterov else buf[i]
        else:
            buf[i] = momentum * buf[i] + g[i]
            u[i] = g[i] + momentum * buf[i] if nesterov else buf[i]


_momentum_kernel = serial_or_parallel(_momentum_loops)


class Muon(Optimizer):
    """Muon: momentum orthogonalised by Newton–Schulz for matrices, AdamW for the rest."""

    _common = dict(lr=0.001, momentum=0.95, nesterov=True,
                   ns_coefficients=(3.4445, -4.7750, 2.0315), ns_steps=5, eps=1e-7,
                   decoupled_weight_decay=True, adam_beta1=0.9, adam_beta2=0.999)
    presets = {"torch": dict(_common, adjust_lr_fn="original", weight_decay=0.1,
                             adam_eps=1e-8, adam_weight_decay=0.01, ema_momentum=True,
                             eps_as_floor=True, conv_as_matrix=True,
                             adam_eps_inside_correction=True),
               "keras": dict(_common, adjust_lr_fn="match_rms_adamw", weight_decay=0.004,
                             adam_eps=1e-7, adam_weight_decay=0.004, ema_momentum=False,
                             eps_as_floor=False, conv_as_matrix=False,
                             adam_eps_inside_correction=False)}
    no_preset = {"paper": "Jordan's defaults are PyTorch's; use preset 'torch'"}
    added_since = ("ema_momentum", "eps_as_floor", "conv_as_matrix",
                   "adam_eps_inside_correction")

    def __init__(self, params, lr=None, momentum=None, nesterov=None, ns_coefficients=None,
                 ns_steps=None, eps=None, adjust_lr_fn=None, adam_beta1=None,
                 adam_beta2=None, adam_eps=None, adam_weight_decay=None, ema_momentum=None,
                 eps_as_floor=None, conv_as_matrix=None, adam_eps_inside_correction=None,
                 preset=None, nonfinite="raise", learning_rate=None, **decay):
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, momentum=momentum,
                         nesterov=nesterov, ns_coefficients=ns_coefficients,
                         ns_steps=ns_steps, eps=eps, adjust_lr_fn=adjust_lr_fn,
                         adam_beta1=adam_beta1, adam_beta2=adam_beta2, adam_eps=adam_eps,
                         adam_weight_decay=adam_weight_decay, ema_momentum=ema_momentum,
                         eps_as_floor=eps_as_floor, conv_as_matrix=conv_as_matrix,
                         adam_eps_inside_correction=adam_eps_inside_correction, **decay)

    @staticmethod
    def is_matrix(w, h):
        """Whether w gets Muon's step (else AdamW's)."""
        return w.ndim >= 2 if h["conv_as_matrix"] else w.ndim == 2

    def init_state(self, w, h):
        if self.is_matrix(w, h):
            return {"B": np.zeros_like(w)}
        return {"m": np.zeros_like(w), "v": np.zeros_like(w)}

    def validate(self, lr, momentum, nesterov, ns_coefficients, ns_steps, eps, adjust_lr_fn,
                 adam_beta1, adam_beta2, adam_eps, adam_weight_decay, ema_momentum,
                 eps_as_floor, conv_as_matrix, adam_eps_inside_correction, **decay):
        super().validate(lr=lr, **decay)
        self._check_range("momentum", momentum)
        if not 0 < ns_steps < 100:
            raise ValueError(f"Muon: ns_steps must be in 1..99, got {ns_steps}")
        self._check_positive("eps", eps)
        if adjust_lr_fn not in ("original", "match_rms_adamw"):
            raise ValueError(f"Muon: adjust_lr_fn must be 'original' or 'match_rms_adamw', "
                             f"got {adjust_lr_fn!r}")
        self._check_range("adam_beta1", adam_beta1)
        self._check_range("adam_beta2", adam_beta2)
        self._check_positive("adam_eps", adam_eps)
        if not adam_weight_decay >= 0 or math.isinf(adam_weight_decay):
            raise ValueError(f"Muon: adam_weight_decay must be a finite number >= 0, "
                             f"got {adam_weight_decay}")

    def weight_decay_of(self, w, h):
        return h["weight_decay"] if self.is_matrix(w, h) else h["adam_weight_decay"]

    def _adam(self, w, g, state, h, reference):
        args = (h["lr"], h["adam_beta1"], h["adam_beta2"], h["adam_eps"])
        if reference:
            adam_reference(w, g, state["m"], state["v"], self.t, *args,
                           eps_inside_correction=h["adam_eps_inside_correction"])
        else:
            adam_kernel_update(w, g, state, self.t, *args, False,
                               h["adam_eps_inside_correction"])

    def matrix_shape(self, w2, state):
        """(outputs, inputs) of the matrix w2: its shape, or reversed for a parameter
        marked `in_out` (Dense's weight)."""
        i = next(i for i, s in enumerate(self.state) if s is state)
        rows, cols = w2.shape
        return (cols, rows) if getattr(self.params[i], "in_out", False) else (rows, cols)

    def reference_update(self, w, g, state, h):
        if not self.is_matrix(w, h):
            return self._adam(w, g, state, h, reference=True)
        rows = w.shape[0]
        w2 = w.reshape(rows, -1)
        muon_reference(w2, g.reshape(rows, -1), state["B"].reshape(rows, -1), h["lr"],
                       h["momentum"], h["nesterov"], h["ns_steps"], *h["ns_coefficients"],
                       h["eps"], h["adjust_lr_fn"], h["ema_momentum"], h["eps_as_floor"],
                       self.matrix_shape(w2, state))

    def kernel_update(self, w, g, state, h):
        if not self.is_matrix(w, h):
            return self._adam(w, g, state, h, reference=False)
        f, rows = w.dtype.type, w.shape[0]
        u = np.empty_like(g)
        _momentum_kernel(g.reshape(-1), state["B"].reshape(-1), u.reshape(-1),
                         f(h["momentum"]), h["nesterov"], h["ema_momentum"])
        w2 = w.reshape(rows, -1)
        x = newton_schulz(u.reshape(rows, -1), h["ns_steps"], *h["ns_coefficients"],
                          h["eps"], h["eps_as_floor"])
        w2 -= f(h["lr"] * scale(self.matrix_shape(w2, state), h["adjust_lr_fn"])) * x
