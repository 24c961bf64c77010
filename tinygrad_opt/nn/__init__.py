"""Layers and containers: `Module`, `Sequential`, `ModuleList`, the article's layers and
the others a model of one's own needs."""
from . import functional, utils
from .layers import (GELU, AvgPool2D, BatchNorm1D, BatchNorm2D, BatchNormReluPool,
                     CausalSelfAttention, Conv2D, ConvPoolDropout, Dense, Dropout, Embedding,
                     Flatten, GlobalAvgPool2D, LayerNorm, LeakyReLU, Linear, MaxPool2D, ReLU,
                     Sigmoid, Softmax, Tanh)
from .module import Module, ModuleList, Sequential

__all__ = ["Module", "ModuleList", "Sequential", "Conv2D", "MaxPool2D", "AvgPool2D",
           "GlobalAvgPool2D", "BatchNorm1D", "BatchNorm2D", "Dropout", "Flatten", "Dense",
           "Linear", "Embedding", "LayerNorm", "GELU", "CausalSelfAttention", "ReLU",
           "Tanh", "Sigmoid", "LeakyReLU", "Softmax", "ConvPoolDropout", "BatchNormReluPool",
           "functional", "utils"]
