"""Each rule's arithmetic: an independent pure-Python transcription of every formula
against both the numpy reference and the Numba kernel; hand-computed steps that pin the
conventions; convergence; NaN and inf carried as the references carry them."""
import math

import numpy as np
import pytest

from tinygrad_opt import Tensor, reference
from tinygrad_opt.optim import METHODS, SGD, Adadelta, Adagrad, Adam, RMSprop
from optim_cases import CASES, run_steps


@pytest.fixture(params=["kernel", "reference"])
def path(request):
    with reference(request.param == "reference"):
        yield request.param


@pytest.mark.parametrize("size", [7, 50_000], ids=["small", "parallel"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name,cls,hyper,transcription", CASES, ids=[c[0] for c in CASES])
def test_update_matches_transcription(name, cls, hyper, transcription, dtype, size, path):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(size)
    grads = [rng.standard_normal(size) for _ in range(5)]
    p = Tensor(w0.reshape(-1, 1) if size > 7 else w0, requires_grad=True, dtype=dtype)
    opt = cls([p], **hyper)
    for g in grads:
        p.grad = g.reshape(p.shape).astype(dtype)
        opt.step()
    k = 50 if size > 7 else size            # the transcription is slow: check a slice
    want = transcription(list(w0[:k]), [list(g[:k].astype(dtype)) for g in grads], **hyper)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(p.data.reshape(-1)[:k], want, **tol)
    assert p.data.dtype == dtype and opt.t == 5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,cls,hyper,transcription", CASES, ids=[c[0] for c in CASES])
def test_kernel_equals_reference_bit_for_bit(name, cls, hyper, transcription, dtype):
    rng = np.random.default_rng(1)
    w0, grads = rng.standard_normal(3000), [rng.standard_normal(3000) for _ in range(5)]
    results = []
    for use_reference in (False, True):
        with reference(use_reference):
            p = Tensor(w0, requires_grad=True, dtype=dtype)
            opt = cls([p], **hyper)
            for g in grads:
                p.grad = g.astype(dtype)
                opt.step()
        results.append(p.data)
    np.testing.assert_array_equal(results[0], results[1])     # the same operations, in


def test_hand_computed_momentum_starts_from_zero_velocity():
    # v1 = -0.1 * 0.5 = -0.05, w1 = 0.95; v2 = 0.9 * -0.05 - 0.05 = -0.095, w2 = 0.855
    assert run_steps(SGD, dict(lr=0.1, momentum=0.9), [0.5, 0.5]) == pytest.approx([0.95, 0.855])
    # Nesterov: w1 = 1 + 0.9 * -0.05 - 0.05
    assert run_steps(SGD, dict(lr=0.1, momentum=0.9, nesterov=True), [0.5]) == pytest.approx([0.905])


def test_hand_computed_epsilon_placement():
    # Adagrad: a = 0.1 + 1 = 1.1; w = 1 - 0.1 / sqrt(1.1 + 0.1)   (eps inside the root)
    assert run_steps(Adagrad, dict(lr=0.1, eps=0.1), [1.0])[0] == pytest.approx(
        0.9087129070824723, rel=1e-14)
    # RMSprop: v = 0.1; w = 1 - 0.1 / sqrt(0.1 + 0.1)   (eps inside, not sqrt(v) + eps)
    assert run_steps(RMSprop, dict(lr=0.1, eps=0.1), [1.0])[0] == pytest.approx(
        0.7763932022500211, rel=1e-14)


def test_hand_computed_adam_bias_correction_at_t1():
    # m = 0.05, v = 0.00025, alpha_1 = 0.1 sqrt(0.001) / 0.1; eps outside the root
    assert run_steps(Adam, dict(lr=0.1, eps=0.1), [0.5])[0] == pytest.approx(
        0.9863472940504185, rel=1e-14)
    # with eps tiny, the first Adam step is lr * sign(g), whatever the size of g
    assert run_steps(Adam, dict(lr=0.1, eps=1e-12), [1e-3])[0] == pytest.approx(0.9, rel=1e-7)


def test_hand_computed_adadelta_order_of_accumulators():
    # s = 0.5; d = sqrt(0 + .1) / sqrt(.5 + .1); u = .5 d^2 = 1/12; w = 1 - d
    # then s = .75; d = sqrt(1/12 + .1) / sqrt(.85); w -= d
    assert run_steps(Adadelta, dict(lr=1.0, rho=0.5, eps=0.1), [1.0, 1.0]) == pytest.approx(
        [0.591751709536137, 0.127331345523313], rel=1e-14)


def _grad_sq(x):
    return 2 * x


def _grad_quad(x):          # f = x0^2 + 10 x1^2: condition number 10
    return np.array([2 * x[0], 20 * x[1]])


def _grad_rosenbrock(x):    # f = (1 - a)^2 + 100 (b - a^2)^2, minimum at (1, 1)
    a, b = x
    return np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])


