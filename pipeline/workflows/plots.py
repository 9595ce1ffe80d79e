"""Figures of a result store (``pipeline plot STORE``, :meth:`Result.plot`); needs matplotlib.

:func:`plot_fields` draws any run whose ``u`` lives on output points: 1-D time-dependent runs
as a space–time picture with snapshots, 2-D gridded fields as images (the last output time
for time-dependent runs), scattered outputs as values against the reference; with the error
and, where there are replicates, the ensemble spread.  Kinds with other outputs draw their
own figures (:meth:`pipeline.workflows.base.WorkflowKind.plot`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_magnitude", "plot_fields", "pyplot"]


def pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from err
    return plt


def log_magnitude(values, floor=None):
    """log10 of magnitudes, floored at ``floor`` (default: 1e-9 of the largest): differences of
    stored float32 fields carry no digits below the dtype's resolution."""
    values = np.abs(np.asarray(values, dtype=float))
    if floor is None:
        finite = values[np.isfinite(values)]
        floor = (float(finite.max()) if finite.size else 0.0) * 1e-9
    return np.log10(np.maximum(values, max(floor, 1e-300)))


def plot_fields(result, plt):
    root = result.dataset
    first = {d: 0 for d in result.member_dims}
    u = root["u"].isel(first).astype(float)
    exact = root["u_exact"].isel({d: 0 for d in result.member_dims if d in root["u_exact"].dims}).astype(float) \
        if "u_exact" in root else None
    spread = root["u_std"].isel({d: 0 for d in result.member_dims[:-1]}).astype(float) \
        if root.sizes["member"] > 1 else None
    space = [d for d in u.dims if d != "time"]
    timed = "time" in u.dims
    when = ""
    if timed and len(space) == 2:  # a 2-D field: the last output time
        when = f" at t = {float(u['time'][-1]):.4g}"
        u, exact, spread = (None if a is None else a.isel(time=-1) for a in (u, exact, spread))
        timed = False
    # errors and spreads of stored fields resolve down to the stored dtype's rounding of u
    resolution = float(np.finfo(root["u"].dtype).eps) * float(np.nanmax(np.abs(u.values)))
    panels = [("u (first member)", u, "viridis")]
    if exact is not None:
        panels.append(("log10 |error|", u - exact, "magma"))
    if spread is not None:
        panels.append(("log10 ensemble spread", spread, "magma"))
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(4.3 * (len(panels) + 1), 3.6))
    for ax, (title, field, cmap) in zip(axes, panels):
        shown = field if cmap == "viridis" else field.copy(data=log_magnitude(field.values, resolution))
        if space == ["point"]:
            ax.hist(shown.values.ravel()[np.isfinite(shown.values.ravel())], bins=60)
        else:
            shown.plot(ax=ax, cmap=cmap, add_colorbar=True, **({"x": "time"} if timed else {}))
        ax.set_title(title + when)
    last = axes[-1]
    if timed and len(space) == 1:
        for i in np.linspace(0, u.sizes["time"] - 1, 4).astype(int):
            u.isel(time=i).plot(ax=last, label=f"t = {float(u['time'][i]):.3g}")
        last.legend(fontsize=7)
        last.set_title("snapshots")
    elif exact is not None:
        last.plot(exact.values.ravel(), u.values.ravel(), ".", ms=1)
        last.set(xlabel="reference", ylabel="u", title="u against the reference")
    else:
        last.hist(u.values.ravel()[np.isfinite(u.values.ravel())], bins=50)
        last.set_title("values of u")
    fig.suptitle(f"{result.attrs.get('problem', '')} ({result.attrs.get('kind', '')}, {result.members} member(s))")
    return fig
