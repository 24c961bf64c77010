"""The memory policy: with it, arrays freed by one step are reused by the next without
touching new pages (the page faults it exists to save)."""
import subprocess
import sys

import pytest

CODE = """
import resource, sys
import numpy as np
if sys.argv[1] == "on":
    from tinygrad_opt.memory import keep_freed_memory
    assert keep_freed_memory()
def step():
    arrays = [np.ones((32, 128, 512), dtype=np.float32) for _ in range(4)]
    return sum(float(a[0, 0, 0]) for a in arrays)
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_arrays_are_reused_without_new_page_faults():
    faults = {mode: int(subprocess.run([sys.executable, "-c", CODE, mode],
                                       capture_output=True, text=True,
                                       check=True).stdout)
              for mode in ("off", "on")}
    assert faults["off"] > 10 * 1000       # thousands of pages a step touched anew
    assert faults["on"] < 100, faults
