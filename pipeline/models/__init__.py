"""Models built on sampled networks."""

from pipeline.models.supervised import SampledNetworkClassifier, SampledNetworkRegressor

__all__ = ["SampledNetworkClassifier", "SampledNetworkRegressor"]
