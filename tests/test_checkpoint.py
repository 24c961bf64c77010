"""Checkpoints: a format that cannot run code, clear errors for bad files, atomic under
kill -9, and a resume that continues the same run or refuses."""
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from tinygrad_opt.cli import main
from tinygrad_opt.data import to_float
from tinygrad_opt.train import Trainer
from tinygrad_opt.store.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinygrad_opt.store.files import TEMP_PREFIX

from test_train import small_model, strip_times, synthetic

QUICK = ["--limit", "256", "--quiet", "--workers", "1"]   # in this process: faster to start


def cli(capsys, *args):
    """Run the command line in-process: (exit status, stdout, stderr)."""
    try:
        code = main(["mnist", *args])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


class _RunsCode:
    """Unpickling this creates a file: what a planted pickle could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


# --- the format ---------------------------------------------------------------------------
def test_round_trip_of_arrays_and_plain_values(tmp_path):
    payload = dict(model={"0.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
                          "2.rng": np.array([7, 1], dtype=np.uint64),
                          "count": np.array(3), "strided": np.arange(6.0)[::2]},
                   history=[dict(epoch=1, val_acc=0.5)], rng={"state": 2 ** 100 + 3},
                   settings=dict(lr=1e-7, nesterov=False, batch_size=None, method="adam"))
    path = str(tmp_path / "c.npz")
    save_checkpoint(path, payload)
    back = load_checkpoint(path)
    np.testing.assert_array_equal(back["model"]["0.weight"], payload["model"]["0.weight"])
    assert back["model"]["2.rng"].dtype == np.uint64
    assert back["model"]["count"].shape == () and back["model"]["count"] == 3   # 0-d stays
    np.testing.assert_array_equal(back["model"]["strided"], [0.0, 2.0, 4.0])
    assert back["history"] == payload["history"] and back["rng"] == payload["rng"]
    assert back["settings"] == payload["settings"]
    with zipfile.ZipFile(path) as z:             # numpy's .npz, every member stored
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
    with np.load(path, allow_pickle=False) as npz:
        assert "__meta__" in npz.files


def test_a_planted_pickle_is_never_loaded(tmp_path, capsys):
    """The checkpoints were pickles: anyone who could put a file in a results folder ran
    code on --resume."""
    out, marker = tmp_path / "res", tmp_path / "code-ran"
    code, _, _ = cli(capsys, "--optimizers", "adam", "--epochs", "1", "--out", str(out), *QUICK)
    assert code == 0
    for name in os.listdir(out / "checkpoints"):
        os.unlink(out / "checkpoints" / name)
    for name in ("adam.npz", "adam.pkl"):       # this version's name and the old one
        with open(out / "checkpoints" / name, "wb") as f:
            pickle.dump({"model": _RunsCode(str(marker))}, f)
    with pytest.raises(CheckpointError, match=r"adam.npz: a pickle"):
        load_checkpoint(str(out / "checkpoints" / "adam.npz"))
    code, _, err = cli(capsys, "--optimizers", "adam", "--epochs", "2", "--out", str(out),
                       "--resume", *QUICK)
    assert code == 2 and "a pickle" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not marker.exists()


def _real_checkpoint(tmp_path):
    train, val = synthetic(64, 0), synthetic(16, 1)
    path = str(tmp_path / "real.npz")
    Trainer(small_model(), "adam", batch_size=16, verbose=0, transform=to_float, checkpoint=path).fit(
        train, val, 1)
    return path


def _npz(path, **members):
    np.savez(path, **members)


BAD_FILES = {
    "empty": lambda p, real: open(p, "wb").close(),
    "truncated": lambda p, real: open(p, "wb").write(open(real, "rb").read()[:5000]),
    "cut at the end": lambda p, real: open(p, "wb").write(open(real, "rb").read()[:-30]),
    "random bytes": lambda p, real: open(p, "wb").write(os.urandom(3000)),
    "a zip of text": lambda p, real: zipfile.ZipFile(p, "w").writestr("notes.txt", "hello"),
    "an npz without the record": lambda p, real: _npz(p, a0=np.zeros(3)),
    "an npz with objects": lambda p, real: _npz(p, a0=np.array([{"x": 1}], dtype=object)),
    "a compressed npz": lambda p, real: np.savez_compressed(p, a0=np.zeros(3)),
    "another version": lambda p, real: _npz(p, __meta__=np.frombuffer(json.dumps(
        {"format": "tinygrad_opt checkpoint", "version": 99, "payload": {}}).encode(),
        dtype=np.uint8)),
    "a record of JSON garbage": lambda p, real: _npz(p, __meta__=np.frombuffer(
        b"{not json", dtype=np.uint8)),
    "a folder": lambda p, real: os.mkdir(p),
}
MESSAGES = {
    "empty": "empty file", "truncated": "not a readable checkpoint",
    "cut at the end": "not a readable checkpoint", "random bytes": "not a readable",
    "a zip of text": "without the __meta__ record",
    "an npz without the record": "without the __meta__ record",
    "an npz with objects": "not a readable checkpoint", "a compressed npz": "is compressed",
    "another version": "format version 99; this version of tinygrad_opt reads version 1",
    "a record of JSON garbage": "not valid JSON", "a folder": "is a folder",
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_an_unreadable_checkpoint_is_one_clear_error(tmp_path, kind):
    real = _real_checkpoint(tmp_path)
    path = str(tmp_path / "bad.npz")
    BAD_FILES[kind](path, real)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value).startswith(path + ": ") and MESSAGES[kind] in str(info.value)
    trainer = Trainer(small_model(), "adam", batch_size=16, verbose=0, transform=to_float, checkpoint=path)
    before = [p.data.copy() for p in trainer.model.parameters()]
    with pytest.raises(CheckpointError):
        trainer.fit(synthetic(64, 0), synthetic(16, 1), 2, resume=True)
    for p, q in zip(before, trainer.model.parameters()):   # nothing was changed
        np.testing.assert_array_equal(p, q.data)


def test_a_corrupt_checkpoint_through_the_cli_is_one_line(tmp_path, capsys):
    out = tmp_path / "res"
    assert cli(capsys, "--optimizers", "adam", "--epochs", "1", "--out", str(out), *QUICK)[0] == 0
    path = out / "checkpoints" / "adam.npz"
    path.write_bytes(path.read_bytes()[:1000])
    code, _, err = cli(capsys, "--optimizers", "adam", "--epochs", "2", "--out", str(out),
                       "--resume", *QUICK)
    assert code == 2 and err.startswith(f"tinygrad-opt: error: {path}: not a readable")
    assert len(err.strip().splitlines()) == 1


# --- kill -9 ------------------------------------------------------------------------------
def _command(out, *args):
    return [sys.executable, "-m", "tinygrad_opt", "mnist", "--optimizers", "adam",
            "--limit", "256", "--quiet", "--out", str(out), *args]


def test_kill_9_leaves_a_loadable_checkpoint_and_the_next_run_cleans_up(tmp_path, capsys):
    """Killed while a checkpoint is being written: the old or the new checkpoint is in
    place, and the temporary file the write left is removed by the next run."""
    out = tmp_path / "res"
    folder = out / "checkpoints"
    run = subprocess.Popen(_command(out, "--epochs", "40"), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    caught = False
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            names = os.listdir(folder) if folder.is_dir() else []
            if any(n.startswith(TEMP_PREFIX) for n in names) and "adam.npz" in names:
                run.send_signal(signal.SIGKILL)     # in the middle of a write
                caught = True
                break
            time.sleep(0.0005)
    finally:
        run.kill()
        run.wait()
    assert caught, "never saw a checkpoint being written"
    state = load_checkpoint(str(folder / "adam.npz"))          # the old one, intact
    assert len(state["history"]) >= 1
    code, _, err = cli(capsys, "--optimizers", "adam", "--epochs",
                       str(len(state["history"]) + 1), "--out", str(out), "--resume", *QUICK)
    assert code == 0, err
    leftovers = [n for d in (out, folder) for n in os.listdir(d) if n.startswith(TEMP_PREFIX)]
    assert leftovers == []
    assert len(load_checkpoint(str(folder / "adam.npz"))["history"]) == \
        len(state["history"]) + 1


# --- resume: the same run, or a refusal ---------------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A folder with one epoch of adam and of rmsprop, seed 0, 256 images."""
    out = tmp_path_factory.mktemp("finished") / "res"
    assert main(["mnist", "--optimizers", "adam,rmsprop", "--epochs", "1", "--out", str(out),
                 *QUICK]) == 0
    return out


