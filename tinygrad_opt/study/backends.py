"""Where a study's trials run: worker processes on this machine (`LocalBackend`, the
default, no service and no extra dependency) or Ray tasks on a cluster (`RayBackend`).

Both run `trials.run_trial` and hand each result to `on_result` as it finishes (the study
stores it at once), both pin a worker to `threads` cores (Numba's and BLAS's thread
counts set in its environment before it imports numpy), and both retry a trial whose
worker died (killed, out of memory) up to `retries` times; a trial that raises an error
of its own is not retried: the error is reported.
"""
import os
import sys
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
import multiprocessing

from ..threads import POLICY
from .trials import run_trial, trial_id


def worker_env(threads):
    """The environment variables that pin a worker to `threads` threads."""
    n = str(threads)
    return dict(POLICY, NUMBA_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, OMP_NUM_THREADS=n,
                MKL_NUM_THREADS=n)


@contextmanager
def pinned_threads(threads):
    """Inside the block, os.environ pins the processes it spawns to `threads` threads
    (they inherit it); the previous values come back after."""
    saved = {k: os.environ.get(k) for k in worker_env(threads)}
    os.environ.update(worker_env(threads))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def spawn_pool(workers):
    """`workers` fresh (spawned) processes that die with this one."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_die_with_parent, initargs=(os.getpid(),))


class TrialFailed(RuntimeError):
    """A trial kept failing (its worker died more often than retries allow, or it raised)."""


def _die_with_parent(parent):
    """A worker's initializer: the kernel kills this process when the study's process
    dies, however it dies (Linux's PR_SET_PDEATHSIG; a kill -9 of the study left its
    workers training for minutes). If the parent is already gone, exit now."""
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # 1: SET
    except (OSError, AttributeError):     # not Linux: workers end when their queue does
        pass
    if os.getppid() != parent:
        os._exit(1)


class LocalBackend:
    """`workers` processes of `threads` threads each, started fresh (spawn) with the
    thread settings in their environment; they share Numba's on-disk cache, so each
    kernel compiles once per machine."""

    name = "local"

    def __init__(self, workers=1, threads=1, retries=2, data_dir=None):
        self.workers, self.threads, self.retries = workers, threads, retries
        self.data_dir = data_dir

    def run(self, specs, on_result):
        with pinned_threads(self.threads):
            self._run(specs, on_result)

    def _run(self, specs, on_result):
        pending, deaths = list(specs), {}
        while pending:
            pool = spawn_pool(self.workers)
            try:
                futures = {pool.submit(run_trial, s, self.data_dir): s for s in pending}
                pending = []
                for future in as_completed(futures):
                    spec = futures[future]
                    try:
                        result = future.result()
                    except BrokenProcessPool:     # a worker died: this trial and those
                        pending.append(spec)      # still in flight run again
                        continue
                    except Exception as e:
                        raise TrialFailed(f"trial {trial_id(spec)} failed: "
                                          f"{type(e).__name__}: {e}") from e
                    on_result(result)
            except BaseException:             # Ctrl-C, SIGTERM, a failed trial: stop
                stop_pool(pool)               # now; the finished trials are stored
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
            if pending:
                print(f"tinygrad-opt: a worker died; running {len(pending)} unfinished "
                      f"trial(s) again", file=sys.stderr, flush=True)
            for spec in pending:
                key = trial_id(spec)
                deaths[key] = deaths.get(key, 0) + 1
                if deaths[key] > self.retries:
                    raise TrialFailed(f"trial {key}: its worker died {deaths[key]} times "
                                      f"(more than --retries {self.retries})")


def stop_pool(pool):
    """End the pool's workers at once (a trial in flight is lost, run again next time)."""
    for process in list(getattr(pool, "_processes", {}).values()):
        process.kill()


def _reachable(address, timeout=5.0):
    """One line instead of Ray's endless retries: a host:port address must accept a
    connection within `timeout` seconds ("auto" and "ray://..." are Ray's to resolve)."""
    import socket
    if address in ("auto", "local") or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise TrialFailed(f"--address {address!r}: expected HOST:PORT, 'auto' or "
                          f"ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise TrialFailed(f"--address {address}: no Ray head answers there within "
                          f"{timeout:g} s ({e.strerror or e})") from None


class RayBackend:
    """Each trial a Ray task declaring `threads` CPUs, with the thread settings in its
    runtime environment. address: a running cluster's ("ray://host:10001" or "auto"),
    else RAY_ADDRESS, else a local Ray instance of workers x threads CPUs is started (and
    stopped at the end). Ray retries a task whose worker died (`max_retries`)."""

    name = "ray"

    def __init__(self, address=None, workers=1, threads=1, retries=2, data_dir=None):
        import importlib.util
        if importlib.util.find_spec("ray") is None:
            raise TrialFailed("--backend ray needs Ray: pip install 'tinygrad_opt[ray]'")
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.workers, self.threads, self.retries = workers, threads, retries
        self.data_dir = data_dir

    def run(self, specs, on_result):
        import ray
        started = False
        if not ray.is_initialized():
            if self.address:
                _reachable(self.address)
                try:
                    ray.init(address=self.address, log_to_driver=False)
                except Exception as e:            # a form Ray cannot use: one line
                    hint = (" (the ray:// form needs pip install 'ray[client]')"
                            if self.address.startswith("ray://") else "")
                    raise TrialFailed(f"--address {self.address}: Ray could not connect: "
                                      f"{type(e).__name__}: {str(e).splitlines()[0]}"
                                      f"{hint}") from None
            else:
                ray.init(num_cpus=self.workers * self.threads, include_dashboard=False,
                         log_to_driver=False)
            started = True
        try:
            task = ray.remote(num_cpus=self.threads, max_retries=self.retries,
                              retry_exceptions=False,
                              runtime_env={"env_vars": worker_env(self.threads)})(run_trial)
            refs = {task.remote(s, self.data_dir): s for s in specs}
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                spec = refs.pop(done[0])
                try:
                    result = ray.get(done[0])
                except Exception as e:
                    raise TrialFailed(f"trial {trial_id(spec)} failed on Ray: "
                                      f"{type(e).__name__}: {e}") from e
                on_result(result)
        finally:
            if started:
                ray.shutdown()


def make_backend(name, workers, threads, address=None, retries=2, data_dir=None):
    if name == "ray":
        return RayBackend(address, workers, threads, retries, data_dir)
    return LocalBackend(workers, threads, retries, data_dir)
