"""The article's MNIST experiment: the article's CNN trained with each method, its
results table beside the article's, and plots."""
import functools
import json
import os
import platform
import sys
import time

import numpy as np

from ..data import load, to_float
from ..models import article_cnn
from ..optim import ARTICLE_METHODS, METHODS
from . import report
from ..store.checkpoint import load_checkpoint
from ..store.files import OutputLock, atomic_write_text, check_writable, remove_temporaries
from .trainer import NonFiniteLoss, Trainer


@functools.lru_cache(maxsize=None)       # one answer a process: every trial records it
def processor():
    """The processor's model name as lscpu shows it (Linux's /proc/cpuinfo), else what
    platform knows, and the OpenBLAS kernels numpy runs on it: float32 results depend on
    them (an AMD EPYC with OpenBLAS's own choice, SkylakeX, gives an Intel Xeon's numbers
    bit for bit; forced to Haswell's kernels by OPENBLAS_CORETYPE, other last bits)."""
    name = platform.processor() or platform.machine() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name")), name)
    except OSError:
        pass
    kernels = _openblas_kernels()
    return f"{name} (OpenBLAS: {kernels})" if kernels else name


def _openblas_kernels():
    """The name of the kernels numpy's bundled OpenBLAS chose ("SkylakeX", "Haswell"),
    or None where numpy has no bundled OpenBLAS."""
    import ctypes
    import glob
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                  "libscipy_openblas*.so"))
    for lib in libs:
        try:
            get = ctypes.CDLL(lib).scipy_openblas_get_corename64_
        except (OSError, AttributeError):
            continue
        get.restype = ctypes.c_char_p
        return get().decode()
    return None


def _environment():
    import numba
    return dict(python=sys.version.split()[0], numpy=np.__version__, numba=numba.__version__,
                machine=platform.machine(), processor=processor(),
                system=platform.platform(), cpus=os.cpu_count())


def warm_up(seed=0):
    """Compile (or load from Numba's cache) every kernel a run uses, serial and parallel
    builds (a batch of 64 images, then one), so that no method's first epoch pays for
    it. Returns the seconds it took."""
    from ..autograd import no_grad
    from ..nn.functional import softmax_cross_entropy
    from ..tensor import Tensor

    t0 = time.perf_counter()
    for name in ("adam", "momentum", "minibatch", "adagrad", "rmsprop", "adadelta"):
        model = article_cnn(seed=seed)
        opt = METHODS[name].make(model.parameters())
        for batch in (64, 1):
            x = Tensor(np.zeros((batch, 1, 28, 28), dtype=np.float32))
            softmax_cross_entropy(model(x), np.zeros(batch, dtype=np.int64)).backward()
            opt.step()
            model.eval()
            with no_grad():
                softmax_cross_entropy(model(x), np.zeros(batch, dtype=np.int64))
            model.train()
    return time.perf_counter() - t0


class OutputError(RuntimeError):
    """The output folder holds results this run would overwrite or mix with its own."""


# What makes two runs comparable in one table: a folder holds runs that agree on these.
SHARED = ("dataset", "train_samples", "val_samples", "limit", "seed", "preset", "batch_size")


def _show(key, value):
    if value is None and key in ("batch_size", "limit"):
        return "each method's own" if key == "batch_size" else "none (every image)"
    return repr(value)


def _previous_results(out):
    """The runs and config in OUT/results.json, or None. Raises OutputError if unreadable."""
    path = os.path.join(out, "results.json")
    if not os.path.lexists(path):
        return None
    try:
        if os.path.islink(path) or not os.path.isfile(path):
            raise ValueError("not a plain file")
        with open(path) as f:
            previous = json.load(f)
        runs, config = list(previous["runs"]), dict(previous["config"])
        if not all(isinstance(r, dict) and "name" in r and "history" in r for r in runs):
            raise ValueError("a run without a name or a history")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise OutputError(f"{path}: unreadable results ({e}); move it away, or pass "
                          f"--overwrite to replace it") from None
    return dict(runs=runs, config=config)


