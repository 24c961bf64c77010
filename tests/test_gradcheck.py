"""The checker itself: it passes right gradients, catches wrong ones, and says where."""
import numpy as np
import pytest

from tinygrad_opt import Function, GradcheckError, Tensor, gradcheck


class Cube(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a ** 3

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g * 3 * a ** 2


class WrongCube(Cube):
    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g * 2 * a ** 2          # the factor should be 3


class TransposedGrad(Function):
    """x -> x * w (elementwise) whose backward reverses the incoming gradient: with an
    all-ones gradient (a plain sum) that is invisible, so only a random cotangent
    catches it."""

    @staticmethod
    def forward(ctx, a):
        return a * np.arange(1.0, a.size + 1).reshape(a.shape)

    @staticmethod
    def backward(ctx, g):
        w = np.arange(1.0, g.size + 1).reshape(g.shape)
        return g.reshape(-1)[::-1].reshape(g.shape) * w


def x64(*shape, seed=1):
    return Tensor(np.random.default_rng(seed).uniform(0.5, 1.5, shape),
                  requires_grad=True, dtype=np.float64)


def test_right_gradient_passes():
    assert gradcheck(Cube.apply, x64(3, 4)) is True


def test_wrong_backward_fails_and_names_the_element():
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(3, 4\)\) at element \(0, 0\): "
                                             r"analytic .* numeric .* error"):
        gradcheck(WrongCube.apply, x64(3, 4))


def test_random_cotangent_catches_what_a_sum_would_hide():
    x = x64(4)
    with pytest.raises(GradcheckError):
        gradcheck(TransposedGrad.apply, x)
    # the same wrong backward passes a plain sum: that is why the cotangent is random
    assert gradcheck(lambda t: TransposedGrad.apply(t).sum(), x) is True


def test_only_inputs_requiring_grad_are_checked_and_float64_is_used():
    seen = []

    def fn(a, b):
        seen.append((a.dtype, b.requires_grad))
        return (a * b).sum()

    assert gradcheck(fn, x64(2, 2), Tensor(np.ones((2, 2))))
    assert all(dtype == np.float64 and not rg for dtype, rg in seen)


def test_no_input_requires_grad():
    with pytest.raises(ValueError, match="no input has requires_grad=True"):
        gradcheck(lambda a: a.sum(), Tensor([1.0]))


def test_reset_is_called_before_every_evaluation():
    calls = []
    gradcheck(lambda a: (a * a).sum(), x64(3), reset=lambda: calls.append(1))
    assert len(calls) == 1 + 2 * 3     # the analytic pass, then two per element


def test_max_elements_samples():
    calls = []
    gradcheck(lambda a: (a * a).sum(), x64(10, 10), max_elements=5,
              reset=lambda: calls.append(1))
    assert len(calls) == 1 + 2 * 5
