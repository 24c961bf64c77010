"""The article's layers and model: gradients, shapes, modes, state and bad input."""
import numpy as np
import pytest

from tinygrad_opt import Tensor, gradcheck
from tinygrad_opt.models import article_cnn
from tinygrad_opt.nn import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential
from tinygrad_opt.nn import functional as F

@pytest.fixture
def rng():
    """Each test draws from its own generator, seeded the same: a test's data does not
    depend on which tests ran before it (one module-level generator made it so)."""
    return np.random.default_rng(0)


def t64(rng, *shape, grad=True):
    return Tensor(rng.standard_normal(shape), requires_grad=grad, dtype=np.float64)


@pytest.mark.parametrize("stride,pad,relu", [(1, 0, False), (2, 1, False), (1, 1, True)])
def test_conv2d_gradcheck(stride, pad, relu, rng):
    x, w, b = t64(rng, 2, 2, 7, 6), t64(rng, 3, 2, 3, 2), t64(rng, 3)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, pad, relu), x, w, b)


def test_maxpool_gradcheck(rng):
    x = Tensor(rng.permutation(2 * 3 * 6 * 7).reshape(2, 3, 6, 7) * 0.1, requires_grad=True,
               dtype=np.float64)    # distinct values: no ties
    assert gradcheck(lambda x: F.max_pool2d(x, 2), x)
    assert gradcheck(lambda x: F.max_pool2d(x, 3, 2), x)


@pytest.mark.parametrize("batch", [3, 1])     # one sample: the factored weight gradient
def test_dense_relu_flatten_gradcheck(batch, rng):
    dense = Dense(12, 5, rng=1).to(np.float64)
    x = t64(rng, batch, 3, 2, 2)
    net = Sequential(Flatten(), dense, ReLU())
    assert gradcheck(lambda x, w, b: net(x), x, dense.weight, dense.bias)


def test_dropout_gradcheck_with_reseed(rng):
    drop = Dropout(0.5, seed=3)
    x = t64(rng, 4, 6)
    assert gradcheck(lambda x: drop(x) * x, x, reset=lambda: drop.reseed(3))


def test_softmax_cross_entropy_gradcheck_and_value(rng):
    logits = t64(rng, 5, 4)
    labels = np.array([0, 3, 1, 1, 2])
    assert gradcheck(lambda z: F.softmax_cross_entropy(z, labels), logits)
    onehot = np.eye(4)[labels]
    assert gradcheck(lambda z: F.softmax_cross_entropy(z, onehot), logits)
    z = logits.data
    want = np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(5), labels])
    assert F.softmax_cross_entropy(logits, labels).item() == pytest.approx(want, rel=1e-12)


def test_softmax_cross_entropy_gradient_formula_and_stability():
    z = Tensor([[1000.0, 0.0], [0.0, 0.0]], requires_grad=True, dtype=np.float64)
    loss = F.softmax_cross_entropy(z, np.array([1, 0]))
    loss.backward()
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx((1000 + np.log(2)) / 2)
    np.testing.assert_allclose(z.grad, [[0.5, -0.5], [-0.25, 0.25]], atol=1e-12)  # (p-y)/N


def test_small_article_model_gradcheck_with_dropout(rng):
    model = article_cnn(seed=1, image_size=8, filters=3, hidden=6, classes=4).to(np.float64)
    x = Tensor(rng.uniform(0, 1, (3, 1, 8, 8)), dtype=np.float64)
    labels = np.array([0, 3, 2])
    model.train()
    params = model.parameters()
    assert gradcheck(lambda *ps: F.softmax_cross_entropy(model(x), labels), *params,
                     reset=lambda: model.reseed(5))


