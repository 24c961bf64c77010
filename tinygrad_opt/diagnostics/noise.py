"""The gradient noise scale B_simple of McCandlish et al. 2018 ("An empirical model of
large-batch training", appendix A): the batch size above which a bigger batch stops
paying for itself,

    B_simple = tr(Σ) / |G|²

G the full-data gradient, Σ the per-sample gradients' covariance. From k gradients of
disjoint batches of b samples each (G_b) and their mean (a batch of kb samples, G_kb),
since E|G_B|² = |G|² + tr(Σ) / B:

    |G|² ≈ (kb |G_kb|² - b mean|G_b|²) / (kb - b)
    tr(Σ) ≈ (mean|G_b|² - |G_kb|²) / (1/b - 1/(kb))

Each estimate is unbiased; their ratio is not, and is noisy for a single measurement:
average the two estimates over measurements before dividing, as McCandlish et al. do
(`noise_scale_of` takes the averages)."""
import numpy as np

from .hessian import _Point, norm


def gradient_noise_scale(loss_fns, params, batch_size, model=None):
    """B_simple from k ≥ 2 closures, each the mean loss over its own batch of
    `batch_size` samples (disjoint batches).

    Returns: a dict of b_simple, trace_sigma and grad_norm_sq (the two estimates above,
    to average over measurements), and the gradient norm of the k batches together.
    Cost: k gradients."""
    loss_fns = list(loss_fns)
    if len(loss_fns) < 2:
        raise ValueError(f"gradient_noise_scale needs at least 2 batches, got {len(loss_fns)}")
    grads = [_Point(fn, params, model).gradient()[1] for fn in loss_fns]
    k, b = len(grads), batch_size
    small = float(np.mean([norm(g) ** 2 for g in grads]))
    big = norm([sum(parts) / k for parts in zip(*grads)]) ** 2
    grad_norm_sq = (k * b * big - b * small) / (k * b - b)
    trace_sigma = (small - big) / (1 / b - 1 / (k * b))
    return dict(b_simple=noise_scale_of(trace_sigma, grad_norm_sq),
                trace_sigma=trace_sigma, grad_norm_sq=grad_norm_sq,
                grad_norm=float(np.sqrt(big)))


def noise_scale_of(trace_sigma, grad_norm_sq):
    """tr(Σ) / |G|² from (averages of) the two estimates; inf when |G|² ≤ 0 (the noise
    swamps the signal at these batch sizes)."""
    return float(trace_sigma / grad_norm_sq) if grad_norm_sq > 0 else float("inf")
