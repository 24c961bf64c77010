"""Layers and containers: `Module`, `Sequential` and the article's layers."""
from . import functional
from .layers import (AvgPool2D, Conv2D, ConvPoolDropout, Dense, Dropout, Flatten,
                     GlobalAvgPool2D, LeakyReLU, MaxPool2D, ReLU, Sigmoid, Softmax, Tanh)
from .module import Module, ModuleList, Sequential

__all__ = ["Module", "ModuleList", "Sequential", "Conv2D", "MaxPool2D", "AvgPool2D",
           "GlobalAvgPool2D", "Dropout", "Flatten", "Dense",
           "ReLU", "Tanh", "Sigmoid", "LeakyReLU", "Softmax", "ConvPoolDropout", "functional"]
