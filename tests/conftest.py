"""The tests run with the package's thread policy, as its entry points do (threads.py),
set here before numpy loads (threads.py is read on its own: importing the package loads
numpy), and with OpenBLAS's own choice of kernels: an inherited OPENBLAS_CORETYPE is
removed. Some machines' environments force Haswell's kernels (OPENBLAS_CORETYPE=Haswell
on an AVX-512 AMD EPYC here), whose last bits change with the thread count at every
shape tried, where the kernels OpenBLAS picks give the same bits at the models' shapes
(docs/protocol.md); the tests compare one thread with two, bit for bit."""
import importlib.util
import os

_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "tinygrad_opt", "threads.py")
_spec = importlib.util.spec_from_file_location("_thread_policy", _path)
_threads = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_threads)
if not _threads._too_late("OPENBLAS_CORETYPE"):
    os.environ.pop("OPENBLAS_CORETYPE", None)
LATE = _threads.use_sleeping_threads()      # the names set too late (numpy loaded first)
