"""Optimizers: the base class, one file per update rule, and the article's eight methods."""
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam
from .methods import FULL_BATCH, METHODS, Method, get_method
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "Method",
           "METHODS", "FULL_BATCH", "get_method"]
