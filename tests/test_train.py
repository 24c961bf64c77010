"""The Trainer and the command line, on small synthetic data and a small MNIST subset."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tinygrad_opt import Tensor
from tinygrad_opt.cli import main
from tinygrad_opt.data import to_float
from tinygrad_opt.models import article_cnn
from tinygrad_opt.nn.functional import softmax_cross_entropy
from tinygrad_opt.optim import SGD
from tinygrad_opt.train import NonFiniteLoss, Trainer
from tinygrad_opt.store.files import TEMP_PREFIX


def synthetic(n, seed=0, size=12):
    """Two classes: a bright left half or a bright right half, plus noise (uint8)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = rng.integers(0, 80, (n, size, size))
    for i, y in enumerate(labels):
        images[i, :, (size // 2) * y:(size // 2) * (y + 1)] += 150
    return images.astype(np.uint8), labels


def small_model(seed=0):
    return article_cnn(seed=seed, image_size=12, filters=4, hidden=16, classes=2)


def strip_times(history):
    return [{k: v for k, v in h.items() if "seconds" not in k} for h in history]


def test_trainer_lowers_the_loss():
    train, val = synthetic(256, 0), synthetic(64, 1)
    trainer = Trainer(small_model(), "adam", batch_size=16, verbose=0, transform=to_float)
    history = trainer.fit(train, val, epochs=3)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"] < 0.7
    assert history[-1]["val_acc"] > 0.9 and history[0]["updates"] == 16


def test_same_seed_same_history():
    train, val = synthetic(128, 0), synthetic(32, 1)
    runs = [strip_times(Trainer(small_model(3), "momentum", seed=5, batch_size=16,
                                verbose=0, transform=to_float).fit(train, val, 2)) for _ in range(2)]
    assert runs[0] == runs[1]


def test_checkpoint_and_resume_equals_uninterrupted(tmp_path):
    train, val = synthetic(128, 0), synthetic(32, 1)
    full = Trainer(small_model(), "rmsprop", batch_size=16, verbose=0, transform=to_float)
    full.fit(train, val, 3)
    ckpt = str(tmp_path / "run.pkl")
    first = Trainer(small_model(), "rmsprop", batch_size=16, verbose=0, transform=to_float,
                    checkpoint=ckpt)
    first.fit(train, val, 1)                      # "interrupted" after one epoch
    assert os.path.exists(ckpt) and not any(f.startswith(TEMP_PREFIX) for f in os.listdir(tmp_path))
    resumed = Trainer(small_model(seed=9), "rmsprop", batch_size=16, verbose=0, transform=to_float,
                      checkpoint=ckpt)            # another init: the checkpoint wins
    resumed.fit(train, val, 3, resume=True)
    assert strip_times(resumed.history) == strip_times(full.history)
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_full_batch_gradient_equals_whole_set_gradient():
    images, labels = synthetic(50, 2)
    model = small_model().to(np.float64)
    model.eval()                                  # no dropout: one pass and chunks comparable
    trainer = Trainer(model, SGD(model.parameters()), batch_size=None, chunk_size=7,
                      verbose=0, transform=to_float)
    trainer.loss = lambda z, y: softmax_cross_entropy(z, y)
    trainer.accumulate_gradient(images, labels, np.arange(50))
    chunked = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    x = Tensor(to_float(images), dtype=np.float64)
    softmax_cross_entropy(model(x), labels).backward()
    for a, b in zip(chunked, model.parameters()):
        np.testing.assert_allclose(a, b.grad, rtol=1e-10, atol=1e-12)


def test_gd_method_makes_one_update_per_epoch():
    train, val = synthetic(40, 0), synthetic(10, 1)
    history = Trainer(small_model(), "gd", verbose=0, transform=to_float,
                      chunk_size=16).fit(train, val, 2)
    assert [h["updates"] for h in history] == [1, 1]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nonfinite_loss_stops_with_epoch_and_step():
    train, val = synthetic(64, 0), synthetic(16, 1)
    model = small_model()
    trainer = Trainer(model, SGD(model.parameters(), lr=1e30), batch_size=8, verbose=0,
                      transform=to_float)
    with pytest.raises(NonFiniteLoss, match=r"loss became (nan|inf) at epoch 1, step \d+"):
        trainer.fit(train, val, 2)


def test_cli_runs_end_to_end_on_a_subset(tmp_path, capsys):
    out = str(tmp_path / "res")
    assert main(["mnist", "--optimizers", "adam,minibatch", "--epochs", "1", "--limit", "256",
                 "--out", out, "--quiet"]) == 0
    for name in ("results.json", "table.md", "table.csv", "val_acc.png", "val_loss.png",
                 "train_loss.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    results = json.load(open(os.path.join(out, "results.json")))
    assert [r["name"] for r in results["runs"]] == ["adam", "minibatch"]
    assert results["config"]["train_samples"] == 256 and "numba" in results["environment"]
    table = open(os.path.join(out, "table.md")).read()
    assert "| Adam, batch 64 | **0." in table and "/ 0.9772" in table   # ours beside the article's


def test_worker_processes_give_the_numbers_of_one_process(tmp_path):
    """`tinygrad-opt mnist --workers 2` trains the methods side by side in two processes
    of one thread each: the same runs, in the same order, as one after the other."""
    runs = {}
    for workers in ("1", "2"):
        out = str(tmp_path / f"workers{workers}")
        assert main(["mnist", "--optimizers", "adam,sgd,minibatch", "--epochs", "1",
                     "--limit", "256", "--out", out, "--quiet", "--workers", workers]) == 0
        runs[workers] = [dict(r, history=strip_times(r["history"]))
                         for r in json.load(open(os.path.join(out, "results.json")))["runs"]]
    assert [r["name"] for r in runs["2"]] == ["adam", "sgd", "minibatch"]
    assert runs["1"] == runs["2"]


def test_sigterm_during_worker_processes_keeps_every_finished_epoch(tmp_path):
    """Interrupted while two methods train in two workers: results.json holds the
    finished epochs of both (read from their checkpoints), and --resume finishes them."""
    out = tmp_path / "res"
    command = [sys.executable, "-m", "tinygrad_opt", "mnist", "--optimizers", "adam,rmsprop",
               "--limit", "256", "--quiet", "--workers", "2", "--out", str(out)]
    run = subprocess.Popen(command + ["--epochs", "40"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(
                (out / "checkpoints" / f"{m}.npz").exists() for m in ("adam", "rmsprop")):
            time.sleep(0.05)
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 143 and "terminated; finished epochs are in" in err, err
    results = json.load(open(out / "results.json"))
    assert results["interrupted"] is True
    assert [r["name"] for r in results["runs"]] == ["adam", "rmsprop"]
    assert all(len(r["history"]) >= 1 for r in results["runs"])
    done = subprocess.run(command + ["--epochs", str(max(len(r["history"]) for r in
                                                         results["runs"]) + 1), "--resume"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("args,message", [
    (["--optimizers", "adam,sophia"], "unknown method(s) sophia; known: gd, sgd"),
    (["--epochs", "-3"], "expected a positive whole number, got '-3'"),
    (["--out", "/proc/forbidden"], "is not writable"),
])
def test_cli_bad_input_is_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["mnist", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_interrupt_keeps_finished_epochs_and_resume_finishes_the_same(tmp_path):
    train, val = synthetic(64, 0), synthetic(16, 1)
    full = Trainer(small_model(), "adam", batch_size=16, verbose=0, transform=to_float)
    full.fit(train, val, 2)
    calls = {"n": 0}

    def interrupting_loss(z, y):
        calls["n"] += 1
        if calls["n"] == 6:                 # in the second epoch (4 steps an epoch)
            raise KeyboardInterrupt
        return softmax_cross_entropy(z, y)

    ckpt = str(tmp_path / "run.pkl")
    first = Trainer(small_model(), "adam", batch_size=16, verbose=0, transform=to_float,
                    checkpoint=ckpt,
                    loss=interrupting_loss)
    with pytest.raises(KeyboardInterrupt):
        first.fit(train, val, 2)
    assert len(first.history) == 1          # the finished epoch is kept
    resumed = Trainer(small_model(), "adam", batch_size=16, verbose=0, transform=to_float,
                      checkpoint=ckpt)
    resumed.fit(train, val, 2, resume=True)
    assert strip_times(resumed.history) == strip_times(full.history)


def test_nan_weights_in_the_fused_block_stop_training():
    """All conv weights NaN once trained on silently: the fused kernel's relu and pool
    turned NaN into 0 (accuracy 0.1135, exit status 0)."""
    train, val = synthetic(64, 0), synthetic(16, 1)
    model = small_model()
    model[0].conv.weight.data[...] = np.nan
    trainer = Trainer(model, "adam", batch_size=16, verbose=0, transform=to_float)
    with pytest.raises(NonFiniteLoss, match=r"loss became nan at epoch 1, step 1"):
        trainer.fit(train, val, 1)


def test_a_fashion_mnist_table_is_not_headed_as_the_mnist_experiment(tmp_path):
    from tinygrad_opt.train import report
    run = dict(name="adam", title="Adam", article_row="Adam",
               history=[dict(epoch=1, val_acc=0.8, val_loss=0.5, seconds=1.0)])
    for dataset, heading in (("MNIST", "# The article's MNIST experiment"),
                             ("Fashion-MNIST", "# The article's experiment on Fashion-MNIST")):
        path = str(tmp_path / f"{dataset}.md")
        report.write_markdown(path, report.table_rows([run], dataset == "MNIST"), "", dataset)
        assert open(path).read().startswith(heading)


# --- any data: regression, no validation, callbacks -------------------------------------
def _regression(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5))
    return x, (x @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.3)[:, None]


def test_the_trainer_fits_a_regression_without_validation(capsys):
    """It once divided every input by 255, added a channel axis ("Dense expected input of
    shape (N, 5), got (64, 1, 5)"), reported accuracy 0.0 and required validation data."""
    from tinygrad_opt.nn import Dense, ReLU, Sequential
    from tinygrad_opt.nn.functional import mse
    from tinygrad_opt.optim import Adam
    model = Sequential(Dense(5, 16, rng=0), ReLU(), Dense(16, 1, rng=1))
    trainer = Trainer(model, Adam(model.parameters(), lr=0.01), loss=mse, metric="mse",
                      batch_size=32, verbose=2)
    history = trainer.fit(_regression(), epochs=30)
    losses = history.column("train_loss")
    assert len(history) == 30 and losses[-1] < 0.05 * losses[0]
    assert "val_loss" not in history[-1] and "train_acc" not in history[-1]
    assert history[-1]["train_mse"] == pytest.approx(history[-1]["train_loss"], rel=0.5)
    out = capsys.readouterr()
    assert "epoch 30: | train_loss" in out.out and "step/s" not in out.err   # no bars
    more = trainer.fit(_regression(), epochs=2)              # two more: epochs 31, 32
    assert [h["epoch"] for h in more[-2:]] == [31, 32] and len(more) == 32


def test_early_stopping_stops_when_the_monitored_value_stalls():
    from tinygrad_opt.train import EarlyStopping
    train, val = synthetic(64, 0), synthetic(16, 1)
    model = small_model()
    stop = EarlyStopping(monitor="val_loss", patience=2)
    trainer = Trainer(model, SGD(model.parameters(), lr=1e-9), batch_size=16, verbose=0,
                      transform=to_float, callbacks=[stop])   # lr so small nothing improves
    history = trainer.fit(train, val, epochs=20)
    assert 2 < len(history) < 20 and stop.waited == 2
    with pytest.raises(KeyError, match="EarlyStopping monitors 'val_acc', which the epoch"):
        Trainer(small_model(), "adam", verbose=0, transform=to_float,
                callbacks=[EarlyStopping("val_acc")]).fit(train, epochs=1)


def test_a_dataset_object_and_a_list_of_batches_train_the_same_model():
    from tinygrad_opt.nn import Dense, Sequential
    from tinygrad_opt.nn.functional import mse
    x, y = _regression(64)

    class Pairs:                                   # PyTorch's Dataset protocol
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return x[i], y[i]

    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    results = []
    for data in (Pairs(), batches):
        model = Sequential(Dense(5, 1, rng=0, dtype=np.float64))
        trainer = Trainer(model, SGD(model.parameters(), lr=0.05), loss=mse, metric="mse",
                          batch_size=16, verbose=0)
        results.append(trainer.fit(data, val=batches, epochs=3))
    assert results[0][-1]["val_loss"] < results[0][0]["train_loss"]
    assert results[1][-1]["updates"] == 4 and results[1][-1]["val_mse"] > 0
    with pytest.raises(ValueError, match="an iterator is used up after one epoch"):
        Trainer(Sequential(Dense(5, 1)), "adam", loss=mse, verbose=0).fit(iter(batches))


# --- learning-rate schedules in the Trainer -------------------------------------------
def _linear_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)


def _mlp_trainer(sched_factory, tmp_path=None, **kw):
    from tinygrad_opt import manual_seed
    from tinygrad_opt.nn import Dense, ReLU, Sequential
    from tinygrad_opt.nn.functional import mse
    from tinygrad_opt.optim import SGD
    manual_seed(0)
    model = Sequential(Dense(3, 8), ReLU(), Dense(8, 1))
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = sched_factory(opt)
    ck = str(tmp_path / "ck.npz") if tmp_path else None
    return Trainer(model, opt, loss=mse, metric="mse", batch_size=32, verbose=0,
                   lr_scheduler=sched, checkpoint=ck, **kw), opt, sched


def test_the_trainer_steps_a_schedule_per_epoch_or_per_batch():
    from tinygrad_opt.optim import lr_scheduler as S
    data = _linear_data()
    trainer, opt, _ = _mlp_trainer(lambda o: S.StepLR(o, step_size=2, gamma=0.5))
    history = trainer.fit(data, data, epochs=5)
    assert history.column("lr") == [0.05, 0.05, 0.025, 0.025, 0.0125]
    trainer, opt, sched = _mlp_trainer(lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=15))
    trainer.fit(data, epochs=5)                            # 3 batches an epoch
    assert sched.last_epoch == 15                          # stepped after every batch
    trainer, opt, sched = _mlp_trainer(
        lambda o: S.ReduceLROnPlateau(o, patience=0, factor=0.5), monitor="train_loss")
    trainer.fit(data, epochs=3)
    assert sched.last_epoch == 3


def test_a_resumed_run_continues_its_schedule(tmp_path):
    """Checkpointed with the optimizer: resuming gives the uninterrupted run's lrs and
    losses, bit for bit."""
    from tinygrad_opt.optim import lr_scheduler as S
    data = _linear_data()
    make = lambda o: S.MultiStepLR(o, milestones=[1, 3], gamma=0.1)  # noqa: E731
    whole, _, _ = _mlp_trainer(make)
    whole.fit(data, data, epochs=4)
    first, _, _ = _mlp_trainer(make, tmp_path)
    first.fit(data, data, epochs=2)
    second, _, _ = _mlp_trainer(make, tmp_path)
    second.fit(data, data, epochs=4, resume=True)
    assert second.history.column("lr") == whole.history.column("lr")
    assert whole.history.column("lr") == pytest.approx([0.05, 0.005, 0.005, 0.0005])
    assert second.history.column("val_loss") == whole.history.column("val_loss")
