"""Every Numba kernel equals its numpy reference, on odd shapes, in float32 and float64."""
import os
import subprocess
import sys
import numpy as np
import pytest

from tinygrad_opt import Tensor, jit, reference
from tinygrad_opt.threads import POLICY
from tinygrad_opt.ops import conv, dropout, pool

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}

# (N, C, H, W), (F, KH, KW), stride, padding
CONV_CASES = [
    ((1, 1, 5, 5), (1, 3, 3), 1, 0),
    ((2, 3, 7, 11), (5, 3, 2), 1, 0),
    ((3, 2, 13, 7), (7, 3, 3), 2, 0),
    ((1, 3, 5, 7), (2, 3, 3), 1, 1),
    ((2, 1, 11, 13), (3, 5, 3), 2, 1),
    ((4, 1, 28, 28), (32, 3, 3), 1, 0),     # the article's layer
    ((3, 3, 12, 14), (4, 5, 5), 1, 2),      # LeNet-5's shape of kernel; 3 channels: one
    ((2, 2, 9, 10), (3, 3, 7), 1, 0),       # unpaired in the input gradient; 7 taps a row
    ((2, 3, 4, 4), (2, 1, 1), 1, 0),        # 1x1
    ((2, 2, 5, 6), (3, 5, 6), 1, 0),        # the kernel covers the input: one output pixel
]


def _data(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("xs,ws,stride,pad", CONV_CASES)
def test_conv_kernels_match_reference(xs, ws, stride, pad, dtype):
    x = np.pad(_data(xs, dtype, 0), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    w = _data((ws[0], xs[1], ws[1], ws[2]), dtype, 1)
    b = _data(ws[0], dtype, 2)
    for relu in (False, True):
        got = conv.conv2d_forward_kernel(x, w, b, stride, relu)
        want = conv.conv2d_forward_reference(x, w, b, stride, relu)
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, **TOL[dtype])
    g = _data(got.shape, dtype, 3)
    np.testing.assert_allclose(conv.conv2d_grad_weight_kernel(x, g, ws[1], ws[2], stride),
                               conv.conv2d_grad_weight_reference(x, g, ws[1], ws[2], stride),
                               **TOL[dtype])
    np.testing.assert_allclose(conv.conv2d_grad_input_kernel(g, w, x.shape, stride),
                               conv.conv2d_grad_input_reference(g, w, x.shape, stride),
                               **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,k,s", [((1, 1, 4, 4), 2, 2), ((2, 3, 7, 5), 2, 2),
                                       ((3, 2, 11, 13), 3, 2), ((2, 5, 9, 9), 3, 1),
                                       ((4, 32, 26, 26), 2, 2)])
def test_maxpool_kernels_match_reference(shape, k, s, dtype):
    x = _data(shape, dtype, 4)
    x[0, 0, :2, :2] = 1.5          # a tie: the first pixel in window order must win
    out_k, arg_k = pool.maxpool2d_forward_kernel(x, k, s)
    out_r, arg_r = pool.maxpool2d_forward_reference(x, k, s)
    np.testing.assert_array_equal(out_k, out_r)
    np.testing.assert_array_equal(arg_k, arg_r)
    g = _data(out_k.shape, dtype, 5)
    np.testing.assert_allclose(pool.maxpool2d_backward_kernel(g, arg_k, shape),
                               pool.maxpool2d_backward_reference(g, arg_r, shape),
                               **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(1,), (7, 13), (64, 32, 13, 13)])
def test_dropout_kernel_matches_reference(shape, dtype):
    x = _data(shape, dtype, 6)
    for rate in (0.25, 0.5):
        key = dropout.dropout_key(11, 3)
        np.testing.assert_array_equal(dropout.dropout_kernel(x, rate, key),
                                      dropout.dropout_reference(x, rate, key))


def test_dropout_mask_statistics_and_keys():
    x = np.ones(200_000, dtype=np.float32)
    a = dropout.dropout_kernel(x, 0.25, dropout.dropout_key(0, 0))
    b = dropout.dropout_kernel(x, 0.25, dropout.dropout_key(0, 1))
    assert abs((a == 0).mean() - 0.25) < 0.005           # the rate
    assert abs(a.mean() - 1.0) < 0.01                    # inverted scaling keeps the mean
    assert np.unique(a[a != 0]).tolist() == [np.float32(1 / 0.75)]
    assert abs(((a == 0) & (b == 0)).mean() - 0.25 ** 2) < 0.005   # keys independent


