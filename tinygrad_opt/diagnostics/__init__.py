"""Why an optimizer behaves as it does: curvature (Hessian-vector products, the
sharpness, the trace, the spectral density), the preconditioned sharpness of adaptive
rules and the edge of stability, the gradient noise scale, loss landscapes, the
learning-rate range test and schedule previews. Each works on any model of the package,
through a loss closure `loss_fn()` and the list of parameters it depends on.

    from tinygrad_opt import diagnostics
    top = diagnostics.hessian_eigenvalues(lambda: loss(model(x), y), model.parameters())

docs/diagnostics.md shows each with its cost."""
from .adaptive import preconditioned_sharpness, preconditioner, sharpness_threshold
from .hessian import hessian_eigenvalues, hessian_spectrum, hessian_trace, hvp
from .landscape import (Evaluator, filter_normalized_direction, interpolation, landscape,
                        plot_1d, plot_2d, surface_1d, surface_2d, trajectory_directions)
from .lr_range import lr_range_test, plot_lr_range, plot_schedule, schedule_lrs
from .monitor import CurvatureMonitor, plot_records
from .noise import gradient_noise_scale, noise_scale_of

__all__ = ["hvp", "hessian_eigenvalues", "hessian_trace", "hessian_spectrum",
           "preconditioned_sharpness", "preconditioner", "sharpness_threshold",
           "gradient_noise_scale",
           "noise_scale_of", "CurvatureMonitor", "plot_records", "landscape", "Evaluator",
           "filter_normalized_direction", "surface_1d", "surface_2d", "interpolation",
           "trajectory_directions", "plot_1d", "plot_2d", "lr_range_test", "plot_lr_range",
           "schedule_lrs", "plot_schedule"]
