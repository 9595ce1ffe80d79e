"""swim-pipeline: neural networks without back-propagation, from a laptop to a Dask cluster.

Hidden weights are sampled (SWIM) or random (ELM); the last layer is solved by a distributed
R-only TSQR and a truncated SVD.  See docs/design.md for the architecture, the algorithms and
the data flow.
"""

from pipeline._version import __version__
from pipeline.linalg import LeastSquaresFactor, LeastSquaresSolution, factorize, lstsq
from pipeline.workflows.result import open_result

#: imported on first use: scikit-learn costs ~0.8 s, which a worker that runs PDE members never needs
_LAZY = {"SampledNetworkClassifier": "pipeline.models", "SampledNetworkRegressor": "pipeline.models"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "LeastSquaresFactor",
    "LeastSquaresSolution",
    "SampledNetworkClassifier",
    "SampledNetworkRegressor",
    "__version__",
    "factorize",
    "lstsq",
    "open_result",
]