def test_reference_switch_routes_ops(monkeypatch):
    from tinygrad_opt import Tensor
    from tinygrad_opt.nn import functional as F
    calls = []
    for module, name in [(conv, "conv2d_forward_reference"), (pool, "maxpool2d_forward_reference")]:
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
    x = Tensor(_data((2, 1, 6, 6), np.float64, 7), dtype=np.float64)
    w = Tensor(_data((3, 1, 3, 3), np.float64, 8), dtype=np.float64)
    b = Tensor(np.zeros(3), dtype=np.float64)
    fast = F.max_pool2d(F.conv2d(x, w, b, relu=True)).data
    assert calls == []                                  # kernels by default
    with reference():
        slow = F.max_pool2d(F.conv2d(x, w, b, relu=True)).data
    assert calls == ["conv2d_forward_reference", "maxpool2d_forward_reference"]
    np.testing.assert_allclose(fast, slow, rtol=1e-12)
    assert not jit.use_reference()                    # restored on leaving


def test_the_fused_block_and_linear_honour_the_switch_too(monkeypatch):
    """They once ignored it: the layer, not the op, decided, and LinearFn's one-sample
    gradient stayed factored."""
    from tinygrad_opt import Tensor
    from tinygrad_opt.autograd import Outer
    from tinygrad_opt.models import article_cnn
    from tinygrad_opt.nn.functional import softmax_cross_entropy
    from tinygrad_opt.ops import fused, matmul
    calls = []
    for module, name in [(fused, "conv_pool_dropout_reference"),
                         (fused, "conv_pool_dropout_backward_reference"),
                         (matmul, "linear_reference")]:
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
    model = article_cnn(seed=0)
    x = Tensor(_data((1, 1, 28, 28), np.float32, 16))
    with reference():
        softmax_cross_entropy(model(x), np.array([3])).backward()
    assert calls == ["conv_pool_dropout_reference", "linear_reference", "linear_reference",
                     "conv_pool_dropout_backward_reference"]
    assert not any(isinstance(p.stored_grad, Outer) for p in model.parameters())


@pytest.mark.parametrize("method", ["minibatch", "sgd", "momentum", "adagrad", "rmsprop",
                                    "adadelta", "adam"])
def test_the_article_model_trains_the_same_both_ways(method):
    """Three steps of the article's model with each method's optimizer, on the kernels
    and under `with reference()`: the same losses and weights, to float32 rounding."""
    from tinygrad_opt import Tensor
    from tinygrad_opt.models import article_cnn
    from tinygrad_opt.nn.functional import softmax_cross_entropy
    from tinygrad_opt.optim import METHODS
    batch = 1 if method == "sgd" else 16
    rng = np.random.default_rng(17)
    data = [(rng.random((batch, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, batch))
            for _ in range(3)]
    runs = []
    for use_reference in (False, True):
        with reference(use_reference):
            model = article_cnn(seed=0)
            opt = METHODS[method].make(model.parameters())
            losses = []
            for x, y in data:
                loss = softmax_cross_entropy(model(Tensor(x)), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
        runs.append((losses, [p.data for p in model.parameters()]))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-5)
    for fast, slow in zip(runs[0][1], runs[1][1]):
        np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-6)