def test_article_model_shapes_and_size():
    model = article_cnn(fused=False)
    x = Tensor(np.zeros((2, 1, 28, 28)))
    shapes = []
    for layer in model:
        x = layer(x)
        shapes.append(x.shape)
    assert shapes == [(2, 32, 26, 26), (2, 32, 13, 13), (2, 32, 13, 13), (2, 5408),
                      (2, 256), (2, 256), (2, 256), (2, 10)]
    assert sum(p.size for p in model.parameters()) == 1_387_594
    assert [k for k, _ in model.named_parameters()] == [
        "0.weight", "0.bias", "4.weight", "4.bias", "7.weight", "7.bias"]
    fused = article_cnn()
    assert fused(Tensor(np.zeros((2, 1, 28, 28)))).shape == (2, 10)
    assert [k for k, _ in fused.named_parameters()] == [
        "0.conv.weight", "0.conv.bias", "2.weight", "2.bias", "5.weight", "5.bias"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_block_equals_the_three_layers(dtype, rng):
    """Same parameters, same dropout masks: same loss and gradients, two steps running."""
    fused, plain = (article_cnn(seed=4, image_size=13, filters=5, hidden=8, dtype=dtype,
                                fused=f) for f in (True, False))
    x = Tensor(rng.uniform(0, 1, (6, 1, 13, 13)), dtype=dtype)
    x_grad = [Tensor(x.data, requires_grad=True, dtype=dtype) for _ in range(2)]
    labels = np.array([0, 1, 2, 3, 4, 5])
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for step in range(2):
        losses = []
        for model, xi in zip((fused, plain), x_grad):
            model.zero_grad()
            xi.grad = None
            loss = F.softmax_cross_entropy(model(xi), labels)
            loss.backward()
            losses.append(loss.item())
        assert losses[0] == pytest.approx(losses[1], rel=1e-6)
        for p, q in zip(fused.parameters(), plain.parameters()):
            np.testing.assert_allclose(p.grad, q.grad, **tol)
        np.testing.assert_allclose(x_grad[0].grad, x_grad[1].grad, **tol)
    fused.eval(), plain.eval()
    np.testing.assert_allclose(fused(x).data, plain(x).data, **tol)


def test_fused_block_gradcheck(rng):
    model = article_cnn(seed=2, image_size=9, filters=3, hidden=5, classes=3).to(np.float64)
    x = Tensor(rng.uniform(0, 1, (2, 1, 9, 9)), requires_grad=True, dtype=np.float64)
    labels = np.array([0, 2])
    assert gradcheck(lambda x, *ps: F.softmax_cross_entropy(model(x), labels), x,
                     *model.parameters(), reset=lambda: model.reseed(1))


def test_layer_output_shapes():
    assert Conv2D(3, 4, 3, stride=2, padding=1)(Tensor(np.zeros((2, 3, 9, 8)))).shape == (2, 4, 5, 4)
    assert MaxPool2D(3, 2)(Tensor(np.zeros((1, 2, 7, 9)))).shape == (1, 2, 3, 4)
    assert Flatten()(Tensor(np.zeros((2, 3, 4, 5)))).shape == (2, 60)
    assert Dense(7, 3)(Tensor(np.zeros((5, 7)))).shape == (5, 3)


def test_glorot_init_is_seeded_and_bounded():
    a, b, c = Dense(100, 50, rng=3), Dense(100, 50, rng=3), Dense(100, 50, rng=4)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert not np.array_equal(a.weight.data, c.weight.data)
    limit = np.sqrt(6 / 150)
    assert np.abs(a.weight.data).max() <= limit and np.abs(a.weight.data).max() > 0.9 * limit
    assert not a.bias.data.any()
    conv = Conv2D(1, 32, 3, rng=0)   # fans: 1*9 and 32*9, as Keras counts them
    assert np.abs(conv.weight.data).max() <= np.sqrt(6 / (9 + 288))
    np.testing.assert_array_equal(article_cnn(seed=7).state_dict()["2.weight"],
                                  article_cnn(seed=7).state_dict()["2.weight"])


def test_dropout_train_keeps_mean_eval_is_identity():
    drop = Dropout(0.5, seed=0)
    x = Tensor(np.ones((400, 500)))
    y = drop(x).data
    assert abs(y.mean() - 1.0) < 0.01 and set(np.unique(y)) == {0.0, 2.0}
    assert not np.array_equal(drop(x).data, y)            # a new mask every call
    drop.eval()
    assert drop(x) is x
    drop.train()
    drop.reseed(0)
    np.testing.assert_array_equal(drop(x).data, y)       # reseed restarts the sequence


def test_state_dict_round_trip_and_errors():
    a, b = article_cnn(seed=0, fused=False), article_cnn(seed=1, fused=False)
    a.train()
    a[2](Tensor(np.ones((1, 4))))                       # advance a dropout counter
    b.load_state_dict(a.state_dict())
    for (k, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    np.testing.assert_array_equal(b[2].rng, a[2].rng)
    state = a.state_dict()
    state["4.weight"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"4.weight has shape \(5408, 256\) here, got \(3, 3\)"):
        b.load_state_dict(state)
    del state["4.weight"]
    with pytest.raises(KeyError, match="missing keys \\['4.weight'\\]"):
        b.load_state_dict(state)


def test_bad_inputs():
    conv = Conv2D(1, 4, 3)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 1, H, W\), got \(64, 28, 28\)"):
        conv(Tensor(np.zeros((64, 28, 28))))
    with pytest.raises(ValueError, match=r"expected 1 input channels.*got 3"):
        conv(Tensor(np.zeros((2, 3, 8, 8))))
    with pytest.raises(ValueError, match=r"kernel 3x3 is larger than the padded input 2x2"):
        conv(Tensor(np.zeros((2, 1, 2, 2))))
    with pytest.raises(ValueError, match=r"MaxPool2D expected input of shape \(N, C, H, W\)"):
        MaxPool2D(2)(Tensor(np.zeros((4, 4))))
    with pytest.raises(ValueError, match=r"Dense expected input of shape \(N, 7\), got \(2, 6\)"):
        Dense(7, 3)(Tensor(np.zeros((2, 6))))
    logits = Tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="integer class indices.*got 1.5"):
        F.softmax_cross_entropy(logits, np.array([0.0, 1.5, 2.0]))
    with pytest.raises(ValueError, match=r"label 4 out of range.*\[0, 4\)"):
        F.softmax_cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"3 class indices.*got shape \(2,\)"):
        F.softmax_cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\), got 1.0"):
        Dropout(1.0)


