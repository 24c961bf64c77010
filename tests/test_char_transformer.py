"""The character-level transformer: seeded weights, it learns Austen's characters, and
sampling from it is seeded."""
import numpy as np
import pytest

from tinygrad_opt.data import load
from tinygrad_opt.models import char_transformer, generate
from tinygrad_opt.nn.functional import cross_entropy
from tinygrad_opt.optim import AdamW


def _small(seed=0, vocab=81):
    return char_transformer(vocab, context=32, d_model=32, n_layers=2, n_heads=2, seed=seed)


def test_the_same_seed_gives_the_same_weights():
    a, b, c = _small(0), _small(0), _small(1)
    assert all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), b.parameters()))
    assert not np.array_equal(a.parameters()[0].data, c.parameters()[0].data)


def test_it_learns_austens_characters_and_samples_seeded():
    corpus = load("austen")
    model = _small(vocab=corpus.vocab_size)
    opt = AdamW(model.parameters(), lr=3e-3, preset="torch")
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(40):
        x, y = corpus.batch(16, 32, rng)
        loss = cross_entropy(model(x).reshape(-1, corpus.vocab_size), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 4.0 and np.mean(losses[-5:]) < 3.3      # ln 81 = 4.39: it learned
    prompt = corpus.encode("It is a truth ")
    one, two = (generate(model, prompt, 30, temperature=0.8, seed=3) for _ in range(2))
    assert np.array_equal(one, two) and len(one) == len(prompt) + 30
    assert corpus.decode(one).startswith("It is a truth ")
    assert not np.array_equal(one, generate(model, prompt, 30, temperature=0.8, seed=4))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        generate(model, prompt, 1, temperature=0)
    with pytest.raises(ValueError, match=r"expected ids \(batch, time <= 32\)"):
        model(np.zeros((1, 33), dtype=np.int64))


def test_the_sequence_cross_entropy_reshape_copies_nothing_either_way():
    """cross_entropy over (batch, time, vocab) logits is the documented reshape to
    (batch·time, vocab): a view forward, and the gradient comes back as a view too."""
    from tinygrad_opt import Tensor
    logits = Tensor(np.random.default_rng(0).standard_normal((2, 3, 5)), requires_grad=True)
    flat = logits.reshape(-1, 5)
    assert np.shares_memory(flat.data, logits.data)
    loss = cross_entropy(flat, np.array([0, 1, 2, 3, 4, 0]))
    loss.backward()
    assert logits.grad.shape == (2, 3, 5)
    probs = np.exp(logits.data) / np.exp(logits.data).sum(-1, keepdims=True)
    want = probs.reshape(6, 5) - np.eye(5)[[0, 1, 2, 3, 4, 0]]
    np.testing.assert_allclose(logits.grad.reshape(6, 5), want / 6, rtol=1e-6, atol=1e-9)


def test_linear_takes_any_leading_axes_and_no_bias():
    from tinygrad_opt import Tensor, gradcheck
    from tinygrad_opt.nn import Linear
    from tinygrad_opt.nn.functional import linear
    layer = Linear(4, 3, bias=False, rng=0, dtype=np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((2, 5, 4)), requires_grad=True,
               dtype=np.float64)
    np.testing.assert_allclose(layer(x).data, x.data @ layer.weight.data.T, rtol=1e-12)
    assert gradcheck(lambda x, w: linear(x, w), x, layer.weight)
    with pytest.raises(ValueError, match=r"linear expected input \(\.\.\., 4\) for a weight "
                                         r"of shape \(3, 4\), got \(2, 5\)"):
        linear(Tensor(np.ones((2, 5))), layer.weight)


def test_the_reference_switch_runs_the_whole_model_on_numpy_to_the_same_numbers():
    """One training step's loss and every gradient, through the kernels and through the
    numpy references (the reference switch), agree to float32 rounding."""
    from tinygrad_opt import reference
    corpus = load("austen")
    x, y = corpus.batch(4, 32, 0)
    results = []
    for ref in (False, True):
        model = _small(vocab=corpus.vocab_size)
        with reference(ref):
            loss = cross_entropy(model(x).reshape(-1, corpus.vocab_size), y.reshape(-1))
            loss.backward()
        results.append([loss.data] + [p.grad for p in model.parameters()])
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)
