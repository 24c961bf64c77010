"""Schedule-Free SGD and AdamW (optim/schedule_free.py) in use: the two modes, the
Trainer's calls to them, saving and resuming. Their trajectories against the authors'
package: tests/test_conventions.py."""
import numpy as np
import pytest

from tinygrad_opt import Tensor
from tinygrad_opt.nn import Dense, ReLU, Sequential
from tinygrad_opt.nn.functional import mse
from tinygrad_opt.optim import AdamWScheduleFree, SGDScheduleFree
from tinygrad_opt.train import Trainer


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    return x, x @ np.array([[1.0], [-2.0], [0.5], [3.0]])


def _trainer(cls=AdamWScheduleFree, lr=0.01, **kw):
    model = Sequential(Dense(4, 8, rng=0), ReLU(), Dense(8, 1, rng=1))
    return Trainer(model, cls(model.parameters(), lr=lr), loss=mse, metric="mse",
                   batch_size=32, verbose=0, **kw)


def _loss_here(trainer, data):
    """The validation loss at whatever the parameters hold now (no mode switch)."""
    x, y = data
    trainer.model.eval()
    return float(mse(trainer.model(Tensor(x)), y).data)


def test_step_refuses_eval_mode_as_the_package_does():
    p = Tensor(np.ones(3), requires_grad=True, dtype=np.float64)
    opt = SGDScheduleFree([p])
    p.grad = np.ones(3)
    with pytest.raises(RuntimeError, match=r"step\(\) in eval mode; call opt.train\(\)"):
        opt.step()
    opt.train().step()
    assert opt.t == 1


@pytest.mark.parametrize("cls", [SGDScheduleFree, AdamWScheduleFree])
def test_train_and_eval_move_the_weights_between_y_and_x(cls):
    p = Tensor(np.zeros(4), requires_grad=True, dtype=np.float64)
    opt = cls([p], lr=0.1)
    opt.eval()                                  # before any step: nothing to move
    opt.train()
    np.testing.assert_array_equal(p.data, 0)
    for g in ([1.0, -2, 3, 0], [0.5, 0.5, -1, 2]):
        p.grad = np.array(g)
        opt.step()
    y, z = p.data.copy(), opt.state[0]["z"].copy()
    beta = opt.param_groups[0]["momentum" if cls is SGDScheduleFree else "beta1"]
    opt.eval()
    x = p.data.copy()
    np.testing.assert_allclose(y, (1 - beta) * z + beta * x, rtol=1e-12)
    opt.eval()                                  # a second eval() changes nothing
    np.testing.assert_array_equal(p.data, x)
    opt.train()
    np.testing.assert_allclose(p.data, y, rtol=1e-12)


def test_the_trainer_evaluates_at_x_and_leaves_the_model_there():
    trainer = _trainer()
    val = _data(32, 1)
    history = trainer.fit(_data(), val, epochs=3)
    opt = trainer.optimizer
    assert opt.training is False                          # the model holds x
    assert history[-1]["val_loss"] == pytest.approx(_loss_here(trainer, val), rel=1e-12)
    opt.train()                                           # y is another point
    assert _loss_here(trainer, val) != pytest.approx(history[-1]["val_loss"], rel=1e-6)
    opt.eval()
    assert trainer.evaluate(val)[0] == pytest.approx(history[-1]["val_loss"], rel=1e-12)
    assert opt.training is False


def test_fit_again_and_resume_continue_the_run_exactly(tmp_path):
    straight = _trainer().fit(_data(), _data(32, 1), epochs=4)
    again = _trainer()
    again.fit(_data(), _data(32, 1), epochs=2)
    assert again.fit(_data(), _data(32, 1), epochs=2).column("val_loss") == \
        straight.column("val_loss")
    ckpt = str(tmp_path / "sf.ckpt")
    _trainer(checkpoint=ckpt).fit(_data(), _data(32, 1), epochs=2)
    resumed = _trainer(checkpoint=ckpt).fit(_data(), _data(32, 1), epochs=4, resume=True)
    assert resumed.column("val_loss") == straight.column("val_loss")


def test_a_state_without_the_schedule_free_part_is_refused():
    p = Tensor(np.ones(3), requires_grad=True, dtype=np.float64)
    opt = AdamWScheduleFree([p]).train()
    p.grad = np.ones(3)
    opt.step()
    saved = opt.state_dict()
    assert saved["training"] is True and saved["averaging"][0]["weight_sum"] > 0
    for bad in ({k: v for k, v in saved.items() if k != "averaging"},
                dict(saved, averaging=[dict(weight_sum=float("nan"), lr_max=0.1)]),
                dict(saved, training="yes")):
        fresh = AdamWScheduleFree([Tensor(np.ones(3), requires_grad=True, dtype=np.float64)])
        with pytest.raises(ValueError, match="no valid Schedule-Free state"):
            fresh.load_state_dict(bad)
        assert fresh.t == 0 and fresh.training is False
    fresh = AdamWScheduleFree([Tensor(np.ones(3), requires_grad=True, dtype=np.float64)])
    fresh.load_state_dict(saved)
    assert fresh.training is True and fresh.averaging == saved["averaging"]


def test_early_stopping_restores_the_evaluated_point():
    """restore_best_weights puts back the best epoch's x (the weights its val_loss was
    measured at), and taking that snapshot moves no training weight."""
    from tinygrad_opt.train import EarlyStopping
    plain = _trainer(lr=0.2).fit(_data(), _data(32, 1), epochs=6)
    trainer = _trainer(lr=0.2)
    stop = EarlyStopping(patience=1, min_delta=0.5, restore_best_weights=True)
    trainer.callbacks.append(stop)
    history = trainer.fit(_data(), _data(32, 1), epochs=6)
    assert history.column("val_loss") == plain.column("val_loss")[:len(history)]
    assert stop.stopped_epoch == 3 and stop.best_epoch == 2      # 3.91, 0.84, 0.55
    assert trainer.optimizer.training is False
    assert trainer.evaluate(_data(32, 1))[0] == pytest.approx(history[1]["val_loss"],
                                                              rel=1e-12)
