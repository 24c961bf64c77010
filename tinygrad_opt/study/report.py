"""A study's report: report.md, table.csv and plots, from its trials' results."""
import json
import math
import os

import numpy as np

from .. import figures
from ..optim import METHODS
from ..store.files import atomic_write_text
from ..train.report import ARTICLE, write_csv
from ..train.report import EPOCHS as ARTICLE_EPOCHS
from .run import grid_of
from .stats import interval95, mean_sd, performance_profile, separated
from .trials import to_target


def shown_epochs(epochs):
    """Epochs 1, 5 and 10 where run, and the last one run if it is none of them."""
    shown = [e for e in ARTICLE_EPOCHS if e <= epochs]
    return shown + ([epochs] if epochs not in shown else [])


def _by(results, *keys):
    out = {}
    for r in results:
        out.setdefault(tuple(r["spec"][k] for k in keys), []).append(r)
    return out


def _values(runs, epoch, key):
    return [r["history"][epoch - 1][key] for r in runs
            if len(r["history"]) >= epoch and not r["diverged"]]


def _pm(values, digits=4):
    m, sd = mean_sd(values)
    if math.isnan(m):
        return "–"
    return f"{m:.{digits}f}" if math.isnan(sd) else f"{m:.{digits}f} ± {sd:.{digits}f}"


def article_rows(results, epochs):
    """One row per (data set, method): mean and sd over seeds at the shown epochs, the
    article's numbers (MNIST) and whether each lies outside mean ± 2 sd."""
    rows = []
    for (dataset, method), runs in sorted(_by(results, "dataset", "method").items(),
                                         key=lambda kv: (kv[0][0], list(METHODS).index(kv[0][1]))):
        art = ARTICLE.get(METHODS[method].article_row or "") if dataset == "mnist" else None
        row = dict(dataset=dataset, method=method, title=METHODS[method].title,
                   seeds=len(runs), diverged=sum(r["diverged"] for r in runs))
        for e in shown_epochs(epochs):
            for key, art_key in (("val_acc", "acc"), ("val_loss", "loss")):
                values = _values(runs, e, key)
                m, sd = mean_sd(values)
                a = art[art_key][ARTICLE_EPOCHS.index(e)] if art and e in ARTICLE_EPOCHS else None
                row[f"{key}_{e}_mean"], row[f"{key}_{e}_sd"] = m, sd
                row[f"{key}_{e}_article"] = a
                row[f"{key}_{e}_article_outside"] = (a is not None and not math.isnan(sd)
                                                     and abs(a - m) > 2 * sd)
        rows.append(row)
    return rows


def ranking(results, epoch):
    """Per data set: methods by mean accuracy at `epoch`, best first, and the pairs
    (a, b) whose order the seeds cannot separate (Welch's test at 5%)."""
    out = {}
    for (dataset,), runs in _by(results, "dataset").items():
        accs = {m: _values(rs, epoch, "val_acc")
                for (m,), rs in _by(runs, "method").items()}
        order = sorted(accs, key=lambda m: -(mean_sd(accs[m])[0] if accs[m] else -1))
        ties = [(a, b) for i, a in enumerate(order) for b in order[i + 1:]
                if not separated(accs[a], accs[b])]
        out[dataset] = dict(order=order, inseparable=ties)
    return out


def grids_text(config_grid):
    """The learning rates tried, in words: one grid, or each method's where they differ."""
    def show(grid):
        return ", ".join(f"{v:g}" for v in grid)
    if not isinstance(config_grid, dict):
        return show(config_grid)
    by_grid = {}
    for method, grid in config_grid.items():
        by_grid.setdefault(tuple(grid), []).append(method)
    if len(by_grid) == 1:
        return show(next(iter(by_grid)))
    return "; ".join(f"{', '.join(ms)}: {show(g)}" for g, ms in by_grid.items())


def _at_edge(lr, grid):
    """The chosen lr at either end of a grid of more than one value."""
    return len(grid) > 1 and lr in (min(grid), max(grid))