# (N, C, H, W), (F, KH, KW), pool size, pool stride: the last case is big enough for the
# fused kernels' parallel paths
FUSED_CASES = [((1, 1, 6, 6), (2, 3, 3), 2, 2), ((3, 3, 9, 8), (4, 2, 3), 2, 2),
               ((2, 2, 11, 10), (3, 3, 3), 3, 2), ((2, 1, 8, 9), (2, 3, 2), 2, 1),
               ((48, 3, 16, 16), (16, 3, 3), 2, 2)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("xs,ws,k,s", FUSED_CASES)
def test_fused_block_matches_the_unfused_references(xs, ws, k, s, dtype):
    """Forward and backward against the chained numpy references, and against the
    unfused ops (conv with relu, max-pool, dropout) run through autograd."""
    from tinygrad_opt import Tensor
    from tinygrad_opt.ops import fused
    from tinygrad_opt.ops.conv import Conv2DFn
    from tinygrad_opt.ops.dropout import DropoutFn
    from tinygrad_opt.ops.pool import MaxPool2DFn
    x, w, b = _data(xs, dtype, 9), _data((ws[0], xs[1], ws[1], ws[2]), dtype, 10), \
        _data(ws[0], dtype, 11) * 0.3
    key = dropout.dropout_key(5, 2)
    for rate in (0.0, 0.25):
        got = fused.ConvPoolDropoutFn.forward(_Ctx(), x, w, b, k, s, rate, key)
        np.testing.assert_allclose(got, fused.conv_pool_dropout_reference(x, w, b, k, s,
                                                                          rate, key),
                                   **TOL[dtype])
    g = _data(got.shape, dtype, 12)
    want = fused.conv_pool_dropout_backward_reference(x, w, b, g, k, s, 0.25, key)
    grads = []
    for use_fused in (True, False):
        ts = [Tensor(a, requires_grad=True, dtype=dtype) for a in (x, w, b)]
        if use_fused:
            out = fused.ConvPoolDropoutFn.apply(*ts, pool_size=k, pool_stride=s, rate=0.25,
                                                key=key)
        else:
            out = Conv2DFn.apply(*ts, relu=True)
            out = MaxPool2DFn.apply(out, pool_size=k, stride=s)
            out = DropoutFn.apply(out, rate=0.25, key=key)
        (out * Tensor(g, dtype=dtype)).sum().backward()
        grads.append([t.grad for t in ts])
    for got_fused, got_unfused, expected in zip(*grads, want):
        np.testing.assert_allclose(got_fused, expected, **TOL[dtype])
        np.testing.assert_allclose(got_unfused, expected, **TOL[dtype])


class _Ctx:
    needs_input_grad = (True, True, True)

    def save_for_backward(self, *values):
        pass


def test_serial_and_parallel_builds_are_cached_apart(tmp_path):
    """Numba files a cached function under its name, not its options: the two builds of a
    kernel must not load each other's code (the parallel one once ran serially)."""
    import subprocess
    import sys
    code = ("import numpy as np, numba\n"
            "from tinygrad_opt.optim.sgd import _sgd_kernel as k\n"
            "for n in (10, 1 << 16):\n"
            "    w, g = np.ones(n, np.float32), np.ones(n, np.float32)\n"
            "    k(w, g, np.float32(0.5))\n"
            "print(numba.threading_layer())\n")
    env = dict(__import__("os").environ, NUMBA_CACHE_DIR=str(tmp_path))
    for _ in range(2):             # compile and save both builds, then load both
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True)
        assert run.returncode == 0, run.stderr      # raises if no parallel code ran


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_one_sample_linear_kernel_matches_reference(dtype):
    from tinygrad_opt import Tensor
    from tinygrad_opt.ops.matmul import LinearFn, linear_reference
    x, w, b = _data((1, 300), dtype, 13), _data((300, 17), dtype, 14), _data(17, dtype, 15)
    x[0, ::3] = 0                                       # the zeros relu and dropout leave
    got = LinearFn.apply(Tensor(x, dtype=dtype), Tensor(w, dtype=dtype), Tensor(b, dtype=dtype))
    np.testing.assert_allclose(got.data, linear_reference(x, w, b), **TOL[dtype])
    assert got.dtype == dtype and got.shape == (1, 17)


