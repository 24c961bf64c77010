"""The optimizers' shared test cases: an independent pure-Python transcription of every
article rule's formula (plain floats, one element at a time), the cases that run each,
and a helper that steps a rule on one weight."""
import math

import numpy as np

from tinygrad_opt import Tensor
from tinygrad_opt.optim import SGD, Adadelta, Adagrad, Adam, RMSprop


# --- independent transcriptions: plain Python floats, one element at a time -------------
def py_sgd(ws, gs, lr, momentum=0.0, nesterov=False):
    v = [0.0] * len(ws)
    for g in gs:
        for i in range(len(ws)):
            if momentum == 0.0:
                ws[i] = ws[i] - lr * g[i]
            else:
                v[i] = momentum * v[i] - lr * g[i]
                ws[i] = ws[i] + (momentum * v[i] - lr * g[i] if nesterov else v[i])
    return ws


def py_adagrad(ws, gs, lr, initial_accumulator_value, eps):
    a = [initial_accumulator_value] * len(ws)
    for g in gs:
        for i in range(len(ws)):
            a[i] = a[i] + g[i] ** 2
            ws[i] = ws[i] - lr * g[i] / math.sqrt(a[i] + eps)
    return ws


def py_rmsprop(ws, gs, lr, rho, eps):
    v = [0.0] * len(ws)
    for g in gs:
        for i in range(len(ws)):
            v[i] = rho * v[i] + (1 - rho) * g[i] ** 2
            ws[i] = ws[i] - lr * g[i] / math.sqrt(v[i] + eps)
    return ws


def py_adadelta(ws, gs, lr, rho, eps):
    s, u = [0.0] * len(ws), [0.0] * len(ws)
    for g in gs:
        for i in range(len(ws)):
            s[i] = rho * s[i] + (1 - rho) * g[i] ** 2
            d = math.sqrt(u[i] + eps) / math.sqrt(s[i] + eps) * g[i]
            u[i] = rho * u[i] + (1 - rho) * d ** 2
            ws[i] = ws[i] - lr * d
    return ws


def py_adam(ws, gs, lr, beta1, beta2, eps):
    m, v = [0.0] * len(ws), [0.0] * len(ws)
    for t, g in enumerate(gs, start=1):
        for i in range(len(ws)):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] ** 2
            alpha = lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
            ws[i] = ws[i] - alpha * m[i] / (math.sqrt(v[i]) + eps)
    return ws


CASES = [
    ("sgd", SGD, dict(lr=0.1), py_sgd),
    ("momentum", SGD, dict(lr=0.1, momentum=0.9), py_sgd),
    ("nesterov", SGD, dict(lr=0.1, momentum=0.9, nesterov=True), py_sgd),
    ("adagrad", Adagrad, dict(lr=0.1, initial_accumulator_value=0.1, eps=1e-3), py_adagrad),
    ("rmsprop", RMSprop, dict(lr=0.01, rho=0.9, eps=1e-3), py_rmsprop),
    ("adadelta", Adadelta, dict(lr=1.0, rho=0.95, eps=1e-3), py_adadelta),
    ("adam", Adam, dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-3), py_adam),
]


def run_steps(cls, hyper, grads, w=1.0):
    p = Tensor([w], requires_grad=True, dtype=np.float64)
    opt = cls([p], **hyper)
    out = []
    for g in grads:
        p.grad = np.array([g])
        opt.step()
        out.append(p.data[0])
    return out
