"""What an optimizer refuses, in one line naming the value: bad hyperparameters and
parameters, non-finite or misshapen gradients, presets a rule lacks; the spellings it
accepts; the registry of methods."""
import numpy as np
import pytest

from tinygrad_opt import Tensor
from tinygrad_opt.optim import ARTICLE_METHODS, FULL_BATCH, METHODS, SGD, Adadelta, Adagrad, Adam, RMSprop, get_method


BAD = [
    (SGD, dict(lr=-1), r"SGD: lr must be a finite number >= 0, got -1.0"),
    (SGD, dict(lr=float("inf")), r"SGD: lr must be a finite number >= 0, got inf"),
    (SGD, dict(lr=float("nan")), r"SGD: lr must be a number, got nan"),
    (SGD, dict(momentum=1.0), r"SGD: momentum must be in \[0, 1\), got 1.0"),
    (SGD, dict(momentum=-0.1), r"momentum must be in \[0, 1\), got -0.1"),
    (SGD, dict(nesterov=True), r"nesterov=True needs momentum > 0"),
    (Adagrad, dict(initial_accumulator_value=-0.1), r"initial_accumulator_value must be >= 0, got -0.1"),
    (Adagrad, dict(eps=0.0), r"Adagrad: eps must be a positive finite number, got 0.0"),
    (RMSprop, dict(rho=1.0), r"RMSprop: rho must be in \[0, 1\), got 1.0"),
    (RMSprop, dict(eps=-1e-7), r"eps must be a positive finite number, got -1e-07"),
    (Adadelta, dict(rho=1.5), r"Adadelta: rho must be in \[0, 1\), got 1.5"),
    (Adam, dict(beta1=1.0), r"Adam: beta1 must be in \[0, 1\), got 1.0"),
    (Adam, dict(beta2=-0.5), r"Adam: beta2 must be in \[0, 1\), got -0.5"),
    (Adam, dict(eps=float("nan")), r"Adam: eps must be a number, got nan"),
    (Adam, dict(preset="pytorch"), r"no preset .pytorch.; known: keras, torch, paper"),
    (SGD, dict(preset="paper"), r"SGD: no preset .paper. \(the papers give no step size or momentum\); known: keras"),
    (RMSprop, dict(preset="paper"), r"RMSprop: no preset .paper."),
    (Adagrad, dict(preset="paper"), r"Adagrad: no preset .paper."),
]


@pytest.mark.parametrize("cls,kwargs,message", BAD)
def test_bad_hyperparameters(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls([Tensor([1.0], requires_grad=True)], **kwargs)


def test_bad_parameters():
    with pytest.raises(ValueError, match="empty parameter list"):
        Adam([])
    with pytest.raises(TypeError, match="parameter 0 must be a Tensor of float32 or float64"):
        Adam([np.zeros(3)])


def test_nonfinite_gradient_raises_or_skips():
    p = Tensor([1.0, 2.0], requires_grad=True)
    opt = Adam([p])
    p.grad = np.array([np.nan, 1.0], dtype=np.float32)
    with pytest.raises(FloatingPointError, match=r"parameter 0 \(shape \(2,\)\) has 1 NaN or inf values at step 1"):
        opt.step()
    assert opt.t == 0 and p.data.tolist() == [1.0, 2.0]
    skipping = Adam([p], nonfinite="skip")
    p.grad = np.array([np.inf, 1.0], dtype=np.float32)
    skipping.step()
    assert skipping.skipped_steps == 1 and skipping.t == 0 and p.data.tolist() == [1.0, 2.0]


def test_presets_defaults_and_repr():
    p = [Tensor([1.0], requires_grad=True)]
    decay = dict(weight_decay=0.0, decoupled_weight_decay=True)     # Keras' convention
    assert Adam(p).hyper == dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7, amsgrad=False,
                                 eps_inside_correction=False, **decay)
    assert Adam(p, preset="paper").hyper["eps"] == 1e-8
    assert Adadelta(p, preset="paper").hyper == dict(lr=1.0, rho=0.95, eps=1e-6,
                                                     weight_decay=0.0,
                                                     decoupled_weight_decay=False)
    assert Adadelta(p).hyper == dict(lr=0.001, rho=0.95, eps=1e-7, **decay)
    assert repr(RMSprop(p)) == ("RMSprop(weight_decay=0, decoupled_weight_decay=True, "
                                "lr=0.001, rho=0.9, eps=1e-07, momentum=0, centered=False, "
                                "eps_in_sqrt=True, velocity_holds_lr=True)")
    assert all(type(v) in (float, bool) for v in SGD(p, lr=np.float64(0.1)).hyper.values())


