"""A custom op: write forward and backward, check the gradient in one call, and see what
a wrong backward looks like when checked.

    python examples/02_custom_op.py
"""
import numpy as np

from tinygrad_opt import Function, GradcheckError, Tensor, gradcheck


class Softplus(Function):
    """softplus(a) = log(1 + exp(a)); its derivative is the logistic sigmoid."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.logaddexp(0, a)          # log(1 + e^a), stable for large a

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g / (1 + np.exp(-a))         # g * sigmoid(a)


class WrongSoftplus(Softplus):
    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g / (1 + np.exp(a))          # a sign slip: sigmoid(-a) instead of sigmoid(a)


def main():
    x = Tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True,
               dtype=np.float64)
    print("Softplus:", gradcheck(Softplus.apply, x))
    try:
        gradcheck(WrongSoftplus.apply, x)
    except GradcheckError as e:
        print("WrongSoftplus is caught:\n ", e)
    # the op composes with the rest of the engine like any built-in one
    y = (Softplus.apply(x) * 2.0).sum()
    y.backward()
    print("d sum(2 softplus(x)) / dx[0] =", x.grad[0])


if __name__ == "__main__":
    main()
