"""The character-level transformer of `models.char_transformer` on Jane Austen's novels:
next-character cross-entropy (nats; bits per character = nats / ln 2), batch 32 random
windows, gradients clipped to norm 1 (as examples/08 trains it). Reduced from the
example's model (context 128, width 128, 4 layers: about 3 minutes per 1,000 steps
here) to context 64, width 64, 2 layers of 4 heads, and 6 epochs of 100 steps, each
scored on the same 20 batches of validation windows (the last tenth of every novel)."""
import functools
from dataclasses import replace

from ..models import char_transformer
from ..nn.functional import cross_entropy
from . import Problem

CONTEXT, WIDTH, LAYERS, HEADS = 64, 64, 2, 4
BATCH, STEPS, VALID_BATCHES = 32, 100, 20


@functools.lru_cache(maxsize=2)
def corpus(data_dir=None):
    from ..data import load
    return load("austen", data_dir)


def model(seed=0):
    return char_transformer(corpus().vocab_size, context=CONTEXT, d_model=WIDTH,
                            n_layers=LAYERS, n_heads=HEADS, seed=seed)


def data(data_dir=None, seed=0):
    text = corpus(data_dir)
    return (text.batches(BATCH, CONTEXT, STEPS, seed=seed),     # the run's windows
            text.batches(BATCH, CONTEXT, VALID_BATCHES, seed=1, split="val"))


def next_character_loss(logits, targets):
    return cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def quick():
    def few(data_dir=None, seed=0):
        text = corpus(data_dir)
        return (text.batches(BATCH, CONTEXT, 10, seed=seed),
                text.batches(BATCH, CONTEXT, 4, seed=1, split="val"))
    return replace(PROBLEM, epochs=2, data=few)


CALIBRATION = (
    "SGD with momentum (lr 0.003 to 3, seven points) and Adam (lr 1e-4 to 0.03, six "
    "points), log grids (one seed each), the best rerun on seeds 1000-1002 (2026-12-06): "
    "Adam at lr 0.01 (final 1.6898, 1.6890, 1.6923 nats) beat momentum at lr 1 (1.8154, "
    "1.8126, 1.8180); the worst of Adam's three, 1.6923 nats (2.44 bits per character), "
    "is the target.")


PROBLEM = Problem(
    name="austen_char_transformer", title="Char transformer, Austen", model=model,
    data=data, metric="loss", loss=next_character_loss, batch_size=BATCH, epochs=6,
    clip_grad_norm=1.0, target=1.6923,
    size="0.11 M parameters, context 64, 2 layers; 600 steps (the example: 128, 4 "
         "layers, 1,500 steps)", quick=quick,
    calibration=CALIBRATION)
