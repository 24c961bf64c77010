"""The optimizers: an independent pure-Python transcription of every formula against
both the numpy reference and the Numba kernel; hand-computed steps that pin the
conventions; convergence; saving; validation."""
import math

import numpy as np
import pytest

from tinygrad_opt import Tensor, reference
from tinygrad_opt.optim import (ARTICLE_METHODS, METHODS, SGD, Adadelta, Adagrad, Adam, RMSprop, FULL_BATCH,
                                get_method, lr_scheduler)


# --- independent transcriptions: plain Python floats, one element at a time -------------
def py_sgd(ws, gs, lr, momentum=0.0, nesterov=False):
    v = [0.0] * len(ws)
    for g in gs:
        for i in range(len(ws)):
            if momentum == 0.0:
                ws[i] = ws[i] - lr * g[i]
            else:
                v[i] = momentum * v[i] - lr * g[i]
                ws[i] = ws[i] + (momentum * v[i] - lr * g[i] if nesterov else v[i])
    return ws


def py_adagrad(ws, gs, lr, initial_accumulator_value, eps):
    a = [initial_accumulator_value] * len(ws)
    for g in gs:
        for i in range(len(ws)):
            a[i] = a[i] + g[i] ** 2
            ws[i] = ws[i] - lr * g[i] / math.sqrt(a[i] + eps)
    return ws


def py_rmsprop(ws, gs, lr, rho, eps):
    v = [0.0] * len(ws)
    for g in gs:
        for i in range(len(ws)):
            v[i] = rho * v[i] + (1 - rho) * g[i] ** 2
            ws[i] = ws[i] - lr * g[i] / math.sqrt(v[i] + eps)
    return ws


def py_adadelta(ws, gs, lr, rho, eps):
    s, u = [0.0] * len(ws), [0.0] * len(ws)
    for g in gs:
        for i in range(len(ws)):
            s[i] = rho * s[i] + (1 - rho) * g[i] ** 2
            d = math.sqrt(u[i] + eps) / math.sqrt(s[i] + eps) * g[i]
            u[i] = rho * u[i] + (1 - rho) * d ** 2
            ws[i] = ws[i] - lr * d
    return ws


def py_adam(ws, gs, lr, beta1, beta2, eps):
    m, v = [0.0] * len(ws), [0.0] * len(ws)
    for t, g in enumerate(gs, start=1):
        for i in range(len(ws)):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] ** 2
            alpha = lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
            ws[i] = ws[i] - alpha * m[i] / (math.sqrt(v[i]) + eps)
    return ws


CASES = [
    ("sgd", SGD, dict(lr=0.1), py_sgd),
    ("momentum", SGD, dict(lr=0.1, momentum=0.9), py_sgd),
    ("nesterov", SGD, dict(lr=0.1, momentum=0.9, nesterov=True), py_sgd),
    ("adagrad", Adagrad, dict(lr=0.1, initial_accumulator_value=0.1, eps=1e-3), py_adagrad),
    ("rmsprop", RMSprop, dict(lr=0.01, rho=0.9, eps=1e-3), py_rmsprop),
    ("adadelta", Adadelta, dict(lr=1.0, rho=0.95, eps=1e-3), py_adadelta),
    ("adam", Adam, dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-3), py_adam),
]


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
                                                              # the same order


def _steps(cls, hyper, grads, w=1.0):
    p = Tensor([w], requires_grad=True, dtype=np.float64)
    opt = cls([p], **hyper)
    out = []
    for g in grads:
        p.grad = np.array([g])
        opt.step()
        out.append(p.data[0])
    return out


def test_hand_computed_momentum_starts_from_zero_velocity():
    # v1 = -0.1 * 0.5 = -0.05, w1 = 0.95; v2 = 0.9 * -0.05 - 0.05 = -0.095, w2 = 0.855
    assert _steps(SGD, dict(lr=0.1, momentum=0.9), [0.5, 0.5]) == pytest.approx([0.95, 0.855])
    # Nesterov: w1 = 1 + 0.9 * -0.05 - 0.05
    assert _steps(SGD, dict(lr=0.1, momentum=0.9, nesterov=True), [0.5]) == pytest.approx([0.905])