def test_fused_block_equals_the_three_layers_at_batch_64(rng):
    """The article's size: the kernels' parallel paths (small batches run serially)."""
    fused, plain = article_cnn(seed=3, fused=True), article_cnn(seed=3, fused=False)
    x = Tensor(rng.uniform(0, 1, (64, 1, 28, 28)))
    labels = np.arange(64) % 10
    losses = []
    for model in (fused, plain):
        loss = F.softmax_cross_entropy(model(x), labels)
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    for p, q in zip(fused.parameters(), plain.parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("change", [
    lambda s: s.__setitem__("4.weight", np.zeros((3, 3))),          # checked last once
    lambda s: s.__setitem__("2.rng", np.zeros(5, np.uint64)),       # a buffer's shape
    lambda s: s.__setitem__("4.bias", np.array(["a"] * 256)),       # not numbers
])
def test_a_failed_load_state_dict_changes_nothing(change):
    """The parameters before the faulty entry were once already overwritten."""
    a, b = article_cnn(seed=0, fused=False), article_cnn(seed=1, fused=False)
    before = b.state_dict()
    state = a.state_dict()
    change(state)
    with pytest.raises(ValueError):
        b.load_state_dict(state)
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


# --- models of one's own ---------------------------------------------------------------
def test_layers_built_without_an_rng_differ_and_manual_seed_repeats_them():
    """Two Dense(64, 64) built without rng= once had identical weights, and two
    Dropout(0.5) drew the same masks."""
    import tinygrad_opt
    a, b = Dense(64, 64), Dense(64, 64)
    assert not np.array_equal(a.weight.data, b.weight.data)
    x = Tensor(np.ones((4, 64)))
    assert not np.array_equal(Dropout(0.5)(x).data, Dropout(0.5)(x).data)
    tinygrad_opt.manual_seed(11)
    c, d1 = Dense(64, 64), Dropout(0.5)
    tinygrad_opt.manual_seed(11)
    e, d2 = Dense(64, 64), Dropout(0.5)
    np.testing.assert_array_equal(c.weight.data, e.weight.data)
    np.testing.assert_array_equal(d1(x).data, d2(x).data)
    assert article_cnn(seed=0).state_dict()["2.weight"].sum() == \
        article_cnn(seed=0).state_dict()["2.weight"].sum()          # seeded: unchanged


def test_parameters_in_lists_dicts_and_modulelists_are_found():
    """A list of layers once registered no parameters: the optimizer never saw them."""
    from tinygrad_opt.nn import Module, ModuleList

    class Net(Module):
        def __init__(self):
            self.blocks = [Dense(3, 4, rng=0), Dense(4, 4, rng=1)]
            self.heads = {"a": Dense(4, 2, rng=2)}
            self.more = ModuleList([Dense(2, 2, rng=3)])
            self.scale = [Tensor([1.0], requires_grad=True)]

    names = [k for k, _ in Net().named_parameters()]
    assert names == ["scale.0", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight",
                     "blocks.1.bias", "heads.a.weight", "heads.a.bias", "more.0.weight",
                     "more.0.bias"]
    with pytest.raises(TypeError, match="ModuleList holds Modules, got int"):
        ModuleList([1])


def test_load_state_dict_not_strict_loads_what_both_have():
    a, b = article_cnn(seed=0, fused=False), article_cnn(seed=1, fused=False)
    kept = b.state_dict()["7.weight"]
    state = a.state_dict()
    del state["7.weight"]
    state["extra"] = np.zeros(2)
    with pytest.raises(KeyError, match=r"missing keys \['7.weight'\], unexpected keys \['extra'\]"):
        b.load_state_dict(state)
    missing, unexpected = b.load_state_dict(state, strict=False)
    assert missing == ["7.weight"] and unexpected == ["extra"]
    np.testing.assert_array_equal(b.state_dict()["0.weight"], a.state_dict()["0.weight"])
    np.testing.assert_array_equal(b.state_dict()["7.weight"], kept)


def test_save_and_load_a_models_weights_safely(tmp_path):
    from tinygrad_opt.store import CheckpointError
    a, b = article_cnn(seed=0), article_cnn(seed=1)
    a[0].dropout.next_key()                                # a buffer that moved
    path = str(tmp_path / "model.npz")
    a.save(path)
    b.load(path)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)
    small = article_cnn(seed=0, hidden=8)
    before = small.state_dict()
    with pytest.raises(CheckpointError, match=r"model.npz: does not fit this Sequential \(.*2.weight has shape"):
        small.load(path)
    for k, v in small.state_dict().items():
        np.testing.assert_array_equal(v, before[k])         # nothing changed
    import pickle
    with open(tmp_path / "evil.npz", "wb") as f:
        pickle.dump({"state": {}}, f)
    with pytest.raises(CheckpointError, match="a pickle"):
        b.load(str(tmp_path / "evil.npz"))


