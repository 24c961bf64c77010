"""L-BFGS (Liu & Nocedal 1989, "On the limited memory BFGS method for large scale
optimization"), as PyTorch 2.13's `torch.optim.LBFGS` computes it: a quasi-Newton
direction from the last `history_size` pairs of steps s and gradient changes y, with an
optional strong-Wolfe line search (Nocedal & Wright, algorithms 3.5 and 3.6, with cubic
interpolation, as in minFunc). One `step(closure)` runs up to `max_iter` iterations, the
closure re-evaluating the loss (and the gradients) wherever the rule asks:

    d = -H·g, by the two-loop recursion (Nocedal & Wright, algorithm 7.4):
        q = -g;  for i newest to oldest: a_i = ρ_i·⟨s_i, q⟩,  q ← q - a_i·y_i
        r = γ·q  (γ = ⟨s, y⟩/⟨y, y⟩ of the newest pair);
        for i oldest to newest: b = ρ_i·⟨y_i, r⟩,  r ← r + (a_i - b)·s_i;   d = r
    a pair (s, y) is kept only when ⟨y, s⟩ > 1e-10 (the curvature condition)
    t = min(1, 1/‖g‖₁)·lr at the very first iteration, lr after;
        or, with line_search_fn="strong_wolfe", the step satisfying
        f(w + t·d) <= f(w) + 1e-4·t·⟨g, d⟩  and  |⟨g(w + t·d), d⟩| <= 0.9·|⟨g, d⟩|
    w ← w + t·d

It stops early, as PyTorch does, when max|g| <= tolerance_grad, when ⟨g, d⟩ >
-tolerance_change, when max|t·d| or the change of the loss falls below
tolerance_change, or when the closure has been called max_eval times (default
max_iter·5/4). One parameter group (PyTorch's rule), no weight decay (put it in the
loss). Every vector operation is one numpy call over the parameters concatenated, so
there is no kernel: the reference is the rule (tests/test_conventions.py follows
PyTorch's trajectories with and without the line search).

    opt = LBFGS(model.parameters(), line_search_fn="strong_wolfe")
    def closure():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss
    opt.step(closure)          # the loss before the step, as PyTorch returns it

The Trainer calls `step(closure)` itself for a rule that takes one (`takes_closure`);
`tinygrad-opt mnist --optimizers lbfgs` runs it on the full batch, as the article's
gradient descent row.
"""
import math

import numpy as np

