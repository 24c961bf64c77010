"""exp and erf in float32 that a compiled loop can vectorise.

Numba compiles `np.exp` and `math.erf` to one call of the C library per element (its
vector library, Intel's SVML, is not installed here), and those calls were most of the
time of GELU and of attention's softmax (`make bench`'s transformer rows). These two
are plain arithmetic, so LLVM vectorises the loops that call them. For float32 only: a
float64 kernel keeps the C library's functions.

- `exp32`: Cody and Waite's reduction, exp(x) = 2^n · exp(r), n = round(x / ln 2),
  r = x - n·ln 2 (ln 2 split in two parts, so that r is exact), and Cephes' degree-6
  polynomial for exp(r) on [-ln 2 / 2, ln 2 / 2]. 2^n is built from integer shifts
  (n in [-150, 128] as eight parts of at most 2^23 each) and applied in float64, so
  that results in float32's subnormal range round once, as the C library's do.
  Within 1 ulp of exp over float32's range (tests/test_kernels.py measures it);
  exp(-inf) = 0, exp(+inf) and overflow = inf, NaN stays NaN.
- `erf32`: the rational approximation Eigen and TensorFlow use for float32 erf,
  x·P(x²) / Q(x²) on x clipped to [-4, 4] (beyond which erf is ±1 in float32): within
  8 ulp of erf (about 4.5e-7 absolute; measured by the same test). NaN stays NaN.

The numpy references of the ops that call these use numpy's exp and Python's
math.erf; the kernels agree with them to those errors.
"""
import numpy as np

from ..jit import jit


def _power_of_two(m):
    """2^m as float64 for m in [-20, 42], from an integer shift (exact)."""
    return np.float64(np.int64(1) << (m + 20)) * 9.5367431640625e-07     # 2^-20


power_of_two = jit(_power_of_two, inline=True)


def _exp32(x):
    xc = min(max(x, np.float32(-104.0)), np.float32(88.8))
    n = np.floor(xc * np.float32(1.44269504088896341) + np.float32(0.5))
    r = xc - n * np.float32(0.693359375) - n * np.float32(-2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1.0)
    k = np.int64(n)
    k8 = k >> 3                                     # n = 7·k8 + (n - 7·k8)
    a = power_of_two(k8)
    a2 = a * a
    y = np.float32(np.float64(p) * (a2 * a2 * a2 * a) * power_of_two(k - 7 * k8))
    if x > np.float32(88.72283):
        y = np.float32(np.inf)
    if x != x:
        y = x
    return y


exp32 = jit(_exp32, inline=True)

def _erf32(x):
    z = min(max(x, np.float32(-4.0)), np.float32(4.0))
    z2 = z * z
    p = np.float32(-2.72614225801306e-10)
    p = p * z2 + np.float32(2.77068142495902e-08)
    p = p * z2 + np.float32(-2.10102402082508e-06)
    p = p * z2 + np.float32(-5.69250639462346e-05)
    p = p * z2 + np.float32(-7.34990630326855e-04)
    p = p * z2 + np.float32(-2.95459980854025e-03)
    p = p * z2 + np.float32(-1.60960333262415e-02)
    q = np.float32(-1.45660718464996e-05)
    q = q * z2 + np.float32(-2.13374055278905e-04)
    q = q * z2 + np.float32(-1.68282697438203e-03)
    q = q * z2 + np.float32(-7.37332916720468e-03)
    q = q * z2 + np.float32(-1.42647390514189e-02)
    y = z * p / q
    if x != x:
        y = x
    return y


erf32 = jit(_erf32, inline=True)


def exp32_array(x):
    """exp32 over a float32 array (for tests and for reading)."""
    out = np.empty_like(x)
    _exp32_loop(x.reshape(-1), out.reshape(-1))
    return out


def erf32_array(x):
    out = np.empty_like(x)
    _erf32_loop(x.reshape(-1), out.reshape(-1))
    return out


def _exp32_loops(x, out):
    for i in range(x.size):
        out[i] = exp32(x[i])


def _erf32_loops(x, out):
    for i in range(x.size):
        out[i] = erf32(x[i])


_exp32_loop = jit(_exp32_loops)
_erf32_loop = jit(_erf32_loops)
