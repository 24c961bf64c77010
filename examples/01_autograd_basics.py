"""Autograd basics: a small expression, its graph, backward(), and a gradient check.

    python examples/01_autograd_basics.py
"""
import numpy as np

from tinygrad_opt import Tensor, gradcheck


def show_graph(t, depth=0):
    """Print the graph below t: each tensor, the op that made it, its parents."""
    node = t._node
    name = node.fn.__name__ if node else ("leaf, requires grad" if t.requires_grad else "leaf")
    print("  " * depth + f"{name}: shape {t.shape}")
    for parent in (node.parents if node else ()):
        show_graph(parent, depth + 1)


def main():
    # f(x, w) = mean(relu(x @ w) ** 2): a tiny one-layer "network" and a square loss
    x = Tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
    w = Tensor([[0.3, -1.0], [0.8, 0.2]], requires_grad=True)
    loss = ((x @ w).relu() ** 2).mean()
    print(f"loss = {loss.item():.4f}\nthe graph, from the loss down to the leaves:")
    show_graph(loss)

    loss.backward()                       # reverse mode: one pass fills x.grad and w.grad
    print("dloss/dw =\n", w.grad)

    # the same gradient by hand: d mean(h^2)/dh = 2h/4, through relu, then @
    h = np.maximum(x.data @ w.data, 0)
    by_hand = x.data.T @ ((2 * h / h.size) * (h > 0))
    print("by hand  =\n", by_hand)
    assert np.allclose(w.grad, by_hand)

    # and against central differences, in float64, on every element
    ok = gradcheck(lambda x, w: ((x @ w).relu() ** 2).mean(),
                   Tensor(x.data, requires_grad=True, dtype=np.float64),
                   Tensor(w.data, requires_grad=True, dtype=np.float64))
    print("gradcheck:", ok)


if __name__ == "__main__":
    main()
