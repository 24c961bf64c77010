"""The suite's report: report.md (what was run, a table per problem, the scores across
problems, where rankings flip, the figures), table.csv and summary.json."""
import json
import math
import os

import numpy as np

from .. import figures
from ..optim import METHODS
from ..store.files import atomic_write_text
from ..train.report import write_csv
from . import trials
from .report import provenance, where_from, worker_minutes
from .run import grid_of
from .stats import interval95, mean_sd, performance_profile, separated

TAUS = np.linspace(1, 4, 301)          # AlgoPerf integrates the profile over tau in [1, 4]


def to_target(result, problem):
    """(updates, train seconds) until the first evaluation that reaches the problem's
    target; (inf, inf) if none does."""
    return trials.to_target(result, lambda h: problem.reached(h["value"]))


def _oriented(runs, problem):
    """The final metric of each run that did not diverge, higher is better."""
    sign = 1 if problem.higher_is_better else -1
    return [sign * r["history"][-1]["value"] for r in runs if not r["diverged"] and r["history"]]


def better(a, b, problem):
    """Whether rule runs `a` beat rule runs `b` on this problem beyond the seeds' noise:
    Welch's test at 5% on the final metric (none of either diverged), or every run of
    b diverged and none of a."""
    fa, fb = _oriented(a, problem), _oriented(b, problem)
    if len(fa) < len(a):
        return False
    if not fb:
        return len(fa) >= 2
    return len(fb) == len(b) and separated(fa, fb) and np.mean(fa) > np.mean(fb)


def rows_for(problem_name, problem, runs_by_rule):
    rows = []
    for rule, runs in runs_by_rule.items():
        finals = [r["history"][-1]["value"] for r in runs if not r["diverged"] and r["history"]]
        m, sd = mean_sd(finals)
        lo, hi = interval95(finals)
        steps, secs = zip(*[to_target(r, problem) for r in runs])
        rows.append(dict(problem=problem_name, method=rule, title=METHODS[rule].title,
                         runs=len(runs), diverged=sum(r["diverged"] for r in runs),
                         final_mean=m, final_sd=sd, ci_low=lo, ci_high=hi,
                         reached=sum(math.isfinite(s) for s in steps),
                         steps_to_target=float(np.median(steps)),
                         seconds_to_target=float(np.median(secs)),
                         hyper=json.dumps(runs[0]["spec"]["hyper"], sort_keys=True)))
    return rows


def scores(rows, key):
    """AlgoPerf's score of each rule: its performance profile over the problems on
    `key` (a cost; inf where the target was missed), integrated over tau in [1, 4] and
    divided by 3, so that 1 is the best on every problem and 0 never within 4x of it."""
    costs = {}
    for r in rows:
        costs.setdefault(r["method"], {})[r["problem"]] = r[key]
    profile = performance_profile(costs, TAUS)
    return {m: float(np.trapezoid(rho, TAUS) / (TAUS[-1] - TAUS[0])) for m, rho in
            profile.items()}, profile


def flips(by_problem, problems):
    """The pairs of rules that the seeds separate on one problem and reverse on another."""
    rules = sorted({rule for runs in by_problem.values() for rule in runs},
                   key=list(METHODS).index)
    out = []
    for i, a in enumerate(rules):
        for b in rules[i + 1:]:
            a_wins, b_wins = [], []
            for name, runs in by_problem.items():
                if a in runs and b in runs:
                    if better(runs[a], runs[b], problems[name]):
                        a_wins.append(name)
                    elif better(runs[b], runs[a], problems[name]):
                        b_wins.append(name)
            if a_wins and b_wins:
                out.append(dict(a=a, b=b, a_better_on=a_wins, b_better_on=b_wins))
    return out


def _fmt(value, digits=4):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return f"{value:.{digits}g}" if abs(value) >= 1000 else f"{value:.{digits}f}"


def _count(value):
    return "∞" if math.isinf(value) else f"{value:,.0f}"