@pytest.mark.parametrize("loss,args,want", [
    (lambda z, y: F.mse(z, y), None, lambda z, y: ((z - y) ** 2).mean()),
    (lambda z, y: F.mse(z, y, reduction="sum"), None, lambda z, y: ((z - y) ** 2).sum()),
    (lambda z, y: F.binary_cross_entropy_with_logits(z, y), None,
     lambda z, y: np.mean(-y * np.log(1 / (1 + np.exp(-z))) - (1 - y) * np.log(1 - 1 / (1 + np.exp(-z))))),
])
def test_losses_value_and_gradcheck(loss, args, want, rng):
    z, y = t64(rng, 4, 3), rng.uniform(0, 1, (4, 3))
    assert loss(z, y).item() == pytest.approx(want(z.data, y), rel=1e-10)
    assert gradcheck(lambda z: loss(z, y), z)


def test_binary_cross_entropy_with_logits_is_finite_at_100():
    z = Tensor([[100.0, -100.0, 100.0]], requires_grad=True, dtype=np.float64)
    loss = F.binary_cross_entropy_with_logits(z, [[0.0, 1.0, 1.0]], reduction="none")
    assert loss.data.tolist() == [[100.0, 100.0, 0.0]]
    loss.sum().backward()
    np.testing.assert_allclose(z.grad, [[1.0, -1.0, 0.0]], atol=1e-40)   # sigmoid(z) - y


