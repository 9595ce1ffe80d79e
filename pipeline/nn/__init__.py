"""Sampled networks: activations, samplers, layers, parallel sampling and chunked assembly."""

from pipeline.nn.activations import ACTIVATIONS, Activation, Logistic, ReLU, Sin, Tanh, get_activation
from pipeline.nn.assembly import as_row_chunked, derivative_feature_matrix, feature_matrix
from pipeline.nn.network import DenseLayer, SampledNetwork
from pipeline.nn.samplers import SAMPLERS, ELMSampler, SWIMSampler, get_sampler, swim_parameters
from pipeline.nn.sampling import draw_pool_indices, sample_layer, sample_network
from pipeline.nn.seeding import child_seed, root_seed

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "DenseLayer",
    "ELMSampler",
    "Logistic",
    "ReLU",
    "SAMPLERS",
    "SWIMSampler",
    "SampledNetwork",
    "Sin",
    "Tanh",
    "as_row_chunked",
    "child_seed",
    "derivative_feature_matrix",
    "draw_pool_indices",
    "feature_matrix",
    "get_activation",
    "get_sampler",
    "root_seed",
    "sample_layer",
    "sample_network",
    "swim_parameters",
]
