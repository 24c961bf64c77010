"""What a PyTorch user types first works, or fails in one line naming the equivalent."""
import numpy as np
import pytest

import tinygrad_opt
from tinygrad_opt import Tensor, gradcheck
from tinygrad_opt.data import DataLoader
from tinygrad_opt.nn import AvgPool2D, Dense, Linear, MaxPool2D, Sequential, functional
from tinygrad_opt.optim import SGD, Muon
from tinygrad_opt.train import Trainer


def test_size_numel_float_tolist_and_the_tensor_function():
    x = tinygrad_opt.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.dtype == np.float32 and x.size == 6 and x.numel() == 6 and x.dim() == 2
    assert x.size() == (2, 3) and x.size(0) == 2 and x.size(-1) == 3
    assert float(x.sum()) == 21.0 and x.tolist() == [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(TypeError, match=r"float\(\) of a tensor needs one element"):
        float(x)
    assert x.view(3, 2).shape == (3, 2) and x.mean(1, keepdim=True).shape == (2, 1)
    assert x.max(dim=0, keepdim=True).shape == (1, 3)
    np.testing.assert_allclose(x.softmax(1).data.sum(1), 1.0, rtol=1e-6)


def test_float_and_double_cast_and_the_gradient_comes_back_in_the_inputs_dtype():
    x = Tensor(np.arange(4.0), requires_grad=True)           # float32
    y = x.double()
    assert y.dtype == np.float64 and x.float() is x
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [0, 2, 4, 6]


def test_zero_grad_set_to_none_or_zeros():
    p = Tensor([1.0, 2.0], requires_grad=True)
    opt = SGD([p])
    p.grad = np.ones(2, np.float32)
    opt.zero_grad(set_to_none=False)
    assert p.grad.tolist() == [0, 0]
    opt.zero_grad(set_to_none=True)
    assert p.grad is None
    layer = Linear(2, 1)
    for q in layer.parameters():
        q.grad = np.ones_like(q.data)
    layer.zero_grad(set_to_none=False)
    assert all(q.grad.tolist() == np.zeros_like(q.data).tolist() for q in layer.parameters())
    layer.zero_grad()
    assert all(q.grad is None for q in layer.parameters())


def test_pools_take_kernel_size_and_avg_is_not_a_max():
    x = Tensor(np.arange(16.0).reshape(1, 1, 4, 4))
    assert MaxPool2D(kernel_size=2)(x).data.ravel().tolist() == [5, 7, 13, 15]
    assert AvgPool2D(kernel_size=2, stride=2)(x).data.ravel().tolist() == [2.5, 4.5, 10.5, 12.5]
    assert not isinstance(AvgPool2D(), MaxPool2D)
    with pytest.raises(ValueError, match="pool_size=3 and kernel_size=2 disagree"):
        MaxPool2D(3, kernel_size=2)


def test_linear_is_pytorchs_layout_and_gradient():
    layer = Linear(4, 3, rng=0, dtype=np.float64)
    assert layer.weight.shape == (3, 4) and layer.bias.shape == (3,)
    assert np.abs(layer.weight.data).max() <= 0.5                 # U(±1/sqrt(4))
    x = Tensor(np.random.default_rng(1).standard_normal((5, 4)), requires_grad=True,
               dtype=np.float64)
    np.testing.assert_allclose(layer(x).data, x.data @ layer.weight.data.T + layer.bias.data)
    assert gradcheck(lambda x, w, b: x @ w.T + b, x, layer.weight, layer.bias)
    with pytest.raises(ValueError, match=r"Linear expected input of shape \(\.\.\., 4\)"):
        layer(Tensor(np.ones((2, 3))))
    assert Linear(4, 3, bias=False).bias is None and len(Linear(4, 3, bias=False).parameters()) == 1


def test_muon_scales_linear_as_pytorch_does_and_dense_alike():
    """Linear's (out, in) weight is PyTorch's own; Dense's (in, out) is marked: the same
    layer gets the same scale either way."""
    lin, dense = Linear(6, 2, rng=0), Dense(6, 2, rng=0)
    a, b = Muon(lin.parameters(), preset="torch"), Muon(dense.parameters(), preset="torch")
    assert a.matrix_shape(lin.weight.data, a.state[0]) == (2, 6)
    assert b.matrix_shape(dense.weight.data, b.state[0]) == (2, 6)


def test_cross_entropy_is_softmax_cross_entropy():
    logits = Tensor(np.random.default_rng(0).standard_normal((4, 3)))
    labels = np.array([0, 2, 1, 2])
    assert functional.cross_entropy(logits, labels).item() == \
        functional.softmax_cross_entropy(logits, labels).item()


def test_dataloader_batches_shuffles_seeded_and_feeds_the_trainer():
    x, y = np.arange(10.0).reshape(10, 1), np.arange(10)
    loader = DataLoader((x, y), batch_size=4)
    assert [b[1].tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(DataLoader((x, y), batch_size=4, drop_last=True)) == 2
    shuffled = DataLoader((x, y), batch_size=5, shuffle=True, seed=3)
    first, second = [np.concatenate([b[1] for b in shuffled]) for _ in range(2)]
    assert sorted(first) == list(range(10)) and first.tolist() != second.tolist()
    again = DataLoader((x, y), batch_size=5, shuffle=True, seed=3)
    assert np.concatenate([b[1] for b in again]).tolist() == first.tolist()
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1, got 0"):
        DataLoader((x, y), batch_size=0)
    model = Sequential(Dense(1, 1, rng=0))
    data = DataLoader((x, x * 2.0), batch_size=4, shuffle=True)
    history = Trainer(model, "adam", loss=functional.mse, metric="mse", verbose=0).fit(
        data, epochs=2)
    assert len(history) == 2 and history[-1]["updates"] == 3


def test_shapes_that_can_only_be_a_mistake_are_refused():
    """A one-output model with the default loss reported train_loss 0.0 every epoch while
    its weights moved; mse of (64,) targets against (64, 1) outputs was a (64, 64) mean."""
    out = Tensor(np.zeros((64, 1)))
    with pytest.raises(ValueError, match=r"over 1 class is 0 whatever the logits"):
        functional.softmax_cross_entropy(out, np.zeros((64, 1)))
    with pytest.raises(ValueError, match=r"mse: target of shape \(64,\) against a "
                                         r"prediction of shape \(64, 1\)"):
        functional.mse(out, np.zeros(64))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: target of "
                                         r"shape \(3,\)"):
        functional.binary_cross_entropy_with_logits(Tensor(np.zeros((3, 2))), np.zeros(3))
    assert functional.mse(out, 0.0).item() == 0.0          # a scalar target broadcasts
    assert functional.mse(Tensor(np.ones((4, 3))), np.zeros(3)).item() == 1.0