def _copy(finished, tmp_path, results=True):
    out = tmp_path / "res"
    shutil.copytree(finished, out)
    if not results:                 # checkpoints alone: the checkpoint must say no
        os.unlink(out / "results.json")
    return out


@pytest.mark.parametrize("args,differ", [
    (["--batch-size", "32"], "batch_size: saved 64, requested 32"),
    (["--seed", "1"], "seed: saved 0, requested 1"),
    (["--limit", "128"], "train_samples: saved 256, requested 128"),
    (["--preset", "paper"], "eps: saved 1e-07, requested 1e-08"),
])
def test_resume_with_other_settings_is_refused_listing_them(finished, tmp_path, capsys, args,
                                                            differ):
    """--resume with another batch size, seed, limit or preset silently continued with a
    mixture, and results.json described settings that were not used."""
    out = _copy(finished, tmp_path, results=False)
    before = (out / "checkpoints" / "adam.npz").read_bytes()
    code, _, err = cli(capsys, "--optimizers", "adam", "--epochs", "2", "--out", str(out),
                       "--resume", *QUICK, *args)        # the last --limit counts
    assert code == 2 and "adam.npz: the checkpoint is of another run" in err and differ in err
    assert len(err.strip().splitlines()) == 1
    assert (out / "checkpoints" / "adam.npz").read_bytes() == before


