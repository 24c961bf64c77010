"""`make bench`: medians of repeated runs, side by side in one sitting.

    python benchmarks/bench.py [--repeat N] [--quick]

Reports:
- the training workloads of the article protocol on the real MNIST, each in a fresh
  process so that its peak resident memory is its own: one training epoch at batch 64
  with Adam (seconds, samples/s), the evaluation of the 10,000 test images, the step
  latency of one-sample SGD, and one epoch of full-batch gradient descent;
- the JIT compile time on a cold cache;
- forward+backward of the article model at batch 64 (ms/step), per op, forward and backward;
- the same for examples/08's character transformer (batch 32, context 128, AdamW), whose
  step time, tokens per second and peak memory are also a workload of its own;
- each Numba kernel against its numpy reference;
- each fused optimizer update against its numpy reference and one copy of the same bytes.

PyTorch is never imported: measure the peers with `make bench-torch`
(benchmarks/torch_article_cnn.py, benchmarks/torch_char_transformer.py) in the same
sitting (docs/performance.md).
"""
import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from tinygrad_opt import Tensor, use_sleeping_threads
from tinygrad_opt.models import article_cnn
from tinygrad_opt.nn.functional import softmax_cross_entropy
from tinygrad_opt.ops import conv, dropout, fused, pool