def test_label_smoothing_and_reductions(rng):
    z, labels = t64(rng, 5, 4), np.array([0, 3, 1, 1, 2])
    log_p = z.data - np.log(np.exp(z.data).sum(1, keepdims=True))
    target = np.eye(4)[labels] * 0.9 + 0.1 / 4
    per_sample = -(target * log_p).sum(1)
    loss = F.softmax_cross_entropy(z, labels, label_smoothing=0.1, reduction="none")
    np.testing.assert_allclose(loss.data, per_sample, rtol=1e-12)
    assert F.softmax_cross_entropy(z, labels, label_smoothing=0.1).item() == pytest.approx(per_sample.mean())
    assert gradcheck(lambda z: F.softmax_cross_entropy(z, labels, 0.1, "sum"), z)
    assert F.softmax_cross_entropy(z, labels, reduction="sum").item() == pytest.approx(
        5 * F.softmax_cross_entropy(z, labels).item())
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.mse(z, z.data, reduction="avg")


def test_activation_layers_gradcheck(rng):
    from tinygrad_opt.nn import LeakyReLU, Sigmoid, Softmax, Tanh
    x = t64(rng, 3, 4)
    for layer, want in ((Tanh(), np.tanh(x.data)), (Sigmoid(), 1 / (1 + np.exp(-x.data))),
                        (LeakyReLU(0.2), np.where(x.data > 0, x.data, 0.2 * x.data)),
                        (Softmax(), np.exp(x.data) / np.exp(x.data).sum(1, keepdims=True))):
        np.testing.assert_allclose(layer(x).data, want, rtol=1e-12)
        assert gradcheck(layer, x)


@pytest.mark.parametrize("name,std", [("glorot_normal", np.sqrt(2 / (300 + 200))),
                                      ("he_normal", np.sqrt(2 / 300)),
                                      ("xavier_uniform", np.sqrt(2 / (300 + 200))),
                                      ("kaiming_uniform", np.sqrt(2 / 300))])
def test_initialisers_have_their_variance(name, std):
    w = Dense(300, 200, rng=0, init=name).weight.data
    assert abs(w.std() / std - 1) < 0.02 and abs(w.mean()) < 0.01 * std * 10
    if name.endswith("normal"):              # truncated at 2 std of the untruncated draw
        assert np.abs(w).max() <= 2 * std / 0.87962566103423978 * (1 + 1e-6)
    with pytest.raises(ValueError, match="unknown initialiser 'lecun'"):
        Dense(3, 2, init="lecun")


@pytest.mark.parametrize("padding,out", [("same", (7, 6)), ("valid", (5, 4)), (1, (7, 6)),
                                         ((2, 0), (9, 4))])
def test_conv2d_padding_forms(padding, out, rng):
    conv = Conv2D(2, 3, 3, padding=padding, rng=0, dtype=np.float64)
    x = t64(rng, 2, 2, 7, 6)
    assert conv(x).shape == (2, 3) + out
    assert gradcheck(lambda x, w: F.conv2d(x, w, conv.bias, 1, conv.padding), x, conv.weight)
    with pytest.raises(ValueError, match="padding='same' needs stride 1 and an odd kernel"):
        Conv2D(1, 1, 2, padding="same")