def test_resume_with_other_settings_is_refused_by_the_results_too(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path)
    code, _, err = cli(capsys, "--optimizers", "adam", "--epochs", "2", "--out", str(out),
                       "--resume", "--seed", "3", *QUICK)
    assert code == 2 and "holds results of another experiment (seed: saved 0, requested 3)" in err


def test_another_methods_checkpoint_is_refused(finished, tmp_path, capsys):
    """rmsprop's checkpoint copied to adam's name once continued as rmsprop, labelled adam."""
    out = _copy(finished, tmp_path, results=False)
    shutil.copy(out / "checkpoints" / "rmsprop.npz", out / "checkpoints" / "adam.npz")
    code, _, err = cli(capsys, "--optimizers", "adam", "--epochs", "2", "--out", str(out),
                       "--resume", *QUICK)
    assert code == 2 and "method: saved 'rmsprop', requested 'adam'" in err
    assert "optimizer: saved 'RMSprop', requested 'Adam'" in err


def test_only_the_number_of_epochs_may_grow(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path)
    state = load_checkpoint(str(out / "checkpoints" / "adam.npz"))
    state["history"].append(dict(state["history"][0], epoch=2))
    save_checkpoint(str(out / "checkpoints" / "adam.npz"), state)
    code, _, err = cli(capsys, "--optimizers", "adam", "--epochs", "1", "--out", str(out),
                       "--resume", *QUICK)
    assert code == 2 and "the checkpoint has 2 epochs, more than the 1 requested" in err


def test_resume_without_a_checkpoint_says_so_and_starts_at_epoch_1(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path)
    code, _, err = cli(capsys, "--optimizers", "adam,momentum", "--epochs", "2", "--out",
                       str(out), "--resume", *QUICK)
    assert code == 0, err
    assert err.count("no checkpoint") == 1 and "momentum: no checkpoint in" in err
    assert "starting it from epoch 1" in err
    runs = {r["name"]: r for r in json.load(open(out / "results.json"))["runs"]}
    assert sorted(runs) == ["adam", "momentum", "rmsprop"]          # rmsprop kept
    assert [len(runs[m]["history"]) for m in ("adam", "momentum", "rmsprop")] == [2, 2, 1]
    assert runs["adam"]["settings"]["eps"] == 1e-07 and "eps=1e-07" in runs["adam"]["optimizer"]