def tuned_rows(tuning, final, target, lr_grid=()):
    """One row per (data set, method) of the tuned protocol's test runs; `lr_at_edge`
    marks a chosen learning rate at either end of the grid (the best may lie beyond)."""
    rows = []
    for (dataset, method), runs in sorted(_by(final, "dataset", "method").items()):
        accs = [0.0 if r["diverged"] else r["history"][-1]["val_acc"] for r in runs]
        reach = [to_target(r, target) for r in runs]
        m, sd = mean_sd(accs)
        lo, hi = interval95(accs)
        rows.append(dict(dataset=dataset, method=method, title=METHODS[method].title,
                         setting=json.dumps(runs[0]["spec"]["hyper"], sort_keys=True),
                         seeds=len(runs), test_acc_mean=m, test_acc_sd=sd, ci95_low=lo,
                         ci95_high=hi, target=target,
                         steps_to_target=float(np.median([s for s, _ in reach])),
                         seconds_to_target=float(np.median([t for _, t in reach])),
                         lr_at_edge=_at_edge(runs[0]["spec"]["hyper"].get("lr"),
                                             grid_of(lr_grid, method))))
    return rows


def provenance(results):
    """The package versions and processors the trials ran on (sorted; "unrecorded" for
    trials written before they were recorded)."""
    return dict(versions=sorted({str(r.get("version", "unrecorded")) for r in results}),
                processors=sorted({str(r.get("processor", "unrecorded")) for r in results}))


def worker_minutes(results):
    """The trials' own training times, added up, in minutes."""
    return sum(r["seconds"] for r in results) / 60


def where_from(config):
    """A sentence naming the processor the trials ran on, and any mix of versions or
    processors: float32 numbers depend on them (docs/protocol.md)."""
    versions, processors = config.get("versions", []), config.get("processors", [])
    said = []
    if len(processors) == 1:
        said.append(f"Trials ran on {processors[0]}.")
    elif processors:
        said.append(f"Trials from different processors are mixed: {', '.join(processors)}.")
    if len(versions) > 1:
        said.append(f"Trials of different package versions are mixed: {', '.join(versions)}.")
    return " ".join(said)


def write(out, config, results, final, seconds):
    """Write report.md, table.csv and the plots; return the summary."""
    epochs = config["epochs"]
    config = dict(config, **provenance(results + final))
    if config["protocol"] == "article":
        rows = article_rows(results, epochs)
        ranks = ranking(results, epochs)
        text = _article_markdown(config, rows, ranks, results, seconds)
        plots = [_curves(out, results, epochs)]
    else:
        rows = tuned_rows(results, final, config["target"], config["lr_grid"])
        ranks = ranking(final, epochs)
        text = _tuned_markdown(config, rows, ranks, results, final, seconds)
        plots = [_sensitivity(out, results)]
        if len({r["dataset"] for r in rows}) > 1:   # over one problem it says nothing
            plots.append(_profile(out, rows))
    for r in rows:                      # every --set override shows in the method's name
        r["title"] = title(r["method"], config)
    write_csv(os.path.join(out, "table.csv"), rows)
    atomic_write_text(os.path.join(out, "report.md"), text)
    return dict(rows=rows, ranking=ranks, plots=plots, trials=len(results) + len(final),
                seconds=seconds)


def _cell(row, key, e):
    m, sd = row[f"{key}_{e}_mean"], row[f"{key}_{e}_sd"]
    if math.isnan(m):
        return "–"
    ours = f"{m:.4f}" + ("" if math.isnan(sd) else f" ± {sd:.4f}")
    a = row[f"{key}_{e}_article"]
    if a is None:
        return ours
    return f"{ours} / {a:.4f}{' ‡' if row[f'{key}_{e}_article_outside'] else ''}"


def title(method, config):
    """The method's name, with the `--set` overrides it ran with."""
    sets = config.get("sets", {}).get(method)
    extra = ", ".join(f"{k}={v}" for k, v in sorted(sets.items())) if sets else ""
    return METHODS[method].title + (f" ({extra})" if extra else "")


def _head(config, seconds, trials):
    """The report's first line: what ran, where, and what it cost (this run's minutes,
    and the trials' own, which a report rewritten from stored trials still has)."""
    c, where = config, where_from(config)
    images = "all" if c["limit"] is None else f"the first {c['limit']:,}"
    overrides = ([f"`--set {m}.{k}={v}`" for m, kv in sorted(c.get("sets", {}).items())
                  for k, v in sorted(kv.items())]
                 + [f"`--grid {m}.{k}={','.join(map(str, vs))}`"
                    for m, kv in sorted(c.get("grids", {}).items())
                    for k, vs in sorted(kv.items())])
    return (f"Protocol **{c['protocol']}**: {', '.join(c['methods'])} on "
            f"{', '.join(c['datasets'])}, {c['epochs']} epochs, {images} "
            f"training images, {c['seeds']} seeds, backend {c['backend']} "
            f"({c['workers']} worker(s) x {c['threads']} thread(s)); {len(trials)} trials, "
            f"{seconds / 60:.1f} min this run; the trials' own times add up to "
            f"{worker_minutes(trials):.1f} worker-minutes."
            + (f" Overrides: {'; '.join(overrides)}." if overrides else "")
            + (f" {where}" if where else "") + "\n")


