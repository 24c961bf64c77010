"""Public gradient checker: analytic gradients against central differences, in float64.

Example: check the gradient of your own op::

    import numpy as np
    from tinygrad_opt import Tensor, gradcheck
    from tinygrad_opt.autograd import Function

    class Cube(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a ** 3

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved
            return g * 3 * a ** 2

    x = Tensor(np.random.randn(4, 5), requires_grad=True, dtype=np.float64)
    gradcheck(lambda t: Cube.apply(t), x)     # True, or GradcheckError saying where
"""
import numpy as np

from .tensor import Tensor


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with its finite-difference estimate."""


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, reset=None,
              max_elements=None):
    """Check the gradients of `fn` at `inputs` against central differences.

    Inputs are converted to float64 copies, except float64 Tensors, which are used as
    they are: so the parameters of a model cast with `model.to(np.float64)` can be passed
    and checked in place (each element is restored after its perturbation, and `.grad` is
    restored at the end). `fn` must return a Tensor; a non-scalar output y is
    contracted with a fixed random cotangent c (seeded), checking the gradient of
    sum(c * y): a plain sum would hide a backward that is wrong in a way that sums to
    zero. Each element x_i of every input that requires grad is compared:

        numeric_i  = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)
        passes if |analytic_i - numeric_i| <= atol + rtol * |numeric_i|

    Args:
        fn: callable taking as many Tensors as `inputs`, returning a Tensor.
        *inputs: Tensors (only those with requires_grad=True are checked) or arrays.
        eps: finite-difference step. atol, rtol: tolerances as above.
        seed: seed of the random cotangent (and of the element sample, if any).
        reset: callable run before every evaluation of `fn`, e.g. to re-seed the
            random masks of Dropout layers so that each evaluation sees the same mask.
        max_elements: check at most this many elements per input (a seeded sample);
            None checks them all.
    Returns:
        True when every checked element agrees.
    Raises:
        GradcheckError: naming the input, the element index, both values and the error.
        ValueError: no input requires grad, or fn returns no Tensor.
    """
    xs = [x if isinstance(x, Tensor) and x.dtype == np.float64 else
          Tensor(x, requires_grad=getattr(x, "requires_grad", False), dtype=np.float64)
          for x in inputs]
    saved_grads = [x.grad for x in xs]
    try:
        return _check(fn, xs, eps, atol, rtol, seed, reset, max_elements)
    finally:
        for x, g in zip(xs, saved_grads):
            x.grad = g


def _check(fn, xs, eps, atol, rtol, seed, reset, max_elements):
    checked = [i for i, x in enumerate(xs) if x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, nothing to check")
    rng = np.random.default_rng(seed)

    def evaluate():
        if reset is not None:
            reset()
        out = fn(*xs)
        if not isinstance(out, Tensor):
            raise ValueError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
        return out

    for x in xs:
        x.grad = None
    out = evaluate()
    cotangent = rng.standard_normal(out.shape) if out.size > 1 else np.ones(out.shape)

    def scalar():
        return float(np.sum(evaluate().data * cotangent))

    out.backward(cotangent)
    for i in checked:
        x = xs[i]
        analytic = np.zeros_like(x.data) if x.grad is None else x.grad
        flat = x.data.reshape(-1)  # a view: perturbing it perturbs the input
        indices = np.arange(flat.size)
        if max_elements is not None and flat.size > max_elements:
            indices = np.sort(rng.choice(flat.size, size=max_elements, replace=False))
        for k in indices:
            original = flat[k]
            flat[k] = original + eps
            f_plus = scalar()
            flat[k] = original - eps
            f_minus = scalar()
            flat[k] = original
            numeric = (f_plus - f_minus) / (2 * eps)
            got = analytic.reshape(-1)[k]
            if not abs(got - numeric) <= atol + rtol * abs(numeric):
                index = np.unravel_index(k, x.shape)
                raise GradcheckError(
                    f"gradcheck: gradient of input {i} (shape {x.shape}) at element "
                    f"{tuple(int(j) for j in index)}: analytic {got:.10g}, numeric "
                    f"{numeric:.10g}, error {abs(got - numeric):.3g} > tolerance "
                    f"{atol + rtol * abs(numeric):.3g}")
    return True
