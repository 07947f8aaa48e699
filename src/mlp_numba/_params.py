"""A compiled net's params: the arrays the engine reads and writes, whatever the caller holds.

The engine takes a net's params as one packed vector (W1, b1, W2, b2, ... in that order, each
C-ordered). :class:`ParamDict` is the net's ``params``: a mapping whose arrays are views of
that vector from construction on, so an array a caller holds stays the parameter through
``loss``, ``train`` and ``predict``, and an edit in place takes effect at the next call.
Assigning an array copies it into the vector. Pure NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np


def views(vector, shapes):
    """The consecutive views of ``vector`` shaped as ``shapes`` (name -> shape), by name."""
    result, start = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        result[name] = vector[start : start + size].reshape(shape)
        start += size
    return result


def pack(arrays, shapes, dtype):
    """The vector that packs ``arrays[name]`` for each name of ``shapes``, in that order.

    When the arrays are already the views of one such vector (as :func:`pack` leaves them),
    that vector is returned and nothing is copied; otherwise a new vector gets their values,
    and ``arrays`` (a dict) gets its views in their place, so that updating the vector
    updates the arrays.
    """
    sizes = [math.prod(shape) for shape in shapes.values()]
    base = next(iter(arrays.values())).base if arrays else None
    if _is_packing(base, arrays, shapes, sizes, dtype):
        return base
    vector = np.empty(sum(sizes), dtype)
    for name, view in views(vector, shapes).items():
        view[...] = arrays[name]
        arrays[name] = view
    return vector


def _is_packing(base, arrays, shapes, sizes, dtype):
    """Whether ``base`` is a vector whose consecutive views are ``arrays``, as shaped."""
    if not (isinstance(base, np.ndarray) and base.ndim == 1 and base.dtype == dtype):
        return False
    if base.size != sum(sizes) or not base.flags.c_contiguous:
        return False
    address, start = base.__array_interface__["data"][0], 0
    for (name, shape), size in zip(shapes.items(), sizes, strict=True):
        a = arrays.get(name)
        if not (isinstance(a, np.ndarray) and a.base is base and a.shape == shape):
            return False
        if a.__array_interface__["data"][0] != address + start * base.itemsize:
            return False
        if not a.flags.c_contiguous:
            return False
        start += size
    return True


class ParamDict(dict):
    """A net's params by name (``W1``, ``b1``, ...), each a view of one packed vector.

    A ``dict`` (as the course's ``params`` is) whose values are those views: ``params[k] = a``
    (and ``update``) copies ``a``, a NumPy array of the parameter's shape and the net's dtype
    in any memory order, into the view; a parameter cannot be removed. Pickling or
    deep-copying it gives a plain dict of copies.

    Parameters
    ----------
    shapes : dict of str to tuple
        The params' names and shapes, in packing order (``_validation.param_shapes``).
    dtype : numpy.dtype
        The net's dtype.
    """

    def __init__(self, shapes, dtype):
        self._shapes = dict(shapes)
        self.dtype = np.dtype(dtype)
        #: The packed vector the engine reads and writes.
        self.vector = np.zeros(sum(math.prod(s) for s in self._shapes.values()), self.dtype)
        super().__init__(views(self.vector, self._shapes))

    def __setitem__(self, key, value):
        target = self._target(key)
        if value is target:  # ``params[k] -= step`` ends by assigning the view to itself
            return
        self._check(key, value)
        np.copyto(target, value)

    def update(self, *args, **kwargs):
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other):
        self.update(other)
        return self

    def setdefault(self, key, default=None):
        return self._target(key)

    def _refuse(self, *args, **kwargs):
        name = args[0] if args else "a parameter"
        raise TypeError(f"params[{name!r}] cannot be removed: a net keeps every parameter")

    __delitem__ = pop = _refuse

    def popitem(self):
        raise TypeError("params cannot lose a parameter: a net keeps every parameter")

    def clear(self):
        raise TypeError("params cannot be cleared: a net keeps every parameter")

    def __reduce__(self):
        return dict, (dict(self),)

    def __copy__(self):
        return dict(self)

    def __deepcopy__(self, memo):
        return {k: v.copy() for k, v in self.items()}

    def copy(self):
        """A plain dict of these arrays (shallow, as ``dict.copy``)."""
        return dict(self)

    def assign(self, values):
        """Copy every array of the mapping ``values`` into the vector, after checking them
        all: a bad one leaves every parameter as it was."""
        if not isinstance(values, Mapping):
            raise TypeError(f"params must be a dict, got {type(values).__name__}")
        for key in self._shapes:
            if key not in values:
                raise ValueError(f"params is missing {key!r}")
        for key in values:
            self._target(key)
        for key in self._shapes:
            self._check(key, values[key])
        for key in self._shapes:
            if values[key] is not dict.__getitem__(self, key):
                np.copyto(dict.__getitem__(self, key), values[key])

    def _target(self, key):
        if key not in self._shapes:
            raise KeyError(f"params has no {key!r}; this net's params are {list(self._shapes)}")
        return dict.__getitem__(self, key)

    def _check(self, key, value):
        shape = self._shapes[key]
        if not isinstance(value, np.ndarray):
            raise TypeError(f"params[{key!r}] must be a numpy array, got {type(value).__name__}")
        if value.shape != shape:
            raise ValueError(f"params[{key!r}] must have shape {shape}, got {value.shape}")
        if value.dtype != self.dtype:
            raise TypeError(f"params[{key!r}] must be {self.dtype} like the net, got {value.dtype}")