def _article_markdown(config, rows, ranks, results, seconds):
    epochs = shown_epochs(config["epochs"])
    lines = ["# Study: the article's protocol over seeds", "", _head(config, seconds, results),
             "Each cell: validation accuracy or loss on the test images, **mean ± sd over "
             "seeds** / the article's (Keras, one run); ‡: the article's number lies "
             "outside mean ± 2 sd.", ""]
    for dataset in sorted({r["dataset"] for r in rows}):
        lines += [f"## {dataset}", ""]
        head = "| method |" + "".join(f" epoch {e} val acc | val loss |" for e in epochs)
        lines += [head, "|---|" + "---|---|" * len(epochs)]
        for r in (r for r in rows if r["dataset"] == dataset):
            name = title(r["method"], config) + (f" ({r['diverged']} diverged)"
                                                  if r["diverged"] else "")
            lines.append(f"| {name} |" + "".join(
                f" {_cell(r, 'val_acc', e)} | {_cell(r, 'val_loss', e)} |" for e in epochs))
        rk = ranks[dataset]
        lines += ["", f"Our ranking at epoch {config['epochs']} (mean accuracy): "
                  + " > ".join(METHODS[m].title for m in rk["order"]) + "."]
        if dataset == "mnist":
            art = sorted((m for m in rk["order"] if METHODS[m].article_row in ARTICLE),
                         key=lambda m: -ARTICLE[METHODS[m].article_row]["acc"][-1])
            if art:
                lines.append("The article's ranking at epoch 10: "
                             + " > ".join(METHODS[m].title for m in art) + ".")
        if rk["inseparable"]:
            lines.append("Pairs whose order the seeds cannot separate (Welch's test, 5%): "
                         + "; ".join(f"{METHODS[a].title} / {METHODS[b].title}"
                                     for a, b in rk["inseparable"]) + ".")
        else:
            lines.append("Every pair's order is separated by the seeds (Welch's test, 5%).")
        lines.append("")
    lines += ["Plot: `val_acc.png` (mean over seeds, band: ± 1 sd). Per-trial results: "
              "`trials/`. Statistics: docs/protocol.md.", ""]
    return "\n".join(lines)


def _tuned_markdown(config, rows, ranks, tuning, final, seconds):
    lines = ["# Study: tuned learning rates", "",
             _head(config, seconds, list(tuning) + list(final)),
             f"Learning rates tried: {grids_text(config['lr_grid'])}, "
             f"chosen by the validation accuracy on {config['val_size']:,} images held out "
             f"from the training images ({config['tune_seeds']} seed(s)); the chosen "
             f"setting retrained on {config['seeds']} fresh seeds and scored on the test "
             f"images.", "",
             "| data set | method | chosen setting | test acc mean ± sd | 95% interval | "
             f"steps to {config['target']} | seconds to {config['target']} |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ci = ("–" if math.isnan(r["ci95_low"])
              else f"[{r['ci95_low']:.4f}, {r['ci95_high']:.4f}]")
        sd = "" if math.isnan(r["test_acc_sd"]) else f" ± {r['test_acc_sd']:.4f}"
        steps = "missed" if math.isinf(r["steps_to_target"]) else f"{r['steps_to_target']:,.0f}"
        secs = "missed" if math.isinf(r["seconds_to_target"]) else f"{r['seconds_to_target']:.1f}"
        edge = " (at the grid's edge)" if r["lr_at_edge"] else ""
        lines.append(f"| {r['dataset']} | {title(r['method'], config)} | `{r['setting']}`"
                     f"{edge} | {r['test_acc_mean']:.4f}{sd} | {ci} | {steps} | {secs} |")
    for dataset, rk in sorted(ranks.items()):
        lines += ["", f"{dataset}: " + " > ".join(METHODS[m].title for m in rk["order"])
                  + (("; not separated by the seeds: " + "; ".join(
                      f"{METHODS[a].title} / {METHODS[b].title}" for a, b in rk["inseparable"]))
                     if rk["inseparable"] else "; every pair separated") + "."]
    edges = [r for r in rows if r["lr_at_edge"]]
    if edges:
        lines += ["", "At the grid's edge: the learning rate chosen for "
                  + ", ".join(f"{r['title']} ({r['dataset']})" for r in edges)
                  + " is the smallest or largest tried; the best may lie beyond it "
                  "(widen `--lr-grid`)."]
    lines += ["", "Steps and seconds to the target: the median over seeds of the updates and "
              "training seconds until the first epoch whose test accuracy reaches it (a run "
              "that never does counts as infinite: 'missed').",
              "Plots: `lr_sensitivity.png` (validation accuracy against the learning rate, "
              "band: min to max over tuning seeds)"
              + (", `performance_profile.png` (Dolan–Moré, cost: seconds to the target, "
                 "over the data sets studied)." if len(config["datasets"]) > 1 else
                 "; no performance profile: over one data set it ranks the methods by "
                 "one number and says nothing more."), ""]
    return "\n".join(lines)


