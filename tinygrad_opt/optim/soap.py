"""SOAP (Vyas, Morwani, Zhao, Shapira, Brandfonbrener, Janson & Kakade 2024, "SOAP:
improving and stabilizing Shampoo using Adam"): Adam run in the eigenbasis of Shampoo's
preconditioner. For a matrix gradient G (rows x cols), Shampoo's two factors and their
eigenvectors,

    L ← lerp(L, G·Gᵀ, 1 - shampoo_beta)      (rows x rows)
    R ← lerp(R, Gᵀ·G, 1 - shampoo_beta)      (cols x cols)
    Q_L, Q_R: eigenvectors of L and R (eigh at the start; then every
              precondition_frequency steps one power iteration and a QR decomposition)

rotate the gradient into a basis where Adam's diagonal second moment fits it best:

    G' = Q_Lᵀ·G·Q_R                           (project)
    m ← beta1·m + (1 - beta1)·G';  v ← beta2·v + (1 - beta2)·G'²
    w ← w - lr·sqrt(1 - beta2^t)/(1 - beta1^t) · Q_L·(m/(sqrt(v) + eps))·Q_Rᵀ    (project back)
    w ← w - lr·weight_decay·w                 (decoupled, after the step)

and m is carried into each new basis (projected back with the old Q, forward with the
new). A tensor of more dimensions gets one factor per dimension (a tensordot over the
others); a dimension longer than max_precond_dim, and a vector unless
precondition_1d, gets none (the identity). The very first step only sets up L, R and
their eigenvectors (no weight moves), so that a gradient is never projected onto the
basis it made.

This is the authors' reference implementation (github.com/nikhilvyas/SOAP, soap.py at
commit a1e5535, December 2024; preset "paper"; neither PyTorch 2.13 nor Keras 3.15
ships SOAP), with merge_dims=False (its default; True is not implemented here) and
data_format "channels_first". It computes its eigendecompositions in float32 whatever
the parameters' dtype; the target here is the same rule in the parameters' dtype
(tests/fixtures/reference/make_packages.py runs it with the casts removed), followed
to 1e-12 in float64. The eigenvectors' signs may differ between LAPACK builds and do
not matter: m is stored and read back in the same basis.

Its cost: two eigendecompositions (or QR decompositions) of rows x rows and cols x
cols matrices every precondition_frequency steps, and four matrix products a step per
matrix (`make bench` times it against Adam). Every operation is a numpy matrix product
or decomposition, so there is no kernel: the reference is the rule.

State per parameter: m and v (in the rotated basis), one L and one Q per dimension (0 x
0 where a dimension is not preconditioned), and the step count. m, v and each L decay
where the gradient stops, and are flushed where they underflow (underflow.py): where a
gradient row stays zero, L's row shrinks by shampoo_beta a step (from 1 to float32's
subnormal range in 1,703 steps at 0.95), and a product with subnormal numbers runs
many times slower (docs/performance.md).
"""
import numpy as np

from .hyper import check_whole, pair
from .lerp import lerp
from .optimizer import Optimizer
from .underflow import flush


def project(x, Qs):
    """x in the eigenbasis: a tensordot with each Q over each dimension in turn (a
    dimension without a Q is rotated to the end unchanged)."""
    for Q in Qs:
        x = np.tensordot(x, Q, axes=([0], [0])) if Q.size else np.moveaxis(x, 0, -1)
    return x


def project_back(x, Qs):
    """x from the eigenbasis back to the parameter's axes."""
    for Q in Qs:
        x = np.tensordot(x, Q, axes=([0], [1])) if Q.size else np.moveaxis(x, 0, -1)
    return x


def eigenvectors(L):
    """L's eigenvectors, largest eigenvalue first."""
    _, Q = np.linalg.eigh(L + 1e-30 * np.eye(L.shape[0], dtype=L.dtype))
    return Q[:, ::-1].copy()


def power_iteration(L, Q, v, axis):
    """One power iteration and a QR decomposition from the previous eigenvectors Q,
    sorted by their estimated eigenvalues diag(Qᵀ·L·Q) (v's axis reordered to match).
    Returns the new Q and v. L·Q is computed once: the estimates are its columns' dot
    products with Q's, the power iteration its columns reordered."""
    LQ = L @ Q
    order = np.argsort(-np.einsum("ij,ij->j", Q, LQ), kind="stable")
    v = np.take(v, order, axis=axis)
    Q_new, _ = np.linalg.qr(LQ[:, order])
    return Q_new, v