def _python_without_the_policy(code, **variables):
    """The output of `python -c code` in an environment without the policy's variables
    (but those given)."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in POLICY}
    out = subprocess.run([sys.executable, "-c", code], env=dict(env, **variables),
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_importing_the_package_changes_no_environment_variable():
    """Importing it once set OPENBLAS_THREAD_TIMEOUT and OMP_WAIT_POLICY, which took effect
    only when it came before numpy."""
    code = ("import os, json; before = dict(os.environ); import tinygrad_opt, "
            "tinygrad_opt.train, tinygrad_opt.cli; print(json.dumps(dict(os.environ) == before))")
    assert _python_without_the_policy(code) == "true"


def test_the_thread_policy_holds_whatever_was_imported_first(tmp_path):
    """numpy imported first: the entry point's call restarts the process with the policy
    set, so that OpenBLAS reads it; a variable the user set is kept."""
    import os
    import subprocess
    import sys
    script = tmp_path / "entry.py"
    script.write_text(
        "import numpy, os, sys\n"                   # numpy first, as users do
        "from tinygrad_opt import use_sleeping_threads\n"
        "late = use_sleeping_threads(reexec=True)\n"
        "print(late, os.environ['OPENBLAS_THREAD_TIMEOUT'], os.environ['OMP_WAIT_POLICY'],\n"
        "      os.environ['GOMP_SPINCOUNT'], sys.argv[1:])\n")
    env = {k: v for k, v in os.environ.items() if k not in POLICY}
    out = subprocess.run([sys.executable, str(script), "--an", "argument"], env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[] 4 PASSIVE 30000 ['--an', 'argument']"]  # one run,
    env["OPENBLAS_THREAD_TIMEOUT"] = "12"                                    # restarted
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.splitlines() == ["[] 12 PASSIVE 30000 []"]
    code = ("import numpy, os; from tinygrad_opt import use_sleeping_threads; "
            "print(use_sleeping_threads(), os.environ.get('GOMP_SPINCOUNT'))")
    env.pop("OPENBLAS_THREAD_TIMEOUT")                  # without reexec: it says so, and
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)         # Numba's threads must not spin
    assert out.stdout.strip() == "['OPENBLAS_THREAD_TIMEOUT'] None"   # beside OpenBLAS's


def test_a_program_of_kernels_between_blas_products_asks_idle_threads_not_to_spin():
    """The transformer's kernels alternate with BLAS products: Numba's idle threads
    spinning after each kernel take a core from OpenBLAS's (docs/performance.md,
    2026-12-07): its entry point asks for spin=0; a GOMP_SPINCOUNT the user set is kept."""
    code = ("from tinygrad_opt import use_sleeping_threads; import os; "
            "use_sleeping_threads(reexec=True, spin=0); print(os.environ['GOMP_SPINCOUNT'])")
    assert _python_without_the_policy(code) == "0"
    assert _python_without_the_policy(code, GOMP_SPINCOUNT="500") == "500"


# --- NaN and inf: every kernel gives what its reference gives -----------------------------
def _poison(a, seed, values=(np.nan, np.inf, -np.inf)):
    """A copy of a with NaN, +inf and -inf at random places."""
    a = a.copy()
    flat = a.reshape(-1)
    at = np.random.default_rng(seed).choice(flat.size, size=min(len(values), flat.size),
                                            replace=False)
    flat[at] = values[:len(at)]
    return a


def _same(got, want, dtype):
    """Equal within tolerance, NaN where the reference has NaN, inf where it has inf."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("xs,ws,stride,pad", [CONV_CASES[1], CONV_CASES[2], CONV_CASES[5]])