def test_hand_computed_epsilon_placement():
    # Adagrad: a = 0.1 + 1 = 1.1; w = 1 - 0.1 / sqrt(1.1 + 0.1)   (eps inside the root)
    assert _steps(Adagrad, dict(lr=0.1, eps=0.1), [1.0])[0] == pytest.approx(
        0.9087129070824723, rel=1e-14)
    # RMSprop: v = 0.1; w = 1 - 0.1 / sqrt(0.1 + 0.1)   (eps inside, not sqrt(v) + eps)
    assert _steps(RMSprop, dict(lr=0.1, eps=0.1), [1.0])[0] == pytest.approx(
        0.7763932022500211, rel=1e-14)


def test_hand_computed_adam_bias_correction_at_t1():
    # m = 0.05, v = 0.00025, alpha_1 = 0.1 sqrt(0.001) / 0.1; eps outside the root
    assert _steps(Adam, dict(lr=0.1, eps=0.1), [0.5])[0] == pytest.approx(
        0.9863472940504185, rel=1e-14)
    # with eps tiny, the first Adam step is lr * sign(g), whatever the size of g
    assert _steps(Adam, dict(lr=0.1, eps=1e-12), [1e-3])[0] == pytest.approx(0.9, rel=1e-7)


def test_hand_computed_adadelta_order_of_accumulators():
    # s = 0.5; d = sqrt(0 + .1) / sqrt(.5 + .1); u = .5 d^2 = 1/12; w = 1 - d
    # then s = .75; d = sqrt(1/12 + .1) / sqrt(.85); w -= d
    assert _steps(Adadelta, dict(lr=1.0, rho=0.5, eps=0.1), [1.0, 1.0]) == pytest.approx(
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
    for _ in range(steps):
        p.grad = grad(p.data)
        opt.step()
    return p.data


@pytest.mark.parametrize("name", list(METHODS))
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


@pytest.mark.parametrize("name,cls,hyper,transcription", CASES, ids=[c[0] for c in CASES])
def test_state_dict_round_trip_continues_bit_for_bit(name, cls, hyper, transcription):
    rng = np.random.default_rng(2)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(8)]
    w0 = rng.standard_normal((4, 3))
    a = Tensor(w0, requires_grad=True)
    opt_a = cls([a], **hyper)
    for g in grads[:4]:
        a.grad = g
        opt_a.step()
    saved_w, saved = a.data.copy(), opt_a.state_dict()
    for g in grads[4:]:
        a.grad = g
        opt_a.step()
    b = Tensor(saved_w, requires_grad=True)
    opt_b = cls([b], lr=123.0)                    # other hyperparameters: restored too
    opt_b.load_state_dict(saved)
    assert opt_b.t == 4 and opt_b.hyper == opt_a.hyper
    for g in grads[4:]:
        b.grad = g
        opt_b.step()
    np.testing.assert_array_equal(a.data, b.data)


def test_load_state_dict_rejects_other_shapes():
    opt = Adam([Tensor(np.zeros(3), requires_grad=True)])
    saved = opt.state_dict()
    other = Adam([Tensor(np.zeros(4), requires_grad=True)], lr=0.5)
    with pytest.raises(ValueError, match=r"state 'm' of parameter 0 has shape \(4,\), got \(3,\)"):
        other.load_state_dict(saved)
    assert other.hyper["lr"] == 0.5 and other.t == 0      # a failed load changes nothing