def _plan(out, methods, config, resume, overwrite):
    """Decide which earlier runs this run keeps; refuse what would lose or mix results.
    Returns the kept runs (of methods not run now)."""
    checkpoints = os.path.join(out, "checkpoints")
    if overwrite:
        for name in os.listdir(checkpoints) if os.path.isdir(checkpoints) else ():
            if name.endswith((".npz", ".pkl")):
                os.unlink(os.path.join(checkpoints, name))
        return []
    previous = _previous_results(out)
    if previous is not None:
        differ = [f"{k}: saved {_show(k, previous['config'].get(k))}, requested "
                  f"{_show(k, config.get(k))}"
                  for k in SHARED if previous["config"].get(k) != config.get(k)]
        if differ:
            raise OutputError(f"{out} holds results of another experiment ("
                              + "; ".join(differ) + "): choose another --out, or pass "
                              "--overwrite to replace them")
    done = {r["name"] for r in previous["runs"]} if previous else set()
    done |= {m for m in methods
             if any(os.path.lexists(os.path.join(checkpoints, m + ext))
                    for ext in (".npz", ".pkl"))}
    clash = [m for m in methods if m in done]
    if clash and not resume:
        raise OutputError(f"{out} already holds results of {', '.join(clash)}: pass --resume "
                          f"to continue them, --overwrite to replace them, or choose "
                          f"another --out")
    return [r for r in previous["runs"] if r["name"] not in methods] if previous else []


def make_trainer(name, seed, preset=None, batch_size=None, overrides=None, verbose=0,
                 checkpoint=None, settings=None):
    """One run as `tinygrad-opt mnist` and `tinygrad-opt study` both build it: the
    article's CNN seeded with `seed`, the method's optimizer (preset, then the method's
    hyperparameters, then `overrides`), and a Trainer with the method's batch size
    (unless `batch_size`) feeding MNIST's images as floats."""
    method = METHODS[name]
    model = article_cnn(seed=seed)
    optimizer = method.make(model.parameters(), preset=preset, **(overrides or {}))
    return Trainer(model, optimizer, seed=seed, verbose=verbose,
                   transform=to_float,         # MNIST's uint8 images -> [0, 1], NCHW
                   batch_size=method.batch_size if batch_size is None else batch_size,
                   checkpoint=checkpoint, settings=settings)


def _trainer(name, seed, preset, batch_size, quiet, out, config):
    settings = {k: config[k] for k in ("dataset", "train_samples", "limit")}
    settings["method"] = name
    return make_trainer(name, seed, preset, batch_size,
                        config.get("sets", {}).get(name, {}),          # --set
                        verbose=0 if quiet else 1,
                        checkpoint=os.path.join(out, "checkpoints", f"{name}.npz"),
                        settings=settings)


def run_experiment(methods=ARTICLE_METHODS, epochs=10, batch_size=None, preset=None,
                   seed=0, limit=None, out="results/mnist", dataset="mnist", data_dir=None,
                   resume=False, overwrite=False, quiet=False, sets=None, workers=1):
    """Train the article's CNN with each method and write results.json, table.md,
    table.csv and the plots into `out`. Returns the list of runs of this call.

    workers > 1: the methods train side by side in that many worker processes (cores //
    workers threads each), with the same numbers as one after the other.
    batch_size overrides the methods' own (None keeps them); sets: {method: {key: value}},
    hyperparameters that override a method's (`--set adam.lr=0.003`). The folder is locked for
    the run (a second run into it raises FolderBusy). Results already in `out` are kept
    for methods not run now; for methods run now they need `resume` (continue them from
    their checkpoints) or `overwrite` (replace them), else OutputError. A resumed
    checkpoint must come from the same settings (CheckpointError otherwise). On Ctrl-C
    (or SIGTERM, when the caller turns it into KeyboardInterrupt) the finished epochs of
    every method are written before the KeyboardInterrupt goes on.
    """
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other")
    data = load(dataset, data_dir)
    train = (data.train_images[:limit], data.train_labels[:limit])
    val = (data.test_images, data.test_labels)
    config = dict(methods=list(methods), epochs=epochs, batch_size=batch_size,
                  sets=sets or {},
                  preset=preset or "keras",     # the request; "keras": each rule's default
                                                # (RAdam's is "torch": each run records its own)
                                                # every rule Keras ships
                  seed=seed, limit=limit, dataset=dataset, train_samples=len(train[0]),
                  val_samples=len(val[0]))
    checkpoints = os.path.join(out, "checkpoints")
    os.makedirs(out, exist_ok=True)
    with OutputLock(out):
        if os.path.islink(checkpoints):
            raise OutputError(f"{checkpoints} is a symbolic link; refusing to write "
                              f"through it")
        os.makedirs(checkpoints, exist_ok=True)
        check_writable(out)
        check_writable(checkpoints)         # a read-only folder: found before training
        remove_temporaries(out)             # what a kill -9 during a write left
        remove_temporaries(checkpoints)
        kept = _plan(out, methods, config, resume, overwrite)
        if resume:                          # every checkpoint checked before any training
            for name in methods:
                trainer = _trainer(name, seed, preset, batch_size, True, out, config)
                if os.path.lexists(trainer.checkpoint[:-4] + ".pkl") and \
                        not os.path.lexists(trainer.checkpoint):
                    load_checkpoint(trainer.checkpoint[:-4] + ".pkl")   # says why not
                trainer.restore(epochs)
        return _run(methods, epochs, batch_size, preset, seed, out, resume, quiet, config,
                    train, val, kept, workers, data_dir)


