"""A finished run's metrics and ensemble statistics, computed from its store.

Only small per-member metrics travel back from the workers; the ensemble mean and spread of
every sweep point are computed out of core from the store (``u.mean("member")``: ``member``
counts replicates only) and written next to ``u``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import xarray as xr

from pipeline.store import StoreSpec, Variable, consolidate, open_group, write_attrs, zarr_store

__all__ = ["add_ensemble_variables", "finalize", "run_metrics"]


def add_ensemble_variables(spec: StoreSpec) -> None:
    """``u_mean`` and ``u_std`` over the replicates, beside ``u`` (dimensions: ``u``'s but ``member``).

    A run without a field ``u`` (an inverse problem's constants) has none.
    """
    u = spec.groups.get("", {}).get("u")
    if u is None:
        return
    dims = tuple(d for d in u.dims if d != "member")
    for name, what in (("u_mean", "mean"), ("u_std", "standard deviation")):
        spec.groups[""][name] = Variable(dims, u.dtype, {"long_name": f"{what} of u over the replicates (member)",
                                                         "units": "1"}, u.chunks)


#: a field up to this size is read into the client for the statistics; a larger one stays out of core
IN_MEMORY_BYTES = 64 * 2**20


def _open_root(path) -> xr.Dataset:
    """The root group, NumPy-backed when its field is small: out of core, every statistic is a
    Dask graph sent to the cluster (a round trip each: 0.2 s of an ensemble's serial time)."""
    root = open_group(path)
    if "u" in root and root["u"].nbytes > IN_MEMORY_BYTES:
        return root
    return open_group(path, dask=False)


def _flat(values: np.ndarray, lead: int) -> np.ndarray:
    return values.reshape((-1,) + values.shape[lead:])


def run_metrics(path, member_dims: tuple, results: list[dict], extra: dict, seconds: tuple) -> dict:
    """Per-member errors and seconds, the error of each sweep point's ensemble mean, spread vs error."""
    lead = len(member_dims)
    diag = open_group(path, "diagnostics", dask=False)  # a few numbers per member: no graph
    rel = _flat(diag["rel_l2"].values, lead)
    stages = diag["stage"].values.tolist()
    wall, cpu = _flat(diag["wall_seconds"].values, lead), _flat(diag["cpu_seconds"].values, lead)

    def clean(row):
        return dict(zip(stages, [None if np.isnan(v) else float(v) for v in row]))

    out = {"members": len(rel), "wall_seconds": seconds[0], "cpu_seconds_client": seconds[1]}
    out["per_member"] = [{"member": i, "rel_l2": None if np.isnan(rel[i]) else float(rel[i]),
                          "wall_seconds": clean(wall[i]), "cpu_seconds": clean(cpu[i])} for i in range(len(rel))]
    for r in results:
        for key, value in r.items():
            if key not in ("member", "rel_l2", "rank", "skipped"):
                out["per_member"][r["member"]][key] = value
    out.update(extra)
    root = _open_root(path)
    if "u_exact" in root and np.isfinite(rel).any():
        out.update(_ensemble_errors(root, rel, member_dims))
    return out


def _ensemble_errors(root: xr.Dataset, rel: np.ndarray, member_dims: tuple) -> dict:
    """Relative L2 error of each sweep point's ensemble mean (float64), and spread against error."""
    u, ref = root["u"].astype("float64"), root["u_exact"].astype("float64")
    field_dims = [d for d in ref.dims if d not in member_dims]
    replicates = u.sizes["member"]
    out = {}
    if "member" in ref.dims:  # a reference per member (LTI: inputs drawn per member): the worst member
        per_point = np.nanmax(rel.reshape(-1, replicates), axis=1)
    elif replicates == 1:  # exact float64 member errors, whatever the stored dtype
        per_point = rel.reshape(-1)
    else:
        mean = u.mean("member")
        num = ((mean - ref) ** 2).sum(field_dims)
        den = (ref**2).sum(field_dims)
        per_point = np.sqrt(num / den).values.reshape(-1)
        spread = u.std("member", ddof=1).values.ravel()
        error = np.abs(mean - ref).values.ravel()
        keep = np.isfinite(spread) & np.isfinite(error)
        out["spread_rms"] = float(np.sqrt(np.mean(spread[keep] ** 2)))
        out["error_rms"] = float(np.sqrt(np.mean(error[keep] ** 2)))
        if keep.sum() > 1 and np.std(spread[keep]) > 0 and np.std(error[keep]) > 0:
            out["spread_error_correlation"] = float(np.corrcoef(spread[keep], error[keep])[0, 1])
    out["rel_l2"] = float(np.nanmax(per_point))
    out["rel_l2_per_sweep_point"] = [float(v) for v in per_point]
    out["rel_l2_members_mean"] = float(np.nanmean(rel))
    return out


def finalize(path, metrics: dict) -> None:
    """Ensemble mean and spread (out of core, from the store), the metrics, consolidated metadata."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = _open_root(path)
        if "u" in root:
            u = root["u"].astype("float64")
            ddof = 1 if u.sizes["member"] > 1 else 0
            stats = xr.Dataset({"u_mean": u.mean("member").astype(root["u"].dtype),
                                "u_std": u.std("member", ddof=ddof).astype(root["u"].dtype)})
            stats = stats.drop_vars(list(stats.coords))
            stats.to_zarr(zarr_store(path), region={d: slice(None) for d in stats["u_mean"].dims},
                          consolidated=False)
    write_attrs(path, {"metrics": json.dumps(metrics)})
    consolidate(path)