BAD = [
    (SGD, dict(lr=-1), r"SGD: lr must be a finite number >= 0, got -1.0"),
    (SGD, dict(lr=float("inf")), r"SGD: lr must be a finite number >= 0, got inf"),
    (SGD, dict(lr=float("nan")), r"SGD: lr must be a number, got nan"),
    (SGD, dict(momentum=1.0), r"SGD: momentum must be in \[0, 1\), got 1.0"),
    (SGD, dict(momentum=-0.1), r"momentum must be in \[0, 1\), got -0.1"),
    (SGD, dict(nesterov=True), r"nesterov=True needs momentum > 0"),
    (Adagrad, dict(initial_accumulator_value=-0.1), r"initial_accumulator_value must be >= 0, got -0.1"),
    (Adagrad, dict(eps=0.0), r"Adagrad: eps must be a positive finite number, got 0.0"),
    (RMSprop, dict(rho=1.0), r"RMSprop: rho must be in \[0, 1\), got 1.0"),
    (RMSprop, dict(eps=-1e-7), r"eps must be a positive finite number, got -1e-07"),
    (Adadelta, dict(rho=1.5), r"Adadelta: rho must be in \[0, 1\), got 1.5"),
    (Adam, dict(beta1=1.0), r"Adam: beta1 must be in \[0, 1\), got 1.0"),
    (Adam, dict(beta2=-0.5), r"Adam: beta2 must be in \[0, 1\), got -0.5"),
    (Adam, dict(eps=float("nan")), r"Adam: eps must be a number, got nan"),
    (Adam, dict(preset="pytorch"), r"no preset .pytorch.; known: keras, torch, paper"),
    (SGD, dict(preset="paper"), r"SGD: no preset .paper. \(the papers give no step size or momentum\); known: keras"),
    (RMSprop, dict(preset="paper"), r"RMSprop: no preset .paper."),
    (Adagrad, dict(preset="paper"), r"Adagrad: no preset .paper."),
]


@pytest.mark.parametrize("cls,kwargs,message", BAD)
def test_bad_hyperparameters(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls([Tensor([1.0], requires_grad=True)], **kwargs)


def test_bad_parameters():
    with pytest.raises(ValueError, match="empty parameter list"):
        Adam([])
    with pytest.raises(TypeError, match="parameter 0 must be a Tensor of float32 or float64"):
        Adam([np.zeros(3)])


def test_nonfinite_gradient_raises_or_skips():
    p = Tensor([1.0, 2.0], requires_grad=True)
    opt = Adam([p])
    p.grad = np.array([np.nan, 1.0], dtype=np.float32)
    with pytest.raises(FloatingPointError, match=r"parameter 0 \(shape \(2,\)\) has 1 NaN or inf values at step 1"):
        opt.step()
    assert opt.t == 0 and p.data.tolist() == [1.0, 2.0]
    skipping = Adam([p], nonfinite="skip")
    p.grad = np.array([np.inf, 1.0], dtype=np.float32)
    skipping.step()
    assert skipping.skipped_steps == 1 and skipping.t == 0 and p.data.tolist() == [1.0, 2.0]


def test_presets_defaults_and_repr():
    p = [Tensor([1.0], requires_grad=True)]
    decay = dict(weight_decay=0.0, decoupled_weight_decay=True)     # Keras' convention
    assert Adam(p).hyper == dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7, amsgrad=False,
                                 eps_inside_correction=False, **decay)
    assert Adam(p, preset="paper").hyper["eps"] == 1e-8
    assert Adadelta(p, preset="paper").hyper == dict(lr=1.0, rho=0.95, eps=1e-6,
                                                     weight_decay=0.0,
                                                     decoupled_weight_decay=False)
    assert Adadelta(p).hyper == dict(lr=0.001, rho=0.95, eps=1e-7, **decay)
    assert repr(RMSprop(p)) == ("RMSprop(weight_decay=0, decoupled_weight_decay=True, "
                                "lr=0.001, rho=0.9, eps=1e-07, momentum=0, centered=False, "
                                "eps_in_sqrt=True, velocity_holds_lr=True)")
    assert all(type(v) in (float, bool) for v in SGD(p, lr=np.float64(0.1)).hyper.values())