@pytest.mark.parametrize("k,s", [(2, 2), (3, 1), (3, 2)])
def test_avg_pool_value_and_gradcheck(k, s, rng):
    from tinygrad_opt.nn import AvgPool2D, GlobalAvgPool2D
    x = t64(rng, 2, 3, 7, 6)
    want = np.lib.stride_tricks.sliding_window_view(x.data, (k, k), axis=(2, 3))[
        :, :, ::s, ::s].mean(axis=(-2, -1))
    np.testing.assert_allclose(AvgPool2D(k, s)(x).data, want, rtol=1e-12)
    assert gradcheck(AvgPool2D(k, s), x)
    assert GlobalAvgPool2D()(x).shape == (2, 3) and gradcheck(GlobalAvgPool2D(), x)


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5, 2)])
def test_batchnorm_train_and_eval(shape, rng):
    """Against numpy, PyTorch's conventions (biased batch variance to normalise, unbiased
    for the running estimate, momentum 0.1), gradient-checked in both modes."""
    from tinygrad_opt.nn import BatchNorm1D, BatchNorm2D
    layer = (BatchNorm1D if len(shape) == 2 else BatchNorm2D)(4, dtype=np.float64)
    layer.weight.data[...] = rng.uniform(0.5, 2, 4)
    layer.bias.data[...] = rng.uniform(-1, 1, 4)
    x = t64(rng, *shape) * 3.0 + 1.0
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    view = (1, -1) if len(shape) == 2 else (1, -1, 1, 1)
    mean, var = x.data.mean(axis=axes), x.data.var(axis=axes)
    want = ((x.data - mean.reshape(view)) / np.sqrt(var.reshape(view) + 1e-5)
            * layer.weight.data.reshape(view) + layer.bias.data.reshape(view))
    np.testing.assert_allclose(layer(x).data, want, rtol=1e-10)
    count = x.size // 4
    np.testing.assert_allclose(layer.running_mean, 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, 0.9 + 0.1 * var * count / (count - 1),
                               rtol=1e-12)
    x_data = Tensor(x.data, requires_grad=True, dtype=np.float64)
    assert gradcheck(lambda x, w, b: layer(x), x_data, layer.weight, layer.bias,
                     reset=lambda: None)
    layer.eval()
    running_mean, running_var = layer.running_mean.copy(), layer.running_var.copy()
    want = ((x.data - running_mean.reshape(view)) / np.sqrt(running_var.reshape(view) + 1e-5)
            * layer.weight.data.reshape(view) + layer.bias.data.reshape(view))
    np.testing.assert_allclose(layer(x).data, want, rtol=1e-10)
    assert gradcheck(lambda x, w, b: layer(x), x_data, layer.weight, layer.bias)
    np.testing.assert_array_equal(layer.running_mean, running_mean)   # eval: untouched
    assert "running_var" in dict(layer.named_buffers())


def test_dilated_conv2d_against_numpy_and_gradcheck(rng):
    conv = Conv2D(2, 3, 3, dilation=2, padding="same", rng=0, dtype=np.float64)
    x = t64(rng, 2, 2, 9, 8)
    out = conv(x)
    assert out.shape == (2, 3, 9, 8)                # 'same' with the dilated reach of 5
    xp = np.pad(x.data, ((0, 0), (0, 0), (2, 2), (2, 2)))
    want = np.zeros(out.shape)
    for p in range(3):
        for q in range(3):                          # tap (p, q) reads pixel (i + 2p, j + 2q)
            want += np.einsum("nchw,fc->nfhw", xp[:, :, 2 * p:2 * p + 9, 2 * q:2 * q + 8],
                              conv.weight.data[:, :, p, q])
    np.testing.assert_allclose(out.data, want, rtol=1e-12)
    assert gradcheck(lambda x, w: conv(x), x, conv.weight)


