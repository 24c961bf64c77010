"""diagnostics/: curvature against exact Hessians (PyTorch's double backward, stored as
fixtures with the script that made them), the adaptive rules' preconditioned sharpness,
the noise scale, the Trainer's curvature monitor, landscapes and the range test."""
import os

import numpy as np
import pytest

from tinygrad_opt import Tensor, diagnostics
from tinygrad_opt.nn import Conv2D, Dense, Dropout, Flatten, Sequential, Tanh
from tinygrad_opt.nn.functional import mse, softmax_cross_entropy
from tinygrad_opt.optim import SGD, Adagrad, Adam, RMSprop, lr_scheduler
from tinygrad_opt.problems import quadratic_deep
from tinygrad_opt.train import Trainer

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "reference",
                        "torch_hessians.npz")


def torch_case(name):
    """The fixture's model in this package, float64, with the fixture's parameters;
    (model, loss closure, exact Hessian, exact gradient, exact loss)."""
    f = np.load(FIXTURES)
    if name == "mlp":
        model = Sequential(Dense(5, 6), Tanh(), Dense(6, 3))
    else:
        model = Sequential(Conv2D(1, 2, 3), Tanh(), Flatten(), Dense(32, 3))
    model.to(np.float64)
    for i, p in enumerate(model.parameters()):
        p.data[...] = f[f"{name}_param{i}"]
    x, y = Tensor(f[f"{name}_x"], dtype=np.float64), f[f"{name}_y"]
    return (model, lambda: softmax_cross_entropy(model(x), y), f[f"{name}_hessian"],
            f[f"{name}_grad"], float(f[f"{name}_loss"]))


def flat(arrays):
    return np.concatenate([np.ravel(a) for a in arrays])


def split(vector, params):
    out, at = [], 0
    for p in params:
        out.append(vector[at:at + p.data.size].reshape(p.shape))
        at += p.data.size
    return out


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_hvp_agrees_with_pytorchs_exact_hessian(name):
    model, loss_fn, hessian, grad, loss = torch_case(name)
    params = model.parameters()
    value = loss_fn()
    value.backward()
    assert value.item() == pytest.approx(loss, rel=1e-12)       # the same function
    np.testing.assert_allclose(flat([p.grad for p in params]), grad, rtol=1e-10, atol=1e-14)
    rng = np.random.default_rng(1)
    for _ in range(3):
        v = rng.standard_normal(len(hessian))
        got = flat(diagnostics.hvp(loss_fn, params, split(v, params)))
        exact = hessian @ v
        assert np.linalg.norm(got - exact) <= 1e-6 * np.linalg.norm(exact)
    grads, values = flat([p.grad for p in params]), flat([p.data for p in params])
    diagnostics.hvp(loss_fn, params, split(v, params))          # nothing disturbed
    np.testing.assert_array_equal(flat([p.grad for p in params]), grads)
    np.testing.assert_array_equal(flat([p.data for p in params]), values)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_eigenvalues_trace_and_spectrum_against_the_exact_hessian(name):
    model, loss_fn, hessian, _, _ = torch_case(name)
    params = model.parameters()
    exact = np.linalg.eigvalsh(hessian)[::-1]
    top = diagnostics.hessian_eigenvalues(loss_fn, params, k=3, tol=1e-4)
    np.testing.assert_allclose(top, exact[:3], rtol=1e-4)
    trace, error, n = diagnostics.hessian_trace(loss_fn, params, max_samples=3000,
                                                tol=5e-3)
    assert abs(trace - np.trace(hessian)) <= 4 * error
    assert error <= 0.05 * abs(np.trace(hessian)) and n > 10
    spectrum = diagnostics.hessian_spectrum(loss_fn, params, iterations=len(hessian))
    nodes, weights = spectrum["nodes"][0], spectrum["weights"][0]
    np.testing.assert_allclose(np.sort(nodes)[-3:], np.sort(exact[:3]), rtol=1e-6)
    assert weights.sum() == pytest.approx(1.0, abs=1e-9)
    dx = spectrum["grid"][1] - spectrum["grid"][0]
    assert spectrum["density"].sum() * dx == pytest.approx(1.0, abs=0.02)


