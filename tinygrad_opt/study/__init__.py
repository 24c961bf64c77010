"""The optimizer laboratory: many seeds, tuned learning rates, time to a target, on this
machine's cores or a Ray cluster (`tinygrad-opt study`, docs/protocol.md)."""
from .backends import LocalBackend, RayBackend, TrialFailed
from ..optim.methods import parse_assignments
from .run import LR_GRID, run_study
from .trials import deterministic, make_spec, run_trial, trial_id

__all__ = ["run_study", "parse_assignments", "LR_GRID", "LocalBackend", "RayBackend",
           "TrialFailed", "make_spec", "run_trial", "trial_id", "deterministic"]
