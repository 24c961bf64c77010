"""The article's results table, beside ours, and the plots."""
import csv
import io

from .. import figures
from ..store.files import atomic_write_text

# The article's Keras results (validation accuracy and loss at epochs 1, 5, 10, total time).
# Its SGD row prints the epoch-5 loss as "1451": read as .1451.
ARTICLE = {
    "Adadelta": dict(acc=(0.4612, 0.7776, 0.8375), loss=(2.2474, 1.6943, 0.9026), time="8:02 min"),
    "Adagrad": dict(acc=(0.8411, 0.9133, 0.9286), loss=(0.7804, 0.3194, 0.2519), time="7:33 min"),
    "Adam": dict(acc=(0.9772, 0.9884, 0.9908), loss=(0.0701, 0.0344, 0.0297), time="7:20 min"),
    "RMSprop": dict(acc=(0.9783, 0.9846, 0.9857), loss=(0.0712, 0.0484, 0.0501), time="10:01 min"),
    "SGD with momentum": dict(acc=(0.9168, 0.9585, 0.9697), loss=(0.2929, 0.1421, 0.1008),
                              time="7:04 min"),
    "SGD": dict(acc=(0.9124, 0.9569, 0.9693), loss=(0.3157, 0.1451, 0.1040), time="6:42 min"),
}
EPOCHS = (1, 5, 10)


def _at(history, epoch, key):
    return history[epoch - 1][key] if len(history) >= epoch else None


def _fmt(v, digits=4):
    return "–" if v is None else f"{v:.{digits}f}"


def _minutes(seconds):
    return f"{int(seconds // 60)}:{int(seconds % 60):02d} min"


def table_rows(runs, with_article=True):
    """One row per method: ours at epochs 1, 5, 10 and the article's where it has one
    (with_article=False for another data set than MNIST: nothing to compare with)."""
    rows = []
    for run in runs:
        h = run["history"]
        art = ARTICLE.get(run["article_row"] or "") if with_article else None
        row = {"method": run["name"], "title": run["title"],
               "article_row": run["article_row"] or ""}
        for i, e in enumerate(EPOCHS):
            row[f"val_acc_{e}"] = _at(h, e, "val_acc")
            row[f"val_loss_{e}"] = _at(h, e, "val_loss")
            row[f"article_val_acc_{e}"] = art["acc"][i] if art else None
            row[f"article_val_loss_{e}"] = art["loss"][i] if art else None
        row["epochs"] = len(h)
        row["val_acc_last"] = h[-1]["val_acc"] if h else None
        row["val_loss_last"] = h[-1]["val_loss"] if h else None
        row["batch_size"] = run.get("batch_size")
        row["preset"] = run.get("preset")
        row["total_seconds"] = sum(r["seconds"] for r in h)
        row["article_time"] = art["time"] if art else ""
        rows.append(row)
    return rows


def write_csv(path, rows):
    """rows (a list of dicts with the same keys) as a CSV file, written atomically; no
    file for no rows."""
    if not rows:
        return
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


ARTICLE_BATCH = 64          # the article's batch size, every row of its table


def _batch(size, samples=None):
    return "full batch" if size is None else f"batch {size:,}"


def write_markdown(path, rows, note="", dataset="MNIST", preset="keras"):
    last = max((r["epochs"] for r in rows), default=0) or 1     # (no epoch finished: dashes)
    shown = [e for e in EPOCHS if e <= last]
    extra = last not in EPOCHS            # fewer (or other) epochs than the article's
    head = ("| Optimizer |" + "".join(f" Epoch {e} val acc | val loss |" for e in shown)
            + (f" Epoch {last} (last run) val acc | val loss |" if extra else "")
            + " Total time |\n|---|" + "---|---|" * (len(shown) + extra) + "---|\n")
    title = ("# The article's MNIST experiment: ours beside the article's\n"
             if dataset == "MNIST" else
             f"# The article's experiment on {dataset} (the article ran MNIST only)\n")
    lines = [title,
             "Each cell: **ours** / article's (Keras). Validation on the 10,000 test images "
             "after each epoch. A dash: not reached (fewer epochs) or not run by the "
             "article.\n", note, "", head.rstrip("\n")]
    for r in rows:
        cells = []
        for e in shown:
            for key in ("val_acc", "val_loss"):
                ours, theirs = r[f"{key}_{e}"], r[f"article_{key}_{e}"]
                cells.append(f"**{_fmt(ours)}** / {_fmt(theirs)}")
        if extra:
            cells += [f"**{_fmt(r['val_acc_last'])}** / –",
                      f"**{_fmt(r['val_loss_last'])}** / –"]
        time_cell = f"**{_minutes(r['total_seconds'])}** / {r['article_time'] or '–'}"
        name = r["title"] + (f" (article: {r['article_row']})" if r["article_row"] and
                             r["article_row"] != r["title"] else "")
        if "batch_size" in r:             # the batch size it really used
            name += f", {_batch(r['batch_size'])}"
            if r["article_row"] and r["batch_size"] != ARTICLE_BATCH:
                name += f" (the article's: {ARTICLE_BATCH})"
        if r.get("preset") and r["preset"] != preset:     # a rule without the run's preset
            name += f", preset {r['preset']}"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {time_cell} |")
    atomic_write_text(path, "\n".join(lines) + "\n")


def plot_curves(path_prefix, runs, with_article=True, dataset="MNIST", what=""):
    """Validation accuracy, validation loss and training loss per epoch, all methods;
    the article's points as crosses when `with_article` (those within the epochs run).
    `what` says what was run (epochs, images), under the title."""
    plt = figures.pyplot()
    written = []
    palette = figures.colors(len(runs))
    last = max([len(r["history"]) for r in runs] + [1])
    for key, label, title, article_key in [
            ("val_acc", "validation accuracy", f"Validation accuracy per epoch ({dataset} test set)",
             "acc" if with_article else None),
            ("val_loss", "validation loss", f"Validation loss per epoch ({dataset} test set)",
             "loss" if with_article else None),
            ("train_loss", "training loss (mean over the epoch)", "Training loss per epoch",
             None)]:
        fig, ax = plt.subplots(figsize=(11, 5.5))
        for run, color in zip(runs, palette):
            h = run["history"]
            if h:
                ax.plot([r["epoch"] for r in h], [r[key] for r in h], marker="o", ms=4,
                        color=color, label=run["title"])
            art = ARTICLE.get(run["article_row"] or "")
            if article_key and art:
                shown = [(e, v) for e, v in zip(EPOCHS, art[article_key]) if e <= last]
                ax.plot([e for e, _ in shown], [v for _, v in shown], linestyle="none",
                        marker="x", ms=8, color=color)
        if article_key and any(ARTICLE.get(r["article_row"] or "") for r in runs):
            shown = [str(e) for e in EPOCHS if e <= last]
            ax.plot([], [], linestyle="none", marker="x", color="black",
                    label=f"article (Keras), epoch{'s' * (len(shown) > 1)} {', '.join(shown)}")
        ax.set_ylabel(label)
        ax.set_title(title + ", article CNN" + (f"\n{what}" if what else ""))
        figures.epoch_axis(ax, last)
        if key != "val_acc":
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        figures.legend_beside(ax)
        fig.tight_layout()
        written.append(figures.save(fig, f"{path_prefix}{key}.png"))
    return written