def _run(cls, hyper, grad, x0, steps):
    p = Tensor(x0, requires_grad=True, dtype=np.float64)
    opt = cls([p], **hyper)
    switches = hasattr(opt, "train")          # Schedule-Free: gradients at y, result x
    if switches:
        opt.train()
    for _ in range(steps):
        p.grad = grad(p.data)
        opt.step()
    if switches:
        opt.eval()
    return p.data


@pytest.mark.parametrize("name", [m for m in METHODS if m != "lbfgs"])   # test_lbfgs.py
def test_every_method_with_defaults_decreases_sum_of_squares(name):
    x0 = np.array([1.0, -2.0, 3.0])
    x = _run(lambda ps, **kw: METHODS[name].make(ps), {}, _grad_sq, x0, 50)
    assert np.sum(x ** 2) < np.sum(x0 ** 2)     # a sign error would climb instead


# optimizer, tuned hyperparameters, steps, tolerance: quadratic, then Rosenbrock
CONVERGENCE = [
    (SGD, dict(lr=0.05), 500, 1e-6, dict(lr=0.002), 20_000, 1e-2),
    (SGD, dict(lr=0.01, momentum=0.9), 500, 1e-6, dict(lr=0.0005, momentum=0.9), 5000, 1e-3),
    (SGD, dict(lr=0.01, momentum=0.9, nesterov=True), 500, 1e-6,
     dict(lr=0.0005, momentum=0.9, nesterov=True), 5000, 1e-3),
    (Adagrad, dict(lr=0.5), 500, 1e-6, dict(lr=0.5), 20_000, 1e-3),
    (RMSprop, dict(lr=0.01), 500, 1e-2, dict(lr=0.0005), 20_000, 2e-3),
    (Adadelta, dict(lr=0.2, rho=0.99, eps=1e-6), 5000, 1e-2,
     dict(lr=0.2, rho=0.99, eps=1e-6), 20_000, 0.2),
    (Adam, dict(lr=0.05), 500, 1e-6, dict(lr=0.02), 5000, 1e-3),
]


@pytest.mark.parametrize("cls,hq,nq,tq,hr,nr,tr", CONVERGENCE,
                         ids=["sgd", "momentum", "nesterov", "adagrad", "rmsprop",
                              "adadelta", "adam"])