def write(out, config, tuning, final, seconds):
    """Write the report; returns the summary (rows, scores, flips, plots)."""
    from ..problems import get_problem
    problems = {name: get_problem(name) for name in config["problems"]}
    if config["quick"]:
        problems = {n: p.quick_variant() for n, p in problems.items()}
    by_problem = {}
    for r in final:
        s = r["spec"]
        by_problem.setdefault(s["problem"], {}).setdefault(s["method"], []).append(r)
    order = {name: i for i, name in enumerate(config["problems"])}
    by_problem = dict(sorted(by_problem.items(), key=lambda kv: order[kv[0]]))
    rows = []
    for name, runs in by_problem.items():
        ordered = dict(sorted(runs.items(), key=lambda kv: list(METHODS).index(kv[0])))
        rows += rows_for(name, problems[name], ordered)
    step_scores, step_profile = scores(rows, "steps_to_target")
    second_scores, _ = scores(rows, "seconds_to_target")
    flipped = flips(by_problem, problems)
    plots = [_curves(out, by_problem, problems)]
    if len(by_problem) > 1:                       # over one problem a profile says nothing
        plots.append(_profile(out, step_profile))
    text = _markdown(config, problems, rows, step_scores, second_scores, flipped, tuning,
                     final, seconds, plots)
    write_csv(os.path.join(out, "table.csv"), rows)
    summary = dict(rows=rows, scores_steps=step_scores, scores_seconds=second_scores,
                   flips=flipped, plots=plots, trials=len(tuning) + len(final),
                   seconds=seconds)
    atomic_write_text(os.path.join(out, "summary.json"),
                      json.dumps(summary, indent=1, default=str))
    atomic_write_text(os.path.join(out, "report.md"), text)
    return summary


def _markdown(config, problems, rows, step_scores, second_scores, flipped, tuning, final,
              seconds, plots):
    c, runs = config, list(tuning) + list(final)
    lines = [f"# Suite: protocol {c['protocol']}{' (quick budgets)' if c['quick'] else ''}",
             "",
             f"Rules: {', '.join(c['methods'])}. {len(final)} final runs"
             + (f" after {len(tuning)} tuning runs" if tuning else "")
             + f"; backend {c['backend']} ({c['workers']} worker(s) x {c['threads']} "
             f"thread(s)); {seconds / 60:.1f} min this run; the runs' own times add up "
             f"to {worker_minutes(runs):.1f} worker-minutes. "
             f"{where_from(provenance(runs))}".rstrip(),
             "",
             "## What was run", "",
             "| problem | model and data | batch | budget | metric | target | runs | tuning "
             "runs (CPU s) |", "|---|---|---|---|---|---|---|---|"]
    for name, p in problems.items():
        runs = [r for r in final if r["spec"]["problem"] == name]
        tuned = [r for r in tuning if r["spec"]["problem"] == name]
        steps = max((sum(h["updates"] for h in r["history"]) for r in runs), default=0)
        epochs = runs[0]["spec"]["epochs"] if runs else p.epochs   # --epochs may change it
        direction = "higher" if p.higher_is_better else "lower"
        lines.append(f"| {name} | {p.size} | {p.batch_size} | {epochs} epochs "
                     f"({steps:,} steps) | {p.metric} ({direction} is better) | "
                     f"{_fmt(p.target)} | {len(runs)} | {len(tuned)} "
                     f"({sum(r['seconds'] for r in tuned):.0f}) |")
    for name, p in problems.items():
        lines += ["", f"## {p.title} (`{name}`)", "",
                  f"Final validation {p.metric} over the seeds (mean ± sd, the mean's 95% "
                  f"interval); steps and training seconds to the target {_fmt(p.target)} "
                  f"(median over the seeds, ∞ when half or more missed it; the metric is measured "
                  f"after every epoch, so steps count whole epochs).", "",
                  "| rule | setting | final | 95% interval | reached | steps to target | "
                  "seconds to target | diverged |", "|---|---|---|---|---|---|---|---|"]
        for r in (r for r in rows if r["problem"] == name):
            final_cell = _fmt(r["final_mean"]) + ("" if math.isnan(r["final_sd"]) else
                                                  f" ± {_fmt(r['final_sd'])}")
            lr = json.loads(r["hyper"]).get("lr")
            grid = grid_of(c["lr_grid"], r["method"])
            edge = (" (at the grid's edge: widen --lr-grid)"
                    if c["protocol"] == "tuned" and len(grid) > 1
                    and lr in (min(grid), max(grid)) else "")
            lines.append(f"| {r['title']} | `{r['hyper']}`{edge} | {final_cell} | "
                         f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] | "
                         f"{r['reached']}/{r['runs']} | {_count(r['steps_to_target'])} | "
                         f"{_fmt(r['seconds_to_target'], 2)} | {r['diverged']} |")
    if len(problems) < 2:
        lines += ["", "## Across problems", "", "One problem: a performance profile and "
                  "AlgoPerf's score need several."]
    else:
        lines += _across(problems, rows, step_scores, second_scores, flipped)
    lines += ["", "## Figures", ""] + [f"![{os.path.basename(p)}]({os.path.basename(p)})"
                                       for p in plots]
    return "\n".join(lines) + "\n"