@pytest.mark.parametrize("where", ["x", "w", "g"])
def test_conv_kernels_propagate_nan_and_inf_as_the_reference(xs, ws, stride, pad, where,
                                                            dtype):
    x = np.pad(_data(xs, dtype, 0), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    w = _data((ws[0], xs[1], ws[1], ws[2]), dtype, 1)
    b = _data(ws[0], dtype, 2)
    x, w = (_poison(x, 20) if where == "x" else x), (_poison(w, 21) if where == "w" else w)
    with np.errstate(invalid="ignore", over="ignore"):
        for relu in (False, True):
            _same(conv.conv2d_forward_kernel(x, w, b, stride, relu),
                  conv.conv2d_forward_reference(x, w, b, stride, relu), dtype)
        g = _data(conv.conv2d_forward_reference(x, w, b, stride, False).shape, dtype, 3)
        g = _poison(g, 22) if where == "g" else g
        _same(conv.conv2d_grad_weight_kernel(x, g, ws[1], ws[2], stride),
              conv.conv2d_grad_weight_reference(x, g, ws[1], ws[2], stride), dtype)
        _same(conv.conv2d_grad_input_kernel(g, w, x.shape, stride),
              conv.conv2d_grad_input_reference(g, w, x.shape, stride), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,k,s", [((2, 3, 7, 5), 2, 2), ((2, 5, 9, 9), 3, 1)])
def test_maxpool_kernels_propagate_nan_as_the_reference(shape, k, s, dtype):
    x = _poison(_data(shape, dtype, 4), 23, (np.nan, np.inf, -np.inf, np.nan, np.nan))
    x[1, 2, 0, 0] = np.nan                  # a NaN first in its window
    x[1, 2, 0, 1] = np.nan
    out_k, arg_k = pool.maxpool2d_forward_kernel(x, k, s)
    out_r, arg_r = pool.maxpool2d_forward_reference(x, k, s)
    np.testing.assert_array_equal(out_k, out_r)         # NaN where the reference has NaN
    np.testing.assert_array_equal(arg_k, arg_r)
    g = _poison(_data(out_k.shape, dtype, 5), 24)
    _same(pool.maxpool2d_backward_kernel(g, arg_k, shape),
          pool.maxpool2d_backward_reference(g, arg_r, shape), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(7, 13), (64, 32, 13, 13)])
def test_dropout_kernel_keeps_nan_and_inf_as_the_reference(shape, dtype):
    x = _poison(_data(shape, dtype, 6), 25, (np.nan,) * 20 + (np.inf, -np.inf) * 10)
    key = dropout.dropout_key(11, 3)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(dropout.dropout_kernel(x, 0.5, key),
                                      dropout.dropout_reference(x, 0.5, key))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("xs,ws,k,s", [FUSED_CASES[0], FUSED_CASES[2], FUSED_CASES[4],
                                       ((4, 1, 28, 28), (32, 3, 3), 2, 2)])
@pytest.mark.parametrize("where", ["x", "w", "b", "g", "all w"])
def test_fused_block_propagates_nan_and_inf_as_the_references(xs, ws, k, s, where, dtype):
    """The fused kernel once turned NaN weights into zeros (relu and pool dropped them):
    all 288 conv weights NaN trained on silently."""
    from tinygrad_opt.ops import fused
    x, w, b = _data(xs, dtype, 9), _data((ws[0], xs[1], ws[1], ws[2]), dtype, 10), \
        _data(ws[0], dtype, 11) * 0.3
    x = _poison(x, 26) if where == "x" else x
    w = _poison(w, 27) if where == "w" else np.full_like(w, np.nan) if where == "all w" else w
    b = _poison(b, 28) if where == "b" else b
    key = dropout.dropout_key(5, 2)
    with np.errstate(invalid="ignore", over="ignore"):
        for rate in (0.0, 0.25):
            ctx = _SavingCtx()
            got = fused.ConvPoolDropoutFn.forward(ctx, x, w, b, k, s, rate, key)
            _same(got, fused.conv_pool_dropout_reference(x, w, b, k, s, rate, key), dtype)
            g = _data(got.shape, dtype, 12)
            g = _poison(g, 29) if where == "g" else g
            want = fused.conv_pool_dropout_backward_reference(x, w, b, g, k, s, rate, key)
            for got_grad, want_grad in zip(fused.ConvPoolDropoutFn.backward(ctx, g), want):
                _same(got_grad, want_grad, dtype)


class _SavingCtx:
    needs_input_grad = (True, True, True)

    def save_for_backward(self, *values):
        self.saved = values


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_one_sample_linear_kernel_keeps_nan_of_rows_with_zero_input(dtype):
    from tinygrad_opt import Tensor
    from tinygrad_opt.ops.matmul import LinearFn, linear_reference
    x, w, b = _data((1, 300), dtype, 13), _data((300, 17), dtype, 14), _data(17, dtype, 15)
    x[0, ::3] = 0
    w[0, 4], w[3, 9], w[6, 2] = np.nan, np.inf, -np.inf     # rows whose input is 0
    w[1, 5] = np.nan                                         # a row whose input is not
    with np.errstate(invalid="ignore"):
        got = LinearFn.apply(Tensor(x, dtype=dtype), Tensor(w, dtype=dtype),
                           Tensor(b, dtype=dtype)).data
        _same(got, linear_reference(x, w, b), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 6, 28, 28), (64, 120), (3, 4, 5, 2)])
