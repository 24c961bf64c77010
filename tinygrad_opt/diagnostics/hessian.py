"""Curvature of a loss: Hessian-vector products, the top eigenvalues (the sharpness),
the trace and the spectral density, each a small function over a loss closure (as
PyHessian, Yao et al. 2020).

A closure is `loss_fn()`, returning a scalar Tensor that depends on `params` (a list of
Tensors with requires_grad=True). Vectors are lists of numpy arrays, one per parameter
and of its shape. The engine has reverse mode only, so

    H v ≈ (∇L(θ + t v) - ∇L(θ - t v)) / (2 t)

central differences of two gradients (the cost of a Hessian-vector product: two
gradients), with t = h · max(1, ‖θ‖) / ‖v‖ and h = ε^(1/3) of the parameters' dtype
(6e-6 in float64, 5e-3 in float32): the step that balances the truncation error (t²) and
the rounding error (ε / t). In float64 the product agrees with the exact one to about
1e-8 relative (tests/test_diagnostics.py, against PyTorch's double backward); in float32
to about 1e-3, so cast the model (`model.to(np.float64)`) for numbers to rely on.
"""
import numpy as np



class _Point:
    """The loss closure at the parameters' current values: gradients at shifted points,
    with the parameters, their .grad and the model's buffers put back afterwards.

    model: the module whose buffers (Dropout's mask counters, BatchNorm's running
    estimates) are restored before every evaluation, so that each evaluation sees the
    same dropout masks and none moves the running estimates; None when the closure has
    no such state (or evaluates in eval mode)."""

    def __init__(self, loss_fn, params, model=None):
        if not params:
            raise ValueError("diagnostics: params is empty")
        self.loss_fn, self.params = loss_fn, list(params)
        self.theta = [p.data.copy() for p in self.params]
        self.dtype = self.params[0].data.dtype
        self.buffers = ([(b, np.array(b, copy=True)) for _, b in model.named_buffers()]
                        if model is not None else [])

    def _restore_buffers(self):
        for b, saved in self.buffers:
            np.copyto(b, saved)

    def gradient(self, shift=None, t=0.0):
        """(loss, ∇L) at θ + t·shift (shift None: at θ)."""
        saved = [p.grad for p in self.params]
        try:
            for p, th, s in zip(self.params, self.theta, shift or [None] * len(self.params)):
                p.data[...] = th if s is None else th + t * s
                p.grad = None
            self._restore_buffers()
            loss = self.loss_fn()
            loss.backward()
            return loss.item(), [np.zeros_like(th) if p.grad is None else p.grad.copy()
                                 for p, th in zip(self.params, self.theta)]
        finally:
            for p, th, g in zip(self.params, self.theta, saved):
                p.data[...] = th
                p.grad = g
            self._restore_buffers()

    def hvp(self, vectors):
        norm_v = norm(vectors)
        if norm_v == 0:
            return [np.zeros_like(th) for th in self.theta]
        h = float(np.finfo(self.dtype).eps) ** (1 / 3)
        t = h * max(1.0, norm(self.theta)) / norm_v
        _, plus = self.gradient(vectors, t)
        _, minus = self.gradient(vectors, -t)
        return [(a - b) / (2 * t) for a, b in zip(plus, minus)]


def norm(vectors):
    """The 2-norm of a list of arrays taken as one vector."""
    return float(np.sqrt(sum(np.vdot(v, v).real for v in vectors)))


def dot(a, b):
    return float(sum(np.vdot(x, y).real for x, y in zip(a, b)))


def _check_vectors(params, vectors):
    if len(vectors) != len(params):
        raise ValueError(f"hvp: {len(vectors)} vectors for {len(params)} parameters")
    for i, (p, v) in enumerate(zip(params, vectors)):
        if np.shape(v) != p.shape:
            raise ValueError(f"hvp: vector {i} has shape {np.shape(v)}, its parameter "
                             f"{p.shape}")


def hvp(loss_fn, params, vectors, model=None):
    """The Hessian of loss_fn() at the parameters' current values times `vectors`.

    Args:
        loss_fn: a closure returning a scalar Tensor.
        params: the Tensors it is differentiated with respect to.
        vectors: arrays of the parameters' shapes.
        model: its buffers are restored before every evaluation (see `_Point`).
    Returns:
        a list of arrays, H·v, of the parameters' shapes and dtype.
    Cost: two gradients."""
    params = list(params)
    _check_vectors(params, vectors)
    point = _Point(loss_fn, params, model)
    return point.hvp([np.asarray(v, dtype=point.dtype) for v in vectors])


# --- Lanczos ----------------------------------------------------------------------------
def _flat(vectors, dtype=np.float64):
    return np.concatenate([np.ravel(v) for v in vectors]).astype(dtype, copy=False)


def _split(flat, like):
    out, at = [], 0
    for th in like:
        out.append(flat[at:at + th.size].reshape(th.shape).astype(th.dtype))
        at += th.size
    return out


