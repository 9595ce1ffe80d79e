"""Figures from a result store (``pipeline plot STORE``); needs matplotlib.

Time-dependent 1-D runs: the space–time picture of the first member (or the ensemble mean),
its error, and snapshots; static 1-D/2-D runs: the solution and its error; higher dimensions
and supervised runs: the solution against the reference, point by point.  The ensemble
spread is drawn next to the error where there are replicates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_store"]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from err
    return plt


def _log(values):
    """log10 of magnitudes, floored where stored fields carry no more digits (float32)."""
    values = np.abs(values)
    floor = max(float(values.max()), 1e-300) * 1e-9
    return np.log10(np.maximum(values, floor))


def plot_store(store, output=None) -> Path:
    """Write a PNG summarising the run in ``store``; returns its path."""
    from pipeline.store import open_result

    plt = _pyplot()
    result = open_result(store)
    kind = result.attrs.get("kind")
    if kind in ("lti", "hamiltonian"):
        fig = (_plot_lti if kind == "lti" else _plot_hamiltonian)(plt, result)
        return _save(plt, fig, result, output)
    root = result.tree["/"].to_dataset()
    u = root["u"].values.astype(float)
    x = root["x"].values
    exact = root["u_exact"].values.astype(float) if "u_exact" in root else None
    spread = root["u_std"].values.astype(float) if u.shape[0] > 1 else None
    timed = "time" in root.dims
    title = f"{result.attrs.get('problem', '')} ({result.attrs.get('kind', '')}, {u.shape[0]} member(s))"
    panels = 2 + (exact is not None) + (spread is not None)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6))
    axes = np.atleast_1d(axes)
    first = u[0]
    err = None if exact is None else first - exact[0]
    if timed and x.shape[1] == 1:
        t = root["time"].values
        order = np.argsort(x[:, 0])
        extent = [t[0], t[-1], x[order[0], 0], x[order[-1], 0]]
        im = axes[0].imshow(first[:, order].T, aspect="auto", origin="lower", extent=extent, cmap="viridis")
        axes[0].set(xlabel="t", ylabel="x", title="u (member 0)")
        fig.colorbar(im, ax=axes[0])
        for i in np.linspace(0, len(t) - 1, 4).astype(int):
            axes[1].plot(x[order, 0], first[i, order], label=f"t = {t[i]:.3g}")
        axes[1].set(xlabel="x", title="snapshots")
        axes[1].legend(fontsize=7)
        k = 2
        if err is not None:
            im = axes[k].imshow(_log(err[:, order]).T, aspect="auto", origin="lower",
                                extent=extent, cmap="magma")
            axes[k].set(xlabel="t", ylabel="x", title="log10 |error|")
            fig.colorbar(im, ax=axes[k])
            k += 1
        if spread is not None:
            im = axes[k].imshow(_log(spread[0][:, order]).T, aspect="auto", origin="lower",
                                extent=extent, cmap="magma")
            axes[k].set(xlabel="t", ylabel="x", title="log10 ensemble spread")
            fig.colorbar(im, ax=axes[k])
    elif not timed and x.shape[1] == 2:
        sc = axes[0].tricontourf(x[:, 0], x[:, 1], first, levels=40, cmap="viridis")
        axes[0].set(title="u (member 0)", aspect="equal")
        fig.colorbar(sc, ax=axes[0])
        axes[1].hist(first, bins=50)
        axes[1].set(title="values of u")
        k = 2
        if err is not None:
            sc = axes[k].tricontourf(x[:, 0], x[:, 1], _log(err), levels=40, cmap="magma")
            axes[k].set(title="log10 |error|", aspect="equal")
            fig.colorbar(sc, ax=axes[k])
            k += 1
        if spread is not None:
            sc = axes[k].tricontourf(x[:, 0], x[:, 1], _log(spread[0]), levels=40, cmap="magma")
            axes[k].set(title="log10 ensemble spread", aspect="equal")
            fig.colorbar(sc, ax=axes[k])
    else:
        flat = first.ravel()
        axes[0].plot(np.arange(flat.size), flat, ".", ms=1)
        axes[0].set(title="u (member 0), all outputs")
        if exact is not None:
            axes[1].plot(exact[0].ravel(), flat, ".", ms=1)
            axes[1].set(xlabel="reference", ylabel="u", title="u against the reference")
        else:
            axes[1].hist(flat, bins=50)
        k = 2
        if err is not None:
            axes[k].hist(_log(err).ravel(), bins=60)
            axes[k].set(title="log10 |error|")
            k += 1
        if spread is not None:
            axes[k].hist(_log(spread[0]).ravel(), bins=60)
            axes[k].set(title="log10 ensemble spread")
    fig.suptitle(title)
    return _save(plt, fig, result, output)


def _save(plt, fig, result, output) -> Path:
    fig.tight_layout()
    out = Path(output) if output else Path(str(result.path).rstrip("/") + ".png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _shown(value) -> str:
    """A swept value as the user wrote it (null sweeps are stored as NaN)."""
    if isinstance(value, (float, np.floating)):
        return "null" if np.isnan(value) else f"{value:g}"
    return str(value)


def _plot_lti(plt, result):
    """Outputs against time (reference dashed), their error, and the input of member 0."""
    root = result.tree["/"].to_dataset()
    t, u = root["time"].values, root["u"].values.astype(float)
    exact = root["u_exact"].values.astype(float) if "u_exact" in root else None
    fig, axes = plt.subplots(1, 3 if exact is not None else 2, figsize=(13, 3.6))
    labels = [f"member {m}" + "".join(f", {name[6:]}={_shown(root[name].values[m])}" for name in root.coords
                                      if name.startswith("sweep:")) for m in range(u.shape[0])]
    for j in range(u.shape[2]):
        axes[0].plot(t, u[0, :, j], label=f"output {j}")
        if exact is not None:
            axes[0].plot(t, exact[0, :, j], "k--", lw=0.8)
    axes[0].set(xlabel="t", title="outputs, member 0 (reference dashed)")
    axes[0].legend(fontsize=7)
    network = result.tree["network/0"].to_dataset() if "network" in result.tree.children else None
    if network is not None:
        axes[1].plot(t, network["input_signal"].values)
        axes[1].set(xlabel="t", title="input, member 0")
    if exact is not None:
        for m in range(u.shape[0]):
            floor = 1e-17 * max(float(np.abs(exact[m]).max()), 1e-300)  # the first sample is exact
            axes[2].semilogy(t, np.maximum(np.abs(u[m] - exact[m]).max(axis=1), floor), label=labels[m])
        axes[2].set(xlabel="t", title="max |y - y_lsim| over outputs")
        axes[2].legend(fontsize=7)
    fig.suptitle(f"{result.attrs.get('problem', '')} (LTI network, {u.shape[0]} member(s))")
    return fig


def _plot_hamiltonian(plt, result):
    """H on the test states, its error, and the symplectic rollouts with their energy error."""
    root = result.tree["/"].to_dataset()
    x, h = root["x"].values, root["u"].values.astype(float)[0]
    err = _log(h - root["u_exact"].values.astype(float)[0])
    fig, axes = plt.subplots(1, 4, figsize=(16.5, 3.6))
    if x.shape[1] == 2:
        sc = axes[0].tricontourf(x[:, 0], x[:, 1], h, levels=40, cmap="viridis")
        axes[0].set(xlabel="q", ylabel="p", title="fitted H (member 0)")
        fig.colorbar(sc, ax=axes[0])
        sc = axes[1].tricontourf(x[:, 0], x[:, 1], err, levels=40, cmap="magma")
        axes[1].set(xlabel="q", ylabel="p", title="log10 |H - H_exact|")
        fig.colorbar(sc, ax=axes[1])
    else:
        axes[0].plot(root["u_exact"].values[0], h, ".", ms=1)
        axes[0].set(xlabel="exact H", ylabel="fitted H", title="fitted H (member 0)")
        axes[1].hist(err, bins=60)
        axes[1].set(title="log10 |H - H_exact|")
    rollout = result.tree["rollout"].to_dataset() if "rollout" in result.tree.children else None
    if rollout is not None and rollout.sizes.get("trajectory", 0):
        n = x.shape[1] // 2
        fitted, exact = rollout["trajectory"].values[0], rollout["trajectory_exact"].values[0]
        for k in range(fitted.shape[1]):
            axes[2].plot(fitted[:, k, 0], fitted[:, k, n], lw=1)
            axes[2].plot(exact[:, k, 0], exact[:, k, n], "k--", lw=0.6)
        axes[2].set(xlabel="q1", ylabel="p1", title="rollouts (exact H dashed)")
        energy = rollout["energy"].values[0]
        floor = 1e-17 * max(float(np.abs(energy).max()), 1e-300)
        axes[3].semilogy(rollout["step_time"].values, np.maximum(np.abs(energy - energy[0]).max(axis=1), floor))
        axes[3].set(xlabel="t", title="max |H(x_k) - H(x_0)| along the rollouts")
    fig.suptitle(f"{result.attrs.get('problem', '')} (Hamiltonian network, {root.sizes['member']} member(s))")
    return fig
