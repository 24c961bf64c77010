"""The thread policy, in one place: how the two thread pools share the cores.

Two pools of threads run a training step: OpenBLAS's (numpy's matrix products, the dense
layers) and Numba's OpenMP threads (the parallel kernels). By default each pool's idle
threads spin for a while after their work before they sleep, taking the cores from the
other pool and from the Python code between them. Told to sleep at once:

- `OPENBLAS_THREAD_TIMEOUT=4`: an epoch of the article model took 7.1 s instead of 8.4 s
  on the 2-core machine this was written on (`bench.py --workload epoch`). OpenBLAS reads
  it once, when numpy loads its library.
- `OMP_WAIT_POLICY=PASSIVE`: a training step took 45 ms instead of 68 ms there. The
  OpenMP runtime reads it when Numba first starts its threads.

Either one alone ends the contention: a convolution of 6 to 16 channels, 5x5 on 14x14,
batch 64, took 8.0 ms with neither, 0.71 ms with OMP_WAIT_POLICY alone and 0.66 ms with
OPENBLAS_THREAD_TIMEOUT alone (`conv2d_forward_kernel`, 2026-11-29). So calling
`use_sleeping_threads()` after numpy is loaded still helps: OMP_WAIT_POLICY takes effect
as long as no parallel kernel has run yet.

- `GOMP_SPINCOUNT=30000`: sleeping at once has its own cost where parallel kernels follow
  each other closely, as in LeNet-5's step: each kernel starts by waking its threads.
  libgomp, the OpenMP runtime behind Numba's threads here, lets idle threads spin this
  many rounds before they sleep (the variable overrides the policy's count of 0). A
  LeNet-5 epoch (`bench.py --workload lenet`) took 4.71-4.77 s instead of 5.48-5.72 s
  with no spin, 5.25-5.50 s with 1,000 rounds, 5.03-5.04 s with 10,000, 4.75-4.78 s
  with 100,000, 4.78-5.04 s with 300,000 (libgomp's default without a policy); the
  article's epoch (`--workload epoch --limit 30000`) 2.90-2.96 s against 2.95-2.97 s
  with no spin, the one-sample step 0.82-0.83 ms against 0.83-0.84 ms (side by side,
  2026-11-29).
  Only beside OPENBLAS_THREAD_TIMEOUT: with OpenBLAS's threads spinning too (numpy loaded
  before the policy was set), LeNet-5's epoch in `examples/05_lenet_fashion_mnist.py
  --fast` took 3.6 s against 0.8 s with both and 1.3 s with no spin, so
  `use_sleeping_threads()` then leaves GOMP_SPINCOUNT unset.

Importing tinygrad_opt changes no environment variable. The entry points (`tinygrad-opt`,
`make bench`, the training examples) call `use_sleeping_threads(reexec=True)` first; a
program of your own can do the same at its start (importing tinygrad_opt loads numpy, so
without reexec OpenBLAS's variable comes too late), or set the variables itself. A
variable already set is left as it is.
"""
import os
import sys

POLICY = {"OPENBLAS_THREAD_TIMEOUT": "4", "OMP_WAIT_POLICY": "PASSIVE",
          "GOMP_SPINCOUNT": "30000"}


def _too_late(name):
    """Whether the library that reads `name` has read it already."""
    if name == "OPENBLAS_THREAD_TIMEOUT":
        return "numpy" in sys.modules
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    return bool(parallel is not None and parallel._is_initialized)


def use_sleeping_threads(reexec=False):
    """Set the policy's variables that are unset.

    Args:
        reexec: for a program that owns its process (a command-line entry point): if a
            variable came too late for its library (numpy, or Numba's threads, already
            loaded), restart the process with the same arguments, the variables now set,
            so that the policy holds whatever was imported first.
    Returns:
        the names that were set too late to take effect in this process (empty when
        everything took effect).
    """
    missing = {k: v for k, v in POLICY.items() if k not in os.environ}
    late = [k for k in missing if _too_late(k)]
    if "OPENBLAS_THREAD_TIMEOUT" in late and not reexec:
        missing.pop("GOMP_SPINCOUNT", None)     # OpenBLAS's threads spin: Numba's must not
        late = [k for k in late if k != "GOMP_SPINCOUNT"]
    os.environ.update(missing)
    if late and reexec:
        sys.stdout.flush()
        sys.stderr.flush()
        argv = getattr(sys, "orig_argv", [sys.executable] + sys.argv)
        os.execv(sys.executable, [sys.executable] + argv[1:])
    return late
