"""`tinygrad-opt diagnose PROBLEM --rule adam`: the common diagnostics of one run on a
problem of the suite, as figures and one JSON of the numbers.

1. the learning-rate range test from the initial model (lr_range.png);
2. the run, with a CurvatureMonitor on a fixed measurement set of the training data
   (curvature.png: the sharpness against 2/lr, the preconditioned sharpness for adaptive
   rules, the norms, the noise scale);
3. at the end: the top Hessian eigenvalues, the trace, the spectral density
   (spectrum.png) and the 1-D landscape along a filter-normalised direction
   (landscape_1d.png), on the measurement set.

Everything is measured in the problem's float32 (finite differences with the step of
diagnostics.hessian: about 1e-3 relative)."""
import json
import os
import time

import numpy as np

from ..store.files import atomic_write_text
from .hessian import hessian_eigenvalues, hessian_spectrum, hessian_trace
from .landscape import landscape, plot_1d
from .lr_range import lr_range_test, plot_lr_range
from .monitor import CurvatureMonitor, trainer_closure


def measurement_set(data, n):
    """The first n samples of a problem's training data as (inputs, targets) arrays: an
    (inputs, targets) pair, or batches (an iterable) concatenated until n."""
    if isinstance(data, tuple) and len(data) == 2:
        return data[0][:n], data[1][:n]
    xs, ys, count = [], [], 0
    for x, y in data:
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
        count += len(xs[-1])
        if count >= n:
            break
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def diagnose(problem, rule="adam", hyper=None, out="results/diagnose", seed=0, epochs=None,
             samples=512, measurements=20, lr_steps=100, quick=False, log=print):
    """Run the diagnostics above on `problem` (a Problem or a name) with `rule` (a name
    of optim.METHODS) and its `hyper`; write the figures and diagnose.json into `out`.
    Returns the JSON's dict."""
    from ..optim import METHODS
    from ..problems import get_problem
    from ..problems.listing import steps_per_epoch
    from ..study.trials import TRAINER_METRIC
    from ..train import NonFiniteLoss, Trainer

    problem = get_problem(problem)
    if quick:
        problem = problem.quick_variant()
    if rule not in METHODS:
        raise ValueError(f"diagnose: unknown rule {rule!r}; known: {', '.join(METHODS)}")
    os.makedirs(out, exist_ok=True)
    hyper = dict(hyper or {})
    train, valid = problem.data(None, seed=seed)
    x, y = measurement_set(train, samples)
    metric = TRAINER_METRIC[problem.metric]
    result = dict(problem=problem.name, rule=rule, hyper=hyper, seed=seed, samples=len(x))
    t0 = time.perf_counter()

    def make():
        model = problem.model(seed)
        opt = METHODS[rule].make(model.parameters(), **hyper)
        trainer = Trainer(model, opt, loss=problem.loss, seed=seed, verbose=0,
                          batch_size=problem.batch_size, transform=problem.transform,
                          metric=metric, clip_grad_norm=problem.clip_grad_norm)
        return model, opt, trainer

    log(f"diagnose {problem.name}, {rule}: learning-rate range test ({lr_steps} steps)")
    model, opt, trainer = make()
    tested = lr_range_test(model, opt, (x, y), loss=problem.loss,
                           transform=problem.transform, batch_size=problem.batch_size,
                           steps=lr_steps, start_lr=1e-6, end_lr=10.0, seed=seed)
    plot_lr_range(tested, os.path.join(out, "lr_range.png"),
                  f"{problem.name}: range test of {rule}")
    result["lr_range"] = {k: tested[k] for k in ("low", "high", "steepest", "stopped_early")}

    epochs = epochs or problem.epochs
    steps = epochs * steps_per_epoch(train, problem.batch_size)
    every = max(1, steps // measurements)
    monitor = CurvatureMonitor(x, y, every=every, max_iter=30, tol=1e-2,
                               noise_batches=4 if 4 * problem.batch_size <= len(x) else 0)
    trainer.callbacks.append(monitor)
    log(f"training {epochs} epochs, measuring every {every} steps on {len(x)} samples")
    try:
        trainer.fit(train, valid, epochs=epochs)
        result["diverged"] = False
    except NonFiniteLoss:
        result["diverged"] = True
    result["history"] = [{k: v for k, v in h.items() if k != "diagnostics"}
                         for h in trainer.history]
    result["records"] = monitor.records
    result["noise_scale"] = monitor.noise_scale()
    monitor.plot(os.path.join(out, "curvature.png"), f"{problem.name}, {rule}")

    if not result["diverged"]:
        log("at the end: top eigenvalues, trace, spectrum, 1-D landscape")
        loss_fn = trainer_closure(trainer, x, y)
        params = model.parameters()
        result["top_eigenvalues"] = hessian_eigenvalues(loss_fn, params, k=3, max_iter=50,
                                                        tol=1e-2, model=model).tolist()
        trace, error, n = hessian_trace(loss_fn, params, max_samples=50, tol=0.05,
                                        model=model)
        result["trace"] = dict(value=trace, standard_error=error, samples=n)
        spectrum = hessian_spectrum(loss_fn, params, iterations=40, model=model)
        _plot_spectrum(spectrum, os.path.join(out, "spectrum.png"),
                       f"{problem.name}, {rule}: Hessian spectral density")
        result["spectrum"] = dict(nodes=spectrum["nodes"][0].tolist(),
                                  weights=spectrum["weights"][0].tolist())
        line = landscape(model, problem.loss, (x, y), kind="1d", points=21, metric=metric,
                         transform=problem.transform)
        line["metric_name"] = problem.metric
        plot_1d(line, os.path.join(out, "landscape_1d.png"),
                f"{problem.name}, {rule}: along a filter-normalised direction")
        result["landscape_1d"] = line
    result["seconds"] = time.perf_counter() - t0
    atomic_write_text(os.path.join(out, "diagnose.json"),
                      json.dumps(result, indent=1, default=_number) + "\n")
    log(f"wrote {out}/diagnose.json and its figures ({result['seconds']:.0f} s)")
    return result


def _number(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _plot_spectrum(spectrum, path, title):
    from ..figures import pyplot, save
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    density = np.maximum(spectrum["density"], 1e-12)
    ax.semilogy(spectrum["grid"], density)
    ax.set_ylim(max(density.max() * 1e-8, 1e-12), density.max() * 2)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density (log)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return save(fig, path)