def test_registry_of_the_eight_methods_and_those_after():
    assert list(ARTICLE_METHODS) == ["gd", "sgd", "minibatch", "momentum", "adagrad",
                                     "rmsprop", "adadelta", "adam"]
    assert list(METHODS) == list(ARTICLE_METHODS) + ["nesterov", "amsgrad", "adamw", "nadam",
                                                     "radam", "lion", "muon"]
    assert all(METHODS[m].batch_size == 64 and METHODS[m].article_row is None
               for m in list(METHODS)[8:])
    assert METHODS["gd"].batch_size is FULL_BATCH and METHODS["sgd"].batch_size == 1
    assert all(METHODS[m].batch_size == 64 for m in list(METHODS)[2:])
    p = [Tensor([1.0], requires_grad=True)]
    assert METHODS["momentum"].make(p).hyper == dict(lr=0.001, momentum=0.9, nesterov=False,
                                                     velocity_holds_lr=True,
                                                     weight_decay=0.0,
                                                     decoupled_weight_decay=True)
    assert METHODS["minibatch"].make(p).hyper["lr"] == 0.01
    assert isinstance(METHODS["adam"].make(p), Adam)
    with pytest.raises(ValueError, match="unknown method 'adamax'; known: gd, sgd, minibatch"):
        get_method("adamax")


def _one_sample_dense_grad(rate_zero=0.5, dtype=np.float32, seed=0):
    """A dense layer's weight and its one-sample gradient (autograd.Outer), with a share
    of zero inputs as relu and dropout leave them."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 40)).astype(dtype)
    x[0, rng.random(40) < rate_zero] = 0
    w = Tensor(rng.standard_normal((40, 7)).astype(dtype), requires_grad=True, dtype=dtype)
    (Tensor(x, dtype=dtype) @ w).backward(rng.standard_normal((1, 7)).astype(dtype))
    return w


@pytest.mark.parametrize("make", [lambda ps: SGD(ps), lambda ps: SGD(ps, momentum=0.9),
                                  Adam], ids=["sgd", "momentum", "adam"])
def test_factored_gradient_updates_equal_the_dense_ones(make):
    """Plain SGD applies an Outer gradient without building it; the result is the dense
    update's, bit for bit (other rules build the array first)."""
    from tinygrad_opt.autograd import Outer
    for dtype in (np.float32, np.float64):
        factored, dense = _one_sample_dense_grad(dtype=dtype), _one_sample_dense_grad(
            dtype=dtype)
        assert isinstance(factored.stored_grad, Outer)
        dense.grad = dense.grad.copy()                      # an ordinary array
        for w in (factored, dense):
            make([w]).step()
        np.testing.assert_array_equal(factored.data, dense.data)


def test_factored_gradient_nonfinite_values_and_overflow_are_caught():
    from tinygrad_opt.autograd import Outer
    w = _one_sample_dense_grad()
    w.stored_grad.row[2] = np.inf
    with pytest.raises(FloatingPointError, match="40 NaN or inf values"):
        SGD([w]).step()
    w = _one_sample_dense_grad(rate_zero=0.0)
    before = w.data.copy()
    w.grad = Outer(np.full(40, 1e20, np.float32), np.full(7, 1e20, np.float32))
    opt = SGD([w], nonfinite="skip")           # finite factors, overflowing products
    opt.step()
    assert opt.skipped_steps == 1 and opt.t == 0
    np.testing.assert_array_equal(w.data, before)


# --- the API refuses what would corrupt memory or training ---------------------------------
@pytest.mark.parametrize("grad,message", [
    (np.zeros(1, np.float32), r"gradient of parameter 1 is ndarray of shape \(1,\) and dtype "
                              r"float32; the parameter has shape \(1000,\)"),
    (np.zeros((1000, 1), np.float32), r"parameter 1 .* shape \(1000, 1\)"),
    (np.zeros(1000, np.float64), r"parameter 1 .* dtype float64; the parameter has shape "
                                 r"\(1000,\) and dtype float32"),
    ([0.0] * 1000, r"parameter 1 is list"),
])
@pytest.mark.parametrize("cls", [SGD, Adam])
def test_gradient_of_another_shape_or_dtype_is_refused(cls, grad, message):
    """A 1-element gradient for a big parameter once made the kernels read past its end:
    silent garbage, or a segmentation fault for 30M elements."""
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(1000), requires_grad=True)
    opt = cls([a, b])
    a.grad, b.grad = np.ones(3, np.float32), grad
    with pytest.raises(ValueError, match=message):
        opt.step()
    assert opt.t == 0 and a.data.tolist() == [1.0] * 3 and (b.data == 1).all()


def test_the_same_tensor_twice_is_refused():
    p, q = Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"parameter 2 is the same Tensor as parameter 0"):
        SGD([p, q, p])


