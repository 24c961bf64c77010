"""Differentiable ops: `Function` subclasses with numpy forward/backward.

Kernels (the Numba-compiled loops of conv, pool, dropout) take plain arrays and know no
`Tensor`; the ops here wrap them for the graph."""