def test_the_quadratic_gives_its_eigenvalues_back():
    q = quadratic_deep.hessian()
    model = quadratic_deep.NoisyQuadratic(q, dtype=np.float64)
    x = np.random.default_rng(0).normal(0, 0.6, (64, 100))
    top = diagnostics.hessian_eigenvalues(lambda: model(Tensor(x, dtype=np.float64)).mean(),
                                          model.parameters(), k=4, tol=1e-6)
    np.testing.assert_allclose(top, np.linalg.eigvalsh(q)[::-1][:4], rtol=1e-6)


def test_float32_is_close_but_not_exact():
    model, loss_fn, hessian, _, _ = torch_case("mlp")
    model.to(np.float32)
    params = model.parameters()
    v = np.random.default_rng(2).standard_normal(len(hessian))
    got = flat(diagnostics.hvp(loss_fn, params, split(v.astype(np.float32), params)))
    assert np.linalg.norm(got - hessian @ v) <= 1e-2 * np.linalg.norm(hessian @ v)


def test_bad_vectors_are_refused():
    model, loss_fn, _, _, _ = torch_case("mlp")
    params = model.parameters()
    with pytest.raises(ValueError, match="vector 1 has shape"):
        diagnostics.hvp(loss_fn, params, [np.zeros(p.shape) for p in params[:1]]
                        + [np.zeros(7)] + [np.zeros(p.shape) for p in params[2:]])
    with pytest.raises(ValueError, match="3 vectors for 4"):
        diagnostics.hvp(loss_fn, params, [np.zeros(p.shape) for p in params[:3]])
    with pytest.raises(ValueError, match="k must be"):
        diagnostics.hessian_eigenvalues(loss_fn, params, k=0)


def test_dropout_masks_and_buffers_are_held_fixed():
    rng = np.random.default_rng(0)
    model = Sequential(Dense(5, 8, rng=0), Tanh(), Dropout(0.5, seed=3), Dense(8, 3, rng=1))
    model.to(np.float64)
    x, y = Tensor(rng.standard_normal((16, 5)), dtype=np.float64), rng.integers(0, 3, 16)
    params = model.parameters()

    def loss_fn():
        return softmax_cross_entropy(model(x), y)

    u, w = ([rng.standard_normal(p.shape) for p in params] for _ in range(2))
    dropout = list(model)[2]
    counter = dropout.rng.copy()
    hu = diagnostics.hvp(loss_fn, params, u, model=model)
    hw = diagnostics.hvp(loss_fn, params, w, model=model)
    assert flat(w) @ flat(hu) == pytest.approx(flat(u) @ flat(hw), rel=1e-6)  # symmetric
    np.testing.assert_array_equal(dropout.rng, counter)
    free = diagnostics.hvp(loss_fn, params, w)          # a new mask each evaluation
    assert not np.allclose(flat(free), flat(hw), rtol=1e-3)


def adam_with_state(model, loss_fn, **kw):
    opt = Adam(model.parameters(), **kw)
    for _ in range(3):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    return opt


@pytest.mark.parametrize("make", [
    lambda ps: Adam(ps, lr=0.01), lambda ps: Adam(ps, lr=0.01, preset="torch"),
    lambda ps: Adam(ps, lr=0.01, amsgrad=True), lambda ps: RMSprop(ps, lr=0.01),
    lambda ps: RMSprop(ps, lr=0.01, momentum=0.5, centered=True, preset="torch"),
    lambda ps: Adagrad(ps, lr=0.1)])
