"""The output folder: atomic result files, no link followed, one run at a time, nothing
overwritten without being asked, and a run that fails says so in its exit status."""
import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tinygrad_opt.optim import METHODS
from tinygrad_opt.store.files import TEMP_PREFIX

from test_checkpoint import QUICK, _command, cli

RESULTS = ("results.json", "table.md", "table.csv", "val_acc.png", "val_loss.png",
           "train_loss.png")


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """A folder holding one epoch of adam (256 images)."""
    from tinygrad_opt.cli import main
    out = tmp_path_factory.mktemp("first") / "res"
    assert main(["mnist", "--optimizers", "adam", "--epochs", "1", "--out", str(out),
                 *QUICK]) == 0
    return out


def _copy(first, tmp_path):
    import shutil
    shutil.copytree(first, tmp_path / "res")
    return tmp_path / "res"


def _contents(out):
    return {n: (out / n).read_bytes() for n in RESULTS}


# --- atomic writes ------------------------------------------------------------------------
def test_a_failure_while_writing_leaves_the_previous_results(first, tmp_path, capsys,
                                                             monkeypatch):
    """A full disk (or any error) in the middle of writing a result file once left it
    truncated: each file is now written aside and renamed into place."""
    from matplotlib.figure import Figure

    from tinygrad_opt.train import experiment
    out = _copy(first, tmp_path)

    def disk_full(self, fname, **kwargs):
        f = open(fname, "wb") if isinstance(fname, (str, os.PathLike)) else fname
        f.write(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    def environment_fails():
        raise OSError(errno.ENOSPC, "No space left on device")

    for patch in ((Figure, "savefig", disk_full), (experiment, "_environment",
                                                   environment_fails)):
        before = _contents(out)
        with monkeypatch.context() as m:
            m.setattr(*patch)
            code, _, err = cli(capsys, "--optimizers", "adam", "--epochs", "1", "--out",
                               str(out), "--overwrite", *QUICK)
        assert code == 2 and "No space left on device" in err
        failed = RESULTS[3:] if patch[1] == "savefig" else RESULTS[:1]
        for name in failed:                     # the file that failed, and those after it
            assert (out / name).read_bytes() == before[name], name
        json.load(open(out / "results.json"))   # the others: old or new, each complete
        assert not [n for n in os.listdir(out) if n.startswith(TEMP_PREFIX)]


# --- links planted in the folder ----------------------------------------------------------
def test_links_planted_in_the_folder_are_replaced_not_followed(tmp_path, capsys):
    out, victim = tmp_path / "res", tmp_path / "victim.txt"
    out.mkdir()
    victim.write_text("precious")
    for name in RESULTS[1:] + (".write-test",):
        os.symlink(victim, out / name)
    code, _, err = cli(capsys, "--optimizers", "adam", "--epochs", "1", "--out", str(out),
                       *QUICK)
    assert code == 0, err
    assert victim.read_text() == "precious"
    assert not any(os.path.islink(out / n) for n in RESULTS)
    os.symlink(victim, out / "results.json.tmp")
    os.unlink(out / "results.json")
    os.symlink(victim, out / "results.json")
    code, _, err = cli(capsys, "--optimizers", "rmsprop", "--epochs", "1", "--out", str(out),
                       *QUICK)             # a link as results.json: not read as results
    assert code == 2 and "results.json: unreadable results (not a plain file)" in err
    assert cli(capsys, "--optimizers", "adam", "--epochs", "1", "--out", str(out),
               "--overwrite", *QUICK)[0] == 0
    assert victim.read_text() == "precious" and not os.path.islink(out / "results.json")


def test_a_link_as_the_checkpoints_folder_is_refused(tmp_path, capsys):
    out, elsewhere = tmp_path / "res", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "checkpoints")
    code, _, err = cli(capsys, "--optimizers", "adam", "--epochs", "1", "--out", str(out),
                       *QUICK)
    assert code == 2 and "checkpoints is a symbolic link" in err
    assert os.listdir(elsewhere) == []