def test_batchnorm_kernels_agree_with_the_references(shape, dtype):
    """ops/norm.py: statistics, forward and backward (training and eval), kernel against
    reference, NaN and inf where the input holds them (they spoil their channel only)."""
    from tinygrad_opt.ops import norm
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    x.reshape(shape[0], shape[1], -1)[1, 1, 0] = np.nan
    x.reshape(shape[0], shape[1], -1)[2, 2, 0] = np.inf
    x3 = norm.as_channels(x)
    gamma = rng.uniform(0.5, 2, shape[1]).astype(dtype)
    beta = rng.uniform(-1, 1, shape[1]).astype(dtype)
    g3 = rng.standard_normal(x3.shape).astype(dtype)
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)

    def same(got, want):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        ok = np.isfinite(want)
        np.testing.assert_allclose(got[ok], want[ok], **tol)

    with np.errstate(all="ignore"):
        stats = [norm.batch_stats_kernel(x3), norm.batch_stats_reference(x3)]
        for a, b in zip(*stats):
            same(a, b)
        mean, var = stats[1]
        clean = np.isfinite(var)
        assert not clean[1] and not clean[2] and clean[0]        # one channel each
        fwd = [f(x3, gamma, beta, mean.astype(dtype), var.astype(dtype), 1e-5)
               for f in (norm.batchnorm_forward_kernel, norm.batchnorm_forward_reference)]
        for a, b in zip(*fwd):
            same(a, b)
        xhat, invstd = fwd[1][1], fwd[1][2]
        for training in (True, False):
            back = [f(g3, xhat, gamma, invstd, training)
                    for f in (norm.batchnorm_backward_kernel, norm.batchnorm_backward_reference)]
            for a, b in zip(*back):
                same(a, b)


def test_conv_weight_gradient_does_not_depend_on_the_thread_count():
    """Its sums are reassociated (vectorised) within a sample and added over samples in
    a fixed order: one thread and two give the same bits."""
    import numba
    x = _data((64, 6, 14, 14), np.float32, 30)
    g = _data((64, 16, 10, 10), np.float32, 31)
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            results.append(conv.conv2d_grad_weight_bias_kernel(x, g, 5, 5))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,k,s", [((64, 6, 28, 28), 2, None), ((3, 4, 7, 5), 2, None),
                                       ((2, 3, 9, 8), 3, 2)])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("poison", [None, "x", "g"])
def test_batchnorm_relu_pool_kernels_agree_with_the_references(shape, k, s, training, poison,
                                                               dtype):
    """ops/fused_norm.py, kernels against the three layers' references chained: output,
    and the three gradients, with NaN and inf where x or g holds them."""
    from tinygrad_opt.ops.fused_norm import BatchNormReluPoolFn
    from tinygrad_opt.ops.norm import batch_stats_reference, as_channels
    x = _data(shape, dtype, 32) * dtype(3) + dtype(1)
    x = _poison(x, 33) if poison == "x" else x
    gamma = np.random.default_rng(34).uniform(-2, 2, shape[1]).astype(dtype)
    beta = np.random.default_rng(35).uniform(-1, 1, shape[1]).astype(dtype)
    with np.errstate(all="ignore"):
        mean, var = batch_stats_reference(as_channels(x))
        if not training:
            mean, var = np.abs(mean) + 0.5, np.abs(var) + 0.5    # running estimates
        results = []
        for ref in (False, True):
            with reference(ref):
                tx = Tensor(x, requires_grad=True, dtype=dtype)
                tg = Tensor(gamma, requires_grad=True, dtype=dtype)
                tb = Tensor(beta, requires_grad=True, dtype=dtype)
                out = BatchNormReluPoolFn.apply(tx, tg, tb, mean=mean, var=var,
                                                training=training, pool_size=k,
                                                pool_stride=s)
                g = _data(out.shape, dtype, 36)
                out.backward(_poison(g, 37) if poison == "g" else g)
                results.append((out.data, tx.grad, tg.grad, tb.grad))
    for got, want in zip(*results):
        assert got.dtype == dtype
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        ok = np.isfinite(want)
        tol = dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10,
                                                                           atol=1e-12)
        np.testing.assert_allclose(got[ok], want[ok], **tol)