def test_preconditioned_sharpness_is_the_top_eigenvalue_of_p_inverse_h(make):
    model, loss_fn, _, _, _ = torch_case("mlp")
    opt = make(model.parameters())
    for _ in range(3):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    scale, threshold = diagnostics.preconditioner(opt)
    # the exact Hessian where the optimizer now stands, column by column from hvp's exact
    # reference: build it from PyTorch's? The parameters moved; use the float64 hvp on
    # unit vectors (agreeing with PyTorch to 1e-6 above) and symmetrise.
    params = model.parameters()
    n = sum(p.data.size for p in params)
    h = np.stack([flat(diagnostics.hvp(loss_fn, params, split(e, params)))
                  for e in np.eye(n)])
    h = (h + h.T) / 2
    p = flat(scale)
    exact = np.linalg.eigvalsh(h / np.sqrt(p)[:, None] / np.sqrt(p)[None, :]).max()
    value, got_threshold = diagnostics.preconditioned_sharpness(loss_fn, opt, tol=1e-5)
    assert value == pytest.approx(exact, rel=1e-4)
    assert got_threshold == threshold


def test_the_thresholds_are_the_papers():
    model, loss_fn, _, _, _ = torch_case("mlp")
    opt = adam_with_state(model, loss_fn, lr=0.01)
    assert diagnostics.preconditioner(opt)[1] == pytest.approx(38 / 0.01)
    with pytest.raises(TypeError, match="SGD"):
        diagnostics.preconditioner(SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="no step"):
        diagnostics.preconditioner(Adam(model.parameters()))


def test_adam_preconditioner_matches_its_update():
    """P is defined by w ← w - lr P⁻¹ m: check it against one real step."""
    model, loss_fn, _, _, _ = torch_case("mlp")
    opt = adam_with_state(model, loss_fn, lr=0.01)
    before = [p.data.copy() for p in model.parameters()]
    opt.zero_grad()
    loss_fn().backward()
    opt.step()
    scale, _ = diagnostics.preconditioner(opt)
    for p, w0, s, state in zip(model.parameters(), before, scale, opt.state):
        np.testing.assert_allclose(w0 - p.data, 0.01 * state["m"] / s, rtol=1e-9,
                                   atol=1e-15)


def test_noise_scale_estimates_are_unbiased():
    """Least squares with per-sample gradients in closed form: over many draws, the two
    estimates average to |G|² and tr(Σ) of the data."""
    rng = np.random.default_rng(0)
    n, d = 20000, 5
    a = rng.standard_normal((n, d))
    t = a @ rng.standard_normal(d) + rng.standard_normal(n)
    w = Tensor(np.full(d, 0.3), requires_grad=True, dtype=np.float64)
    per_sample = (a @ w.data - t)[:, None] * a                    # ∇ of (aᵀw - t)²/2
    exact_g2 = float(np.sum(per_sample.mean(0) ** 2))
    exact_trace = float(np.trace(np.cov(per_sample.T, bias=True)))
    traces, norms = [], []
    for draw in range(300):
        idx = rng.choice(n, size=4 * 8, replace=False).reshape(4, 8)
        fns = [(lambda i=i: ((Tensor(a[i], dtype=np.float64) @ w - Tensor(t[i], dtype=np.float64)) ** 2).mean() * 0.5)
               for i in idx]
        est = diagnostics.gradient_noise_scale(fns, [w], 8)
        traces.append(est["trace_sigma"])
        norms.append(est["grad_norm_sq"])
    assert np.mean(traces) == pytest.approx(exact_trace, rel=0.08)
    assert np.mean(norms) == pytest.approx(exact_g2, rel=0.25)
    b = diagnostics.noise_scale_of(np.mean(traces), np.mean(norms))
    assert b == pytest.approx(exact_trace / exact_g2, rel=0.3)
    with pytest.raises(ValueError, match="at least 2"):
        diagnostics.gradient_noise_scale(fns[:1], [w], 8)


def small_problem(seed=0, n=256):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    model = Sequential(Dense(6, 8, rng=seed), Tanh(), Dense(8, 2, rng=seed + 1))
    return model, x, y


