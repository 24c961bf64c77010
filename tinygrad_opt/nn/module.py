"""Module: the container of parameters, with PyTorch's verbs."""
import numpy as np

from ..store import CheckpointError, load_checkpoint, save_checkpoint
from ..tensor import Tensor


class Module:
    """Base class of layers and models.

    Parameters are the `Tensor` attributes with requires_grad=True, sub-modules the
    `Module` attributes, buffers (non-trained state such as a Dropout counter) the numpy
    arrays registered with `register_buffer`; all in definition order.
    """

    training = True

    def forward(self, *args):
        raise NotImplementedError

    def __call__(self, *args):
        return self.forward(*args)

    # --- structure ------------------------------------------------------------------
    def children(self):
        """(name, module) pairs of the direct sub-modules, those held in a list, tuple or
        dict attribute included (named `attr.0`, `attr.key`)."""
        return [(k, v) for k, v in _members(self) if isinstance(v, Module)]

    def modules(self):
        """This module and every module below it, depth first."""
        yield self
        for _, child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix=""):
        """(dotted name, Tensor) pairs of every parameter below, in definition order:
        the attributes that are Tensors with requires_grad=True, also inside a list,
        tuple or dict attribute."""
        for k, v in _members(self):
            if isinstance(v, Tensor) and v.requires_grad:
                yield prefix + k, v
        for name, child in self.children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def register_buffer(self, name, array):
        self.__dict__.setdefault("_buffer_names", [])
        if name not in self._buffer_names:
            self._buffer_names.append(name)
        setattr(self, name, array)

    def named_buffers(self, prefix=""):
        for k in self.__dict__.get("_buffer_names", []):
            yield prefix + k, getattr(self, k)
        for name, child in self.children():
            yield from child.named_buffers(f"{prefix}{name}.")

    # --- modes and gradients ---------------------------------------------------------
    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (set_to_none=False: fill it with zeros)."""
        for p in self.parameters():
            p.grad = None if set_to_none or p.grad is None else np.zeros_like(p.data)

    def to(self, dtype):
        """Cast every parameter (in place) to float32 or float64; returns self."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        return self

    def reseed(self, seed):
        """Re-seed every random layer below (Dropout): the same seed, the same masks."""
        for i, m in enumerate(self.modules()):
            if hasattr(m, "_reseed"):
                m._reseed(seed + i)
        return self

    # --- saving ---------------------------------------------------------------------
    def state_dict(self):
        """Copies of every parameter and buffer, as numpy arrays keyed by dotted name."""
        state = {k: p.data.copy() for k, p in self.named_parameters()}
        state.update({k: np.array(b, copy=True) for k, b in self.named_buffers()})
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters and buffers of the same names. Everything is
        checked before anything is copied: a failed load changes nothing.

        Args:
            strict: True (the default) refuses a missing or an unexpected key; False
                loads the keys both sides have and reports the others.
        Returns:
            (missing keys, unexpected keys), as PyTorch's does.
        Raises:
            KeyError: with strict, a parameter or buffer is missing from `state`, or
                `state` has a key this module does not know.
            ValueError: an array has another shape than its parameter or buffer, or
                holds something other than numbers.
        """
        own = dict(self.named_parameters())
        buffers = dict(self.named_buffers())
        missing = [k for k in list(own) + list(buffers) if k not in state]
        unexpected = [k for k in state if k not in own and k not in buffers]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys "
                           f"{unexpected}")
        own = {k: p for k, p in own.items() if k in state}
        buffers = {k: b for k, b in buffers.items() if k in state}
        values = {}
        for k, target in [(k, p.data) for k, p in own.items()] + list(buffers.items()):
            value = np.asarray(state[k])
            if value.shape != np.shape(target):
                raise ValueError(f"load_state_dict: {k} has shape {np.shape(target)} here, "
                                 f"got {value.shape}")
            if value.dtype.kind not in "biuf" or (
                    k in buffers and not np.can_cast(value.dtype, target.dtype, "same_kind")):
                raise ValueError(f"load_state_dict: {k} is of dtype {value.dtype}, which "
                                 f"does not fit {np.asarray(target).dtype}")
            values[k] = value
        for k, p in own.items():
            p.data[...] = values[k]
        for k, b in buffers.items():
            np.copyto(b, values[k], casting="same_kind")
        return missing, unexpected

    def save(self, path):
        """Write the parameters and buffers to `path`: an .npz file of arrays and a JSON
        record (`store/checkpoint.py`), written atomically; no pickle, so loading it
        can never run code."""
        save_checkpoint(path, {"module": type(self).__name__, "state": self.state_dict()})

    def load(self, path, strict=True):
        """Read what `save` wrote into this module (see `load_state_dict`).

        Raises:
            CheckpointError: naming the file: unreadable, not a saved module, or of
                other keys or shapes than this module's. Nothing is changed then.
        """
        saved = load_checkpoint(path)
        if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict):
            raise CheckpointError(f"{path}: not a module saved by Module.save")
        try:
            return self.load_state_dict(saved["state"], strict=strict)
        except (KeyError, ValueError) as e:
            message = e.args[0] if isinstance(e, KeyError) and e.args else e
            raise CheckpointError(f"{path}: does not fit this {type(self).__name__} "
                                  f"({message})") from None

    def __repr__(self):
        lines = [f"  ({name}): {child!r}".replace("\n", "\n  ") for name, child in self.children()]
        inner = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({inner})"
        return f"{type(self).__name__}({inner}\n" + "\n".join(lines) + "\n)"

    def extra_repr(self):
        return ""


def _members(module):
    """(name, value) of a module's attributes, with the items of list, tuple and dict
    attributes as `attr.i` / `attr.key`: where parameters and sub-modules are found."""
    for k, v in vars(module).items():
        if isinstance(v, (list, tuple)):
            yield from ((f"{k}.{i}", item) for i, item in enumerate(v))
        elif isinstance(v, dict):
            yield from ((f"{k}.{key}", item) for key, item in v.items())
        else:
            yield k, v


class ModuleList(Module):
    """Modules in a list, registered as sub-modules 0, 1, 2, ... (PyTorch's ModuleList):
    append, extend, index and iterate over it; calling it is an error (it has no order of
    its own to apply them in: use Sequential for that)."""

    def __init__(self, modules=()):
        self.items = []
        self.extend(modules)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList holds Modules, got {type(module).__name__}")
        self.items.append(module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def children(self):
        return [(str(i), m) for i, m in enumerate(self.items)]

    def named_parameters(self, prefix=""):
        for name, child in self.children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def __getitem__(self, i):
        return self.items[i]

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)


class Sequential(Module):
    """Layers applied one after the other; their names are 0, 1, 2, ..."""

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential takes Modules, got {type(layer).__name__} "
                                f"at position {i}")
            setattr(self, str(i), layer)

    def __iter__(self):
        return iter(m for _, m in self.children())

    def __getitem__(self, i):
        return list(self)[i]

    def __len__(self):
        return len(self.children())

    def forward(self, x):
        for layer in self:
            x = layer(x)
        return x