from .hyper import check_whole
from .optimizer import Optimizer


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), within bounds
    (default: between x1 and x2); their middle where the cubic has none."""
    low, high = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            position = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            position = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(position, low), high)
    return (low + high) / 2.0


def strong_wolfe(evaluate, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                 max_ls=25):
    """The step t along d satisfying the strong Wolfe conditions (Nocedal & Wright,
    algorithms 3.5 and 3.6). evaluate(t) -> (loss, flat gradient) at w + t·d. Returns
    the loss and gradient there, t and the number of evaluations."""
    d_norm = np.abs(d).max()
    f_new, g_new = evaluate(t)
    evals, gtd_new = 1, float(np.dot(g_new, d))
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done, ls_iter = False, 0
    while ls_iter < max_ls:                        # bracketing phase
        if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g, done = [t], [f_new], [g_new], True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        low, high = t + 0.01 * (t - t_prev), t * 10
        t_prev, t = t, cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                                         bounds=(low, high))
        f_prev, g_prev, gtd_prev = f_new, g_new, gtd_new
        f_new, g_new = evaluate(t)
        evals, gtd_new = evals + 1, float(np.dot(g_new, d))
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]
    insufficient = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:           # zoom phase
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                              bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:     # too close to an end
            if insufficient or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) \
                    else min(bracket) + eps
                insufficient = False
            else:
                insufficient = True
        else:
            insufficient = False
        f_new, g_new = evaluate(t)
        evals, gtd_new = evals + 1, float(np.dot(g_new, d))
        ls_iter += 1
        if f_new > f + c1 * t * gtd or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new, gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new, gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], evals


def two_loop(g, old_dirs, old_stps, ro, h_diag):
    """d = -H·g from the stored pairs (y: old_dirs, s: old_stps, ρ = 1/⟨y, s⟩)."""
    q, al = -g, [0.0] * len(old_dirs)
    for i in range(len(old_dirs) - 1, -1, -1):
        al[i] = float(np.dot(old_stps[i], q)) * ro[i]
        q = q - al[i] * old_dirs[i]
    r = q * h_diag
    for i in range(len(old_dirs)):
        be_i = float(np.dot(old_dirs[i], r)) * ro[i]
        r = r + (al[i] - be_i) * old_stps[i]
    return r


class LBFGS(Optimizer):
    """L-BFGS: a quasi-Newton direction from the last steps, `step(closure)`."""

    presets = {"torch": dict(lr=1.0, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                             tolerance_change=1e-9, history_size=100, line_search_fn=None)}
    no_preset = {"keras": "Keras 3.15 ships no L-BFGS; preset 'torch' is PyTorch's",
                 "paper": "Liu & Nocedal give no defaults for PyTorch's stopping rules; use "
                          "preset 'torch'"}
    default_preset = "torch"
    takes_closure = True
    MEMORY = ("d", "t", "old_dirs", "old_stps", "ro", "h_diag", "prev_flat_grad",
              "prev_loss", "func_evals", "n_iter")

    def __init__(self, params, lr=None, max_iter=None, max_eval=None, tolerance_grad=None,
                 tolerance_change=None, history_size=None, line_search_fn=None, preset=None,
                 nonfinite="raise", learning_rate=None, **decay):
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, max_iter=max_iter,
                         max_eval=max_eval, tolerance_grad=tolerance_grad,
                         tolerance_change=tolerance_change, history_size=history_size,
                         line_search_fn=line_search_fn, **decay)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS: one parameter group only (as PyTorch's); its "
                             "direction is one vector over every parameter")
        self.memory = dict(func_evals=0, n_iter=0)

    def add_param_group(self, group):
        if getattr(self, "memory", None) is not None:
            raise ValueError("LBFGS: one parameter group only (as PyTorch's)")
        super().add_param_group(group)

    def validate(self, lr, max_iter, max_eval, tolerance_grad, tolerance_change,
                 history_size, line_search_fn, weight_decay=0.0, **rest):
        super().validate(lr=lr, **rest)
        if weight_decay:
            raise ValueError(f"LBFGS: no weight decay (as PyTorch's); add "
                             f"weight_decay·‖w‖²/2 to the loss instead, got {weight_decay}")
        check_whole("LBFGS: max_iter", max_iter)
        check_whole("LBFGS: max_eval", max_eval, none_means="max_iter·5/4")
        check_whole("LBFGS: history_size", history_size)
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got "
                             f"{line_search_fn!r}")
        for key, value in (("tolerance_grad", tolerance_grad),
                           ("tolerance_change", tolerance_change)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0 <= value < math.inf:
                raise ValueError(f"LBFGS: {key} must be a finite number >= 0, got {value!r}")

    def init_state(self, w, h):
        return {}

    # --- the flat vector over every parameter -------------------------------------------
    def _flat_grad(self):
        return np.concatenate([np.zeros(p.data.size, p.data.dtype) if p.grad is None
                               else np.asarray(p.grad, p.data.dtype).reshape(-1)
                               for p in self.params])

    def _add(self, t, d):
        """w ← w + t·d, parameter by parameter."""
        offset = 0
        for p in self.params:
            n = p.data.size
            p.data += (t * d[offset:offset + n]).reshape(p.data.shape)
            offset += n

    def _evaluate(self, closure):
        """The closure's loss and flat gradient; FloatingPointError where either holds
        NaN or inf (the step's later evaluations would carry them into the history)."""
        loss = closure()
        loss = float(loss.item() if hasattr(loss, "item") else loss)
        grad = self._flat_grad()
        if not (math.isfinite(loss) and np.isfinite(grad).all()):
            raise FloatingPointError(f"LBFGS: the closure gave loss {loss} and "
                                     f"{int(np.sum(~np.isfinite(grad)))} NaN or inf gradient "
                                     f"values at step {self.t}")
        return loss, grad

    # --- the step -----------------------------------------------------------------------
    def step(self, closure=None):
        """Up to max_iter iterations; returns the loss at the start, as PyTorch does."""
        if closure is None:
            raise TypeError("LBFGS.step needs a closure that re-evaluates the loss and its "
                            "gradients (zero_grad, forward, backward, return the loss), "
                            "as torch.optim.LBFGS.step(closure)")
        weights, t = [p.data.copy() for p in self.params], self.t
        memory = {k: list(v) if isinstance(v, list) else v for k, v in self.memory.items()}
        try:
            return self._step(closure)
        except FloatingPointError:             # at any evaluation of the step: nothing
            for p, w in zip(self.params, weights):     # of it is kept, the weights and
                p.data[...] = w                        # the memory are as before it
            self.memory, self.t = memory, t
            if self.nonfinite == "raise":
                raise
            self.skipped_steps += 1            # nonfinite="skip"
            return math.nan

    def _step(self, closure):
        h = self._group_hyper()[0]
        lr, max_iter, history = h["lr"], h["max_iter"], h["history_size"]
        max_eval = h["max_eval"] if h["max_eval"] is not None else max_iter * 5 // 4
        tol_grad, tol_change = h["tolerance_grad"], h["tolerance_change"]
        m = self.memory
        self.t += 1
        orig_loss, flat_grad = self._evaluate(closure)
        loss, current_evals = orig_loss, 1
        m["func_evals"] += 1
        if np.abs(flat_grad).max() <= tol_grad:
            return orig_loss
        d, t = m.get("d"), m.get("t")
        old_dirs, old_stps, ro = m.get("old_dirs"), m.get("old_stps"), m.get("ro")
        h_diag, prev_flat_grad = m.get("h_diag"), m.get("prev_flat_grad")
        prev_loss, n_iter = m.get("prev_loss"), 0
        while n_iter < max_iter:
            n_iter += 1
            m["n_iter"] += 1
            if m["n_iter"] == 1:
                d, old_dirs, old_stps, ro, h_diag = -flat_grad, [], [], [], 1.0
            else:
                y, s = flat_grad - prev_flat_grad, d * t
                ys = float(np.dot(y, s))
                if ys > 1e-10:                     # the curvature condition
                    if len(old_dirs) == history:
                        old_dirs.pop(0), old_stps.pop(0), ro.pop(0)
                    old_dirs.append(y), old_stps.append(s), ro.append(1.0 / ys)
                    h_diag = ys / float(np.dot(y, y))
                d = two_loop(flat_grad, old_dirs, old_stps, ro, h_diag)
            prev_flat_grad, prev_loss = flat_grad.copy(), loss
            t = min(1.0, 1.0 / float(np.abs(flat_grad).sum())) * lr if m["n_iter"] == 1 \
                else lr
            gtd = float(np.dot(flat_grad, d))
            if gtd > -tol_change:                  # not a descent direction any more
                break
            ls_evals = 0
            if h["line_search_fn"] == "strong_wolfe":
                start = [p.data.copy() for p in self.params]

                def evaluate(step):
                    self._add(step, d)
                    out = self._evaluate(closure)
                    for p, w in zip(self.params, start):
                        p.data[...] = w
                    return out
                loss, flat_grad, t, ls_evals = strong_wolfe(
                    evaluate, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals)
                self._add(t, d)
                opt_cond = np.abs(flat_grad).max() <= tol_grad
            else:
                self._add(t, d)
                opt_cond = False
                if n_iter != max_iter:
                    loss, flat_grad = self._evaluate(closure)
                    opt_cond, ls_evals = np.abs(flat_grad).max() <= tol_grad, 1
            current_evals += ls_evals
            m["func_evals"] += ls_evals
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if np.abs(d * t).max() <= tol_change or abs(loss - prev_loss) < tol_change:
                break
        m.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, h_diag=h_diag,
                 prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss

    # --- saving -------------------------------------------------------------------------
    def state_dict(self):
        m = dict(self.memory)
        for k in ("old_dirs", "old_stps"):
            if m.get(k) is not None:
                m[k] = [v.copy() for v in m[k]]
        return dict(super().state_dict(), lbfgs=m)

    def load_state_dict(self, state_dict):
        m = state_dict.get("lbfgs")
        n = sum(p.data.size for p in self.params)
        vectors = [m.get(k) for k in ("d", "prev_flat_grad")] if isinstance(m, dict) else []
        pairs = [v for k in ("old_dirs", "old_stps") for v in (m.get(k) or [])] \
            if isinstance(m, dict) else []
        if not isinstance(m, dict) or not set(m) <= set(self.MEMORY) or not all(
                v is None or (isinstance(v, np.ndarray) and v.shape == (n,))
                for v in vectors + pairs):
            raise ValueError(f"LBFGS.load_state_dict: no valid L-BFGS memory for "
                             f"{n} parameters")
        super().load_state_dict(state_dict)
        self.memory = {k: (list(v) if k in ("old_dirs", "old_stps", "ro") and v is not None
                           else v) for k, v in m.items()}
