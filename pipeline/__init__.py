"""swim-pipeline: neural networks without back-propagation, from a laptop to a Dask cluster.

Hidden weights are sampled (SWIM) or random (ELM); the last layer is solved by a distributed
R-only TSQR and a truncated SVD.  See docs/design.md for the architecture, the algorithms and
the data flow.
"""

from pipeline._version import __version__
from pipeline.linalg import LeastSquaresFactor, LeastSquaresSolution, factorize, lstsq
from pipeline.models import SampledNetworkClassifier, SampledNetworkRegressor
from pipeline.workflows.result import open_result

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
