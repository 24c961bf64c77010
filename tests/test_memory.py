"""The allocator policy (tinygrad_opt/memory.py): memory a step frees is kept for the
next step, not given back to the system and faulted in again page by page."""
import subprocess
import sys

import pytest

# A training step's temporaries, as LeNet-5's: arrays of a MiB or two, made and freed
# every step (under 2 MiB: numpy asks for huge pages for arrays of 4 MiB or more, and
# one huge page's fault stands for 512 small ones). Each process
# imports tinygrad_opt (or not) first, then counts the minor page faults of 20 steps
# after one step of warm-up.
STEPS = """
import resource, sys
if sys.argv[1] == "import":
    import tinygrad_opt
import numpy as np
def step():
    a = [np.ones((384, 1024), np.float32) for _ in range(6)]     # 1.5 MiB each
    return float(sum(x[0, 0] for x in a))
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(*args, env=None):
    out = subprocess.run([sys.executable, "-c", STEPS, *args], capture_output=True,
                         text=True, check=True, env=env)
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_importing_the_package_keeps_freed_memory_for_the_next_step():
    assert faults("import") < 100            # the arrays are in the heap already
    assert faults("no-import") > 20 * 1000   # the system's default (about 2,300 a step here)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_malloc_variable_the_user_set_is_left_as_it_is():
    import os
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="0")      # give back at every free
    assert faults("import", env=env) > 20 * 1000
