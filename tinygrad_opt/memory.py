"""The memory policy of a training process: keep freed memory for the next step.

A step of the character transformer allocates and frees about 100 MB of arrays of a few
MB each. glibc's malloc serves each of them by a fresh mmap and gives it back to the
kernel when it is freed, so the next step touches new pages again: about 8,000 page
faults a step (`getrusage`'s minor faults), whose zeroing and bookkeeping cost 10% of
the step (docs/performance.md). `keep_freed_memory()` raises the two thresholds that
decide this (`mallopt`'s M_MMAP_THRESHOLD, arrays below it come from the heap, and
M_TRIM_THRESHOLD, free memory at the heap's top kept up to it), so that the freed
arrays are reused by the next step. The process's peak memory is unchanged; what it
gives back to the system between steps is what it keeps instead. glibc only (Linux);
elsewhere it does nothing. The entry points that train large models call it (examples/
08_char_transformer.py, `make bench`'s transformer row).
"""
import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20       # glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX on 64 bits)
TRIM_THRESHOLD = 256 << 20


def keep_freed_memory():
    """Set the two thresholds; True when glibc took them, False where there is no glibc."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and \
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
