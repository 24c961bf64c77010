"""What every figure of the package shares: matplotlib without a display, one palette,
integer epoch axes, legends beside the plot, atomic saving."""
from .store.files import atomic_write

# A colour per method (24): matplotlib's ten (tab10), then black and thirteen xkcd
# colours darker than L* 80, each in turn the one farthest from all before it. No two
# are closer than tab10's own closest pair (27.7 in CIE L*a*b*, tests/test_output.py
# computes it), so no two curves look alike.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#0804f9", "#ff08e8", "#040348",
           "#154406", "#0165fc", "#ffb07c", "#ff0789", "#886806", "#8fb67b", "#0add08",
           "#750851", "#0504aa", "#fdb0c0")


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def colors(n):
    """n colours from PALETTE (cycled past its 24)."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def epoch_axis(ax, last):
    """An x axis of whole epochs 1..last, nothing beyond what was run."""
    from matplotlib.ticker import MaxNLocator
    ax.set_xlim(0.5, last + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if last <= 20:
        ax.set_xticks(range(1, last + 1))
    ax.set_xlabel("epoch")


def legend_beside(ax, **kw):
    """The legend to the right of the axes, where it hides no curve."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), **kw)


def save(fig, path, dpi=110):
    """Write the figure as a PNG, atomically, and close it; returns the path."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight"))
    pyplot().close(fig)
    return path