# --- LeNet-5's fused tail: BatchNorm2D -> ReLU -> MaxPool2D as one op ---------------------
@pytest.mark.parametrize("dtype,batch", [(np.float64, 6), (np.float32, 64)])
def test_lenet_fused_tail_equals_the_three_layers(dtype, batch, rng):
    """Same weights: the same loss, gradients (input included) and running estimates, two
    training steps running, then the same eval outputs; batch 64 runs the kernels'
    parallel paths."""
    from tinygrad_opt.models import lenet5
    fused, plain = (lenet5(seed=5, dtype=dtype, fused=f) for f in (True, False))
    x = rng.uniform(0, 1, (batch, 1, 28, 28)).astype(dtype)
    labels = np.arange(batch) % 10
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    for step in range(2):
        losses, grads = [], []
        for model in (fused, plain):
            model.zero_grad()
            xi = Tensor(x, requires_grad=True, dtype=dtype)
            loss = F.softmax_cross_entropy(model(xi), labels)
            loss.backward()
            losses.append(loss.item())
            grads.append([xi.grad] + [p.grad for p in model.parameters()])
            for p in model.parameters():            # a step, so the second differs
                p.data -= dtype(0.1) * p.grad
        assert losses[0] == pytest.approx(losses[1], rel=1e-6)
        for a, b in zip(*grads):
            np.testing.assert_allclose(a, b, **tol)
    buffers = [dict(model.named_buffers()) for model in (fused, plain)]
    assert len(buffers[0]) == len(buffers[1]) == 6       # 3 normalisations' two estimates
    for a, b in zip(buffers[0].values(), buffers[1].values()):
        np.testing.assert_allclose(a, b, **tol)
    fused.eval(), plain.eval()
    np.testing.assert_allclose(fused(Tensor(x, dtype=dtype)).data,
                               plain(Tensor(x, dtype=dtype)).data, **tol)
    assert [k for k, _ in fused.named_parameters()][2:4] == ["1.norm.weight", "1.norm.bias"]


@pytest.mark.parametrize("pool", [(2, None), (3, 2)])       # (3, 2): windows overlap
def test_batchnorm_relu_pool_gradcheck_train_and_eval(pool, rng):
    from tinygrad_opt.nn import BatchNorm2D, BatchNormReluPool
    block = BatchNormReluPool(BatchNorm2D(3, dtype=np.float64), ReLU(), MaxPool2D(*pool))
    block.norm.weight.data[...] = [0.7, -1.3, 1.9]      # a negative scale flips the max
    block.norm.bias.data[...] = [0.2, -0.1, 0.4]
    x = Tensor(rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) * 0.1 - 5.0,
               requires_grad=True, dtype=np.float64)    # distinct values: no ties
    params = (block.norm.weight, block.norm.bias)
    assert gradcheck(lambda x, w, b: block(x), x, *params, reset=lambda: None)
    block.eval()
    assert gradcheck(lambda x, w, b: block(x), x, *params)


def test_batchnorm_relu_pool_refuses_other_layers():
    from tinygrad_opt.nn import AvgPool2D, BatchNorm1D, BatchNorm2D, BatchNormReluPool
    with pytest.raises(ValueError, match="fuses BatchNorm2D, ReLU, MaxPool2D, got "
                                         "BatchNorm1D, ReLU, MaxPool2D"):
        BatchNormReluPool(BatchNorm1D(3), ReLU(), MaxPool2D(2))
    with pytest.raises(ValueError, match="got BatchNorm2D, ReLU, AvgPool2D"):
        BatchNormReluPool(BatchNorm2D(3), ReLU(), AvgPool2D(2))
    block = BatchNormReluPool(BatchNorm2D(3), ReLU(), MaxPool2D(2))
    with pytest.raises(ValueError, match=r"BatchNorm2D expected input of shape \(N, 3, H, "
                                         r"W\), got \(2, 4, 6, 6\)"):
        block(Tensor(np.zeros((2, 4, 6, 6))))
    with pytest.raises(ValueError, match=r"MaxPool2D window 2x2 is larger than the input "
                                         r"1x6"):
        block(Tensor(np.zeros((2, 3, 1, 6))))