def _run(methods, epochs, batch_size, preset, seed, out, resume, quiet, config, train, val,
         kept, workers=1, data_dir=None):
    runs = []
    started = time.perf_counter()
    if not quiet:
        print("compiling the Numba kernels (the first run on a machine; cached after)...",
              end=" ", flush=True)
    config["warm_up_seconds"] = warm_up(seed)
    if not quiet:
        print(f"{config['warm_up_seconds']:.1f} s", flush=True)
    job = dict(epochs=epochs, batch_size=batch_size, preset=preset, seed=seed, out=out,
               resume=resume, quiet=quiet, config=config, data_dir=data_dir)
    try:
        if workers > 1 and len(methods) > 1:
            _run_in_workers(methods, job, workers, runs, kept, started)
        else:
            for name in methods:
                # the run is in `runs` while it trains: a Ctrl-C writes its finished epochs
                _train_method(name, job, train, val, on_start=runs.append)
                write_results(out, kept + runs, config, time.perf_counter() - started)
    except (KeyboardInterrupt, WorkerDied):
        write_results(out, kept + runs, config, time.perf_counter() - started,
                      interrupted=True)
        raise
    return runs


class WorkerDied(RuntimeError):
    """A worker process of `--workers` died (killed, out of memory)."""


def _train_method(name, job, train, val, on_start=None, verbose=None):
    """Train one method (restored from its checkpoint with `resume`) for the run's
    epochs; returns its run: name, optimizer, settings, history, and `stopped` (why it
    stopped early, or None)."""
    trainer = _trainer(name, job["seed"], job["preset"], job["batch_size"], job["quiet"],
                       job["out"], job["config"])
    if verbose is not None:
        trainer.verbose = verbose
    if job["resume"] and not trainer.restore(job["epochs"]):
        print(f"{name}: no checkpoint in {os.path.dirname(trainer.checkpoint)}; "
              f"starting it from epoch 1", file=sys.stderr, flush=True)
    # restored or not, `epochs` is the run's whole length: fit trains what is left
    run = _record(name, trainer)
    if on_start:
        on_start(run)
    if trainer.verbose == 1:
        print(f"== {run['title']}: {trainer.optimizer!r}, batch "
              f"{trainer.batch_size or 'full'}", flush=True)
    try:
        trainer.fit(train, val, job["epochs"] - len(trainer.history), desc=f"{name} ")
    except NonFiniteLoss as e:
        run["stopped"] = f"{name}: {e}"
        print(f"{name}: {e}", file=sys.stderr)
    finally:
        run["history"] = trainer.history
    return run


def _record(name, trainer):
    """A method's entry in results.json (its history: the trainer's, live)."""
    method = METHODS[name]
    return dict(name=name, title=method.title, article_row=method.article_row,
                optimizer=repr(trainer.optimizer), preset=trainer.optimizer.preset,
                batch_size=trainer.batch_size, settings=trainer.settings,
                history=trainer.history, stopped=None)


@functools.lru_cache(maxsize=1)
def _worker_data(dataset, data_dir, limit):
    """The training and test images, loaded once per worker process (not per method)."""
    images = load(dataset, data_dir)
    return ((images.train_images[:limit], images.train_labels[:limit]),
            (images.test_images, images.test_labels))