class SOAP(Optimizer):
    """SOAP: Adam in the eigenbasis of Shampoo's preconditioner, refreshed now and then."""

    presets = {"paper": dict(lr=3e-3, beta1=0.95, beta2=0.95, shampoo_beta=-1.0, eps=1e-8,
                             precondition_frequency=10, max_precond_dim=10000,
                             precondition_1d=False, normalize_grads=False,
                             correct_bias=True, weight_decay=0.01,
                             decoupled_weight_decay=True)}
    no_preset = {"keras": "Keras 3.15 ships no SOAP; preset 'paper' is the authors' code",
                 "torch": "PyTorch 2.13 ships no SOAP; preset 'paper' is the authors' code"}
    default_preset = "paper"

    def __init__(self, params, lr=None, beta1=None, beta2=None, shampoo_beta=None, eps=None,
                 precondition_frequency=None, max_precond_dim=None, precondition_1d=None,
                 normalize_grads=None, correct_bias=None, preset=None, nonfinite="raise",
                 learning_rate=None, betas=None, **decay):
        beta1, beta2 = pair("SOAP", betas, beta1, beta2)
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, beta1=beta1,
                         beta2=beta2, shampoo_beta=shampoo_beta, eps=eps,
                         precondition_frequency=precondition_frequency,
                         max_precond_dim=max_precond_dim, precondition_1d=precondition_1d,
                         normalize_grads=normalize_grads, correct_bias=correct_bias,
                         **decay)

    def validate(self, lr, beta1, beta2, shampoo_beta, eps, precondition_frequency,
                 max_precond_dim, precondition_1d, normalize_grads, correct_bias,
                 decoupled_weight_decay, **decay):
        super().validate(lr=lr, **decay)
        self._check_moments(beta1, beta2, eps)
        if not shampoo_beta < 1:
            raise ValueError(f"SOAP: shampoo_beta must be < 1 (negative: beta2), got "
                             f"{shampoo_beta}")
        check_whole("SOAP: precondition_frequency", precondition_frequency)
        check_whole("SOAP: max_precond_dim", max_precond_dim)
        if not decoupled_weight_decay and decay.get("weight_decay"):
            raise ValueError("SOAP: its weight decay is decoupled (after the step), as the "
                             "authors'; decoupled_weight_decay=False is not implemented")

    def _dims(self, w, h):
        """The sizes SOAP factors over: every axis; a vector only if precondition_1d.
        None where a dimension gets no preconditioner."""
        if w.ndim == 1 and not h["precondition_1d"]:
            return [None]
        return [s if s <= h["max_precond_dim"] else None for s in w.shape]

    def init_state(self, w, h):
        state = {"m": np.zeros_like(w), "v": np.zeros_like(w),
                 "count": np.zeros((), np.int64)}
        for i, s in enumerate(self._dims(w, h)):
            n = s or 0
            state[f"L{i}"] = np.zeros((n, n), w.dtype)
            state[f"Q{i}"] = np.zeros((n, n), w.dtype)
        return state

    def weight_decay_of(self, w, h):
        return 0.0                       # SOAP decays after its step, in reference_update

    def reference_update(self, w, g, state, h):
        n = sum(1 for k in state if k.startswith("L"))
        Ls = [state[f"L{i}"] for i in range(n)]
        if state["count"] == 0:                    # set up L, R and Q; no step
            self._accumulate(g, Ls, h)
            for i, L in enumerate(Ls):
                if L.size:
                    state[f"Q{i}"][...] = eigenvectors(L)
            state["count"][...] = 1
            return
        Qs = [state[f"Q{i}"] for i in range(n)]
        t = int(state["count"])                    # the authors' step count + 1
        beta1, beta2 = h["beta1"], h["beta2"]
        m, v = state["m"], state["v"]
        g_rotated = project(g, Qs)
        m *= beta1
        m += (1.0 - beta1) * g_rotated
        v *= beta2
        v += (1.0 - beta2) * np.square(g_rotated)
        flush(m)                                   # underflow.py: subnormals to 0
        flush(v)
        denom = np.sqrt(v) + h["eps"]
        step_size = h["lr"]
        if h["correct_bias"]:
            step_size = step_size * (1.0 - beta2 ** t) ** 0.5 / (1.0 - beta1 ** t)
        update = project_back(m / denom, Qs)
        if h["normalize_grads"]:
            update = update / (1e-30 + np.mean(update ** 2) ** 0.5)
        w += -step_size * update
        if h["weight_decay"] > 0:
            w += (-h["lr"] * h["weight_decay"]) * w
        state["count"][...] = t + 1
        # the preconditioner, after the step: m back to the parameter's axes, L and R
        # updated, perhaps a new basis, m into it
        m[...] = project_back(m, Qs)
        self._accumulate(g, Ls, h)
        if t % h["precondition_frequency"] == 0:
            for i, L in enumerate(Ls):
                if L.size:
                    Q, v_new = power_iteration(L, Qs[i], state["v"], i)
                    state[f"Q{i}"][...] = Q
                    state["v"][...] = v_new
            Qs = [state[f"Q{i}"] for i in range(n)]
        m[...] = project(m, Qs)
        flush(m)                                   # the rotations make new subnormals

    @staticmethod
    def _accumulate(g, Ls, h):
        """L_i ← lerp(L_i, g·gᵀ over every axis but i, 1 - shampoo_beta)."""
        beta = h["shampoo_beta"] if h["shampoo_beta"] >= 0 else h["beta2"]
        for i, L in enumerate(Ls):
            if L.size:
                others = [a for a in range(g.ndim) if a != i]
                L[...] = lerp(L, np.tensordot(g, g, axes=(others, others)), 1 - beta)
                flush(L)                           # subnormals to 0, as m and v