def test_convergence_on_quadratic_and_rosenbrock(cls, hq, nq, tq, hr, nr, tr):
    assert np.abs(_run(cls, hq, _grad_quad, np.array([1.0, -2.0]), nq)).max() < tq
    x = _run(cls, hr, _grad_rosenbrock, np.array([-1.0, 1.0]), nr)
    assert np.abs(x - 1.0).max() < tr


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,cls,hyper,transcription", CASES, ids=[c[0] for c in CASES])
def test_update_kernels_keep_nan_and_inf_as_the_references(name, cls, hyper, transcription,
                                                           dtype):
    """Weights and state holding NaN or inf (a model loaded with them, an overflow): each
    kernel leaves NaN and inf exactly where its numpy reference does."""
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal(3000).astype(dtype)
    w0[[5, 70, 900]] = np.nan, np.inf, -np.inf
    g = rng.standard_normal(3000).astype(dtype)
    g[[6, 71]] = 1e30 if dtype == np.float32 else 1e300       # squares overflow to inf
    results = []
    for update in ("kernel_update", "reference_update"):
        p = Tensor(w0, requires_grad=True, dtype=dtype)
        opt = cls([p], **hyper)
        opt.t = 1
        for s in opt.state[0].values():
            s[[7, 8]] = np.nan, np.inf
        with np.errstate(all="ignore"):
            getattr(opt, update)(p.data, g.copy(), opt.state[0], opt.param_groups[0])
        results.append([p.data] + [opt.state[0][k] for k in sorted(opt.state[0])])
    for got, want in zip(*results):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_the_eps_placements_the_docstrings_quote():
    """adam.py and rmsprop.py quote step sizes of Keras' and PyTorch's eps placements:
    computed here with our update and a transcription of PyTorch's formula."""
    def one_step(cls, g, **hyper):
        p = Tensor([0.0], requires_grad=True, dtype=np.float64)
        opt = cls([p], lr=1.0, **hyper)
        p.grad = np.array([g])
        opt.step()
        return -p.data[0]

    b1, b2, eps = 0.9, 0.999, 1e-7
    torch_adam = lambda g: (1 / (1 - b1)) * (1 - b1) * g / (math.sqrt((1 - b2) * g * g / (1 - b2)) + eps)
    assert round(one_step(Adam, 1e-6, eps=eps), 3) == 0.240
    assert round(torch_adam(1e-6), 3) == 0.909
    assert round(torch_adam(1e-6) / one_step(Adam, 1e-6, eps=eps), 1) == 3.8
    torch_rmsprop = lambda g: g / (math.sqrt(0.1 * g * g) + eps)
    assert round(one_step(RMSprop, 1e-4, rho=0.9, eps=eps), 3) == 0.315
    assert round(torch_rmsprop(1e-4), 2) == 3.15
    assert round(one_step(RMSprop, 1.0, rho=0.9, eps=eps), 3) == round(torch_rmsprop(1.0), 3) == 3.162


def test_momentum_in_pytorchs_form_is_the_same_trajectory_at_a_constant_lr():
    """sgd.py says PyTorch's momentum form (v <- mu*v + g, w <- w - lr*v) gives Keras'
    trajectory (v <- mu*v - lr*g, w <- w + v) for a constant lr: computed here."""
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal(4) for _ in range(20)]
    p = Tensor(np.ones(4), requires_grad=True, dtype=np.float64)
    opt = SGD([p], lr=0.05, momentum=0.9)
    w, v = np.ones(4), np.zeros(4)
    for g in grads:
        p.grad = g
        opt.step()
        v = 0.9 * v + g                   # PyTorch's buffer: lr outside
        w = w - 0.05 * v
    np.testing.assert_allclose(p.data, w, rtol=1e-12)


def test_momentum_conventions_part_when_lr_changes():
    """sgd.py: Keras' and PyTorch's momentum give one trajectory for a constant lr and part
    when lr is cut: PyTorch's next step is ten times shorter at once, Keras' is not."""
    def run(preset, cut):
        p = Tensor([0.0], requires_grad=True, dtype=np.float64)
        opt = SGD([p], lr=0.1, momentum=0.9, preset=preset)
        steps = []
        for t in range(20):
            if t == 10 and cut:
                opt.lr = 0.01
            before = p.data[0]
            p.grad = np.array([1.0])
            opt.step()
            steps.append(before - p.data[0])
        return steps
    np.testing.assert_allclose(run("keras", False), run("torch", False), rtol=1e-12)
    keras, torch = run("keras", True), run("torch", True)
    assert torch[10] < 0.11 * torch[9]        # lr/10, velocity 5% longer
    assert keras[10] > 0.7 * keras[9]          # the old velocity carries on
    assert keras[10] > 5 * torch[10]