def median_ms(fn, repeat, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def bench_model(repeat, batch=64):
    """A training step of the article model, and where its time goes."""
    from tinygrad_opt.optim import Adam

    model = article_cnn(seed=0).train()
    rng = np.random.default_rng(0)
    x = Tensor(rng.uniform(0, 1, (batch, 1, 28, 28)).astype(np.float32))
    y = rng.integers(0, 10, batch)
    where_time_goes(f"article model, batch {batch}", Adam(model.parameters()),
                    lambda: softmax_cross_entropy(model(x), y), batch, "samples", repeat)


def transformer():
    """examples/08's character transformer (context 128, d_model 128, 4 layers, 4
    heads) with AdamW as the example trains it: (corpus, optimizer, loss of a batch)."""
    from tinygrad_opt.data import load
    from tinygrad_opt.models import char_transformer
    from tinygrad_opt.nn.functional import cross_entropy
    from tinygrad_opt.optim import AdamW

    corpus = load("austen")
    model = char_transformer(corpus.vocab_size, seed=0)
    opt = AdamW(model.parameters(), lr=3e-3, weight_decay=0.01, preset="torch")
    return corpus, opt, lambda x, y: cross_entropy(
        model(x).reshape(-1, corpus.vocab_size), y.reshape(-1))


def bench_transformer(repeat):
    """A training step of the character transformer (batch 32, context 128), and where
    its time goes."""
    corpus, opt, loss_of = transformer()
    x, y = corpus.batch(32, 128, 0)
    where_time_goes("character transformer, batch 32 x context 128 (in this process: "
                    "Numba's idle threads spin, unlike the workload row's)", opt,
                    lambda: loss_of(x, y), 32 * 128, "tokens", repeat)


def where_time_goes(title, opt, loss_fn, batch, unit, repeat):
    """Forward+backward and the full step (median ms), then each op's forward and
    backward, timed around the op (median per step), and the optimizer's update."""
    def fwd_bwd():
        opt.zero_grad()
        loss_fn().backward()

    def step():
        fwd_bwd()
        opt.step()

    ms, ms_step = median_ms(fwd_bwd, repeat), median_ms(step, repeat)
    print(f"\n{title}: forward+backward {ms:.2f} ms, with the {type(opt).__name__} step "
          f"{ms_step:.2f} ms ({batch / ms_step * 1e3:,.0f} {unit}/s)")
    times = {}

    def timed(name, fn):
        def run(*args, **kwargs):
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            times.setdefault(name, []).append(time.perf_counter() - t0)
            return out
        return run

    ops = {node.fn for node in _nodes(loss_fn())}
    saved = {op: (op.forward, op.backward) for op in ops}
    for op in ops:
        op.forward = staticmethod(timed(f"{op.__name__} forward", op.forward))
        op.backward = staticmethod(timed(f"{op.__name__} backward", op.backward))
    opt.step = timed(f"{type(opt).__name__} step (update + NaN check)", opt.step)
    try:
        for _ in range(repeat):
            step()
    finally:
        for op, (f, b) in saved.items():
            op.forward, op.backward = staticmethod(f), staticmethod(b)
        del opt.step
    rows = []
    for name, ts in times.items():          # per step: the sum of its calls, median
        calls = len(ts) // repeat
        per_step = 1e3 * np.median(np.reshape(ts, (repeat, calls)).sum(axis=1))
        rows.append((per_step, name + (f" ({calls} calls)" if calls > 1 else "")))
    print("  where a step's time goes (ms, median per step):")
    for per_step, name in sorted(rows, reverse=True):
        print(f"    {per_step:7.3f}  {name}")


def _nodes(loss):
    """The graph nodes of one training step: which ops it runs."""
    out, stack, seen = [], [loss], set()
    while stack:
        t = stack.pop()
        if t._node is not None and id(t) not in seen:
            seen.add(id(t))
            out.append(t._node)
            stack.extend(t._node.parents)
    return out


def bench_kernels(repeat):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (64, 1, 28, 28)).astype(np.float32)
    w = rng.standard_normal((32, 1, 3, 3)).astype(np.float32)
    b = np.zeros(32, np.float32)
    y = conv.conv2d_forward_kernel(x, w, b, 1, True)
    g = rng.standard_normal(y.shape).astype(np.float32)
    p, arg = pool.maxpool2d_forward_kernel(y, 2, 2)
    gp = rng.standard_normal(p.shape).astype(np.float32)
    key = dropout.dropout_key(0, 0)
    tx, tw, tb = Tensor(x), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
    node = fused.ConvPoolDropoutFn.apply(tx, tw, tb, rate=0.25, key=key)._node
    cases = [
        ("conv2d forward+relu", lambda: conv.conv2d_forward_kernel(x, w, b, 1, True),
         lambda: conv.conv2d_forward_reference(x, w, b, 1, True)),
        ("conv2d grad weight", lambda: conv.conv2d_grad_weight_kernel(x, g, 3, 3, 1),
         lambda: conv.conv2d_grad_weight_reference(x, g, 3, 3, 1)),
        ("conv2d grad input", lambda: conv.conv2d_grad_input_kernel(g, w, x.shape, 1),
         lambda: conv.conv2d_grad_input_reference(g, w, x.shape, 1)),
        ("maxpool2d forward", lambda: pool.maxpool2d_forward_kernel(y, 2, 2),
         lambda: pool.maxpool2d_forward_reference(y, 2, 2)),
        ("maxpool2d backward", lambda: pool.maxpool2d_backward_kernel(gp, arg, y.shape),
         lambda: pool.maxpool2d_backward_reference(gp, arg, y.shape)),
        ("dropout", lambda: dropout.dropout_kernel(p, 0.25, key),
         lambda: dropout.dropout_reference(p, 0.25, key)),
        ("fused block forward",
         lambda: fused.ConvPoolDropoutFn.apply(tx, tw, tb, rate=0.25, key=key),
         lambda: fused.conv_pool_dropout_reference(x, w, b, 2, 2, 0.25, key)),
        ("fused block backward*", lambda: node.fn.backward(node.ctx, gp),
         lambda: fused.conv_pool_dropout_backward_reference(x, w, b, gp, 2, 2, 0.25, key)),
    ]
    print("\nkernels at the article's shapes (batch 64), median ms:")
    print(f"  {'kernel':24s} {'numba':>8s} {'numpy ref':>10s} {'speed-up':>9s}")
    for name, fast, ref in cases:
        f, r = median_ms(fast, repeat), median_ms(ref, repeat)
        print(f"  {name:24s} {f:8.3f} {r:10.3f} {r / f:8.1f}x")
    print("  * the weight and bias gradients, as in the model (its input is the data); the "
          "reference also recomputes the forward pass it needs")
    bench_fused_general(repeat)
    bench_lenet_block(repeat)


