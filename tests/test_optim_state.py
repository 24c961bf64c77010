"""Saving and loading an optimizer's state: a run continues bit for bit; a bad state is
refused and changes nothing; a state of the previous version loads."""
import numpy as np
import pytest

from tinygrad_opt import Tensor
from tinygrad_opt.optim import Adam
from optim_cases import CASES


@pytest.mark.parametrize("name,cls,hyper,transcription", CASES, ids=[c[0] for c in CASES])
def test_state_dict_round_trip_continues_bit_for_bit(name, cls, hyper, transcription):
    rng = np.random.default_rng(2)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(8)]
    w0 = rng.standard_normal((4, 3))
    a = Tensor(w0, requires_grad=True)
    opt_a = cls([a], **hyper)
    for g in grads[:4]:
        a.grad = g
        opt_a.step()
    saved_w, saved = a.data.copy(), opt_a.state_dict()
    for g in grads[4:]:
        a.grad = g
        opt_a.step()
    b = Tensor(saved_w, requires_grad=True)
    opt_b = cls([b], lr=123.0)                    # other hyperparameters: restored too
    opt_b.load_state_dict(saved)
    assert opt_b.t == 4 and opt_b.hyper == opt_a.hyper
    for g in grads[4:]:
        b.grad = g
        opt_b.step()
    np.testing.assert_array_equal(a.data, b.data)


def test_load_state_dict_rejects_other_shapes():
    opt = Adam([Tensor(np.zeros(3), requires_grad=True)])
    saved = opt.state_dict()
    other = Adam([Tensor(np.zeros(4), requires_grad=True)], lr=0.5)
    with pytest.raises(ValueError, match=r"state 'm' of parameter 0 has shape \(4,\), got \(3,\)"):
        other.load_state_dict(saved)
    assert other.hyper["lr"] == 0.5 and other.t == 0      # a failed load changes nothing


@pytest.mark.parametrize("change,message", [
    (lambda s: s["state"][0]["m"].__setitem__(1, np.nan), r"state 'm' of parameter 0 holds 1 NaN"),
    (lambda s: s["state"][0]["v"].__setitem__(2, np.inf), r"state 'v' of parameter 0 holds 1 NaN or inf"),
    (lambda s: s["state"][0].__setitem__("m", np.full(3, 1e300)),
     r"state 'm' of parameter 0 holds values beyond float32's range"),
    (lambda s: s["state"][0].__setitem__("v", np.zeros(2)), r"state 'v' of parameter 0 has shape \(3,\), got \(2,\)"),
    (lambda s: s["param_groups"][0].__setitem__("lr", True), r"lr must be a number, got True"),
    (lambda s: s["param_groups"][0].__setitem__("lr", float("nan")), r"lr must be a number, got nan"),
    (lambda s: s.__setitem__("t", -1), r"t must be a whole number >= 0, got -1"),
    (lambda s: s["param_groups"][0].pop("eps"), r"hyperparameters \['amsgrad', 'beta1', 'beta2', 'decoupled_weight_decay', 'eps_inside_correction', 'lr', 'weight_decay'\] saved"),
])
def test_a_bad_optimizer_state_is_refused_and_changes_nothing(change, message):
    p = Tensor(np.ones(3), requires_grad=True)
    opt = Adam([p], lr=0.5)
    p.grad = np.ones(3, np.float32)
    opt.step()
    saved = opt.state_dict()
    before = opt.state_dict()
    change(saved)
    with pytest.raises((ValueError, KeyError), match=message):
        opt.load_state_dict(saved)
    after = opt.state_dict()
    assert after["t"] == before["t"] == 1 and after["param_groups"] == before["param_groups"]
    for k in ("m", "v"):
        np.testing.assert_array_equal(after["state"][0][k], before["state"][0][k])