@pytest.mark.parametrize("cls,kwargs,message", [
    (SGD, dict(lr=True), r"SGD: lr must be a number, got True"),
    (Adam, dict(eps=np.bool_(True)), r"Adam: eps must be a number, got (np.)?True"),
    (SGD, dict(momentum=0.9, nesterov=1.0), r"SGD: nesterov must be True or False, got 1.0"),
    (Adam, dict(lr="0.1"), r"Adam: lr must be a number, got '0.1'"),
])
def test_booleans_are_not_numbers_nor_numbers_switches(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls([Tensor([1.0], requires_grad=True)], **kwargs)


@pytest.mark.parametrize("change,message", [
    (lambda s: s["state"][0]["m"].__setitem__(1, np.nan), r"state 'm' of parameter 0 holds 1 NaN"),
    (lambda s: s["state"][0].__setitem__("v", np.zeros(2)), r"state 'v' of parameter 0 has shape \(3,\), got \(2,\)"),
    (lambda s: s["param_groups"][0].__setitem__("lr", True), r"lr must be a number, got True"),
    (lambda s: s["param_groups"][0].__setitem__("lr", float("nan")), r"lr must be a number, got nan"),
    (lambda s: s.__setitem__("t", -1), r"t must be a whole number >= 0, got -1"),
    (lambda s: s["param_groups"][0].pop("eps"), r"hyperparameters \['amsgrad', 'beta1', 'beta2', 'decoupled_weight_decay', 'eps_inside_correction', 'lr', 'weight_decay'\] saved"),
])
def test_a_bad_optimizer_state_is_refused_and_changes_nothing(change, message):
    p = Tensor(np.ones(3), requires_grad=True)
    opt = Adam([p], lr=0.5)
    p.grad = np.ones(3, np.float32)
    opt.step()
    saved = opt.state_dict()
    before = opt.state_dict()
    change(saved)
    with pytest.raises((ValueError, KeyError), match=message):
        opt.load_state_dict(saved)
    after = opt.state_dict()
    assert after["t"] == before["t"] == 1 and after["param_groups"] == before["param_groups"]
    for k in ("m", "v"):
        np.testing.assert_array_equal(after["state"][0][k], before["state"][0][k])


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


def test_clip_grad_norm_and_value():
    from tinygrad_opt.nn.utils import clip_grad_norm_, clip_grad_value_
    a, b = Tensor(np.zeros(2), requires_grad=True), Tensor(np.zeros(2), requires_grad=True)
    a.grad, b.grad = np.array([3.0, 0.0], np.float32), np.array([0.0, 4.0], np.float32)
    assert clip_grad_norm_([a, b], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad, b.grad]), [0.6, 0, 0, 0.8], rtol=1e-5)
    assert clip_grad_norm_([a, b], 10.0) == pytest.approx(1.0, rel=1e-5)   # under: as is
    np.testing.assert_allclose(a.grad, [0.6, 0], rtol=1e-5)
    a.grad = np.array([np.nan, 1.0], np.float32)
    assert math.isnan(clip_grad_norm_([a, b], 1.0))      # reported, nothing scaled
    assert b.grad.tolist() == pytest.approx([0.0, 0.8])
    b.grad = np.array([-3.0, 0.5], np.float32)
    clip_grad_value_([b], 1.0)
    assert b.grad.tolist() == [-1.0, 0.5]
    assert clip_grad_norm_([b], 0.5, norm_type=math.inf) == pytest.approx(1.0)