def bench_lenet_block(repeat):
    """LeNet-5's convolution blocks (batch 64), forward and backward through autograd: the
    convolution, then BatchNorm -> ReLU -> MaxPool fused (`nn.BatchNormReluPool`, what
    `models.lenet5` runs) and as the three layers."""
    from tinygrad_opt.nn import BatchNorm2D, BatchNormReluPool, Conv2D, MaxPool2D, ReLU
    rng = np.random.default_rng(2)
    print("\nLeNet-5's blocks (batch 64, conv -> batch norm -> relu -> pool, forward+"
          "backward), median ms:")
    for c, f, size, pad in ((1, 6, 28, 2), (6, 16, 14, 0)):
        x = rng.uniform(0, 1, (64, c, size, size)).astype(np.float32)
        conv = Conv2D(c, f, 5, padding=pad, rng=0)
        layers = [BatchNorm2D(f), ReLU(), MaxPool2D(2)]
        fused_tail = BatchNormReluPool(*layers)

        def step(tail):
            def run():
                y = conv(Tensor(x, requires_grad=c > 1))
                for layer in tail:
                    y = layer(y)
                y.sum().backward()
            return run

        print(f"  {c} -> {f} channels, 5x5, {size}x{size}: with the fused tail "
              f"{median_ms(step([fused_tail]), repeat):.2f}, with the three layers "
              f"{median_ms(step(layers), repeat):.2f}")


def bench_fused_general(repeat):
    """The fused block's general loops (any channels and kernel size), against the three
    unfused ops, forward and backward through autograd: why `nn.ConvPoolDropout` fuses
    only the article's shape (one input channel, 3x3)."""
    from tinygrad_opt.ops.conv import Conv2DFn
    from tinygrad_opt.ops.dropout import DropoutFn
    from tinygrad_opt.ops.pool import MaxPool2DFn
    rng = np.random.default_rng(1)
    print("\nfused block beyond the article's shape (batch 64, forward+backward), median ms:")
    for c, f, k, size in ((3, 16, 3, 32), (6, 16, 5, 14)):
        x = rng.uniform(0, 1, (64, c, size, size)).astype(np.float32)
        w = (0.2 * rng.standard_normal((f, c, k, k))).astype(np.float32)
        b = np.zeros(f, np.float32)
        key = dropout.dropout_key(0, 0)

        def fused_step():
            ts = Tensor(x), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
            fused.ConvPoolDropoutFn.apply(*ts, rate=0.25, key=key).sum().backward()

        def unfused_step():
            ts = Tensor(x), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
            y = MaxPool2DFn.apply(Conv2DFn.apply(*ts, relu=True), pool_size=2)
            DropoutFn.apply(y, rate=0.25, key=key).sum().backward()

        print(f"  {c} -> {f} channels, {k}x{k}, {size}x{size}: fused "
              f"{median_ms(fused_step, repeat):.2f}, the three ops "
              f"{median_ms(unfused_step, repeat):.2f}")


def article_parameters():
    """Parameters shaped like the article model's, random, with random gradients."""
    shapes = [p.shape for p in article_cnn(fused=False).parameters()]
    rng = np.random.default_rng(0)
    params = [Tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
              for s in shapes]
    for p in params:
        p.grad = rng.standard_normal(p.shape).astype(np.float32) * 1e-3
    return params


