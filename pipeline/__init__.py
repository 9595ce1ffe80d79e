"""swim-pipeline: neural networks without back-propagation, from a laptop to a Dask cluster.

Hidden weights are sampled (SWIM) or random (ELM); the last layer is solved by a distributed
R-only TSQR and a truncated SVD.  See DESIGN.md for the algorithms and the data flow.
"""

from importlib.metadata import PackageNotFoundError, version

from pipeline.linalg import LeastSquaresFactor, LeastSquaresSolution, factorize, lstsq
from pipeline.models import SampledNetworkClassifier, SampledNetworkRegressor
from pipeline.store import open_result

try:
    __version__ = version("swim-pipeline")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

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