def test_pytorch_and_keras_spellings_and_a_checked_lr():
    """The learning rate could only be changed through the undocumented opt.hyper["lr"],
    which accepted -5.0."""
    p = [Tensor([1.0], requires_grad=True)]
    assert Adam(p, betas=(0.8, 0.99)).hyper == dict(lr=0.001, beta1=0.8, beta2=0.99, eps=1e-7,
                                                    amsgrad=False, eps_inside_correction=False,
                                                    weight_decay=0.0,
                                                    decoupled_weight_decay=True)
    assert RMSprop(p, learning_rate=0.01).lr == 0.01 and SGD(p, learning_rate=0.1).lr == 0.1
    with pytest.raises(ValueError, match="lr=0.1 and learning_rate=0.2 disagree"):
        Adam(p, lr=0.1, learning_rate=0.2)
    with pytest.raises(ValueError, match="betas=.0.8, 0.99. and beta1=0.9, beta2=None disagree"):
        Adam(p, beta1=0.9, betas=(0.8, 0.99))
    opt = Adam(p)
    opt.lr = 0.5 * opt.lr
    assert opt.lr == 0.0005 and opt.hyper["lr"] == 0.0005
    for bad in (-5.0, True, float("nan")):
        with pytest.raises(ValueError, match="lr must be"):
            opt.lr = bad
    assert opt.lr == 0.0005


# --- parameter groups, weight decay, conventions -------------------------------------
def test_parameter_groups_take_their_own_hyperparameters():
    a = Tensor(np.ones(3), requires_grad=True, dtype=np.float64)
    b = Tensor(np.ones(2), requires_grad=True, dtype=np.float64)
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[0]["momentum"] == 0.0
    a.grad, b.grad = np.ones(3), np.ones(2)
    opt.step()
    np.testing.assert_allclose(a.data, 0.9)
    np.testing.assert_allclose(b.data, 0.5)       # Keras' momentum: v = -0.5, w += v
    with pytest.raises(AttributeError, match="2 parameter groups; use param_groups"):
        opt.lr
    state = opt.state_dict()
    assert [g["params"] for g in state["param_groups"]] == [[0], [1]]
    other = SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.state[1]["v"], opt.state[1]["v"])
    with pytest.raises(ValueError, match=r"groups of \[1, 1\] parameters saved"):
        SGD([a, b]).load_state_dict(state)


@pytest.mark.parametrize("change,message", [
    (lambda g: g.__setitem__("lr", -0.1), r"param_groups\[0\]: SGD: lr must be a finite number >= 0, got -0.1"),
    (lambda g: g.__setitem__("lr", "0.1"), r"param_groups\[0\]: SGD: lr must be a number, got '0.1'"),
    (lambda g: g.__setitem__("learning_rte", 0.1), r"param_groups\[0\] has keys .*learning_rte"),
    (lambda g: g["params"].append(Tensor([1.0], requires_grad=True)), r"param_groups\[0\]\['params'\] was changed; add parameters with add_param_group"),
])
def test_a_group_changed_badly_is_refused_at_the_next_step(change, message):
    """What a schedule (or a user) writes into param_groups is checked at step()."""
    p = Tensor(np.ones(2), requires_grad=True)
    opt = SGD([p], lr=0.1)
    p.grad = np.ones(2, np.float32)
    opt.step()
    change(opt.param_groups[0])
    with pytest.raises(ValueError, match=message):
        opt.step()
    np.testing.assert_allclose(p.data, 0.9)       # nothing changed


def test_group_keys_and_mixtures_are_refused_when_built():
    p = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="parameter group 0 has unknown key.*betas1"):
        Adam([{"params": [p], "betas1": 0.9}])
    with pytest.raises(TypeError, match="all Tensors or all dicts"):
        Adam([p, {"params": [Tensor([1.0], requires_grad=True)]}])
    with pytest.raises(ValueError, match="parameter 1 is the same Tensor as parameter 0"):
        Adam([{"params": [p]}, {"params": [p]}])
    with pytest.raises(TypeError, match="unknown hyperparameter.*momentum"):
        Adam([p], momentum=0.9)


def test_add_param_group_joins_the_next_step():
    a, b = (Tensor(np.ones(2), requires_grad=True, dtype=np.float64) for _ in range(2))
    opt = Adam([a], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 0.01})
    a.grad, b.grad = np.ones(2), np.ones(2)
    opt.step()
    assert len(opt.state) == 2 and opt.param_groups[1]["lr"] == 0.01
    assert 1 - b.data[0] == pytest.approx(0.01, rel=1e-3) and 1 - a.data[0] == pytest.approx(0.1, rel=1e-3)