def bench_optimizers(repeat):
    """Each fused update against its numpy reference and against copying the same bytes
    (every array the update reads or writes: parameters, gradients and state), on
    parameters shaped like the article model's (1,387,594 float32 values)."""
    from tinygrad_opt.optim import (SGD, Adadelta, Adagrad, Adam, AdamW, Lion, Muon, NAdam,
                                    RAdam, RMSprop, Rprop, Adamax, Lamb, Adafactor,
                                    AdamWScheduleFree, Prodigy, SGDScheduleFree)
    from tinygrad_opt import reference

    params = article_parameters()
    print(f"\noptimizer updates, {sum(p.size for p in params):,} float32 values, median ms:")
    print(f"  {'optimizer':18s} {'kernel':>7s} {'numpy ref':>10s} {'speed-up':>9s} "
          f"{'copy same bytes':>16s} {'kernel/copy':>12s} {'step()':>7s}")
    for name, make in [("SGD", lambda ps: SGD(ps)),
                       ("SGD momentum 0.9", lambda ps: SGD(ps, momentum=0.9)),
                       ("Adagrad", Adagrad), ("RMSprop", RMSprop), ("Adadelta", Adadelta),
                       ("Adam", Adam),
                       ("Adam, torch form", lambda ps: Adam(ps, preset="torch")),
                       ("Adam, amsgrad", lambda ps: Adam(ps, amsgrad=True)),
                       ("AdamW (decay)", AdamW), ("NAdam", NAdam), ("RAdam", RAdam),
                       ("Lion", Lion), ("Muon (torch)", lambda ps: Muon(ps, preset="torch")),
                       ("Rprop", Rprop), ("Adamax", Adamax), ("LAMB", Lamb),
                       ("Adafactor", Adafactor),
                       ("Schedule-Free SGD", lambda ps: SGDScheduleFree(ps).train()),
                       ("Schedule-Free AdamW", lambda ps: AdamWScheduleFree(ps).train()),
                       ("Prodigy*", lambda ps: Prodigy(ps, growth_rate=1.02))]:
        opt = make(params)
        for _ in range(6):             # state allocated, kernels compiled, RAdam past
            opt.step()                 # its momentum-only steps
        if opt.kernel_update is None:  # a rule with its own step(): step() both ways
            kernel = median_ms(opt.step, repeat)
            with reference():
                ref = median_ms(opt.step, repeat)
            print(f"  {name:18s} {kernel:7.3f} {ref:10.3f} {ref / kernel:8.1f}x "
                  f"{'':16s} {'':12s} {kernel:7.3f}")
            continue
        h = opt.begin_step([opt.param_groups[0]])[0]    # with what a rule adds per step
        triples = [(p.data, p.grad, st) for p, st in zip(params, opt.state)]
        arrays = [a for w, g, st in triples for a in (w, g, *st.values())]
        sources = [a.copy() for a in arrays]
        kernel = median_ms(lambda: [opt.kernel_update(w, g, st, h) for w, g, st in triples],
                           repeat)
        ref = median_ms(lambda: [opt.reference_update(w, g, st, h) for w, g, st in triples],
                        repeat)
        copy = median_ms(lambda: [np.copyto(a, b) for a, b in zip(arrays, sources)], repeat)
        step = median_ms(opt.step, repeat)
        print(f"  {name:18s} {kernel:7.3f} {ref:10.3f} {ref / kernel:8.1f}x {copy:16.3f} "
              f"{kernel / copy:11.2f}x {step:7.3f}")
    print("  (step() adds the NaN/inf check of every gradient to the kernel, and weight "
          "decay where a rule has it: AdamW, Muon; Muon's kernel and reference share the "
          "Newton-Schulz matrix products, numpy's BLAS in both; *: a rule whose step is "
          "not one update per parameter, timed through step() on both paths; Prodigy's d "
          "grows at most 1.02x a step here, where the gradient never changes)")


def bench_soap(plain_steps, max_precond_dim=10000):
    """SOAP's cost on the article model's parameters against Adam's step: its first step
    (eigendecompositions: the dense layer's 5,408 x 5,408 factor among them), a plain
    step (four matrix products per factor), and the step that refreshes its basis every
    10th (a power iteration and QR decompositions), each timed through step(). --quick:
    max_precond_dim 1,024 (the 5,408-long axis left unpreconditioned: seconds, not
    minutes)."""
    from tinygrad_opt.optim import SOAP, Adam
    params = article_parameters()
    adam = Adam(params)
    adam.step()
    adam_ms = median_ms(adam.step, 10)
    opt = SOAP(params, max_precond_dim=max_precond_dim)
    times = []
    for _ in range(10 + plain_steps):      # step 1 sets up; step 11 (t = 10) refreshes
        t0 = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t0)
    plain = float(np.median(times[1:10] + times[11:]))
    print(f"\nSOAP on the article model's parameters (1,387,594 float32 values), "
          f"max_precond_dim {max_precond_dim}:\n  first step {times[0]:.1f} s (eigendecompositions), a step "
          f"{plain * 1e3:.0f} ms (median of {len(times) - 2}), the 10th update "
          f"{times[10]:.1f} s (basis refreshed); Adam's step {adam_ms:.2f} ms: a plain "
          f"SOAP step is {plain * 1e3 / adam_ms:.0f}x Adam's")