def lanczos(matvec, start, steps, k=None, tol=None):
    """Lanczos with full reorthogonalisation on a symmetric operator.

    matvec: flat vector -> flat vector, in start's dtype. start: the first vector
    (normalised here). Runs `steps` iterations, or fewer when the Krylov space is
    exhausted or (with k and tol) when the k largest Ritz pairs have residuals
    ‖A x - θ x‖ ≤ tol·|θ|. The basis is kept in start's dtype: steps x n numbers (a
    float32 model's in float32, half the memory; its products are no more exact).
    Returns (Ritz values ascending, Ritz vectors as columns, residual norms, the
    tridiagonal's eigenvectors' first components, iterations)."""
    n = start.size
    steps = min(steps, n)
    basis = np.zeros((steps, n), dtype=start.dtype)
    alpha, beta = [], []
    q = start / np.linalg.norm(start)
    for j in range(steps):
        basis[j] = q
        w = matvec(q)
        alpha.append(float(w @ q))
        for _ in range(2):                           # full reorthogonalisation, twice
            w -= basis[:j + 1].T @ (basis[:j + 1] @ w)
        b = float(np.linalg.norm(w))
        values, vectors = np.linalg.eigh(np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1))
        residuals = b * np.abs(vectors[-1])
        done = b <= 1e-12 * max(1.0, np.max(np.abs(values)))
        if k and tol and j + 1 >= k:
            top = slice(len(values) - k, None)
            done = done or bool(np.all(residuals[top] <= tol * np.abs(values[top])))
        if done or j == steps - 1:
            return values, basis[:j + 1].T @ vectors, residuals, vectors[0], j + 1
        beta.append(b)
        q = (w / b).astype(start.dtype, copy=False)


def hessian_eigenvalues(loss_fn, params, k=1, max_iter=100, tol=1e-3, seed=0, model=None,
                        return_vectors=False):
    """The k largest eigenvalues of the Hessian (the first is the sharpness), by Lanczos.

    Stops when each of the k Ritz pairs (θ, x) has ‖H x - θ x‖ ≤ tol·|θ|, or after
    max_iter iterations: for a symmetric H some eigenvalue then lies within ‖H x - θ x‖
    of θ, so each value is within tol relative of an eigenvalue (of the Hessian as
    `hvp` computes it). The largest algebraically, not in magnitude: a negative
    curvature larger than the sharpness is not returned (`hessian_spectrum` shows it).

    Returns: an array of the k eigenvalues, largest first; with return_vectors, also the
    list of eigenvectors (each a list of arrays of the parameters' shapes).
    Cost: one Hessian-vector product (two gradients) an iteration; a few tens of
    iterations for k = 1 on the suite's problems. Memory: the Lanczos basis, iterations
    x parameters numbers (50 x 1.38 M float32 for the article's CNN: 276 MB)."""
    params = list(params)
    point = _Point(loss_fn, params, model)
    if k < 1 or k > sum(th.size for th in point.theta):
        raise ValueError(f"hessian_eigenvalues: k must be between 1 and the number of "
                         f"parameters, got {k}")
    start = np.random.default_rng(seed).standard_normal(
        sum(th.size for th in point.theta)).astype(point.dtype)

    def matvec(x):
        return _flat(point.hvp(_split(x, point.theta)), point.dtype)

    values, vectors, _, _, _ = lanczos(matvec, start, max(max_iter, k), k, tol)
    order = np.argsort(values)[::-1][:k]
    if not return_vectors:
        return values[order]
    return values[order], [_split(vectors[:, i], point.theta) for i in order]


def rademacher(point, rng):
    return [rng.choice(np.array([-1.0, 1.0], dtype=th.dtype), size=th.shape)
            for th in point.theta]


def hessian_trace(loss_fn, params, max_samples=200, tol=1e-2, min_samples=10, seed=0,
                  model=None):
    """Hutchinson's estimate of the Hessian's trace: the mean of zᵀ H z over Rademacher
    vectors z (each entry ±1), which is tr H in expectation.

    Draws vectors until the mean's standard error is at most tol·|mean| (after
    min_samples) or max_samples are drawn.
    Returns: (trace, its standard error, the number of samples).
    Cost: two gradients a sample."""
    params = list(params)
    point = _Point(loss_fn, params, model)
    rng = np.random.default_rng(seed)
    samples = []
    while len(samples) < max_samples:
        z = rademacher(point, rng)
        samples.append(dot(z, point.hvp(z)))
        n = len(samples)
        if n >= max(min_samples, 2):
            mean, error = np.mean(samples), np.std(samples, ddof=1) / np.sqrt(n)
            if error <= tol * abs(mean):
                break
    n = len(samples)
    error = np.std(samples, ddof=1) / np.sqrt(n) if n > 1 else float("inf")
    return float(np.mean(samples)), float(error), n


def hessian_spectrum(loss_fn, params, iterations=80, runs=1, bins=1000, sigma=None,
                     seed=0, model=None):
    """The Hessian's spectral density by stochastic Lanczos quadrature (Ghorbani et al.
    2019; PyHessian's `density`): `runs` Lanczos runs of `iterations` steps from random
    unit vectors; each run's Ritz values are nodes, the squared first components of the
    tridiagonal's eigenvectors their weights; the density is the average of Gaussians of
    width sigma (default 1% of the spread of the nodes) at the nodes.

    Returns: a dict of "grid" and "density" (arrays; the density integrates to about 1),
    "nodes" and "weights" (runs x iterations)."""
    params = list(params)
    point = _Point(loss_fn, params, model)
    rng = np.random.default_rng(seed)
    nodes, weights = [], []

    def matvec(x):
        return _flat(point.hvp(_split(x, point.theta)), point.dtype)

    for _ in range(runs):
        start = _flat(rademacher(point, rng), point.dtype)
        values, _, _, first, _ = lanczos(matvec, start, iterations)
        nodes.append(values)
        weights.append(first ** 2)
    every = np.concatenate(nodes)
    spread = max(float(every.max() - every.min()), 1e-12)
    sigma = 0.01 * spread if sigma is None else sigma
    grid = np.linspace(every.min() - 5 * sigma, every.max() + 5 * sigma, bins)
    density = np.zeros(bins)
    for values, w in zip(nodes, weights):
        gauss = np.exp(-0.5 * ((grid[:, None] - values[None, :]) / sigma) ** 2)
        density += gauss @ w / (sigma * np.sqrt(2 * np.pi))
    return dict(grid=grid, density=density / runs, nodes=nodes, weights=weights)
