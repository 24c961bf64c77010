"""Differentiable ops: `Function` subclasses with numpy forward/backward, each named
`<What>Fn` (`MulFn`, `ReLUFn`, `Conv2DFn`): a layer in `nn` may share the <What>.

Kernels (the Numba-compiled loops of conv, pool, dropout, norm, matmul's dense layer and
the fused blocks) take plain arrays and know no `Tensor`; the ops here wrap them for the
graph, and each runs its numpy reference instead under `tinygrad_opt.reference()`."""
