"""Optimizers: the base class, one file per update rule, the methods the experiments run,
and learning-rate schedules (lr_scheduler)."""
from . import lr_scheduler
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .lamb import Lamb
from .lbfgs import LBFGS
from .lion import Lion
from .methods import (ARTICLE_METHODS, FULL_BATCH, METHODS, STUDY_METHODS, Method,
                      get_method, parse_assignments)
from .muon import Muon
from .nadam import NAdam
from .optimizer import Optimizer
from .prodigy import Prodigy
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .schedule_free import AdamWScheduleFree, SGDScheduleFree
from .sgd import SGD
from .soap import SOAP

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adafactor", "Adam", "Adamax", "AdamW", "NAdam",
           "RAdam", "Lion", "Muon", "Rprop", "Lamb", "SGDScheduleFree", "AdamWScheduleFree", "Prodigy", "LBFGS", "SOAP",
           "Method", "METHODS", "ARTICLE_METHODS", "STUDY_METHODS",
           "FULL_BATCH", "get_method", "parse_assignments", "lr_scheduler"]