def test_the_monitor_records_and_changes_nothing(tmp_path):
    runs = []
    for monitored in (False, True):
        model, x, y = small_problem()
        callbacks = [diagnostics.CurvatureMonitor(x[:64], y[:64], every=5, max_iter=20,
                                                  noise_batches=4)] if monitored else []
        trainer = Trainer(model, Adam(model.parameters(), lr=0.01), batch_size=16,
                          verbose=0, callbacks=callbacks)
        history = trainer.fit((x, y), (x, y), epochs=2)
        runs.append(([h["val_loss"] for h in history], [p.data.copy() for p in
                                                       model.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    monitor = callbacks[0]
    assert [r["step"] for r in monitor.records] == list(range(0, 32, 5))
    first = monitor.records[0]
    for key in ("sharpness", "threshold", "grad_norm", "update_norm", "b_simple",
                "preconditioned_sharpness", "preconditioned_threshold"):
        assert key in first or (key.startswith("precond") and first["step"] == 0), key
    assert first["threshold"] == pytest.approx(2 / 0.01)
    assert history[0]["diagnostics"][0]["step"] == 0
    assert len(history[1]["diagnostics"]) == len(monitor.records) - len(
        history[0]["diagnostics"])
    path = monitor.plot(str(tmp_path / "curvature.png"))
    assert os.path.getsize(path) > 10000


def test_lr_range_test_restores_the_model_and_suggests_a_range(tmp_path):
    model, x, y = small_problem(n=2000)
    opt = SGD(model.parameters(), lr=0.05)
    before = [p.data.copy() for p in model.parameters()]
    result = diagnostics.lr_range_test(model, opt, (x, y), batch_size=32, start_lr=1e-4,
                                       end_lr=100, steps=150)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, b)
    assert opt.lr == 0.05 and opt.t == 0
    assert result["stopped_early"] and len(result["lrs"]) < 150   # lr 100 diverges
    assert 1e-4 <= result["low"] <= result["steepest"] <= result["high"] < 100
    assert result["smoothed"][result["lrs"].index(result["high"])] < result["smoothed"][0]
    assert os.path.getsize(diagnostics.plot_lr_range(result, str(tmp_path / "r.png"))) > 5000


def test_lr_range_test_takes_schedule_free_and_refuses_lbfgs():
    from tinygrad_opt.optim import LBFGS, AdamWScheduleFree
    model, x, y = small_problem(n=500)
    opt = AdamWScheduleFree(model.parameters())          # in eval mode, as built
    result = diagnostics.lr_range_test(model, opt, (x, y), batch_size=32, steps=10)
    assert len(result["lrs"]) > 3 and opt.training is False and opt.t == 0
    with pytest.raises(ValueError, match="LBFGS searches its own step"):
        diagnostics.lr_range_test(model, LBFGS(model.parameters()), (x, y), steps=10)


def test_schedule_preview_changes_nothing(tmp_path):
    model, _, _ = small_problem()
    opt = SGD(model.parameters(), lr=0.1)
    schedule = lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    lrs = diagnostics.schedule_lrs(schedule, 11)
    assert lrs[0] == 0.1 and lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert lrs[5] == pytest.approx(0.05)
    assert schedule.last_epoch == 0 and opt.lr == 0.1
    stepped = [opt.lr]
    for _ in range(10):
        schedule.step()
        stepped.append(opt.lr)
    assert stepped == lrs
    diagnostics.plot_schedule(schedule, 20, str(tmp_path / "s.png"))
    with pytest.raises(TypeError, match="metric"):
        diagnostics.schedule_lrs(lr_scheduler.ReduceLROnPlateau(opt), 5)


def test_filter_normalisation_and_surfaces():
    model = Sequential(Conv2D(1, 3, 3, rng=0), Flatten(), Dense(3 * 4 * 4, 2, rng=1))
    params = model.parameters()
    d = diagnostics.filter_normalized_direction(params, seed=0)
    for i in range(3):                                    # a kernel per output channel
        assert np.linalg.norm(d[0][i]) == pytest.approx(np.linalg.norm(params[0].data[i]))
    for j in range(2):                                    # a Dense column per output unit
        assert np.linalg.norm(d[2][:, j]) == pytest.approx(
            np.linalg.norm(params[2].data[:, j]))
    assert not d[1].any() and not d[3].any()              # biases left out
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 1, 6, 6)).astype(np.float32), rng.integers(0, 2, 40)
    one = diagnostics.landscape(model, softmax_cross_entropy, (x, y), kind="1d", points=5)
    assert one["loss"][2] == pytest.approx(one["center"][0], rel=1e-6)
    assert one["evaluations"] == 6
    two = diagnostics.landscape(model, softmax_cross_entropy, (x, y), points=3)
    assert np.asarray(two["loss"]).shape == (3, 3)
    assert two["loss"][1][1] == pytest.approx(two["center"][0], rel=1e-6)
    evaluate = diagnostics.Evaluator(model, softmax_cross_entropy, (x, y))
    start = evaluate.current()
    end = [p + 0.1 for p in start]
    losses, _ = diagnostics.interpolation(evaluate, start, end, [0.0, 1.0])
    assert losses[0] == pytest.approx(evaluate(start)[0])
    assert losses[1] == pytest.approx(evaluate(end)[0])
    np.testing.assert_array_equal(evaluate.current()[0], start[0])


