"""The character transformer of `tinygrad_opt.models.char_transformer` in PyTorch: the
yardstick for its step time and for the validation loss it reaches.

    make bench-torch                      # its own virtual environment, .venv-torch
    .venv-torch/bin/python benchmarks/torch_char_transformer.py --steps 30   # step time
    .venv-torch/bin/python benchmarks/torch_char_transformer.py --train 3000 # full run

The same model (token and position embeddings, pre-norm blocks of causal self-attention
with one fused query/key/value Linear and a GELU MLP 4x as wide, a final LayerNorm and a
linear head), PyTorch's own initialisation (which the engine's Embedding, Linear and
LayerNorm copy: N(0, 1) tables, Linear uniform in ±1/sqrt(in), LayerNorm ones and zeros),
the Austen corpus shipped in tinygrad_opt/data/austen/ split the same way (the last tenth
of each book for validation), and the same random windows (numpy's Generator of the same
seed draws the same starts). Training as examples/08_char_transformer.py trains: AdamW
(PyTorch's defaults but the learning rate and weight decay given), a linear warm-up then
a cosine decay to a tenth, gradient norm clipped to 1.

Only for measuring side by side: tinygrad_opt never imports PyTorch, and this script
never imports tinygrad_opt.
"""
import argparse
import gzip
import json
import math
import os
import resource
import time

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AUSTEN = os.path.join(ROOT, "tinygrad_opt", "data", "austen")
BOOKS = ("emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice",
         "sensesensibility")


def austen(val_fraction=0.1):
    """(train ids, val ids, vocabulary size), as tinygrad_opt.data.load("austen")."""
    texts = []
    for book in BOOKS:
        with gzip.open(os.path.join(AUSTEN, book + ".txt.gz"), "rb") as f:
            texts.append(f.read().decode("utf-8"))
    vocab = sorted(set("".join(texts)))
    index = {c: i for i, c in enumerate(vocab)}
    train, val = [], []
    for t in texts:
        cut = len(t) - int(round(len(t) * val_fraction))
        train.append(t[:cut])
        val.append(t[cut:])
    ids = lambda s: np.fromiter((index[c] for c in s), dtype=np.int64, count=len(s))  # noqa: E731
    return ids("".join(train)), ids("".join(val)), len(vocab)


def windows(ids, batch, context, rng):
    starts = rng.integers(0, len(ids) - context, size=batch)
    offsets = starts[:, None] + np.arange(context)
    return torch.from_numpy(ids[offsets]), torch.from_numpy(ids[offsets + 1])


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2)
                   for z in self.qkv(x).split(d, dim=2))
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.norm1, self.attention = nn.LayerNorm(d), Attention(d, heads)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CharTransformer(nn.Module):
    def __init__(self, vocab, context, d, layers, heads):
        super().__init__()
        self.tokens, self.positions = nn.Embedding(vocab, d), nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)

    def forward(self, ids):
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def lr_at(step, lr, warmup, total):
    """Linear warm-up over `warmup` steps, then cosine from lr down to lr / 10."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def evaluate(model, val, args, batches=20):
    """The mean cross-entropy (nats) of `batches` fixed validation windows."""
    rng = np.random.default_rng(10_000 + args.seed)
    model.eval()
    with torch.no_grad():
        losses = [nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
                  for x, y in (windows(val, args.batch, args.context, rng)
                               for _ in range(batches))]
    model.train()
    return float(np.mean(losses))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30, help="timed steps (no --train)")
    ap.add_argument("--train", type=int, default=0, help="train this many steps instead")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train, val, vocab = austen()
    model = CharTransformer(vocab, args.context, args.d_model, args.layers, args.heads)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    rng = np.random.default_rng(args.seed)
    steps = args.train or args.steps + 3
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, char transformer "
          f"d {args.d_model}, {args.layers} layers, {args.heads} heads, batch {args.batch}, "
          f"context {args.context}", flush=True)
    times, curve = [], []
    for step in range(steps):
        x, y = windows(train, args.batch, args.context, rng)
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.lr, args.warmup, steps)
        loss = nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
        if args.train and ((step + 1) % args.eval_every == 0 or step + 1 == steps):
            curve.append(dict(step=step + 1, train_loss=loss.item(),
                              val_loss=evaluate(model, val, args)))
            print(f"step {step + 1}: train loss {loss.item():.3f}, val loss "
                  f"{curve[-1]['val_loss']:.3f} nats "
                  f"({curve[-1]['val_loss'] / math.log(2):.3f} bits/char)", flush=True)
    ms = 1e3 * float(np.median(times[3:]))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"median step {ms:.1f} ms ({1e3 / ms:.2f} steps/s, "
          f"{args.batch * args.context * 1e3 / ms:,.0f} tokens/s), peak RSS {peak:.0f} MiB",
          flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(torch=torch.__version__, args=vars(args), step_ms=ms,
                           peak_rss_mib=peak, curve=curve), f, indent=1)


if __name__ == "__main__":
    main()
