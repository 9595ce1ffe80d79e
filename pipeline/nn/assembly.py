"""Chunked assembly: feature and derivative-feature matrices as Dask arrays.

A point set with row chunks becomes a feature matrix with the same row chunks and one column
chunk; each block is built by one task from its block of points, on the device the points
live on (NumPy or CuPy blocks, same code path).  Nothing is assembled until the graph runs,
and consumers such as the TSQR reduce each block as soon as it exists.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from pipeline.backend import COMPUTE_DTYPE, namespace_of
from pipeline.nn.network import SampledNetwork

__all__ = ["as_row_chunked", "derivative_feature_matrix", "feature_matrix"]


def as_row_chunked(x, rows: int | None = None, *, name: str = "X") -> da.Array:
    """``x`` as a 2-D Dask array with row chunks (``rows`` each) and one column chunk."""
    if not isinstance(x, da.Array):
        x = namespace_of(x).asarray(x)  # NumPy or CuPy: the blocks stay on their device
        if x.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_points, n_dims), got shape {x.shape}")
        return da.from_array(x, chunks=(rows or x.shape[0] or 1, -1))
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_points, n_dims), got shape {x.shape}")
    return x.rechunk({0: rows or x.chunks[0], 1: -1})


def _features(x, append, network, intercept):
    """One block ``[Φ(x) | 1 | append]``, Fortran-ordered, with a single allocation."""
    xp = namespace_of(x)
    width = network.width
    n_extra = int(intercept) + (0 if append is None else append.shape[1])
    out = xp.empty((x.shape[0], width + n_extra), dtype=COMPUTE_DTYPE, order="F")
    network(xp.asarray(x, dtype=COMPUTE_DTYPE), out=out[:, :width])
    if intercept:
        out[:, width] = 1.0
    if append is not None:
        out[:, width + int(intercept):] = append
    return out


def feature_matrix(x, network: SampledNetwork, *, intercept: bool = False, append=None) -> da.Array:
    """``[Φ(X) | 1 | append]`` with the row chunks of ``X``.

    ``intercept`` adds a column of ones; ``append`` (an array with the rows of ``X``, e.g.
    the right-hand sides of a least-squares problem) adds its columns.  Each block is built
    in one freshly allocated Fortran-ordered buffer, which a consumer may overwrite (see
    ``tsqr_factor(..., overwrite_blocks=True)``).
    """
    if not isinstance(network, SampledNetwork):
        raise TypeError("feature_matrix needs a SampledNetwork (compute a Delayed one first)")
    x = as_row_chunked(x)
    if x.shape[1] != network.input_dim:
        raise ValueError(f"X has {x.shape[1]} columns but the network expects {network.input_dim}")
    n_out = network.width + int(intercept)
    if append is not None:
        append = as_row_chunked(append if np.ndim(append) == 2 else append[:, None], x.chunks[0], name="append")
        if append.shape[0] != x.shape[0]:
            raise ValueError(f"append has {append.shape[0]} rows but X has {x.shape[0]}")
        n_out += append.shape[1]
    net = dask.delayed(network, pure=True)
    return da.map_blocks(
        _features, x, append, net, intercept,
        chunks=(x.chunks[0], (n_out,)),
        dtype=COMPUTE_DTYPE,
        meta=_meta(x),
    )


def _derivative(x, network, alpha):
    return network.derivative_features(x, alpha)


def derivative_feature_matrix(x, network: SampledNetwork, alpha) -> da.Array:
    """``∂^α Φ(X)`` for a one-hidden-layer network, with the row chunks of ``X``."""
    x = as_row_chunked(x)
    alpha = tuple(int(a) for a in alpha)
    if len(network.layers) != 1:
        raise ValueError("derivative features are available for one-hidden-layer networks only")
    if len(alpha) != network.input_dim:
        raise ValueError(f"alpha must have one entry per input dimension ({network.input_dim}), got {alpha}")
    network.layers[0].activation.check_order(sum(alpha))
    net = dask.delayed(network, pure=True)
    return da.map_blocks(
        _derivative, x, net, alpha,
        chunks=(x.chunks[0], (network.width,)),
        dtype=COMPUTE_DTYPE,
        meta=_meta(x),
    )


def _meta(x: da.Array):
    xp = namespace_of(x._meta)
    return xp.empty((0, 0), dtype=COMPUTE_DTYPE)