def test_weight_decay_coupled_and_decoupled():
    """optimizer.py's two forms, by hand: for SGD the same step, for Adam not."""
    def one(cls, decoupled, **hyper):
        p = Tensor([2.0], requires_grad=True, dtype=np.float64)
        opt = cls([p], weight_decay=0.1, decoupled_weight_decay=decoupled, **hyper)
        p.grad = np.array([0.5])
        opt.step()
        return p.data[0]
    assert one(SGD, False, lr=0.1) == pytest.approx(2 - 0.1 * (0.5 + 0.1 * 2))
    assert one(SGD, True, lr=0.1) == pytest.approx(2 * (1 - 0.1 * 0.1) - 0.1 * 0.5)
    # Adam's first step is lr·sign(g) whatever g is: the coupled decay vanishes into the
    # normalisation (it only changes g's size), the decoupled one does not
    coupled = one(Adam, False, lr=0.1, eps=1e-12)
    decoupled = one(Adam, True, lr=0.1, eps=1e-12)
    assert coupled == pytest.approx(2 - 0.1)
    assert decoupled == pytest.approx(2 * (1 - 0.01) - 0.1)


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


def test_presets_a_rule_lacks_are_refused_with_the_reason():
    from tinygrad_opt.optim import Lion, Muon, RAdam
    p = [Tensor([1.0], requires_grad=True)]
    with pytest.raises(ValueError, match=r"Lion: no preset 'torch' \(PyTorch 2.13 ships no Lion\)"):
        Lion(p, preset="torch")
    with pytest.raises(ValueError, match=r"RAdam: no preset 'keras' \(Keras 3.15 ships no RAdam\)"):
        RAdam(p, preset="keras")
    assert RAdam(p).preset == "torch" and Muon(p).preset == "keras" and Lion(p).preset == "keras"


SCHEDULE_MAKERS = {
    "StepLR": lambda o: lr_scheduler.StepLR(o, 3, 0.5),
    "MultiStepLR": lambda o: lr_scheduler.MultiStepLR(o, [2, 5], 0.5),
    "ExponentialLR": lambda o: lr_scheduler.ExponentialLR(o, 0.9),
    "CosineAnnealingLR": lambda o: lr_scheduler.CosineAnnealingLR(o, 6, 0.01),
    "LinearLR": lambda o: lr_scheduler.LinearLR(o, 0.1, 1.0, 8),
    "OneCycleLR": lambda o: lr_scheduler.OneCycleLR(o, 1.0, total_steps=30),
    "LambdaLR": lambda o: lr_scheduler.LambdaLR(o, lambda t: 0.9 ** t),
    "SequentialLR": lambda o: lr_scheduler.SequentialLR(
        o, [lr_scheduler.LinearLR(o, 0.5, total_iters=3),
            lr_scheduler.ExponentialLR(o, 0.8)], [3]),
}


@pytest.mark.parametrize("name", sorted(SCHEDULE_MAKERS))
def test_a_schedule_restored_from_its_state_dict_continues_the_same(name):
    import os
    import tempfile
    from tinygrad_opt.store import load_checkpoint, save_checkpoint

    def fresh():
        p = Tensor(np.zeros(1), requires_grad=True, dtype=np.float64)
        opt = SGD([p], lr=0.1, momentum=0.5)
        return opt, SCHEDULE_MAKERS[name](opt)
    opt, sched = fresh()
    for _ in range(7):
        sched.step()
    with tempfile.TemporaryDirectory() as d:       # through the checkpoint format
        path = os.path.join(d, "s.npz")
        save_checkpoint(path, dict(o=opt.state_dict(), s=sched.state_dict()))
        saved = load_checkpoint(path)
    opt2, sched2 = fresh()
    opt2.load_state_dict(saved["o"])
    sched2.load_state_dict(saved["s"])
    for _ in range(10):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr() and opt2.lr == opt.lr


