"""A NumPy-backed stand-in for CuPy that, like CuPy, refuses implicit conversion to NumPy.

Importing it as ``cupy`` (the tests put this folder first on ``sys.path``) sends every
``device="gpu"`` branch of the package through a foreign array type on a machine without a
GPU: arrays live in :class:`ndarray`, NumPy functions and ufuncs dispatch to it through
``__array_function__`` / ``__array_ufunc__`` (as they do for CuPy arrays), results stay on the
"device", and ``numpy.asarray(x)`` raises as CuPy's does — only ``x.get()`` (or
``cupy.asnumpy``) brings data back to the host.
"""

from __future__ import annotations

import types

import numpy as _np

__all__ = ["asnumpy", "cuda", "linalg", "ndarray"]


_HOST_CONVERSIONS = {_np.asarray, _np.array, _np.asanyarray, _np.ascontiguousarray, _np.asfortranarray,
                     _np.asarray_chkfinite}


def _unwrap(value):
    if isinstance(value, ndarray):
        return value._data
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _wrap(value):
    if isinstance(value, _np.ndarray):
        return ndarray(value)
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class ndarray:  # noqa: N801 - CuPy's name
    __module__ = "cupy"

    def __init__(self, data):
        self._data = data

    # -- what CuPy refuses, and the explicit way back ---------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
                        "NumPy array explicitly.")

    def get(self):
        return self._data.copy()

    # -- NumPy protocols: computations stay on the "device" ----------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.pop("out", None)
        if out is not None:
            kwargs["out"] = tuple(_unwrap(o) for o in out)
        result = getattr(ufunc, method)(*_unwrap(inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        if func in _HOST_CONVERSIONS:  # numpy.asarray(x) and friends: refused, as CuPy does
            self.__array__()
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    # -- the array API the package uses ------------------------------------------------------
    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)
    T = property(lambda self: ndarray(self._data.T))
    flags = property(lambda self: self._data.flags)
    nbytes = property(lambda self: self._data.nbytes)

    def __len__(self):
        return len(self._data)

    def __getitem__(self, key):
        return _wrap(self._data[_unwrap(key)])

    def __setitem__(self, key, value):
        self._data[_unwrap(key)] = _unwrap(value)

    def __bool__(self):
        return bool(self._data)

    def __float__(self):
        return float(self._data)

    def __int__(self):
        return int(self._data)

    def __repr__(self):
        return f"cupy-stand-in({self._data!r})"

    def __getattr__(self, name):  # methods: reshape, astype, sum, all, copy, …
        if name.startswith("__"):  # no __array_interface__ / __array_struct__: no host view
            raise AttributeError(name)
        attr = getattr(self._data, name)
        if callable(attr):
            return lambda *a, **k: _wrap(attr(*_unwrap(a), **_unwrap(k)))
        return _wrap(attr)


def _operator(name):
    def method(self, *others):
        return _wrap(getattr(self._data, name)(*_unwrap(others)))
    return method


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__",
              "__matmul__", "__rmatmul__", "__pow__", "__neg__", "__abs__", "__lt__", "__le__", "__gt__", "__ge__",
              "__eq__", "__ne__", "__iadd__", "__isub__", "__imul__", "__itruediv__", "__and__", "__or__",
              "__invert__", "__floordiv__", "__mod__"):
    setattr(ndarray, _name, _operator(_name))
ndarray.__hash__ = None


def asarray(value, dtype=None, order=None):
    if isinstance(value, ndarray):
        return ndarray(_np.asarray(value._data, dtype=dtype, order=order))
    return ndarray(_np.asarray(value, dtype=dtype, order=order))


array = asarray


def asnumpy(value):
    return value.get() if isinstance(value, ndarray) else _np.asarray(value)


def _function(name):
    target = getattr(_np, name)
    if not callable(target):
        return target
    return lambda *a, **k: _wrap(target(*_unwrap(a), **_unwrap(k)))


def __getattr__(name):  # every other NumPy function, returning device arrays
    return _function(name)


linalg = types.SimpleNamespace(**{name: (lambda f: (lambda *a, **k: _wrap(f(*_unwrap(a), **_unwrap(k)))))(
    getattr(_np.linalg, name)) for name in ("qr", "svd", "norm", "solve", "lstsq", "eigh", "cholesky", "inv")})


class _Runtime:
    @staticmethod
    def getDeviceCount():  # noqa: N802 - CuPy's name
        return 1


cuda = types.SimpleNamespace(runtime=_Runtime())
