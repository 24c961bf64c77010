"""The allocator policy: memory a training step frees is kept for the next step.

A step makes and frees the same large temporaries every time (activations, gradients,
a layer's products: a few MiB each). glibc's malloc serves an allocation of 128 KiB or
more with a fresh `mmap` and gives it back to the system when it is freed; it raises
that threshold as it sees larger blocks freed, and then gives back the free top of its
heap once that passes twice the threshold. Either way the next step's arrays can be new
memory, zeroed by the kernel and faulted in page by page: LeNet-5's were, every step
(docs/performance.md, 2026-12-07: 1.5 million page faults in three epochs, and what it
cost).

`keep_freed_memory()` tells malloc, through `mallopt`, to take blocks up to 256 MiB from
its heap and to keep up to 1 GiB of free memory at the heap's top: after the first step
the next one finds its memory already mapped. The cost is that a process's resident
memory stays near its peak after a large array is freed (the peak itself is unchanged).

Importing tinygrad_opt calls it, so that the command-line tools, their worker processes
and your own programs all have it. It changes no result, only where the memory comes
from. It does nothing where malloc is not glibc's (macOS, musl), and leaves malloc as it
is when you set either of glibc's own variables for this, `MALLOC_MMAP_THRESHOLD_` or
`MALLOC_TRIM_THRESHOLD_` (for instance `MALLOC_TRIM_THRESHOLD_=0` to give memory back at
every free).
"""
import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3         # glibc's <malloc.h>
MMAP_THRESHOLD = 256 * 2**20         # blocks this large or larger: mmap, as before
TRIM_THRESHOLD = 2**30               # free memory kept at the heap's top


def keep_freed_memory():
    """Keep freed memory in malloc's heap for reuse (above). Returns True when malloc was
    told, False when it was left as it is (not glibc, or a MALLOC_ variable set)."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt     # the C library Python itself runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
