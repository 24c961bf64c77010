"""The tests run with the package's thread policy, as its entry points do (threads.py);
OMP_WAIT_POLICY takes effect here, OPENBLAS_THREAD_TIMEOUT only if set before pytest."""
from tinygrad_opt.threads import use_sleeping_threads

use_sleeping_threads()
