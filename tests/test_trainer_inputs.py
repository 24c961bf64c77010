"""The Trainer's and the optimizer's inputs that used to fail late or obscurely: each is
refused in one line naming the value, before anything trains, and a failed restore
changes nothing."""
import numpy as np
import pytest

from tinygrad_opt import Tensor
from tinygrad_opt.nn import Dense, Sequential
from tinygrad_opt.nn.functional import mse
from tinygrad_opt.nn.utils import clip_grad_norm_
from tinygrad_opt.optim import SGD, Adam, lr_scheduler
from tinygrad_opt.store.checkpoint import CheckpointError
from tinygrad_opt.train import Trainer


def _data(n=32):
    x = np.random.default_rng(0).standard_normal((n, 3))
    return x, x.sum(axis=1, keepdims=True)


def _trainer(**kw):
    model = Sequential(Dense(3, 1, rng=0))
    opt = kw.pop("optimizer", None) or SGD(model.parameters(), lr=0.01)
    return Trainer(model, opt, loss=mse, metric="mse", **{"verbose": 0, **kw})


@pytest.mark.parametrize("kw,message", [
    (dict(batch_size=0), "batch_size must be a whole number >= 1 or None"),
    (dict(batch_size=2.5), "batch_size must be a whole number >= 1 or None .*, got 2.5"),
    (dict(batch_size="8"), "batch_size must be a whole number >= 1 or None .*, got '8'"),
    (dict(batch_size=True), "batch_size must be a whole number >= 1 or None .*, got True"),
    (dict(chunk_size=0), "chunk_size must be a whole number >= 1, got 0"),
])
def test_bad_batch_and_chunk_sizes_are_named(kw, message):
    with pytest.raises(ValueError, match=message):
        _trainer(**kw)


def test_no_training_data_is_one_line():
    with pytest.raises(ValueError, match="train data holds no samples"):
        _trainer(batch_size=8).fit([])

    class Empty:
        def __iter__(self):
            return iter(())

    with pytest.raises(ValueError, match="train data gave no samples this epoch"):
        _trainer(batch_size=8).fit(Empty())


def test_a_checkpoint_path_that_is_a_folder_is_found_before_training(tmp_path):
    trainer = _trainer(batch_size=8, checkpoint=str(tmp_path))
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        trainer.fit(_data())
    assert trainer.history == [] and trainer.optimizer.t == 0


def test_a_failed_restore_changes_nothing_and_schedules_must_match(tmp_path):
    path = str(tmp_path / "ck.npz")
    model = Sequential(Dense(3, 1, rng=0))
    Trainer(model, SGD(model.parameters(), lr=0.01, momentum=0.9), loss=mse, metric="mse",
            batch_size=8, verbose=0, checkpoint=path).fit(_data(), epochs=1)   # no schedule
    model = Sequential(Dense(3, 1, rng=5))
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    second = Trainer(model, opt, loss=mse, metric="mse", batch_size=8, verbose=0,
                     checkpoint=path, lr_scheduler=lr_scheduler.StepLR(opt, 1))
    weights = [p.data.copy() for p in model.parameters()]
    with pytest.raises(CheckpointError, match="the checkpoint has no learning-rate schedule"):
        second.fit(_data(), epochs=2, resume=True)
    assert opt.t == 0 and opt.state[0] == {"v": opt.state[0]["v"]}
    assert all(np.array_equal(p.data, w) for p, w in zip(model.parameters(), weights))
    assert not opt.state[0]["v"].any()

    path2 = str(tmp_path / "ck2.npz")                         # a StepLR checkpoint
    model = Sequential(Dense(3, 1, rng=0))
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    Trainer(model, opt, loss=mse, metric="mse", batch_size=8, verbose=0, checkpoint=path2,
            lr_scheduler=lr_scheduler.StepLR(opt, 1)).fit(_data(), epochs=1)
    model = Sequential(Dense(3, 1, rng=0))
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    cosine = Trainer(model, opt, loss=mse, metric="mse", batch_size=8, verbose=0,
                     checkpoint=path2,
                     lr_scheduler=lr_scheduler.CosineAnnealingLR(opt, T_max=4))
    with pytest.raises(CheckpointError, match="the checkpoint's schedule is a StepLR, this "
                                              "Trainer's a CosineAnnealingLR"):
        cosine.fit(_data(), epochs=2, resume=True)


def test_param_groups_changed_in_structure_are_one_line():
    p, q = Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)
    opt = Adam([{"params": [p]}, {"params": [q], "lr": 0.1}])
    p.grad, q.grad = np.ones(1, np.float32), np.ones(1, np.float32)
    del opt.param_groups[1]
    with pytest.raises(ValueError, match="param_groups holds 1 entries, not the 2 groups"):
        opt.step()
    opt = Adam([p])
    opt.param_groups.append({"params": [q], "lr": 0.1})
    with pytest.raises(ValueError, match="param_groups holds 2 entries, not the 1 groups"):
        opt.step()


@pytest.mark.parametrize("norm_type", [0, float("nan"), -1])
def test_clip_grad_norm_refuses_a_norm_that_is_none(norm_type):
    p = Tensor([3.0, 4.0], requires_grad=True)
    p.grad = np.array([3.0, 4.0], np.float32)
    with pytest.raises(ValueError, match="norm_type must be a positive number or inf"):
        clip_grad_norm_([p], 1.0, norm_type=norm_type)
    assert p.grad.tolist() == [3.0, 4.0]
