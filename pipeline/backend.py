"""Array namespaces (NumPy or CuPy), device moves and the dtype policy.

The namespace is chosen once per run from the configuration (``device="cpu"|"gpu"``) and then
flows through the code with the arrays themselves: every kernel asks :func:`namespace_of` for
the module of its input instead of importing CuPy.  CuPy is imported lazily, only when a GPU is
requested or a CuPy array is met, so everything works without it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np

#: Assembly and factorisation run in float64: the truncation cut-offs the method needs
#: (rcond 1e-10 and below) are out of reach in float32.
COMPUTE_DTYPE = np.float64

DEVICES = ("cpu", "gpu")


def _cupy() -> ModuleType:
    try:
        return importlib.import_module("cupy")
    except ImportError as err:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "device='gpu' needs CuPy: install the extra with `pip install swim-pipeline[gpu]` "
            "on a machine with a CUDA GPU, or use device='cpu'."
        ) from err


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        cp = importlib.import_module("cupy")
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any failure (no module, no driver) means "no GPU"
        return False


def is_cupy(array) -> bool:
    return type(array).__module__.split(".")[0] == "cupy"


def namespace_of(array) -> ModuleType:
    """The array module (``numpy`` or ``cupy``) that owns ``array``."""
    return _cupy() if is_cupy(array) else np


def namespace_for(device: str) -> ModuleType:
    """The array module for a device name."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    return _cupy() if device == "gpu" else np


def to_device(array, device: str):
    """Move a host array to ``device`` (a no-op for ``"cpu"`` or an array already there)."""
    xp = namespace_for(device)
    if xp is np:
        return to_host(array)
    return xp.asarray(array)


def to_host(array) -> np.ndarray:
    """A NumPy copy (or view) of ``array``, wherever it lives."""
    if is_cupy(array):
        return array.get()
    return np.asarray(array)