def _method_in_worker(name, job, data):
    """A worker process's task: train one method on the data (epoch lines, no bars:
    several workers share the terminal)."""
    train, val = _worker_data(*data)
    return _train_method(name, job, train, val, verbose=0 if job["quiet"] else 2)


def _run_in_workers(methods, job, workers, runs, kept, started):
    """The methods in `workers` processes of cores // workers threads each, the longest
    (one-sample SGD) first; results.json is written as each method finishes, its runs in
    the order of `methods`. Each run is the same as in one process: a method's numbers
    depend on its seed, not on where or beside what it trains."""
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool
    from ..study.backends import pinned_threads, spawn_pool, stop_pool

    config = job["config"]
    threads = max(1, (os.cpu_count() or 1) // workers)
    order = sorted(methods, key=lambda m: METHODS[m].batch_size != 1)    # stable
    data = (config["dataset"], job["data_dir"], config["limit"])
    if not job["quiet"]:
        print(f"{len(methods)} methods on {workers} worker processes of {threads} thread"
              f"{'s' * (threads > 1)} each; a line per finished epoch", flush=True)
    with pinned_threads(threads):                   # the workers start at the submits
        pool = spawn_pool(min(workers, len(methods)))
        futures = {pool.submit(_method_in_worker, m, job, data): m for m in order}
    done = {}
    try:
        for future in as_completed(futures):
            try:
                run = future.result()
            except BrokenProcessPool:
                raise WorkerDied(f"a worker process died (killed, or out of memory); the "
                                 f"finished epochs are in {job['out']} (continue with "
                                 f"--resume)") from None
            done[run["name"]] = run
            runs[:] = [done[m] for m in methods if m in done]
            write_results(job["out"], kept + runs, config, time.perf_counter() - started)
            if not job["quiet"]:
                last = run["history"][-1] if run["history"] else {}
                print(f"== {run['title']}: done, val_acc "
                      f"{last.get('val_acc', float('nan')):.4f} ({len(done)}/{len(methods)})",
                      flush=True)
    except BaseException:                           # Ctrl-C, SIGTERM, an error
        stop_pool(pool)
        for name in methods:                        # the finished epochs of the methods
            if name not in done:                    # in flight: from their checkpoints
                trainer = _trainer(name, job["seed"], job["preset"], job["batch_size"],
                                   True, job["out"], config)
                try:
                    trainer.restore(job["epochs"])
                except Exception:                   # none usable: --resume will say why
                    continue
                if trainer.history:
                    done[name] = _record(name, trainer)
        runs[:] = [done[m] for m in methods if m in done]
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def write_results(out, runs, config, seconds, interrupted=False):
    """results.json, table.md, table.csv and three plots: what is finished so far, each
    file replaced atomically."""
    if not runs:                                # interrupted before the first method
        return
    config = dict(config, methods=[r["name"] for r in runs])
    atomic_write_text(os.path.join(out, "results.json"), json.dumps(
        dict(config=config, environment=_environment(), wall_seconds=seconds,
             interrupted=interrupted, runs=runs), indent=1))
    mnist = config["dataset"] == "mnist"        # the article's numbers are MNIST's
    rows = report.table_rows(runs, with_article=mnist)
    report.write_csv(os.path.join(out, "table.csv"), rows)
    note = (f"Our run: {config['epochs']} epochs on {config['train_samples']:,} "
            f"{config['dataset']} training images, seed {config['seed']}, preset "
            f"{config['preset']}, wall time {seconds / 60:.1f} min"
            + (" (interrupted)" if interrupted else "") + "."
            + ("" if mnist else " The article's numbers are MNIST's: not shown."))
    dataset = {"mnist": "MNIST"}.get(config["dataset"], "Fashion-MNIST")
    report.write_markdown(os.path.join(out, "table.md"), rows, note, dataset,
                          config["preset"])
    what = (f"{config['epochs']} epoch{'s' * (config['epochs'] > 1)} on "
            f"{config['train_samples']:,} training images, seed {config['seed']}, preset "
            f"{config['preset']}" + (" (interrupted)" if interrupted else ""))
    report.plot_curves(os.path.join(out, ""), runs, with_article=mnist, dataset=dataset,
                       what=what)
