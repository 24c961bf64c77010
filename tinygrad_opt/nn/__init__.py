"""Layers and containers: `Module`, `Sequential` and the article's layers."""
from . import functional
from .layers import (Conv2D, ConvPoolDropout, Dense, Dropout, Flatten, LeakyReLU, MaxPool2D,
                     ReLU, Sigmoid, Softmax, Tanh)
from .module import Module, ModuleList, Sequential

__all__ = ["Module", "ModuleList", "Sequential", "Conv2D", "MaxPool2D", "Dropout", "Flatten", "Dense",
           "ReLU", "Tanh", "Sigmoid", "LeakyReLU", "Softmax", "ConvPoolDropout", "functional"]
