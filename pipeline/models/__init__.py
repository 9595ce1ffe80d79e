"""Models built on sampled networks."""

__all__ = ["SampledNetworkClassifier", "SampledNetworkRegressor"]


def __getattr__(name):  # scikit-learn on first use: the Hamiltonian and LTI models never need it
    if name in __all__:
        from pipeline.models import supervised

        return getattr(supervised, name)
    raise AttributeError(f"module 'pipeline.models' has no attribute {name!r}")
