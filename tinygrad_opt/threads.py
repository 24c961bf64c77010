"""The thread policy, in one place: how the two thread pools share the cores.

Two pools of threads run a training step: OpenBLAS's (numpy's matrix products, the dense
layers) and Numba's OpenMP threads (the parallel kernels). By default each pool's idle
threads spin for a while after their work before they sleep, taking the cores from the
other pool and from the Python code between them. Told to sleep at once:

- `OPENBLAS_THREAD_TIMEOUT=4`: OpenBLAS's idle threads sleep at once. OpenBLAS reads it
  once, when numpy loads its library.
- `OMP_WAIT_POLICY=PASSIVE`: so do Numba's OpenMP threads. The OpenMP runtime reads it
  when Numba first starts its threads.

Either one alone ends the contention, so calling `use_sleeping_threads()` after numpy is
loaded still helps: OMP_WAIT_POLICY takes effect as long as no parallel kernel has run
yet.

- `GOMP_SPINCOUNT=30000`: sleeping at once has its own cost where parallel kernels follow
  each other closely, as in LeNet-5's step: each kernel starts by waking its threads.
  libgomp, the OpenMP runtime behind Numba's threads here, lets idle threads spin this
  many rounds before they sleep (the variable overrides the policy's count of 0); the
  count was chosen from `make bench`'s LeNet-5 row against 0 to 300,000 rounds. Where
  kernels alternate with BLAS products instead (the character transformer), the
  spinning threads take a core from OpenBLAS's: `use_sleeping_threads(spin=0)`.
  Only beside OPENBLAS_THREAD_TIMEOUT: with OpenBLAS's threads spinning too (numpy loaded
  before the policy was set), both pools spin against each other and LeNet-5's epoch is
  several times slower than with either policy, so `use_sleeping_threads()` then leaves
  GOMP_SPINCOUNT unset.

What each variable was measured to change: docs/performance.md ("Figures measured for
the source's choices").

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
    if name.startswith("OPENBLAS_"):
        return "numpy" in sys.modules
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    return bool(parallel is not None and parallel._is_initialized)


def use_sleeping_threads(reexec=False, spin=None):
    """Set the policy's variables that are unset.

    Args:
        reexec: for a program that owns its process (a command-line entry point): if a
            variable came too late for its library (numpy, or Numba's threads, already
            loaded), restart the process with the same arguments, the variables now set,
            so that the policy holds whatever was imported first.
        spin: GOMP_SPINCOUNT's rounds instead of the policy's 30,000. 0 for a program
            whose parallel kernels alternate with BLAS products, as the character
            transformer's do (layer norm, product, attention, product, ...): Numba's
            threads spinning after each kernel take a core from OpenBLAS's.
    Returns:
        the names that were set too late to take effect in this process (empty when
        everything took effect).
    """
    policy = dict(POLICY, **({} if spin is None else {"GOMP_SPINCOUNT": str(int(spin))}))
    missing = {k: v for k, v in policy.items() if k not in os.environ}
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
