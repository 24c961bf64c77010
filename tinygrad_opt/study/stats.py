"""The statistics a study reports, written out (no SciPy):

- mean and sample standard deviation (ddof 1) over seeds;
- the 95% interval of a mean, mean ± t(0.975, n-1)·sd/sqrt(n), with Student's t quantile
  computed here from its density (Simpson's rule and bisection);
- whether two methods' means are separated: Welch's statistic |m1 - m2| / sqrt(s1²/n1 +
  s2²/n2) above the t quantile of Welch–Satterthwaite's degrees of freedom (a two-sided
  test at 5%); with one seed a side nothing is separated;
- the Dolan–Moré performance profile: for each method s and problem p, the ratio of its
  cost to the best method's on p; rho_s(tau) = the share of problems where that ratio is
  at most tau (a method that never reaches the target has ratio inf).
"""
import math


def mean_sd(values):
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    m = sum(values) / n
    if n == 1:
        return m, float("nan")
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))


def _t_density(x, df):
    return math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)
                    - 0.5 * math.log(df * math.pi) - (df + 1) / 2 * math.log1p(x * x / df))


def t_cdf(x, df):
    """P(T <= x) for Student's t with df degrees of freedom (x >= 0 by symmetry)."""
    if x < 0:
        return 1 - t_cdf(-x, df)
    steps = 2000                        # Simpson's rule on [0, x]: even number of steps
    h = x / steps
    total = _t_density(0, df) + _t_density(x, df)
    for i in range(1, steps):
        total += (4 if i % 2 else 2) * _t_density(i * h, df)
    return 0.5 + total * h / 3


def t_quantile(p, df):
    """The p quantile (p > 0.5) of Student's t, by bisection of t_cdf."""
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def interval95(values):
    """(low, high) of the 95% interval of the mean; (nan, nan) below two values."""
    m, sd = mean_sd(values)
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
    return m - half, m + half


def separated(a, b):
    """Whether Welch's test at 5% (two-sided) tells the means of a and b apart."""
    if len(a) < 2 or len(b) < 2:
        return False
    (ma, sa), (mb, sb) = mean_sd(a), mean_sd(b)
    va, vb = sa * sa / len(a), sb * sb / len(b)
    if va + vb == 0:
        return ma != mb
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    return abs(ma - mb) / math.sqrt(va + vb) > t_quantile(0.975, df)


def performance_profile(costs, taus):
    """costs: {method: {problem: cost}} (inf: target missed). Returns {method: [rho(tau)
    for tau in taus]}."""
    problems = sorted({p for c in costs.values() for p in c})
    best = {p: min(c.get(p, math.inf) for c in costs.values()) for p in problems}
    out = {}
    for method, c in costs.items():
        ratios = [c.get(p, math.inf) / best[p] if math.isfinite(best[p]) else math.inf
                  for p in problems]
        out[method] = [sum(r <= tau for r in ratios) / len(problems) for tau in taus]
    return out
