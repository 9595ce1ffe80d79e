"""Row-block kernels of the time-dependent projection (docs/design.md §3.3).

Each kernel turns one block of packed rows ``[x | w]`` (NumPy, or CuPy on a device) into rows of
a matrix the projection reduces or reads: ``[M | K | F]``, the fit rows, the reduced
``D̂_α = (∂^α Ψ) coefficient_map``.  ``row_blocks`` makes the Dask array of blocks, ``tree``
merges per-block results in groups (as the TSQR does).
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from pipeline.backend import COMPUTE_DTYPE, namespace_for, namespace_of, to_host
from pipeline.pde.operators import derivative, identity
from pipeline.pde.static import operator_rows

__all__ = ["alpha_operator", "fit_rows", "interior_rows", "reduced_rows", "row_blocks", "tree"]


def interior_rows(packed, network, operator, lift, source, t0, dim):
    """``[w Ψ N | w (LΨ) N | w f(t0)]`` of one block of ``packed = [x | w]`` (``N``: the lift)."""
    xp = namespace_of(packed)
    x, w = packed[:, :dim], packed[:, dim]
    psi, lpsi = operator_rows(identity(1.0), network, x), operator_rows(operator, network, x)
    if lift is not None:
        lift = xp.asarray(lift)
        psi, lpsi = psi @ lift, lpsi @ lift
    m = psi.shape[1]
    out = xp.empty((x.shape[0], 2 * m + 1), dtype=COMPUTE_DTYPE, order="F")
    out[:, :m] = psi * w[:, None]
    out[:, m : 2 * m] = lpsi * w[:, None]
    out[:, 2 * m] = 0.0 if source is None else w * xp.asarray(source(to_host(x), t0), dtype=COMPUTE_DTYPE)
    return out


def reduced_rows(packed, network, cmap, alphas, dim):
    """``D̂_α`` rows (``(∂^α Ψ) N V_k S_k⁻¹``) of one block, host arrays: ``{alpha: (n, k)}``."""
    xp = namespace_of(packed)
    x, cmap = packed[:, :dim], xp.asarray(cmap)
    return {alpha: to_host(operator_rows(alpha_operator(alpha), network, x) @ cmap) for alpha in alphas}


def fit_rows(packed, network, cmap, dim):
    """``[E | values]`` of one block of ``packed = [x | values]`` (``E = Ψ N V_k S_k⁻¹``)."""
    xp = namespace_of(packed)
    e = operator_rows(identity(1.0), network, packed[:, :dim]) @ xp.asarray(cmap)
    out = xp.empty((e.shape[0], e.shape[1] + 1), dtype=COMPUTE_DTYPE, order="F")
    out[:, :-1] = e
    out[:, -1] = packed[:, dim]
    return out


def alpha_operator(alpha):
    return identity(1.0) if sum(alpha) == 0 else derivative(alpha)


def row_blocks(packed: np.ndarray, chunk: int, device: str) -> da.Array:
    blocks = da.from_array(packed, chunks=(max(min(chunk, len(packed)), 1), -1))
    if device == "cpu":
        return blocks
    xp = namespace_for(device)
    return blocks.map_blocks(xp.asarray, dtype=COMPUTE_DTYPE, meta=xp.empty((0, 0)))


def tree(parts, merge, *args, split_every=8):
    while len(parts) > 1:
        parts = [dask.delayed(merge, pure=True)(parts[i : i + split_every], *args)
                 for i in range(0, len(parts), split_every)]
    return parts[0]