def workload(name, repeat, limit):
    """Run one training workload here; print a JSON line with its figures."""
    from tinygrad_opt.data import load, to_float
    from tinygrad_opt.train import Trainer

    if name == "transformer":
        return transformer_workload(repeat)
    data = load("mnist")
    train = (data.train_images[:limit], data.train_labels[:limit])
    val = (data.test_images, data.test_labels)
    n = len(train[0])
    result = {}
    if name == "epoch":       # batch 64, Adam, dropout on: the article protocol
        times, evals = [], []
        for _ in range(repeat):
            trainer = Trainer(article_cnn(seed=0), "adam", verbose=0, transform=to_float)
            h = trainer.fit(train, val, 1)[0]
            times.append(h["train_seconds"])
            t0 = time.perf_counter()
            trainer.evaluate(*val)
            evals.append(time.perf_counter() - t0)
        result = dict(train_s=float(np.median(times)), samples_per_s=n / np.median(times),
                      eval_s=float(np.median(evals)), runs=len(times))
    elif name == "batch1":    # one-sample SGD: the step latency
        trainer = Trainer(article_cnn(seed=0), "sgd", verbose=0, transform=to_float)
        steps = min(n, 3000)
        times = []
        for i in range(steps):
            t0 = time.perf_counter()
            trainer.accumulate_gradient(train[0], train[1], np.array([i]))
            trainer.optimizer.step()
            times.append(time.perf_counter() - t0)
        result = dict(step_ms=1e3 * float(np.median(times[100:])), steps=steps)
    elif name == "lenet":     # LeNet-5 with batch normalisation, batch 64, Adam
        from tinygrad_opt.models import lenet5
        from tinygrad_opt.optim import Adam
        times = []
        for _ in range(repeat):
            model = lenet5(seed=0)
            trainer = Trainer(model, Adam(model.parameters()), verbose=0,
                              transform=to_float)
            times.append(trainer.fit(train, None, 1)[0]["train_seconds"])
        result = dict(train_s=float(np.median(times)), samples_per_s=n / np.median(times),
                      runs=len(times))
    elif name in ("adam-epochs", "adam-epochs-keep"):   # one run, `repeat` epochs
        from tinygrad_opt.optim.underflow import keep_subnormals
        trainer = Trainer(article_cnn(seed=0), "adam", verbose=0, transform=to_float)
        times = []
        with keep_subnormals() if name.endswith("keep") else contextlib.nullcontext():
            for _ in range(repeat):
                times.append(trainer.fit(train, None, 1)[-1]["train_seconds"])
        tiny = np.finfo(np.float32).tiny
        result = dict(epoch_s=[round(t, 2) for t in times], subnormal_state=int(sum(
            np.sum((a != 0) & (np.abs(a) < tiny)) for s in trainer.optimizer.state
            for a in s.values())))
    elif name == "gd":        # one update on the exact gradient of the whole set
        trainer = Trainer(article_cnn(seed=0), "gd", verbose=0, transform=to_float)
        h = trainer.fit(train, val, 1)[0]
        result = dict(train_s=h["train_seconds"], updates=h["updates"])
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def transformer_workload(repeat):
    """The character transformer, batch 32 windows of context 128: `repeat` training
    steps after three to warm up; a JSON line with the median step and the peak RSS."""
    corpus, opt, loss_of = transformer()
    rng = np.random.default_rng(0)
    times = []
    for _ in range(repeat + 3):             # three steps to warm up
        x, y = corpus.batch(32, 128, rng)
        t0 = time.perf_counter()
        loss = loss_of(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    step_ms = 1e3 * float(np.median(times[3:]))
    result = dict(step_ms=step_ms, steps=repeat, tokens_per_s=32 * 128e3 / step_ms)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def _in_subprocess(args, env=None):
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_workloads(repeat, limit, transformer_steps):
    print(f"training workloads (real MNIST{'' if limit is None else f', first {limit} images'}"
          f", each in its own process):")
    lim = [] if limit is None else ["--limit", str(limit)]
    e = _in_subprocess(["--workload", "epoch", "--repeat", str(repeat), *lim])
    print(f"  train epoch, batch 64, Adam:   {e['train_s']:.2f} s ({e['samples_per_s']:,.0f} "
          f"samples/s), median of {e['runs']}; peak RSS {e['peak_rss_mib']:.0f} MiB")
    print(f"  evaluation, 10,000 images:     {e['eval_s']:.2f} s")
    b = _in_subprocess(["--workload", "batch1", *lim])
    print(f"  one-sample SGD step:           {b['step_ms']:.2f} ms (median of "
          f"{b['steps'] - 100} steps); peak RSS {b['peak_rss_mib']:.0f} MiB")
    le = _in_subprocess(["--workload", "lenet", "--repeat", str(repeat), *lim])
    print(f"  LeNet-5 epoch, batch 64, Adam:  {le['train_s']:.2f} s ({le['samples_per_s']:,.0f} "
          f"samples/s), median of {le['runs']}; peak RSS {le['peak_rss_mib']:.0f} MiB "
          f"(PyTorch: make bench-torch)")
    g = _in_subprocess(["--workload", "gd", *lim])
    print(f"  full-batch GD epoch (1 update): {g['train_s']:.2f} s; peak RSS "
          f"{g['peak_rss_mib']:.0f} MiB")
    t = _in_subprocess(["--workload", "transformer", "--repeat", str(transformer_steps)])
    print(f"  char transformer step, AdamW:   {t['step_ms']:.1f} ms ({1e3 / t['step_ms']:.2f} "
          f"steps/s, {t['tokens_per_s']:,.0f} tokens/s), median of {t['steps']}; peak RSS "
          f"{t['peak_rss_mib']:.0f} MiB (PyTorch: make bench-torch)")


def bench_compile():
    """Import and one training step with an empty Numba cache: the first-run cost."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        code = ("import time; t0 = time.perf_counter(); import numpy as np; "
                "from tinygrad_opt import Tensor; from tinygrad_opt.models import article_cnn; "
                "from tinygrad_opt.optim import Adam; "
                "from tinygrad_opt.nn.functional import softmax_cross_entropy as L; "
                "m = article_cnn(); o = Adam(m.parameters()); "
                "x = Tensor(np.zeros((64, 1, 28, 28))); l = L(m(x), np.zeros(64, int)); "
                "l.backward(); o.step(); m.eval(); m(x); print(time.perf_counter() - t0)")
        times = []
        for _ in range(2):     # cold, then warm (cached)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                 text=True, env=env, check=True)
            times.append(float(out.stdout.strip()))
    print(f"\nJIT compile: first training step {times[0]:.1f} s with a cold cache, "
          f"{times[1]:.1f} s once cached")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30,
                    help="timed repeats of each kernel and step (default 30); with "
                         "--workload epoch, the number of epochs timed")
    ap.add_argument("--quick", action="store_true", help="few repeats, a data subset")
    ap.add_argument("--workload", choices=("epoch", "batch1", "gd", "lenet", "transformer",
                                           "adam-epochs", "adam-epochs-keep"),
                    help="run one training workload alone and print its figures as JSON: "
                         "epoch (batch 64, Adam), batch1 (one-sample SGD steps), gd (one "
                         "full-batch update), lenet (LeNet-5 epoch, batch 64, Adam), "
                         "transformer (char transformer steps, batch 32, AdamW), "
                         "adam-epochs (one Adam run of --repeat epochs, each epoch's time; "
                         "-keep: its state's subnormal numbers kept, not flushed)")
    ap.add_argument("--limit", type=int, default=None,
                    help="with --workload: train on the first N images only")
    args = ap.parse_args()
    # The entry points' thread policy (threads.py); the transformer's as examples/08 sets it
    use_sleeping_threads(reexec=True, spin=0 if args.workload == "transformer" else None)
    if args.workload:
        return workload(args.workload, args.repeat, args.limit)
    repeat = 3 if args.quick else args.repeat
    t0 = time.perf_counter()
    bench_workloads(1 if args.quick else 3, 2000 if args.quick else None,
                    3 if args.quick else 30)
    bench_compile()
    bench_model(repeat)
    bench_transformer(max(3, repeat // 3))
    bench_kernels(repeat)
    bench_optimizers(repeat)
    bench_soap(1, 1024) if args.quick else bench_soap(5)
    print(f"\n(total {time.perf_counter() - t0:.1f} s, {repeat} repeats each)")


if __name__ == "__main__":
    main()
