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


def log_magnitude(values):
    """log10 of magnitudes, floored where stored fields carry no more digits (float32)."""
    values = np.abs(np.asarray(values, dtype=float))
    finite = values[np.isfinite(values)]
    floor = max(float(finite.max()) if finite.size else 0.0, 1e-300) * 1e-9
    return np.log10(np.maximum(values, floor))


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
    if timed and len(space) == 2:  # a 2-D field: the last output time
        u, exact, spread = (None if a is None else a.isel(time=-1) for a in (u, exact, spread))
        timed = False
    panels = [("u (first member)", u, "viridis")]
    if exact is not None:
        panels.append(("log10 |error|", u - exact, "magma"))
    if spread is not None:
        panels.append(("log10 ensemble spread", spread, "magma"))
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(4.3 * (len(panels) + 1), 3.6))
    for ax, (title, field, cmap) in zip(axes, panels):
        shown = field if cmap == "viridis" else field.copy(data=log_magnitude(field.values))
        if space == ["point"]:
            ax.hist(shown.values.ravel()[np.isfinite(shown.values.ravel())], bins=60)
        else:
            shown.plot(ax=ax, cmap=cmap, add_colorbar=True, **({"x": "time"} if timed else {}))
        ax.set_title(title)
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
