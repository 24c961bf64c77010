"""`make bench`: medians of repeated runs, side by side in one process.

    python benchmarks/bench.py [--repeat N] [--quick]

Reports: forward+backward of the article model at batch 64 (ms/step, samples/s), each
Numba kernel against its numpy reference, and each fused optimizer update against its
numpy reference and against one copy of the same bytes.
"""
import argparse
import time

import numpy as np

from tinygrad_opt import Tensor
from tinygrad_opt.models import article_cnn
from tinygrad_opt.nn.functional import softmax_cross_entropy
from tinygrad_opt.ops import conv, dropout, pool


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
    model = article_cnn(seed=0).train()
    rng = np.random.default_rng(0)
    x = Tensor(rng.uniform(0, 1, (batch, 1, 28, 28)).astype(np.float32))
    y = rng.integers(0, 10, batch)

    def step():
        model.zero_grad()
        softmax_cross_entropy(model(x), y).backward()

    ms = median_ms(step, repeat)
    print(f"article model forward+backward, batch {batch}: {ms:.2f} ms/step, "
          f"{batch / ms * 1e3:,.0f} samples/s")


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
    ]
    print("\nkernels at the article's shapes (batch 64), median ms:")
    print(f"  {'kernel':24s} {'numba':>8s} {'numpy ref':>10s} {'speed-up':>9s}")
    for name, fast, ref in cases:
        f, r = median_ms(fast, repeat), median_ms(ref, repeat)
        print(f"  {name:24s} {f:8.3f} {r:10.3f} {r / f:8.1f}x")


def bench_optimizers(repeat):
    """Each fused update against its numpy reference and one copy of the same bytes, on
    parameters shaped like the article model's (1,387,594 float32 values)."""
    from tinygrad_opt import _jit
    from tinygrad_opt.optim import SGD, Adadelta, Adagrad, Adam, RMSprop

    shapes = [p.shape for p in article_cnn().parameters()]
    rng = np.random.default_rng(0)
    params = [Tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
              for s in shapes]
    for p in params:
        p.grad = rng.standard_normal(p.shape).astype(np.float32) * 1e-3
    src = [p.data.copy() for p in params]
    copy_ms = median_ms(lambda: [np.copyto(p.data, s) for p, s in zip(params, src)], repeat)
    print(f"\noptimizer updates, {sum(p.size for p in params):,} float32 values, median ms "
          f"(one copy of the same bytes: {copy_ms:.3f} ms):")
    print(f"  {'optimizer':22s} {'fused':>8s} {'numpy ref':>10s} {'speed-up':>9s} "
          f"{'x copy':>7s}")
    for name, make in [("SGD", lambda ps: SGD(ps)),
                       ("SGD momentum 0.9", lambda ps: SGD(ps, momentum=0.9)),
                       ("Adagrad", Adagrad), ("RMSprop", RMSprop), ("Adadelta", Adadelta),
                       ("Adam", Adam)]:
        opt = make(params)
        fast = median_ms(opt.step, repeat)
        _jit.set_reference(True)
        try:
            ref = median_ms(opt.step, repeat)
        finally:
            _jit.set_reference(False)
        print(f"  {name:22s} {fast:8.3f} {ref:10.3f} {ref / fast:8.1f}x {fast / copy_ms:6.1f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="few repeats, for a smoke test")
    args = ap.parse_args()
    repeat = 3 if args.quick else args.repeat
    t0 = time.perf_counter()
    bench_model(repeat)
    bench_kernels(repeat)
    bench_optimizers(repeat)
    print(f"\n(total {time.perf_counter() - t0:.1f} s, {repeat} repeats each)")


if __name__ == "__main__":
    main()