@pytest.mark.parametrize("make,message", [
    (lambda o: lr_scheduler.StepLR(o, 0), r"StepLR: step_size must be a whole number >= 1, got 0"),
    (lambda o: lr_scheduler.ExponentialLR(o, -0.5), r"ExponentialLR: gamma must be a number in \(0, inf\], got -0.5"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0), r"LinearLR: start_factor must be a number in \(0, 1\]"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=2.5), r"T_max must be a whole number >= 1, got 2.5"),
    (lambda o: lr_scheduler.OneCycleLR(o, 0.1), r"give total_steps, or epochs and steps_per_epoch"),
    (lambda o: lr_scheduler.OneCycleLR(o, 0.1, 10, anneal_strategy="cosine"), r"anneal_strategy must be 'cos' or 'linear'"),
    (lambda o: lr_scheduler.OneCycleLR(o, [0.1, 0.2], 10), r"max_lr needs one value per parameter group \(1\), got 2"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), r"factor must be < 1"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.StepLR(o, 2)], [3]), r"1 schedules need 0 milestones, got 1"),
    (lambda o: lr_scheduler.StepLR("adam", 2), r"StepLR: str is not an Optimizer"),
])
def test_bad_schedule_arguments(make, message):
    opt = SGD([Tensor([1.0], requires_grad=True)], lr=0.1)
    with pytest.raises((ValueError, TypeError), match=message):
        make(opt)


def test_closed_forms_agree_with_the_recursive_updates():
    """The recursive updates (PyTorch's) and the plain formulas (`closed_form`) name the
    same schedule."""
    for name in ("StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR"):
        opt = SGD([Tensor([1.0], requires_grad=True)], lr=0.1)
        sched = SCHEDULE_MAKERS[name](opt)
        for _ in range(20):
            sched.step()
            assert sched.closed_form() == pytest.approx(sched.get_last_lr(), rel=1e-12), name


def _all_rule_configs():
    from tinygrad_opt.optim import AdamW, Lion, Muon, NAdam, RAdam
    return {
        "sgd_torch_nesterov_wd": (SGD, dict(lr=0.1, momentum=0.9, nesterov=True, preset="torch",
                                            weight_decay=0.01)),
        "adagrad_torch": (Adagrad, dict(preset="torch", lr=0.1)),
        "rmsprop_torch_wd": (RMSprop, dict(preset="torch", weight_decay=0.1)),
        "adam_torch_amsgrad": (Adam, dict(preset="torch", amsgrad=True, lr=0.01)),
        "adam_keras_amsgrad_decoupled": (Adam, dict(amsgrad=True, lr=0.01, weight_decay=0.1)),
        "adamw_torch": (AdamW, dict(preset="torch")),
        "nadam": (NAdam, dict(lr=0.01)),
        "nadam_torch": (NAdam, dict(preset="torch")),
        "radam": (RAdam, dict(lr=0.01)),
        "lion_wd": (Lion, dict(weight_decay=0.1)),
        "muon_torch": (Muon, dict(lr=0.02, preset="torch")),
        "muon_keras": (Muon, dict(lr=0.02, preset="keras")),
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


def test_a_refused_param_group_adds_nothing():
    a, b = (Tensor(np.ones(2), requires_grad=True) for _ in range(2))
    opt = Adam([a])
    with pytest.raises(ValueError, match="parameter 2 is the same Tensor as parameter 0"):
        opt.add_param_group({"params": [b, a]})
    assert len(opt.params) == 1 and len(opt.state) == 1 and len(opt.param_groups) == 1
    a.grad = np.ones(2, np.float32)
    opt.step()                                  # still steps, as before the refusal


def test_an_optimizer_state_saved_by_the_previous_version_loads():
    """Before parameter groups, state_dict held one "hyperparameters" dict, without the
    keys added since (weight decay, amsgrad): it loads, with those keys at their
    defaults, which do what the old rule did."""
    p = Tensor(np.ones(3), requires_grad=True)
    old = {"t": 2, "skipped_steps": 0,
           "hyperparameters": dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-7),
           "state": [{"m": np.full(3, 0.5, np.float32), "v": np.full(3, 0.25, np.float32)}]}
    opt = Adam([p])
    opt.load_state_dict(old)
    assert opt.t == 2 and opt.lr == 0.01 and opt.param_groups[0]["weight_decay"] == 0.0
    assert opt.param_groups[0]["amsgrad"] is False
    np.testing.assert_array_equal(opt.state[0]["m"], 0.5)