def test_trajectory_directions_recover_a_planar_path():
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal(30), rng.standard_normal(30)
    center = rng.standard_normal(30)
    coords = rng.standard_normal((8, 2))
    checkpoints = [[(center + a * u + b * v)[:10].reshape(2, 5), (center + a * u + b * v)[10:]]
                   for a, b in coords] + [[center[:10].reshape(2, 5), center[10:]]]
    d1, d2, got, explained = diagnostics.trajectory_directions(checkpoints)
    assert explained.sum() == pytest.approx(1.0)
    basis = np.stack([flat(d1), flat(d2)])
    for (cp, xy) in zip(checkpoints, got):
        np.testing.assert_allclose(flat(cp) - center, xy @ basis, atol=1e-10)


def cli(*args):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "tinygrad_opt", *args], capture_output=True,
                          text=True, timeout=600)


def test_the_diagnose_command_writes_its_figures_and_numbers(tmp_path):
    import json
    out = cli("diagnose", "mnist_logreg", "--quick", "--rule", "momentum", "--set",
              "momentum.lr=0.05", "--lr-steps", "30", "--measurements", "3", "--samples",
              "256", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    result = json.load(open(tmp_path / "diagnose.json"))
    assert result["hyper"] == {"lr": 0.05} and not result["diverged"]
    assert len(result["records"]) >= 3 and len(result["top_eigenvalues"]) == 3
    top = result["top_eigenvalues"]
    assert top[0] >= top[1] >= top[2] > 0                  # a convex problem
    assert result["trace"]["value"] >= top[0] * 0.9
    for name in ("lr_range", "curvature", "spectrum", "landscape_1d"):
        assert os.path.getsize(tmp_path / f"{name}.png") > 10000, name


def test_the_diagnose_command_refuses_bad_input_in_one_line(tmp_path):
    out = cli("diagnose", "no_such_problem", "--out", str(tmp_path))
    assert out.returncode == 2 and "no_such_problem" in out.stderr
    out = cli("diagnose", "mnist_logreg", "--rule", "adam", "--set", "momentum.lr=0.1",
              "--out", str(tmp_path))
    assert out.returncode == 2 and "the rule diagnosed is adam" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_threshold_of_sgd_counts_its_momentum():
    """Heavy ball on a 1-D quadratic of curvature λ is stable while λ < (2 + 2μ)/lr,
    Nesterov's while λ < (2 + 2μ)/((1 + 2μ) lr): just below each, the iterate
    shrinks; just above, it grows."""
    for nesterov in (False, True):
        opt = SGD([Tensor([1.0], requires_grad=True, dtype=np.float64)], lr=0.1,
                  momentum=0.9, nesterov=nesterov)
        limit = diagnostics.sharpness_threshold(opt)
        assert limit == pytest.approx(3.8 / (0.1 * (2.8 if nesterov else 1)))
        for factor, grows in ((0.98, False), (1.02, True)):
            w = Tensor(np.array([1.0]), requires_grad=True, dtype=np.float64)
            step = SGD([w], lr=0.1, momentum=0.9, nesterov=nesterov)
            for _ in range(3000):
                w.grad = factor * limit * w.data.copy()
                step.step()
            assert (abs(w.data[0]) > 1) == grows, (nesterov, factor)
    assert diagnostics.sharpness_threshold(SGD([w], lr=0.5)) == 4.0
