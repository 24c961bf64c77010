"""The one place Numba is configured, and the helpers a kernel of one's own uses
(`jit`, `prange`, `serial_or_parallel`; docs/your-own-optimizer.md shows one).

Every kernel in the package is written as a plain Python function over numpy arrays
(loops, `prange` for independent outputs) and compiled here with `jit`. Two switches:

- `TINYGRAD_OPT_REFERENCE=1` in the environment, `with tinygrad_opt.reference():` or
  `set_reference(True)` makes every op and every optimizer call its plain numpy
  reference instead of its kernel: the readable path, for learning and debugging. Every
  op asks `use_reference()` itself, here; no layer decides for it.
- Numba's own `NUMBA_DISABLE_JIT=1` runs the kernels' Python source uncompiled, so a
  debugger can step through the loops.

Policy: `cache=True` (the compile is paid once per machine, not once per run);
`parallel=True` only where `prange` runs over independent outputs, never a shared
accumulator, so results do not depend on thread timing; no fastmath (results must match
the numpy references), except `reassociate=True` (fastmath's `reassoc` flag alone) for
the sums of a dot product, which LLVM vectorises only when it may reorder them: such a
sum then differs from the reference's in the last bits, as a BLAS product's does, and is
the same from run to run (the flags that assume no NaN or inf are never set); numpy's
error model (a division by zero gives inf or nan, as in the references, instead of
raising: the check it saves is what kept Numba from vectorising loops that divide;
`make bench`'s optimizer table times the updates).
"""
import os
import types
from contextlib import contextmanager

import numba   # its threads' waiting policy: threads.py

prange = numba.prange
_reference = os.environ.get("TINYGRAD_OPT_REFERENCE", "") not in ("", "0")


def jit(fn, parallel=False, inline=False, reassociate=False):
    """Compile the plain Python kernel `fn` (lazily, on first call, per dtype).
    inline=True: a helper called from other kernels, inlined into them (so their loops
    still vectorise). reassociate=True: LLVM may reorder floating-point additions, which
    it needs to vectorise a sum (a dot product): see the policy above. A function
    defined outside a file (typed at a prompt, run by exec) is compiled without the
    on-disk cache, which needs a source file to file its entries under."""
    cache = os.path.isfile(fn.__code__.co_filename)
    return numba.njit(cache=cache, parallel=parallel, nogil=True, error_model="numpy",
                      fastmath={"reassoc"} if reassociate else False,
                      inline="always" if inline else "never")(fn)


def _renamed(fn, suffix):
    """A copy of `fn` under another name. Numba's on-disk cache files a compiled function
    under its name and bytecode, not its compile options: a serial and a parallel build of
    one function would overwrite each other's cache entries, and a later run would load
    the wrong one."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix,
                              fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__ + suffix
    copy.__module__ = fn.__module__
    return copy


def use_reference():
    """True when ops should run their numpy reference instead of their kernel."""
    return _reference


def set_reference(enabled):
    """Switch every op between its kernel (False) and its numpy reference (True)."""
    global _reference
    _reference = bool(enabled)


@contextmanager
def reference(enabled=True):
    """`with tinygrad_opt.reference():` every op and optimizer inside runs its numpy
    reference; the previous setting comes back on exit, also after an error. Each op
    asks the switch when it runs, forward and backward alike: a backward pass outside
    the block runs the kernels (the fused ops alone record the path their forward pass
    ran, and take it backward too)."""
    previous = _reference
    set_reference(enabled)
    try:
        yield
    finally:
        set_reference(previous)


def serial_or_parallel(fn, parallel_from=1 << 15, reassociate=False):
    """Compile a kernel twice: serially, for small work where starting threads costs more
    than it saves (and a descheduled core stalls the whole step: a batch of one sample),
    and with `parallel=True` when its first argument has at least `parallel_from`
    elements."""
    serial = jit(fn, reassociate=reassociate)
    parallel = jit(_renamed(fn, "_parallel"), parallel=True, reassociate=reassociate)

    def run(*args):
        return (parallel if args[0].size >= parallel_from else serial)(*args)

    return run
