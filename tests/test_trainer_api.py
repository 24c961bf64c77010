"""The Trainer's surface as a Keras or PyTorch user tries it first: validation_data=,
fit called again, EarlyStopping's report and best weights, clipping inside fit, the
model's mode after evaluate, one verbosity setting."""
import numpy as np
import pytest

from tinygrad_opt.nn import Dense, Dropout, ReLU, Sequential
from tinygrad_opt.nn.functional import mse
from tinygrad_opt.optim import SGD, Adam
from tinygrad_opt.train import EarlyStopping, Trainer


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    return x, x @ np.array([[1.0], [-2.0], [0.5], [3.0]])


def _trainer(lr=0.01, **kw):
    model = Sequential(Dense(4, 8, rng=0), ReLU(), Dense(8, 1, rng=1))
    return Trainer(model, Adam(model.parameters(), lr=lr), loss=mse, metric="mse",
                   batch_size=32, **{"verbose": 0, **kw})


def test_validation_data_is_kerass_name_for_val():
    history = _trainer().fit(_data(), validation_data=_data(32, 1), epochs=1)
    assert "val_loss" in history[-1]
    with pytest.raises(TypeError, match="give val or validation_data"):
        _trainer().fit(_data(), _data(32, 1), validation_data=_data(32, 1))


def test_fit_called_again_trains_that_many_more_epochs():
    """Keras' semantics: fit(epochs=3) then fit(epochs=2) is five epochs (the second
    call trained nothing, and the history stayed at three)."""
    trainer = _trainer()
    trainer.fit(_data(), epochs=3)
    history = trainer.fit(_data(), epochs=2)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    straight = _trainer().fit(_data(), epochs=5)
    assert history.column("train_loss") == straight.column("train_loss")


def test_early_stopping_says_why_and_restores_the_best_weights(capsys):
    trainer = _trainer(lr=0.5, verbose=2)       # too large: the loss stalls and wanders
    stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    trainer.callbacks.append(stop)
    history = trainer.fit(_data(), _data(32, 1), epochs=40)
    assert stop.stopped_epoch == len(history) < 40
    line = [s for s in capsys.readouterr().out.splitlines() if s.startswith("EarlyStopping")]
    assert line == [stop.message]
    assert f"stopped after epoch {stop.stopped_epoch}: val_loss has not improved" in line[0]
    assert f"the weights of epoch {stop.best_epoch} restored" in line[0]
    best = min(history.column("val_loss"))
    assert history[stop.best_epoch - 1]["val_loss"] == best
    assert trainer.evaluate(_data(32, 1))[0] == pytest.approx(best, rel=1e-6)


def test_clip_grad_norm_inside_fit_and_the_hook_after_backward():
    norms = []

    class Record:
        def on_after_backward(self, trainer, step):
            norms.append(np.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum())
                                     for p in trainer.model.parameters())))

    class After:
        def on_batch_end(self, trainer, step, loss):
            norms.append(np.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum())
                                     for p in trainer.model.parameters())))

    model = Sequential(Dense(4, 8, rng=0), ReLU(), Dense(8, 1, rng=1))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.01), loss=mse, metric="mse",
                      batch_size=32, verbose=0, clip_grad_norm=0.1,
                      callbacks=[Record(), After()])
    trainer.fit(_data(), epochs=1)
    before, after = norms[0::2], norms[1::2]
    assert max(before) > 1.0 and max(after) <= 0.1 * (1 + 1e-5)
    with pytest.raises(ValueError, match="clip_grad_norm must be a positive number"):
        _trainer(clip_grad_norm=-1)


def test_evaluate_leaves_the_model_in_the_mode_it_found():
    model = Sequential(Dense(4, 8, rng=0), Dropout(0.5), Dense(8, 1, rng=1))
    trainer = Trainer(model, Adam(model.parameters()), loss=mse, metric="mse", verbose=0)
    model.eval()
    trainer.evaluate(_data(32, 1))
    assert not model.training and not model[1].training
    model.train()
    trainer.evaluate(_data(32, 1))
    assert model.training


def test_one_verbosity_setting():
    with pytest.raises(ValueError, match="verbose must be 0, 1 or 2, got 3"):
        Trainer(Sequential(Dense(4, 1)), "adam", loss=mse, verbose=3)
    with pytest.raises(TypeError):
        Trainer(Sequential(Dense(4, 1)), "adam", loss=mse, quiet=True)