def test_an_optimizer_state_saved_by_the_previous_version_loads():
    """Before parameter groups, state_dict held one "hyperparameters" dict, without the
    keys added since (weight decay, amsgrad): it loads, with those keys at their
    defaults, which do what the old rule did."""
    p = Tensor(np.ones(3), requires_grad=True)
    old = {"t": 2, "skipped_steps": 0,
           "hyperparameters": dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-7),
           "state": [{"m": np.full(3, 0.5, np.float32), "v": np.full(3, 0.25, np.float32)}]}
    opt = Adam([p])
    opt.load_state_dict(old)
    assert opt.t == 2 and opt.lr == 0.01 and opt.param_groups[0]["weight_decay"] == 0.0
    assert opt.param_groups[0]["amsgrad"] is False
    np.testing.assert_array_equal(opt.state[0]["m"], 0.5)


def test_nadam_saves_its_momentum_product_and_no_step_costs_t():
    """NAdam recomputed P_t = mu_1...mu_t from step 1 after a load: a state with t = 10**12
    hung its next step. The product is saved (as PyTorch saves mu_product): a loaded run
    continues bit for bit, a huge t costs nothing, and a state without the product is
    refused past a million steps."""
    import time
    from tinygrad_opt.optim import NAdam
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(4) for _ in range(6)]
    p = Tensor(np.ones(4), requires_grad=True, dtype=np.float64)
    whole = NAdam([p], preset="torch")
    for g in grads:
        p.grad = g.copy()
        whole.step()
    q = Tensor(np.ones(4), requires_grad=True, dtype=np.float64)
    first = NAdam([q], preset="torch")
    for g in grads[:3]:
        q.grad = g.copy()
        first.step()
    second = NAdam([q], preset="torch")
    second.load_state_dict(first.state_dict())
    for g in grads[3:]:
        q.grad = g.copy()
        second.step()
    np.testing.assert_array_equal(q.data, p.data)

    saved = second.state_dict()
    saved["t"] = saved["mu_products"][0][2] = 10 ** 12
    huge = NAdam([Tensor(np.ones(4), requires_grad=True, dtype=np.float64)], preset="torch")
    huge.load_state_dict(saved)
    huge.params[0].grad = grads[0].copy()
    t0 = time.perf_counter()
    huge.step()
    assert time.perf_counter() - t0 < 1.0 and huge.t == 10 ** 12 + 1
    del saved["mu_products"]
    with pytest.raises(ValueError, match="a state of 1000000000000 steps without its "
                                         "momentum product"):
        huge.load_state_dict(saved)


@pytest.mark.parametrize("name", ["rprop", "adamax", "lamb", "adafactor", "sf_sgd",
                                  "sf_adamw", "prodigy", "soap"])
def test_the_later_rules_continue_bit_for_bit_through_a_checkpoint(name, tmp_path):
    """Every rule added after the article's: its state (Prodigy's estimate, SOAP's
    factors and bases, Schedule-Free's averaging sums and mode) through the checkpoint
    format and back, the run then identical to one never stopped."""
    from tinygrad_opt.optim import METHODS
    from tinygrad_opt.store.checkpoint import load_checkpoint, save_checkpoint
    rng = np.random.default_rng(4)
    grads = [[rng.standard_normal(s).astype(np.float32) for s in ((6, 4), (4,))]
             for _ in range(14)]
    starts = [rng.standard_normal((6, 4)).astype(np.float32),
              rng.standard_normal(4).astype(np.float32)]

    def run(params, opt, steps):
        for g in steps:
            for p, gi in zip(params, g):
                p.grad = gi.copy()
            opt.step()

    def fresh(data):
        params = [Tensor(d.copy(), requires_grad=True) for d in data]
        opt = METHODS[name].make(params)
        return params, (opt.train() if hasattr(opt, "train") else opt)
    a, opt_a = fresh(starts)
    run(a, opt_a, grads)
    b, opt_b = fresh(starts)
    run(b, opt_b, grads[:7])
    save_checkpoint(str(tmp_path / "c"), dict(w=[p.data for p in b],
                                              optimizer=opt_b.state_dict()))
    saved = load_checkpoint(str(tmp_path / "c"))
    c, opt_c = fresh(saved["w"])
    opt_c.load_state_dict(saved["optimizer"])
    run(c, opt_c, grads[7:])
    for x, y in zip(a, c):
        np.testing.assert_array_equal(x.data, y.data)
