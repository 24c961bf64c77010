"""The study command: the same trial gives the same numbers on the local backend (any
worker and thread count) and on Ray; a worker killed mid-trial is replaced and the study
completes with the same numbers; an interrupted study resumes without redoing finished
trials; the statistics; the report; bad input."""
import glob
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from tinygrad_opt.study import deterministic, parse_assignments
from tinygrad_opt.study.stats import (interval95, mean_sd, performance_profile, separated,
                                      t_quantile)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--optimizers", "minibatch,adam", "--seeds", "2", "--epochs", "2", "--limit", "300",
        "--quiet"]


def study(out, *args, wait=True, **kw):
    cmd = [sys.executable, "-m", "tinygrad_opt", "study", "--out", str(out), *args]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT, start_new_session=True)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600, **kw)


def trials(out):
    found = {}
    for path in glob.glob(os.path.join(str(out), "trials", "*.json")):
        with open(path) as f:
            r = json.load(f)
        found[r["id"]] = r
    return found


def same_numbers(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        assert deterministic(a[k]) == deterministic(b[k]), k


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "study"
    r = study(out, *TINY, "--workers", "2", "--threads", "1")
    assert r.returncode == 0, r.stderr
    return out


def test_a_tiny_study_writes_its_report(local_run):
    found = trials(local_run)
    assert len(found) == 4 and all(r["threads"] == 1 for r in found.values())
    report = (local_run / "report.md").read_text()
    assert "| Adam | 0." in report and "Our ranking at epoch 2" in report
    assert "The article's ranking at epoch 10: Adam > Mini-batch gradient descent" in report
    assert (local_run / "table.csv").read_text().startswith("dataset,method,title,seeds")
    assert os.path.getsize(local_run / "val_acc.png") > 10_000


def test_worker_and_thread_counts_do_not_change_a_trials_numbers(local_run, tmp_path):
    r = study(tmp_path / "one", *TINY, "--workers", "1", "--threads", "2")
    assert r.returncode == 0, r.stderr
    other = trials(tmp_path / "one")
    assert all(t["threads"] == 2 for t in other.values())
    same_numbers(trials(local_run), other)


def test_the_ray_backend_gives_the_same_numbers(local_run, tmp_path):
    """On a local Ray instance (started and stopped by the study)."""
    pytest.importorskip("ray")
    r = study(tmp_path / "ray", *TINY, "--backend", "ray", "--workers", "2", "--threads", "1")
    assert r.returncode == 0, r.stderr
    same_numbers(trials(local_run), trials(tmp_path / "ray"))


def _worker_pids(parent):
    """The pids of the study's spawned worker processes (children of `parent`)."""
    pids = []
    for task in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(task) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(task.replace("stat", "cmdline"), "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if int(fields[1]) == parent and b"spawn_main" in cmd:
            pids.append(int(task.split("/")[2]))
    return pids


def _kill_one_worker(find, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        pids = find()
        if pids:
            time.sleep(0.5)                 # inside a trial
            os.kill(pids[0], signal.SIGKILL)
            return pids[0]
        time.sleep(0.05)
    raise AssertionError("no worker to kill")


def test_a_killed_local_worker_is_replaced_and_the_study_completes(local_run, tmp_path):
    proc = study(tmp_path / "k", *TINY, "--workers", "2", "--threads", "1", wait=False)
    _kill_one_worker(lambda: _worker_pids(proc.pid), proc)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "a worker died; running" in err
    same_numbers(trials(local_run), trials(tmp_path / "k"))


def _ray_trial_pids():
    out = subprocess.run(["pgrep", "-f", "ray::run_trial"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_a_killed_ray_worker_is_retried_and_the_study_completes(local_run, tmp_path):
    pytest.importorskip("ray")
    proc = study(tmp_path / "kr", *TINY, "--backend", "ray", "--workers", "2", "--threads",
                 "1", wait=False)
    _kill_one_worker(_ray_trial_pids, proc, timeout=120)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    same_numbers(trials(local_run), trials(tmp_path / "kr"))


def test_an_interrupted_study_resumes_without_redoing_finished_trials(local_run, tmp_path):
    out = tmp_path / "i"
    proc = study(out, *TINY, "--workers", "1", "--threads", "2", wait=False)
    deadline = time.time() + 120
    while not glob.glob(str(out / "trials" / "*.json")) and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)     # the whole study, workers too: kill -9
    proc.communicate()
    done = {p: os.stat(p).st_mtime_ns for p in glob.glob(str(out / "trials" / "*.json"))}
    assert 1 <= len(done) < 4
    r = study(out, *[a for a in TINY if a != "--quiet"], "--workers", "1", "--threads", "2")
    assert r.returncode == 0, r.stderr
    assert f"{len(done)} of 4 trials already finished" in r.stderr
    assert all(os.stat(p).st_mtime_ns == t for p, t in done.items())   # not redone
    same_numbers(trials(local_run), trials(out))


def test_the_tuned_protocol_chooses_on_held_out_images(tmp_path):
    out = tmp_path / "t"
    r = study(out, "--protocol", "tuned", "--optimizers", "adam,minibatch", "--seeds", "2",
              "--epochs", "1", "--limit", "400", "--val-size", "300", "--lr-grid",
              "0.0001,0.01", "--target", "0.3", "--tune-seeds", "1", "--quiet", "--workers",
              "2", "--threads", "1", "--set", "adam.beta1=0.85")
    assert r.returncode == 0, r.stderr
    found = list(trials(out).values())
    tuning = [t for t in found if t["spec"]["split"] == "val"]
    final = [t for t in found if t["spec"]["split"] == "test"]
    assert len(tuning) == 4 and len(final) == 4
    assert all(t["val_samples"] == 300 and t["train_samples"] == 400 for t in tuning)
    assert all(t["val_samples"] == 10000 and t["spec"]["seed"] >= 1000 for t in final)
    for method in ("adam", "minibatch"):        # the chosen lr is the better of the two
        scores = {t["spec"]["hyper"]["lr"]: t["history"][-1]["val_acc"] for t in tuning
                  if t["spec"]["method"] == method}
        chosen = {t["spec"]["hyper"]["lr"] for t in final if t["spec"]["method"] == method}
        assert chosen == {max(scores, key=scores.get)}
    assert all(t["spec"]["hyper"]["beta1"] == 0.85 for t in found
               if t["spec"]["method"] == "adam")
    report = (out / "report.md").read_text()
    assert "95% interval" in report and "steps to 0.3" in report
    # what it ran, told: the override in the head and in the method's name; a chosen
    # rate at the grid's edge flagged (a grid of two has only edges)
    assert "Overrides: `--set adam.beta1=0.85`." in report and "| Adam (beta1=0.85) |" in report
    assert report.count("(at the grid's edge)") == 2 and "widen `--lr-grid`" in report
    assert os.path.getsize(out / "lr_sensitivity.png") > 10_000
    # one data set: no performance profile drawn as if it ranked anything
    assert not (out / "performance_profile.png").exists()
    assert "no performance profile: over one data set" in report


def test_statistics():
    """t quantiles against the printed tables; Welch's test; the profile by hand."""
    for df, t in [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045)]:
        assert t_quantile(0.975, df) == pytest.approx(t, abs=1e-3)
    assert mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0)
    lo, hi = interval95([1.0, 2.0, 3.0])
    assert (lo, hi) == pytest.approx((2 - 4.303 / math.sqrt(3), 2 + 4.303 / math.sqrt(3)),
                                     abs=1e-3)
    assert separated([0.90, 0.91, 0.90], [0.95, 0.96, 0.95])
    assert not separated([0.90, 0.95, 0.92], [0.91, 0.96, 0.93])
    assert not separated([0.9], [0.99])           # one seed: nothing is separated
    profile = performance_profile({"a": {"p": 1.0, "q": 4.0}, "b": {"p": 2.0, "q": 2.0},
                                   "c": {"p": math.inf, "q": 2.0}}, [1.0, 2.0, 10.0])
    assert profile == {"a": [0.5, 1.0, 1.0], "b": [0.5, 1.0, 1.0], "c": [0.5, 0.5, 0.5]}


@pytest.mark.parametrize("args,message", [
    (["--set", "adam.lr"], "expected method.key=value"),
    (["--set", "sophia.lr=0.1"], "unknown method 'sophia'"),
    (["--set", "adam.lr=-1"], "lr must be a finite number >= 0"),
    (["--grid", "adam.beta1=0.9,x"], "'x' is not a number"),
    (["--lr-grid", "0.1,-1"], "expected positive finite learning rates"),
    (["--dataset", "cifar"], "unknown data set(s) cifar"),
    (["--set", "lion.lr=0.1"], "--set lion: not among --optimizers"),
    (["--protocol", "tuned", "--optimizers", "adam", "--grid", "minibatch.lr=0.1,0.2"],
     "--grid minibatch: not among --optimizers adam"),
    (["--grid", "adam.beta1=0.8,0.9"], "--grid needs --protocol tuned"),
    (["--protocol", "tuned", "--optimizers", "adam", "--grid", "adam.lr=0.1,0.2"],
     "--grid adam.lr: under --protocol tuned the learning rate is chosen from --lr-grid"),
    (["--protocol", "tuned", "--optimizers", "adam", "--set", "adam.lr=0.1"],
     "--set adam.lr: under --protocol tuned"),
    (["--protocol", "tuned", "--optimizers", "adam", "--grid", "adam.beta2=0.99,1.5"],
     "adam.beta2=0.99,1.5': Adam: beta2 must be in [0, 1), got 1.5"),
    (["--lr-grid", "0.001,inf"], "expected positive finite learning rates"),
    (["--target", "nan"], "expected an accuracy in (0, 1], e.g. 0.98, got 'nan'"),
    (["--target", "98"], "expected an accuracy in (0, 1], e.g. 0.98, got '98'"),
    (["--retries", "-1"], "expected a whole number >= 0, got '-1'"),
    (["--optimizers", "adam,adam"], "adam listed twice"),
    (["--dataset", "mnist,mnist"], "mnist listed twice"),
    (["--protocol", "tuned", "--optimizers", "adam", "--val-size", "60000"],
     "--val-size 60000: mnist has 60,000 training images"),
])
def test_bad_study_input_is_one_line(args, message, tmp_path):
    r = study(tmp_path / "bad", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_parse_assignments_types():
    assert parse_assignments(["adam.lr=0.01", "momentum.nesterov=true"]) == {
        "adam": {"lr": 0.01}, "momentum": {"nesterov": True}}
    assert parse_assignments(["adam.beta1=0.8,0.9"], "--grid") == {"adam": {"beta1": [0.8, 0.9]}}


def test_make_study_quick_runs_as_the_makefile_says(tmp_path):
    """The Makefile's study-quick recipe, run as written but into tmp_path."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        lines = f.read().split("\nstudy-quick:")[1].split("\n")
    recipe = lines[1].strip().split()
    assert recipe[0] == "$(BIN)/tinygrad-opt" and recipe[1] == "study"
    args = recipe[2:]
    args[args.index("--out") + 1] = str(tmp_path / "q")
    r = study(tmp_path / "q", *[a for a in args])
    assert r.returncode == 0, r.stderr
    assert len(trials(tmp_path / "q")) == 6 and (tmp_path / "q" / "report.md").exists()


def test_the_target_is_a_reading_not_part_of_a_trial(tmp_path):
    """A rerun with another --target reuses every trial: the target only changes the
    report's steps and seconds."""
    base = ["--protocol", "tuned", "--optimizers", "adam", "--seeds", "1", "--epochs", "1",
            "--limit", "300", "--val-size", "200", "--lr-grid", "0.001", "--tune-seeds", "1",
            "--workers", "1", "--threads", "2"]
    first = study(tmp_path / "t", *base, "--target", "0.2", "--quiet")
    assert first.returncode == 0, first.stderr
    again = study(tmp_path / "t", *base, "--target", "0.99")
    assert again.returncode == 0, again.stderr
    assert "1 of 1 trials already finished" in again.stderr      # tuning, and the test run
    report = (tmp_path / "t" / "report.md").read_text()
    assert "steps to 0.99" in report and "| missed | missed |" in report


def test_ray_is_installed_for_the_tests_only():
    """make mnist and make study need no Ray (240 of the 682 MB of .venv): the package's
    own install has no extra, the tests' adds dev (pytest and Ray)."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        make = f.read()
    recipe = make.split("\n$(STAMP):")[1].split("\n\n")[0]
    assert "pip install -q -e .\n" in recipe + "\n" and "[" not in recipe
    assert "\ntest: $(DEV)" in make and "pip install -q -e '.[dev]'" in make
    for target in ("mnist", "mnist-quick", "study", "study-quick", "suite", "suite-quick",
                   "examples", "bench"):
        assert f"\n{target}: $(STAMP)\n" in make, target
    with open(os.path.join(ROOT, "setup.cfg")) as f:
        cfg = f.read()
    requires = cfg.split("install_requires =")[1].split("\n[")[0]
    assert "ray" not in requires.split("include_package_data")[0]


def test_a_linked_trials_folder_is_refused_and_nothing_outside_is_touched(tmp_path):
    """OUT/trials as a link to another folder: the study wrote its trials there and
    deleted that folder's files whose names start with the temporary prefix."""
    from tinygrad_opt.store.files import TEMP_PREFIX
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / (TEMP_PREFIX + "keep")).write_text("not the study's")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(elsewhere, out / "trials")
    r = study(out, *TINY)
    assert r.returncode == 2 and "trials is a symbolic link" in r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(os.listdir(elsewhere)) == [TEMP_PREFIX + "keep"]


def test_damaged_or_foreign_trial_files_are_set_aside_and_rerun(local_run, tmp_path):
    """A stored trial was reused whenever its spec matched: a list, val_acc 2.0 or
    "high", a missing val_loss, a short history, a named pipe gave tracebacks, hangs or
    numbers the run never produced."""
    import shutil
    from tinygrad_opt.study.run import StudyFolder, invalid_result
    out = tmp_path / "copy"
    shutil.copytree(local_run, out)
    folder = StudyFolder(str(out))
    good = dict(next(iter(trials(out).values())))
    spec = good["spec"]
    assert invalid_result(good, spec) is None and folder.finished(spec) == good

    def epoch(**change):
        return dict(good, history=[dict(good["history"][0], **change)] + good["history"][1:])
    cases = {
        "a list": [good],
        "an accuracy of 2": epoch(val_acc=2.0),
        "an accuracy of words": epoch(val_acc="high"),
        "no val_loss": dict(good, history=[{k: v for k, v in h.items() if k != "val_loss"}
                                           for h in good["history"]]),
        "a short history": dict(good, history=good["history"][:1]),
        "a NaN loss": epoch(train_loss=float("nan")),
        "a dict as history": dict(good, history={"1": good["history"][0]}),
    }
    for name, bad in cases.items():
        assert invalid_result(bad, spec) is not None, name
        with open(folder.path(spec), "w") as f:
            json.dump(bad, f)
        assert folder.finished(spec) is None, name
    os.remove(folder.path(spec))
    os.mkfifo(folder.path(spec))
    assert folder.finished(spec) is None           # not opened: it would wait forever
    os.remove(folder.path(spec))
    with open(folder.path(spec), "w") as f:
        f.write("[" * 100_000 + "]" * 100_000)
    assert folder.finished(spec) is None


def _wait_for_workers(proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        pids = _worker_pids(proc.pid)
        if pids:
            return pids
        time.sleep(0.05)
    raise AssertionError("no worker started")


def test_the_workers_die_with_the_study(tmp_path):
    """kill -9 of the study left its worker training (227 MiB, still there after 4
    minutes): the kernel now ends the workers with their parent."""
    proc = study(tmp_path / "w", *TINY, "--epochs", "30", "--workers", "1", "--threads", "1",
                 wait=False)
    pids = _wait_for_workers(proc)
    time.sleep(1.0)                                     # inside a trial
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    deadline = time.time() + 10
    while time.time() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
        time.sleep(0.1)
    alive = [p for p in pids if os.path.exists(f"/proc/{p}")
             and open(f"/proc/{p}/stat").read().split()[2] != "Z"]
    assert alive == []


def test_sigterm_stops_the_study_promptly_and_keeps_what_finished(tmp_path):
    """SIGTERM while a trial ran: the study waited for the trial to finish, then threw its
    result away."""
    out = tmp_path / "t"
    proc = study(out, *TINY, "--epochs", "30", "--workers", "1", "--threads", "1",
                 wait=False)
    _wait_for_workers(proc)
    time.sleep(1.0)
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.time() - t0 < 10 and proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err


@pytest.mark.parametrize("address,message", [
    ("127.0.0.1:1", "--address 127.0.0.1:1: no Ray head answers there within 5 s"),
    ("not-an-address", "--address 'not-an-address': expected HOST:PORT"),
])
def test_an_unreachable_ray_address_is_one_line(tmp_path, address, message):
    pytest.importorskip("ray")
    t0 = time.time()
    r = study(tmp_path / "r", *TINY, "--backend", "ray", "--address", address)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert time.time() - t0 < 60


def _edit_a_trial(out, **fields):
    """Rewrite one stored trial of the study in `out` with `fields` changed."""
    path = sorted(glob.glob(str(out / "trials" / "*.json")))[0]
    with open(path) as f:
        result = json.load(f)
    result.update(fields)
    with open(path, "w") as f:
        json.dump(result, f)


def test_each_trial_records_its_version_and_the_report_says_when_they_mix(local_run,
                                                                          tmp_path):
    import shutil
    from tinygrad_opt import __version__
    out = tmp_path / "v"
    shutil.copytree(local_run, out)
    found = trials(out)
    assert {r["version"] for r in found.values()} == {__version__}
    _edit_a_trial(out, version="0.0.9")
    from tinygrad_opt.store.files import TEMP_PREFIX
    (out / (TEMP_PREFIX + "left-by-kill-9")).write_text("half a report")
    r = study(out, *TINY, "--workers", "2", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert not (out / (TEMP_PREFIX + "left-by-kill-9")).exists()   # cleaned as trials/'s
    assert (f"Trials of different package versions are mixed: 0.0.9, {__version__}."
            in (out / "report.md").read_text())


def test_each_trial_records_its_processor_and_the_report_says_when_they_mix(local_run,
                                                                            tmp_path):
    """float32 numbers depend on the processor's OpenBLAS kernels (an AMD EPYC forced to
    Haswell's gave the suite other last digits than an Intel Xeon): a trial says where
    it ran, and a report of trials from several processors says so."""
    import shutil
    from tinygrad_opt.train.experiment import processor
    out = tmp_path / "p"
    shutil.copytree(local_run, out)
    here = processor()
    assert {r["processor"] for r in trials(out).values()} == {here} and here
    assert f"Trials ran on {here}." in (out / "report.md").read_text()
    _edit_a_trial(out, processor="Elsewhere CPU")
    r = study(out, *TINY, "--workers", "2", "--threads", "1")
    assert r.returncode == 0, r.stderr
    mixed = sorted(["Elsewhere CPU", here])
    assert (f"Trials from different processors are mixed: {', '.join(mixed)}."
            in (out / "report.md").read_text())


def test_a_failed_write_is_named_by_the_file_the_user_knows(tmp_path):
    """Errors named the temporary file (trials/.tinygrad_opt-tmp-...: ...), not the file
    being written."""
    from tinygrad_opt.store.files import TEMP_PREFIX, atomic_write_text
    target = tmp_path / "gone" / "report.md"          # a folder that is not there
    with pytest.raises(OSError) as e:
        atomic_write_text(str(target), "x")
    assert e.value.filename == str(target) and TEMP_PREFIX not in str(e.value)


def test_the_provenance_sentence_adds_no_stray_spaces():
    """A report of no trials, or of mixed versions from unnamed processors, read
    "... this run. \\n" or "run.  Trials of ...": a space around an empty sentence."""
    from tinygrad_opt.study.report import where_from
    assert where_from({}) == ""
    assert where_from({"versions": ["0.0.9", "0.1.0"]}) == (
        "Trials of different package versions are mixed: 0.0.9, 0.1.0.")
    assert where_from({"processors": ["X"], "versions": ["a", "b"]}) == (
        "Trials ran on X. Trials of different package versions are mixed: a, b.")


def test_a_report_rewritten_from_stored_trials_still_says_what_they_cost(local_run,
                                                                         tmp_path):
    """Run again over finished trials, the report said only "0.0 min this run"."""
    import shutil
    out = tmp_path / "again"
    shutil.copytree(local_run, out)
    r = study(out, *TINY, "--workers", "2", "--threads", "1")
    assert r.returncode == 0, r.stderr
    own = sum(t["seconds"] for t in trials(out).values()) / 60
    assert (f"4 trials, 0.0 min this run; the trials' own times add up to {own:.1f} "
            f"worker-minutes." in (out / "report.md").read_text())