def test_embedding_backward_kernel_is_the_reference_nan_and_inf_included():
    """The scatter-add of an embedding's gradient: the kernel adds position by position
    in np.add.at's order, so the sums are the same bits; NaN and inf carried alike."""
    from tinygrad_opt.ops.embedding import _backward_kernel, embedding_backward_reference
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        idx = rng.integers(0, 50, size=(8, 64))
        g = rng.standard_normal((8, 64, 16)).astype(dtype)
        g[0, 0, 0], g[1, 2, 3] = np.nan, np.inf
        want = embedding_backward_reference(idx, g, 50)
        got = np.zeros((50, 16), dtype=dtype)
        _backward_kernel(idx.reshape(-1), g.reshape(-1, 16), got)
        np.testing.assert_array_equal(got, want)


def test_embedding_refuses_what_would_pick_a_wrong_row():
    from tinygrad_opt.nn import Embedding
    layer = Embedding(5, 3, rng=0)
    with pytest.raises(ValueError, match="embedding: index 5 out of range for 5 embeddings"):
        layer(np.array([0, 5]))
    with pytest.raises(ValueError, match="embedding: index -1 out of range"):
        layer(np.array([-1]))
    with pytest.raises(ValueError, match="indices must be integers, got dtype float64"):
        layer(np.array([1.0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 7), (64, 128, 32)], ids=["small", "parallel"])
def test_layer_norm_kernels_are_the_references_nan_and_inf_included(dtype, shape):
    """Forward and backward through the kernels and through the numpy references: the
    same numbers to rounding (a row's sums in another order), NaN and inf in the same
    rows, the other rows untouched by them."""
    from tinygrad_opt.nn.functional import layer_norm
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1, shape[-1])[1, 2], x.reshape(-1, shape[-1])[2, 0] = np.nan, np.inf
    w, b = rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
    g = rng.standard_normal(shape).astype(dtype)
    results = []
    for ref in (False, True):
        xt = Tensor(x, requires_grad=True, dtype=dtype)
        wt, bt = (Tensor(a, requires_grad=True, dtype=dtype) for a in (w, b))
        with reference(ref), np.errstate(all="ignore"):
            y = layer_norm(xt, wt, bt)
            y.backward(g)
        results.append([y.data, xt.grad, wt.grad, bt.grad])
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for got, want in zip(*results):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        np.testing.assert_allclose(got, want, **tol)
    rows = results[0][0].reshape(-1, shape[-1])
    assert np.isnan(rows[1]).all() and np.isfinite(rows[0]).all()


def test_layer_norm_refuses_shapes_that_do_not_fit():
    from tinygrad_opt.nn import LayerNorm
    with pytest.raises(ValueError, match=r"layer_norm: weight and bias must be of shape "
                                         r"\(D,\) for input \(\.\.\., D\); got input \(2, 5\)"):
        LayerNorm(4)(Tensor(np.ones((2, 5))))
    with pytest.raises(ValueError, match="normalized_shape must be one size"):
        LayerNorm((3, 4))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_kernels_are_the_references_nan_and_inf_included(approximate, dtype):
    from tinygrad_opt.nn.functional import gelu
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(50_000) * 3).astype(dtype)
    x[:4] = np.nan, np.inf, -np.inf, 0.0
    g = rng.standard_normal(50_000).astype(dtype)
    results = []
    for ref in (False, True):
        xt = Tensor(x, requires_grad=True, dtype=dtype)
        with reference(ref), np.errstate(all="ignore"):
            y = gelu(xt, approximate)
            y.backward(g)
        results.append([y.data, xt.grad])
    # 1 + tanh(u) cancels for large negative x: the two paths' tanh (numpy's and the C
    # library's) differ in the last places of 1, which the cancellation leaves absolute
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for got, want in zip(*results):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        np.testing.assert_allclose(got, want, **tol)
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh', got 'fast'"):
        gelu(Tensor(x), "fast")


# (heads, T, S, D): blocks of four query rows and a partial last block; more keys than
# queries and fewer; the example's head shape
ATTENTION_CASES = [(3, 5, 5, 4), (2, 7, 4, 3), (2, 4, 9, 3), (2, 128, 128, 32)]