def test_registry_of_the_eight_methods_and_those_after():
    assert list(ARTICLE_METHODS) == ["gd", "sgd", "minibatch", "momentum", "adagrad",
                                     "rmsprop", "adadelta", "adam"]
    assert list(METHODS) == list(ARTICLE_METHODS) + ["nesterov", "amsgrad", "adamw", "nadam",
                                                     "radam", "lion", "muon", "rprop",
                                                     "adamax", "lamb", "adafactor", "sf_sgd",
                                                     "sf_adamw", "prodigy", "soap", "lbfgs"]
    assert all(METHODS[m].batch_size == 64 and METHODS[m].article_row is None
               for m in list(METHODS)[8:] if m != "lbfgs")
    assert METHODS["lbfgs"].batch_size is FULL_BATCH
    assert METHODS["gd"].batch_size is FULL_BATCH and METHODS["sgd"].batch_size == 1
    assert all(METHODS[m].batch_size == 64 for m in list(METHODS)[2:] if m != "lbfgs")
    p = [Tensor([1.0], requires_grad=True)]
    assert METHODS["momentum"].make(p).hyper == dict(lr=0.001, momentum=0.9, nesterov=False,
                                                     velocity_holds_lr=True,
                                                     weight_decay=0.0,
                                                     decoupled_weight_decay=True)
    assert METHODS["minibatch"].make(p).hyper["lr"] == 0.01
    assert isinstance(METHODS["adam"].make(p), Adam)
    with pytest.raises(ValueError, match="unknown method 'sophia'; known: gd, sgd, minibatch"):
        get_method("sophia")


# --- the API refuses what would corrupt memory or training ---------------------------------
@pytest.mark.parametrize("grad,message", [
    (np.zeros(1, np.float32), r"gradient of parameter 1 is ndarray of shape \(1,\) and dtype "
                              r"float32; the parameter has shape \(1000,\)"),
    (np.zeros((1000, 1), np.float32), r"parameter 1 .* shape \(1000, 1\)"),
    (np.zeros(1000, np.float64), r"parameter 1 .* dtype float64; the parameter has shape "
                                 r"\(1000,\) and dtype float32"),
    ([0.0] * 1000, r"parameter 1 is list"),
])
@pytest.mark.parametrize("cls", [SGD, Adam])
def test_gradient_of_another_shape_or_dtype_is_refused(cls, grad, message):
    """A 1-element gradient for a big parameter once made the kernels read past its end:
    silent garbage, or a segmentation fault for 30M elements."""
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(1000), requires_grad=True)
    opt = cls([a, b])
    a.grad, b.grad = np.ones(3, np.float32), grad
    with pytest.raises(ValueError, match=message):
        opt.step()
    assert opt.t == 0 and a.data.tolist() == [1.0] * 3 and (b.data == 1).all()


def test_the_same_tensor_twice_is_refused():
    p, q = Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"parameter 2 is the same Tensor as parameter 0"):
        SGD([p, q, p])


@pytest.mark.parametrize("cls,kwargs,message", [
    (SGD, dict(lr=True), r"SGD: lr must be a number, got True"),
    (Adam, dict(eps=np.bool_(True)), r"Adam: eps must be a number, got (np.)?True"),
    (SGD, dict(momentum=0.9, nesterov=1.0), r"SGD: nesterov must be True or False, got 1.0"),
    (Adam, dict(lr="0.1"), r"Adam: lr must be a number, got '0.1'"),
])
def test_booleans_are_not_numbers_nor_numbers_switches(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls([Tensor([1.0], requires_grad=True)], **kwargs)


def test_pytorch_and_keras_spellings_and_a_checked_lr():
    """The learning rate could only be changed through the undocumented opt.hyper["lr"],
    which accepted -5.0."""
    p = [Tensor([1.0], requires_grad=True)]
    assert Adam(p, betas=(0.8, 0.99)).hyper == dict(lr=0.001, beta1=0.8, beta2=0.99, eps=1e-7,
                                                    amsgrad=False, eps_inside_correction=False,
                                                    weight_decay=0.0,
                                                    decoupled_weight_decay=True)
    assert RMSprop(p, learning_rate=0.01).lr == 0.01 and SGD(p, learning_rate=0.1).lr == 0.1
    with pytest.raises(ValueError, match="lr=0.1 and learning_rate=0.2 disagree"):
        Adam(p, lr=0.1, learning_rate=0.2)
    with pytest.raises(ValueError, match="betas=.0.8, 0.99. and beta1=0.9, beta2=None disagree"):
        Adam(p, beta1=0.9, betas=(0.8, 0.99))
    opt = Adam(p)
    opt.lr = 0.5 * opt.lr
    assert opt.lr == 0.0005 and opt.hyper["lr"] == 0.0005
    for bad in (-5.0, True, float("nan")):
        with pytest.raises(ValueError, match="lr must be"):
            opt.lr = bad
    assert opt.lr == 0.0005


def test_presets_a_rule_lacks_are_refused_with_the_reason():
    from tinygrad_opt.optim import Lion, Muon, RAdam
    p = [Tensor([1.0], requires_grad=True)]
    with pytest.raises(ValueError, match=r"Lion: no preset 'torch' \(PyTorch 2.13 ships no Lion\)"):
        Lion(p, preset="torch")
    with pytest.raises(ValueError, match=r"RAdam: no preset 'keras' \(Keras 3.15 ships no RAdam\)"):
        RAdam(p, preset="keras")
    assert RAdam(p).preset == "torch" and Muon(p).preset == "keras" and Lion(p).preset == "keras"