# --- one run per folder -------------------------------------------------------------------
def test_a_second_run_into_a_busy_folder_refuses_until_the_first_dies(tmp_path, capsys):
    out = tmp_path / "res"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from tinygrad_opt.store.files import OutputLock\n"
         "with OutputLock(sys.argv[1]):\n"
         "    print('locked', flush=True)\n"
         "    time.sleep(120)\n", str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, _, err = cli(capsys, "--optimizers", "adam", "--epochs", "1", "--out", str(out),
                           *QUICK)
        assert code == 2 and "another run is writing into this folder" in err
        assert not (out / "results.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)      # the OS releases the lock of a dead process
        holder.wait()
    code, _, err = cli(capsys, "--optimizers", "adam", "--epochs", "1", "--out", str(out),
                       *QUICK)
    assert code == 0, err


# --- nothing overwritten without being asked ----------------------------------------------
def test_rerunning_into_a_folder_with_results_refuses_and_names_overwrite(first, tmp_path,
                                                                          capsys):
    out = _copy(first, tmp_path)
    before = _contents(out)
    code, _, err = cli(capsys, "--optimizers", "adam", "--epochs", "1", "--out", str(out),
                       *QUICK)
    assert code == 2 and "already holds results of adam" in err and "--overwrite" in err
    assert _contents(out) == before
    code, _, err = cli(capsys, "--optimizers", "adam", "--epochs", "1", "--out", str(out),
                       "--seed", "4", "--overwrite", *QUICK)
    assert code == 0, err
    results = json.load(open(out / "results.json"))
    assert results["config"]["seed"] == 4 and [r["name"] for r in results["runs"]] == ["adam"]


def test_a_run_of_other_methods_keeps_the_earlier_ones(first, tmp_path, capsys):
    out = _copy(first, tmp_path)
    adam = json.load(open(out / "results.json"))["runs"][0]
    code, _, err = cli(capsys, "--optimizers", "minibatch", "--epochs", "1", "--out",
                       str(out), *QUICK)
    assert code == 0, err
    runs = json.load(open(out / "results.json"))["runs"]
    assert [r["name"] for r in runs] == ["adam", "minibatch"] and runs[0] == adam
    table = (out / "table.md").read_text()
    assert "| Adam, batch 64 |" in table and "| Mini-batch gradient descent" in table


def test_resume_and_overwrite_exclude_each_other(tmp_path, capsys):
    code, _, err = cli(capsys, "--out", str(tmp_path), "--resume", "--overwrite")
    assert code == 2 and "not allowed with argument" in err


def test_an_empty_data_dir_is_one_line(tmp_path, capsys):
    code, _, err = cli(capsys, "--out", str(tmp_path), "--data-dir", "")
    assert code == 2 and "--data-dir: empty folder name" in err and "Traceback" not in err


# --- a run that fails says so -------------------------------------------------------------
def test_a_nan_loss_exits_nonzero_naming_the_method_and_epoch(tmp_path, capsys, monkeypatch):
    """A method whose loss became NaN once ended with exit status 0."""
    monkeypatch.setitem(METHODS, "minibatch", dataclasses.replace(
        METHODS["minibatch"], hyperparameters=dict(lr=1e30)))
    code, _, err = cli(capsys, "--optimizers", "minibatch,adam", "--epochs", "2", "--out",
                       str(tmp_path / "res"), "--workers", "1", *QUICK)   # the patch is
                                                            # this process's, not a worker's
    assert code == 1
    assert "tinygrad-opt: error: minibatch: loss became" in err and "at epoch 1" in err
    runs = json.load(open(tmp_path / "res" / "results.json"))["runs"]
    assert runs[0]["stopped"] and len(runs[1]["history"]) == 2      # adam still ran


def test_sigterm_writes_the_finished_epochs_like_ctrl_c(tmp_path):
    out = tmp_path / "res"
    run = subprocess.Popen(_command(out, "--epochs", "40"), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoints" / "adam.npz").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 143 and "terminated; finished epochs are in" in err
    results = json.load(open(out / "results.json"))
    assert results["interrupted"] is True and len(results["runs"][0]["history"]) >= 1
    assert all((out / n).stat().st_size > 0 for n in RESULTS)


def test_a_read_only_checkpoints_folder_is_found_before_training(tmp_path, capsys,
                                                                  monkeypatch):
    """It was found only when the first epoch's checkpoint was written. (Tests run as
    root, for whom permission bits do not apply: the refusal is simulated at the call
    that creates files.)"""
    import tempfile
    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and os.path.basename(os.path.normpath(dir)) == "checkpoints":
            raise PermissionError(errno.EACCES, "Permission denied", dir)
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    out = tmp_path / "res"
    code, stdout, err = cli(capsys, "--optimizers", "adam", "--epochs", "1", "--out", str(out),
                            "--limit", "256")
    assert code == 2 and "checkpoints: Permission denied" in err
    assert "epoch 1" not in stdout and not (out / "results.json").exists()


def test_result_files_get_the_usual_permissions(first):
    """Temporary files are created 0o600; the results must be readable as before."""
    umask = os.umask(0)
    os.umask(umask)
    for name in RESULTS:
        assert (first / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_preset_paper_for_a_rule_without_one_is_one_line(tmp_path, capsys):
    """SGD's, Adagrad's and RMSprop's "paper" presets were Keras' numbers under another
    name."""
    code, _, err = cli(capsys, "--optimizers", "adam,momentum", "--preset", "paper", "--out",
                       str(tmp_path))
    assert code == 2 and "--preset paper: momentum: SGD: no preset 'paper'" in err
    assert "the methods that have it: adadelta, adam" in err


def test_the_rules_after_adam_run_from_the_command_line(tmp_path, capsys):
    """`--optimizers adamw,nadam,lion,muon,...`: each trains, the table shows them beside
    the article's rows, with no article numbers."""
    import json
    from tinygrad_opt.cli import main
    out = tmp_path / "res"
    names = ["adam", "nesterov", "amsgrad", "adamw", "nadam", "radam", "lion", "muon"]
    assert main(["mnist", "--optimizers", ",".join(names), "--epochs", "1", "--out",
                 str(out), *QUICK]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in results["runs"]] == names
    for run in results["runs"]:             # four steps on 256 images: no divergence
        assert run["history"][-1]["val_loss"] < 2.31, run["name"]
    table = (out / "table.md").read_text()
    for title in ("AdamW", "NAdam", "RAdam", "Lion", "Muon", "Adam (AMSGrad)",
                  "SGD with Nesterov momentum"):
        row = next(line for line in table.splitlines()
                   if line.startswith(f"| {title}, batch 64"))
        assert "article" not in row
    # each run records the preset it ran (RAdam has no Keras preset: PyTorch's)
    assert {r["name"]: r["preset"] for r in results["runs"]}["radam"] == "torch"
    assert "| RAdam, batch 64, preset torch |" in table
    assert "| Adam, batch 64 |" in table
    code, _, err = cli(capsys, "--optimizers", "adam,radam", "--preset", "keras", "--out",
                       str(tmp_path / "other"))
    assert code == 2 and "radam: RAdam: no preset 'keras' (Keras 3.15 ships no RAdam)" in err


def test_a_short_run_shows_its_last_epoch_and_each_rows_batch_size(tmp_path, capsys):
    """Three epochs: the table has epoch 1 and the last one run (3), not only empty
    epoch-5 and epoch-10 columns; each row names the batch size it used, and the article's
    where it differs."""
    from tinygrad_opt.cli import main
    out = tmp_path / "res"
    assert main(["mnist", "--optimizers", "adam,gd", "--epochs", "3", "--batch-size", "32",
                 "--out", str(out), *QUICK]) == 0
    table = (out / "table.md").read_text()
    assert "| Epoch 1 val acc | val loss | Epoch 3 (last run) val acc | val loss |" in table
    assert "Epoch 5" not in table
    adam = next(line for line in table.splitlines() if line.startswith("| Adam"))
    assert adam.startswith("| Adam, batch 32 (the article's: 64) |")
    assert adam.count("**") == 2 * 5            # epochs 1 and 3, and the time


def test_the_palette_has_no_two_colours_alike():
    """figures.PALETTE: a colour for every method (the suite's curves of sixteen rules
    gave SOAP mini-batch SGD's blue when it held fifteen), no pair closer in CIE L*a*b*
    (the CIE76 distance) than the closest pair of matplotlib's tab10, 27.7."""
    import numpy as np
    from matplotlib.colors import to_rgb
    from tinygrad_opt.figures import PALETTE

    def lab(colour):
        rgb = np.array(to_rgb(colour))
        rgb = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
        xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                        [0.0193, 0.1192, 0.9505]]) @ rgb / [0.95047, 1.0, 1.08883]
        f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
        return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])

    points = [lab(c) for c in PALETTE]
    closest = min(np.linalg.norm(a - b) for i, a in enumerate(points) for b in points[:i])
    from tinygrad_opt.optim import METHODS
    assert len(set(PALETTE)) == len(PALETTE) >= len(METHODS) and closest >= 27.6