def _attention_both_ways(q, k, v, g, causal):
    from tinygrad_opt.ops.attention import AttentionFn
    results = []
    for ref in (False, True):
        ts = [Tensor(a, requires_grad=True, dtype=a.dtype) for a in (q, k, v)]
        with reference(ref), np.errstate(all="ignore"):
            out = AttentionFn.apply(*ts, is_causal=causal)
            out.backward(g)
        results.append([out.data] + [t.grad for t in ts])
    return results


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("shape", ATTENTION_CASES)
def test_attention_kernels_are_the_reference(shape, causal, dtype):
    h, t, s, d = shape
    q, k, v = (_data((1, h, n, d), dtype, seed) for n, seed in ((t, 0), (s, 1), (s, 2)))
    g = _data((1, h, t, d), dtype, 3)
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for got, want in zip(*_attention_both_ways(q, k, v, g, causal)):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("where", ["q", "k", "v", "g"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_attention_kernels_carry_nan_and_inf_as_the_reference(where, causal, dtype):
    """A NaN or an inf in one head reaches what numpy's products make of it, masked
    positions included (0 · inf is NaN there too), and leaves the other heads alone."""
    q, k, v = (_data((2, 2, 9, 4), dtype, seed) for seed in (4, 5, 6))
    g = _data((2, 2, 9, 4), dtype, 7)
    arrays = dict(q=q, k=k, v=v, g=g)
    arrays[where][0, 1, 6, 2] = np.nan
    arrays[where][1, 0, 5, 1] = np.inf
    got, want = _attention_both_ways(q, k, v, g, causal)
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_array_equal(np.isinf(a), np.isinf(b))
        np.testing.assert_allclose(a[np.isfinite(b)], b[np.isfinite(b)], **tol)
    assert np.isfinite(got[0][0, 0]).all() and np.isfinite(got[1][1, 1]).all()


def test_vector_exp_and_erf_are_within_their_stated_ulps():
    """ops/vecmath.py's float32 exp within 1 ulp of exp over float32's whole range
    (subnormal results to within one subnormal step), erf within 8 ulp; the special
    values as the C library's."""
    import math
    from tinygrad_opt.ops.vecmath import erf32_array, exp32_array
    x = np.linspace(-110, 90, 400_001).astype(np.float32)
    exact = np.exp(x.astype(np.float64))
    with np.errstate(over="ignore"):
        got = exp32_array(x).astype(np.float64)
        ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    normal = exact < float(np.finfo(np.float32).max)
    assert np.all(np.abs(got - exact)[normal] <= ulp[normal])
    assert np.all(np.isinf(got[~normal]))
    specials = np.array([np.nan, np.inf, -np.inf, 0.0], dtype=np.float32)
    np.testing.assert_array_equal(exp32_array(specials), [np.nan, np.inf, 0.0, 1.0])
    x = np.linspace(-6, 6, 200_001).astype(np.float32)
    exact = np.array([math.erf(float(v)) for v in x])
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(erf32_array(x) - exact) <= 8 * ulp)
    np.testing.assert_array_equal(erf32_array(specials), [np.nan, 1.0, -1.0, 0.0])


def test_dense_and_linear_weight_gradients_do_not_depend_on_blas_threads():
    """The dense layer's weight gradient over a chunk of 1,000 images (full-batch GD's),
    and the transformer's linear layers over 4,096 rows: the same bits with one BLAS
    thread and with two (ops/matmul.py's rows_product)."""
    code = (
        "import hashlib, numpy as np\n"
        "from tinygrad_opt import Tensor, nn\n"
        "rng = np.random.default_rng(0)\n"
        "out = []\n"
        "for layer, rows in ((nn.Dense(5408, 256, rng=1), 1000), (nn.Dense(256, 10, rng=2), 1000),\n"
        "                    (nn.Linear(128, 384, rng=3), 4096), (nn.Linear(512, 128, rng=4), 4096)):\n"
        "    n_in = layer.weight.shape[0 if isinstance(layer, nn.Dense) else 1]\n"
        "    x = np.maximum(rng.standard_normal((rows, n_in)), 0).astype(np.float32)\n"
        "    up = rng.standard_normal((rows, layer.bias.shape[0])).astype(np.float32)\n"
        "    (layer(Tensor(x)) * Tensor(up)).sum().backward()\n"
        "    out.append(hashlib.sha256(layer.weight.grad.tobytes()).hexdigest())\n"
        "print(out)\n")
    seen = []
    for threads in ("1", "2"):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, NUMBA_NUM_THREADS=threads)
        seen.append(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                   text=True, env=env, check=True).stdout)
    assert seen[0] == seen[1]
