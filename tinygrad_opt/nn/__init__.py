"""Layers and containers: `Module`, `Sequential` and the article's layers."""
from . import functional
from .layers import Conv2D, ConvPoolDropout, Dense, Dropout, Flatten, MaxPool2D, ReLU
from .module import Module, ModuleList, Sequential

__all__ = ["Module", "ModuleList", "Sequential", "Conv2D", "MaxPool2D", "Dropout", "Flatten", "Dense",
           "ReLU", "ConvPoolDropout", "functional"]