def test_a_one_epoch_run_is_plotted_on_its_one_epoch_and_says_what_ran(tmp_path, monkeypatch):
    """make mnist-quick's plots: the axis ran to the article's epoch 10 for one epoch run,
    and nothing said how much was run; every epoch tick a whole number; the legend beside
    the axes, over no curve."""
    from tinygrad_opt import figures
    from tinygrad_opt.train import report
    figs = []
    monkeypatch.setattr(figures, "save", lambda fig, path, dpi=110: figs.append(fig) or path)
    runs = [dict(name="adam", title="Adam", article_row="Adam", batch_size=64,
                 history=[dict(epoch=1, val_acc=0.9, val_loss=0.3, train_loss=0.5)])]
    report.plot_curves(str(tmp_path) + "/", runs, what="1 epoch on 3,000 training images")
    assert len(figs) == 3
    for fig in figs:
        ax = fig.axes[0]
        assert ax.get_xlim() == (0.5, 1.5) and list(ax.get_xticks()) == [1]
        assert "1 epoch on 3,000 training images" in ax.get_title()
        legend = ax.get_legend()
        box = legend.get_window_extent(fig.canvas.get_renderer())
        assert box.x0 >= ax.get_window_extent(fig.canvas.get_renderer()).x1
    crosses = [line for line in figs[0].axes[0].lines if line.get_marker() == "x"]
    assert [list(line.get_xdata()) for line in crosses if len(line.get_xdata())] == [[1]]


def test_each_command_keeps_its_own_defaults():
    """The two commands share their common options' declarations: the study's defaults
    once became mnist's (no one-sample row, results/study)."""
    from tinygrad_opt.cli import _study_defaults, parser
    from tinygrad_opt.optim import ARTICLE_METHODS, STUDY_METHODS
    from tinygrad_opt.study.suite import DEFAULT_RULES
    p = parser()
    mnist, study = p.parse_args(["mnist"]), p.parse_args(["study"])
    suite = p.parse_args(["study", "--problems", "mnist_mlp"])
    _study_defaults(p, study)
    _study_defaults(p, suite)
    assert (mnist.optimizers, mnist.out, mnist.epochs) == (list(ARTICLE_METHODS),
                                                          "results/mnist", 10)
    assert (study.optimizers, study.out, study.epochs) == (list(STUDY_METHODS),
                                                          "results/study", 10)
    assert (study.protocol, suite.protocol) == ("article", "oneshot")
    assert (suite.optimizers, suite.out, suite.epochs) == (list(DEFAULT_RULES),
                                                          "results/suite", None)