def _all_rule_configs():
    from tinygrad_opt.optim import (Adafactor, Adamax, AdamW, AdamWScheduleFree, Lamb, Lion,
                                    Muon, NAdam, Prodigy, RAdam, Rprop, SGDScheduleFree)
    return {
        "sgd_torch_nesterov_wd": (SGD, dict(lr=0.1, momentum=0.9, nesterov=True, preset="torch",
                                            weight_decay=0.01)),
        "adagrad_torch": (Adagrad, dict(preset="torch", lr=0.1)),
        "rmsprop_torch_wd": (RMSprop, dict(preset="torch", weight_decay=0.1)),
        "rmsprop_momentum_centered": (RMSprop, dict(momentum=0.9, centered=True)),
        "rmsprop_torch_momentum_centered": (RMSprop, dict(preset="torch", momentum=0.5,
                                                          centered=True, lr=0.001)),
        "adam_torch_amsgrad": (Adam, dict(preset="torch", amsgrad=True, lr=0.01)),
        "adam_keras_amsgrad_decoupled": (Adam, dict(amsgrad=True, lr=0.01, weight_decay=0.1)),
        "adamw_torch": (AdamW, dict(preset="torch")),
        "nadam": (NAdam, dict(lr=0.01)),
        "nadam_torch": (NAdam, dict(preset="torch")),
        "radam": (RAdam, dict(lr=0.01)),
        "lion_wd": (Lion, dict(weight_decay=0.1)),
        "muon_torch": (Muon, dict(lr=0.02, preset="torch")),
        "muon_keras": (Muon, dict(lr=0.02, preset="keras")),
        "rprop": (Rprop, dict()),
        "lamb_wd": (Lamb, dict(lr=0.01, weight_decay=0.1)),
        "lamb_paper": (Lamb, dict(preset="paper", lr=0.01)),
        "adamax": (Adamax, dict(lr=0.01)),
        "adamax_torch_wd": (Adamax, dict(preset="torch", weight_decay=0.01, beta1=0.3)),
        "rprop_paper_wd": (Rprop, dict(preset="paper", weight_decay=0.01)),
        "adafactor_wd": (Adafactor, dict(lr=0.01, weight_decay=0.1)),
        "adafactor_torch_wd": (Adafactor, dict(preset="torch", weight_decay=0.1, d=1.2)),
        "sgd_schedule_free_wd": (SGDScheduleFree, dict(lr=0.1, weight_decay=0.01,
                                                       warmup_steps=3)),
        "adamw_schedule_free_wd": (AdamWScheduleFree, dict(weight_decay=0.1, r=1.0)),
        "prodigy_wd": (Prodigy, dict(weight_decay=0.1)),
        "prodigy_coupled_bias_correction": (Prodigy, dict(
            weight_decay=0.1, decoupled_weight_decay=False, use_bias_correction=True,
            safeguard_warmup=True, growth_rate=1.1)),
        "adamw_schedule_free_coupled": (AdamWScheduleFree, dict(
            weight_decay=0.1, decoupled_weight_decay=False, betas=(0.3, 0.9))),
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(_all_rule_configs()))
def test_every_rule_kernel_agrees_with_its_reference(name, dtype):
    """Ten steps of every rule and form after Adam, through step() (weight decay
    included), on the kernels and on the references: the same numbers, NaN and inf where
    the weights hold them."""
    cls, hyper = _all_rule_configs()[name]
    rng = np.random.default_rng(5)
    shapes = [(40, 30), (4, 3, 3, 3), (30,)]
    starts = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(10)]
    if "muon" not in name:          # NS mixes every entry: one NaN makes all NaN
        starts[0][[1, 2], [3, 4]] = np.nan, np.inf
    results = []
    for ref in (False, True):
        params = [Tensor(s.copy(), requires_grad=True, dtype=dtype) for s in starts]
        opt = cls(params, **hyper)
        if hasattr(opt, "train"):                 # Schedule-Free: gradients at y
            opt.train()
        with reference(ref), np.errstate(all="ignore"):
            for g in grads:
                for p, gi in zip(params, g):
                    p.grad = gi.copy()
                opt.step()
        results.append([p.data for p in params] + [a for s in opt.state for a in s.values()])
    for got, want in zip(*results):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        np.testing.assert_allclose(got, want, rtol=2e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("path", ["kernel", "reference"])
def test_muon_scales_a_dense_weight_as_pytorch_scales_its_linear_layer(path):
    """Dense stores (in, out), PyTorch's Linear (out, in): Muon's "original" scale,
    sqrt(max(1, rows/cols)), must see (out, in) for either, or a 5,408 -> 256 layer would
    step 4.6 times as far here as in PyTorch."""
    from tinygrad_opt.nn import Dense
    from tinygrad_opt.optim import Muon
    layer = Dense(8, 2, rng=0, dtype=np.float64)              # weight (8, 2): in, out
    linear = Tensor(layer.weight.data.T.copy(), requires_grad=True, dtype=np.float64)
    g = np.random.default_rng(1).standard_normal((8, 2))
    with reference(path == "reference"):
        for p, grad in ((layer.weight, g), (linear, g.T.copy())):
            opt = Muon([p], preset="torch", weight_decay=0.0, lr=0.1)
            p.grad = grad
            opt.step()
    np.testing.assert_allclose(layer.weight.data, linear.data.T, rtol=1e-12)
    step = np.abs(layer.weight.data - Dense(8, 2, rng=0, dtype=np.float64).weight.data)
    plain = Tensor(Dense(8, 2, rng=0, dtype=np.float64).weight.data, requires_grad=True,
                   dtype=np.float64)              # the same (8, 2) matrix, unmarked
    opt = Muon([plain], preset="torch", weight_decay=0.0, lr=0.1)
    plain.grad = g
    opt.step()
    moved = np.abs(plain.data - Dense(8, 2, rng=0, dtype=np.float64).weight.data)
    np.testing.assert_allclose(moved, 2.0 * step, rtol=1e-12)   # sqrt(8/2): the wrong scale


def _lamb_paper_transcribed(tensors, grads, lr, beta1, beta2, eps, decay):
    """You et al. 2019, Algorithm 2, with φ the identity, in plain Python floats one
    element at a time: the test of lamb.py's decay_in_ratio form, which no library
    ships."""
    import math
    m = [[0.0] * len(w) for w in tensors]
    v = [[0.0] * len(w) for w in tensors]
    for t, step in enumerate(grads, start=1):
        for k, (w, g) in enumerate(zip(tensors, step)):
            r = []
            for i in range(len(w)):
                m[k][i] = beta1 * m[k][i] + (1 - beta1) * g[i]
                v[k][i] = beta2 * v[k][i] + (1 - beta2) * g[i] ** 2
                m_hat, v_hat = m[k][i] / (1 - beta1 ** t), v[k][i] / (1 - beta2 ** t)
                r.append(m_hat / (math.sqrt(v_hat) + eps) + decay * w[i])
            w_norm = math.sqrt(sum(x * x for x in w))
            r_norm = math.sqrt(sum(x * x for x in r))
            ratio = w_norm / r_norm if w_norm > 0 and r_norm > 0 else 1.0
            for i in range(len(w)):
                w[i] -= lr * ratio * r[i]
    return tensors


@pytest.mark.parametrize("path", ["kernel", "reference"])
def test_lamb_paper_form_is_the_papers_algorithm(path):
    from tinygrad_opt.optim import Lamb
    rng = np.random.default_rng(3)
    starts = [rng.standard_normal(12), rng.standard_normal(5)]
    grads = [[rng.standard_normal(12), rng.standard_normal(5)] for _ in range(30)]
    params = [Tensor(s.copy(), requires_grad=True, dtype=np.float64) for s in starts]
    opt = Lamb(params, preset="paper", lr=0.01)
    assert (opt.hyper["weight_decay"], opt.hyper["eps"]) == (0.01, 1e-6)
    with reference(path == "reference"):
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g.copy()
            opt.step()
    want = _lamb_paper_transcribed([list(s) for s in starts], grads, 0.01, 0.9, 0.999,
                                   1e-6, 0.01)
    for p, w in zip(params, want):
        np.testing.assert_allclose(p.data, w, rtol=1e-12)
    keras_form = [Tensor(s.copy(), requires_grad=True, dtype=np.float64) for s in starts]
    opt = Lamb(keras_form, lr=0.01, eps=1e-6, weight_decay=0.01)   # decay before, outside
    for step in grads:
        for p, g in zip(keras_form, step):
            p.grad = g.copy()
        opt.step()
    assert not np.allclose(keras_form[0].data, want[0], rtol=1e-6)