def test_resume_continues_bit_for_bit(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path)
    assert cli(capsys, "--optimizers", "adam", "--epochs", "2", "--out", str(out), "--resume",
               *QUICK)[0] == 0
    straight = tmp_path / "straight"
    assert cli(capsys, "--optimizers", "adam", "--epochs", "2", "--out", str(straight),
               *QUICK)[0] == 0
    runs = [{r["name"]: r for r in json.load(open(d / "results.json"))["runs"]}["adam"]
            for d in (out, straight)]
    assert strip_times(runs[0]["history"]) == strip_times(runs[1]["history"])


def test_a_checkpoint_saved_before_the_formula_options_resumes(tmp_path):
    """A checkpoint of the version before the formula options (no eps_inside_correction
    in its settings or its optimizer state) resumes, bit for bit, instead of being
    refused as another run's."""
    from tinygrad_opt.store import load_checkpoint, save_checkpoint
    path = str(tmp_path / "ck.npz")
    whole = Trainer(small_model(), "adam", batch_size=16, verbose=0, transform=to_float)
    whole.fit(synthetic(64, 0), synthetic(16, 1), 2)
    first = Trainer(small_model(), "adam", batch_size=16, verbose=0, transform=to_float,
                    checkpoint=path)
    first.fit(synthetic(64, 0), synthetic(16, 1), 1)
    state = load_checkpoint(path)
    del state["settings"]["eps_inside_correction"]
    for group in state["optimizer"]["param_groups"]:
        del group["eps_inside_correction"]
    del state["optimizer"]["preset"]
    save_checkpoint(path, state)
    resumed = Trainer(small_model(seed=5), "adam", batch_size=16, verbose=0,
                      transform=to_float, checkpoint=path)
    resumed.fit(synthetic(64, 0), synthetic(16, 1), 2, resume=True)
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in whole.history]


def _npz_with(path, members):
    """An uncompressed .npz whose members are the raw .npy bytes given."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)


def _npy(array, shape=None):
    """array's .npy bytes, its header announcing `shape` if given."""
    import io
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, dict(descr=np.lib.format.dtype_to_descr(
        array.dtype), fortran_order=False, shape=shape or array.shape))
    return f.getvalue() + array.tobytes()


def _meta(text):
    return _npy(np.frombuffer(text.encode(), dtype=np.uint8))


def test_a_named_pipe_is_refused_not_waited_on(tmp_path):
    """A named pipe planted as a checkpoint or given to Module.load hung the process."""
    from tinygrad_opt.nn import Dense
    pipe = str(tmp_path / "ck.npz")
    os.mkfifo(pipe)
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_checkpoint(pipe)
    with pytest.raises(CheckpointError, match="not a regular file"):
        Dense(2, 2).load(pipe)


def test_a_member_announcing_more_than_it_stores_is_refused(tmp_path):
    """A member whose header announced a 7 TiB array raised MemoryError."""
    path = str(tmp_path / "big.npz")
    meta = '{"format": "tinygrad_opt checkpoint", "version": 1, "payload": {"__array__": 0}}'
    _npz_with(path, {"__meta__": _meta(meta), "a0": _npy(np.zeros(2), shape=(2 ** 40,))})
    with pytest.raises(CheckpointError, match=r"member a0.npy announces 8,796,093,022,208 "
                                              r"bytes and stores 16"):
        load_checkpoint(path)
    _npz_with(path, {"__meta__": _meta(meta), "a0": _npy(np.zeros(2))})
    assert load_checkpoint(path).tolist() == [0.0, 0.0]      # the same file, told the truth


@pytest.mark.parametrize("depth,message", [(100_000, "nests too deeply"),
                                           (200, "nests deeper than 64")])
def test_a_deeply_nested_record_is_refused(tmp_path, depth, message):
    """A 100,000-deep JSON record raised RecursionError."""
    path = str(tmp_path / "deep.npz")
    payload = "[" * depth + "]" * depth
    meta = f'{{"format": "tinygrad_opt checkpoint", "version": 1, "payload": {payload}}}'
    _npz_with(path, {"__meta__": _meta(meta)})
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)