def _across(problems, rows, step_scores, second_scores, flipped):
    lines = []
    lines += ["", "## Across problems", "",
              "AlgoPerf's score (Dahl et al. 2023): the share of problems on which a rule "
              "reaches the target within tau times the best rule's cost, integrated over "
              "tau from 1 to 4 and divided by 3 (1: the fastest everywhere; 0: never within "
              "4x of the fastest). On steps (the same on any machine) and on training "
              "seconds (this machine, this run).", "",
              "| rule | score (steps) | score (seconds) | problems reached |", "|---|---|---|---|"]
    for rule in sorted(step_scores, key=lambda m: -step_scores[m]):
        reached = sum(r["reached"] * 2 > r["runs"] for r in rows if r["method"] == rule)
        lines.append(f"| {METHODS[rule].title} | {step_scores[rule]:.3f} | "
                     f"{second_scores[rule]:.3f} | {reached}/{len(problems)} |")
    lines += ["", "### Where rankings flip", "",
              "Pairs of rules that Welch's test (5%, on the final metric over the seeds) "
              "separates on one problem and separates the other way on another:", ""]
    if flipped:
        lines += ["| rules | the first better on | the second better on |", "|---|---|---|"]
        lines += [f"| {METHODS[f['a']].title} vs {METHODS[f['b']].title} | "
                  f"{', '.join(f['a_better_on'])} | {', '.join(f['b_better_on'])} |"
                  for f in flipped]
    else:
        lines.append("None: no pair is separated both ways.")
    return lines


def _curves(out, by_problem, problems):
    """One panel per problem: each rule's validation metric after every epoch, the
    median over the seeds and the band from the lowest to the highest."""
    plt = figures.pyplot()
    n = len(by_problem)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    rules = [m for m in METHODS if any(m in runs for runs in by_problem.values())]
    colors = dict(zip(rules, figures.colors(len(rules))))
    lines = {}                                  # a rule's line, for the legend
    for ax, (name, runs_by_rule) in zip(axes.flat, by_problem.items()):
        p = problems[name]
        last, diverged = 1, []
        for rule in (m for m in rules if m in runs_by_rule):     # the legend's order
            runs = [r for r in runs_by_rule[rule] if not r["diverged"]]
            if not runs:             # a diverged run's last values would set the scale
                diverged.append(METHODS[rule].title)
                continue
            length = min(len(r["history"]) for r in runs)
            if length == 0:
                continue
            values = np.array([[h["value"] for h in r["history"][:length]] for r in runs])
            epochs = np.arange(1, length + 1)
            lines[rule], = ax.plot(epochs, np.median(values, axis=0), color=colors[rule],
                                   label=METHODS[rule].title,
                                   marker="o" if length == 1 else None)
            ax.fill_between(epochs, values.min(axis=0), values.max(axis=0),
                            color=colors[rule], alpha=0.15, lw=0)
            last = max(last, length)
        ax.axhline(p.target, color="black", ls=":", lw=1)
        if p.metric != "accuracy" and all(v > 0 for runs in runs_by_rule.values()
                                          for r in runs if not r["diverged"]
                                          for v in [h["value"] for h in r["history"]]):
            ax.set_yscale("log")
        if diverged:
            ax.text(0.02, 0.97, "diverged (every seed): " + ", ".join(diverged),
                    transform=ax.transAxes, fontsize=7, va="top")
        ax.set(title=p.title, ylabel=f"validation {p.metric}")
        figures.epoch_axis(ax, last)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    labels = [METHODS[m].title for m in rules if m in lines]
    handles = [lines[m] for m in rules if m in lines]
    if n < len(axes.flat):                      # the legend in the first empty panel
        axes.flat[n].legend(handles, labels, fontsize=9, loc="center")
    else:
        fig.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 0.95))
    fig.suptitle("Validation metric after each epoch (median over seeds, band: min to max; "
                 "dotted: the target)", fontsize=10)
    fig.tight_layout()
    return figures.save(fig, os.path.join(out, "curves.png"))


def _profile(out, profile):
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    order = [m for m in METHODS if m in profile]
    for color, rule in zip(figures.colors(len(order)), order):
        ax.step(TAUS, profile[rule], where="post", color=color, label=METHODS[rule].title)
    ax.set(xlabel="tau (steps to the target / the fastest rule's)",
           ylabel="share of problems within tau", ylim=(-0.02, 1.02), xlim=(1, 4),
           title="Performance profile over the problems: steps to the target")
    ax.grid(True, alpha=0.3)
    figures.legend_beside(ax)
    fig.tight_layout()
    return figures.save(fig, os.path.join(out, "performance_profile.png"))