def _save(fig, path):
    return figures.save(fig, path, dpi=90)


def _panels(results):
    """One panel per data set; each (panel, data set, method, its colour, its results)."""
    plt = figures.pyplot()
    datasets = sorted({r["spec"]["dataset"] for r in results})
    fig, axes = plt.subplots(1, len(datasets), figsize=(7 * len(datasets), 4.5), squeeze=False)
    methods = [m for m in METHODS if any(r["spec"]["method"] == m for r in results)]
    colors = figures.colors(len(methods))
    cells = [(ax, dataset, method, colors[i],
              [r for r in results if r["spec"]["method"] == method
               and r["spec"]["dataset"] == dataset])
             for ax, dataset in zip(axes[0], datasets) for i, method in enumerate(methods)]
    return fig, axes[0], datasets, cells


def _curves(out, results, epochs):
    fig, axes, datasets, cells = _panels(results)
    for ax, dataset, method, color, runs in cells:
        runs = [r for r in runs if not r["diverged"]]
        if runs:
            acc = np.array([[h["val_acc"] for h in r["history"]] for r in runs])
            x = np.arange(1, acc.shape[1] + 1)
            m, sd = acc.mean(axis=0), acc.std(axis=0, ddof=1) if len(runs) > 1 else 0 * x
            ax.plot(x, m, marker="o", ms=3, color=color, label=METHODS[method].title)
            ax.fill_between(x, m - sd, m + sd, color=color, alpha=0.2)
    last = max(len(r["history"]) for r in results)
    for ax, dataset in zip(axes, datasets):
        ax.set(ylabel="validation accuracy", title=f"{dataset}: mean ± sd over seeds")
        figures.epoch_axis(ax, last)
        ax.grid(True, alpha=0.3)
    figures.legend_beside(axes[-1])
    fig.tight_layout()
    return _save(fig, os.path.join(out, "val_acc.png"))


def _sensitivity(out, tuning):
    fig, axes, datasets, cells = _panels(tuning)
    for ax, dataset, method, color, runs in cells:
        by_lr = {}
        for r in runs:
            acc = 0.0 if r["diverged"] else r["history"][-1]["val_acc"]
            by_lr.setdefault(r["spec"]["hyper"]["lr"], []).append(acc)
        if by_lr:
            lrs = sorted(by_lr)
            mean = [np.mean(by_lr[v]) for v in lrs]
            ax.plot(lrs, mean, marker="o", ms=3, color=color, label=METHODS[method].title)
            ax.fill_between(lrs, [min(by_lr[v]) for v in lrs], [max(by_lr[v]) for v in lrs],
                            color=color, alpha=0.2)
    for ax, dataset in zip(axes, datasets):
        ax.set(xscale="log", xlabel="learning rate",
               ylabel="validation accuracy (held-out split)",
               title=f"{dataset}: learning-rate sensitivity")
        ax.grid(True, alpha=0.3)
    figures.legend_beside(axes[-1])
    fig.tight_layout()
    return _save(fig, os.path.join(out, "lr_sensitivity.png"))


def _profile(out, rows):
    plt = figures.pyplot()
    costs = {}
    for r in rows:
        costs.setdefault(r["method"], {})[r["dataset"]] = r["seconds_to_target"]
    taus = np.logspace(0, 2, 200)
    profile = performance_profile(costs, taus)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = figures.colors(len(profile))
    order = [m for m in METHODS if m in profile]      # the other plots' colours
    for i, (method, rho) in enumerate((m, profile[m]) for m in order):
        ax.step(taus, rho, where="post", color=colors[i], label=METHODS[method].title)
    ax.set(xscale="log", xlabel="tau (cost / the best method's cost)",
           ylabel="share of problems within tau", ylim=(-0.02, 1.02),
           title="Performance profile: seconds to the target accuracy")
    ax.grid(True, alpha=0.3)
    figures.legend_beside(ax)
    fig.tight_layout()
    return _save(fig, os.path.join(out, "performance_profile.png"))
