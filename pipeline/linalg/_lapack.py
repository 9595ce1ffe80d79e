"""LAPACK's triangular–pentagonal QR (``dtpqrt``) callable without holding the GIL.

SciPy's f2py wrapper of ``dtpqrt`` keeps the GIL for the whole factorisation, so two Dask
threads reducing two row blocks ran one after the other (measured: 2 blocks in 2 threads took
2.0x the time of one).  The same Fortran routine is exported by ``scipy.linalg.cython_lapack``
as a C function pointer; called through :mod:`ctypes` (which releases the GIL around foreign
calls) the threads overlap.  If the pointer cannot be obtained, the f2py wrapper is used.
"""

from __future__ import annotations

import ctypes

import numpy as np
from scipy.linalg import lapack

__all__ = ["cython_lapack_function", "tpqrt"]

_INT = ctypes.POINTER(ctypes.c_int)
_DBL = ctypes.POINTER(ctypes.c_double)


def cython_lapack_function(name: str, argtypes: tuple):
    """A ctypes function (GIL released during the call) for a routine of SciPy's LAPACK.

    ``None`` when the pointer cannot be obtained (callers then fall back to f2py wrappers).
    """
    try:
        from scipy.linalg import cython_lapack

        capsule = cython_lapack.__pyx_capi__[name]
        get_name = ctypes.pythonapi.PyCapsule_GetName
        get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        address = get_pointer(capsule, get_name(capsule))
        return ctypes.CFUNCTYPE(None, *argtypes)(address)
    except Exception:  # noqa: BLE001 - any failure means "use the f2py wrapper"
        return None


_DTPQRT = cython_lapack_function("dtpqrt", (_INT, _INT, _INT, _INT, _DBL, _INT, _DBL, _INT, _DBL, _INT, _DBL, _INT))


def _ref(value: int):
    return ctypes.byref(ctypes.c_int(value))


def tpqrt(l: int, nb: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Overwrite the upper triangle of ``a`` (``n × n``) with the R factor of ``[a; b]``.

    ``b`` (``m × n``, upper trapezoidal in its last ``l`` rows) is overwritten with the
    Householder vectors.  Both must be Fortran-ordered float64; ``a`` is returned.
    """
    m, n = b.shape
    if a.shape != (n, n) or not (a.flags.f_contiguous and b.flags.f_contiguous):
        raise ValueError("tpqrt needs Fortran-ordered a (n x n) and b (m x n)")
    if a.dtype != np.float64 or b.dtype != np.float64:
        raise ValueError("tpqrt works on float64")
    if m == 0 or n == 0:
        return a
    nb = max(1, min(nb, n))
    if _DTPQRT is None:
        a, _, _, info = lapack.dtpqrt(l, nb, a, b, overwrite_a=1, overwrite_b=1)
    else:
        t = np.empty((nb, n), order="F")
        work = np.empty(nb * n)
        info_c = ctypes.c_int(0)
        _DTPQRT(
            _ref(m), _ref(n), _ref(l), _ref(nb),
            a.ctypes.data_as(_DBL), _ref(max(1, n)),
            b.ctypes.data_as(_DBL), _ref(max(1, m)),
            t.ctypes.data_as(_DBL), _ref(nb),
            work.ctypes.data_as(_DBL), ctypes.byref(info_c),
        )
        info = info_c.value
    if info != 0:  # pragma: no cover - argument errors are programming errors
        raise RuntimeError(f"LAPACK dtpqrt failed with info={info}")
    return a
