"""Hamiltonian workflows (``hamiltonian:``): a network fitted to a named system's Hamilton equations.

Every member samples training states of the system (with their time derivatives, or flow-map
pairs with step ``flow_step``), fits a :class:`~pipeline.models.hamiltonian.HamiltonianNetwork`
with its own seed and settings and stores H on the test states (``u``; the exact H of each
sweep point is ``u_exact``, known before the run), its basis (so ``evaluate`` rebuilds H
anywhere, the flow-map correction included) and a symplectic-Euler rollout of the first test
states next to the rollout of the exact H (``/rollout``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from pipeline.config import NULL, ConfigError, Field, Section, non_negative_int, positive, positive_int
from pipeline.store import PointLayout, StoreSpec, Variable, point_layout
from pipeline.workflows.base import Clock, MemberTask, Plan, WorkflowKind, member_variables, padded
from pipeline.workflows.pde import basis_spec, field_spec, shared_width, stored_layers, sweep_exact, write_basis

__all__ = ["HamiltonianKind", "HamiltonianSettings", "build_system", "state_names"]


HAMILTONIAN_SECTION = Section({
    "system": Field(str, doc="Hamiltonian system (pendulum, lotka_volterra, henon_heiles, double_pendulum, "
                             "coupled_oscillators)"),
    "params": Field(dict, {}, doc="system parameters, e.g. {dof: 10} for coupled_oscillators"),
    "n_train": Field(int, 10_000, check=positive_int, doc="uniform training states of the system's box"),
    "n_test": Field(int, 5_000, check=positive_int, doc="independent test states (the error and the store)"),
    "data_seed": Field(int, 0, check=non_negative_int, doc="seed of the training and test draws"),
    "flow_step": Field((float, NULL), None, check=positive,
                       doc="Δt: learn from flow-map pairs (x, x after Δt) instead of time derivatives"),
    "rollout_steps": Field(int, 1000, check=non_negative_int, doc="symplectic-Euler steps of the rollout"),
    "rollout_dt": Field(float, 0.01, check=positive, doc="step of the rollout"),
    "rollout_states": Field(int, 4, check=non_negative_int, doc="initial states (the first test states)"),
}, doc="a Hamiltonian network fitted from a system's samples (instead of a problem)", optional=True)


@dataclass(frozen=True)
class HamiltonianSettings:
    """One member's settings: the network's keyword arguments and the ``hamiltonian`` section."""

    # HamiltonianNetwork's keyword arguments (None: its own default)
    width: int
    activation: str
    sampler: str
    weight_scale: float | None
    bias_scale: float | None
    rcond: float | None
    chunk_rows: int | None
    # the hamiltonian section
    system: str
    params: dict
    n_train: int
    n_test: int
    data_seed: int
    flow_step: float | None
    rollout_steps: int
    rollout_dt: float
    rollout_states: int

    @classmethod
    def from_config(cls, cfg: dict) -> "HamiltonianSettings":
        basis, section = cfg["basis"], cfg["hamiltonian"]  # unset: an ELM of 1000 tanh neurons
        return cls(basis["width"] or 1000, basis["activation"] or "tanh", basis["sampler"] or "elm",
                   basis["weight_scale"], basis["bias_scale"], cfg["solver"]["rcond"], cfg["compute"]["chunk_rows"],
                   section["system"], dict(section["params"]), section["n_train"], section["n_test"],
                   section["data_seed"], section["flow_step"], section["rollout_steps"], section["rollout_dt"],
                   section["rollout_states"])

    def network_kwargs(self) -> dict:
        out = {"width": self.width, "activation": self.activation, "sampler": self.sampler}
        for key in ("weight_scale", "bias_scale", "rcond", "chunk_rows"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @property
    def rollout(self) -> tuple:
        """What fixes the ``/rollout`` group's shape and ``step_time``: (steps, dt, trajectories)."""
        return self.rollout_steps, self.rollout_dt, min(self.rollout_states, self.n_test)


def build_system(settings: HamiltonianSettings):
    from pipeline.models.hamiltonian_systems import get_system

    try:
        return get_system(settings.system, **settings.params)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"hamiltonian: {err}") from None


def state_names(dof: int) -> list[str]:
    """Names of the state components: q, p for one degree of freedom, else q1…qn, p1…pn."""
    if dof == 1:
        return ["q", "p"]
    return [f"q{i}" for i in range(1, dof + 1)] + [f"p{i}" for i in range(1, dof + 1)]


@dataclass(frozen=True)
class HamiltonianShared:
    points: np.ndarray  # the test states (n_test, 2 dof)
    layout: PointLayout
    width: int  # the store's (largest) width
    trajectories: int  # rolled-out test states (0: no /rollout group)


class HamiltonianKind(WorkflowKind):
    """A Hamiltonian network per member: H on the test states (``u``), its basis, a rollout."""

    name = "hamiltonian"
    label = "Hamiltonian"
    section = "hamiltonian"
    sections = {"hamiltonian": HAMILTONIAN_SECTION}
    task = 'a Hamiltonian network'
    keys = {"basis": ("width", "activation", "sampler", "weight_scale", "bias_scale"), "solver": ("rcond",),
            "compute": ("chunk_rows", "split_members")}
    devices = ("cpu",)
    stages = ("data", "fit", "rollout", "write")
    splittable = True

    def plan(self, cfg, members, grid, path, quiet) -> Plan:
        from pipeline.models.hamiltonian import HamiltonianNetwork

        settings = {m.index: HamiltonianSettings.from_config(m.config) for m in members}
        built: dict = {}

        def system_and_test(s: HamiltonianSettings):
            """The system and its test states, built once per distinct section."""
            key = json.dumps([s.system, s.params, s.n_test, s.data_seed], sort_keys=True, default=str)
            if key not in built:
                system = build_system(s)
                built[key] = system, system.sample(s.n_test, seed=s.data_seed + 1)[0]
            return built[key]

        for s in settings.values():
            if s.sampler == "swim":  # SWIM draws by the values of H, which the workflow does not fit to
                raise ConfigError("basis.sampler=swim needs values of H; a hamiltonian workflow fits derivatives "
                                  "only: use aswim, uswim or elm")
            try:
                HamiltonianNetwork(**s.network_kwargs())._sampler()  # width, rcond, the activation's order
            except ValueError as err:
                raise ConfigError(f"hamiltonian: {err}") from None
        pairs = [system_and_test(s) for s in settings.values()]
        (system, test), first = pairs[0], settings[members[0].index]
        if any(sys_.dof != system.dof for sys_, _ in pairs):
            raise ConfigError("the swept parameters change the number of degrees of freedom; sweep other keys")
        if any(t is not test and not np.array_equal(t, test) for _, t in pairs):
            raise ConfigError("the swept parameters change the test states (hamiltonian.n_test, data_seed or the "
                              "system's box); sweep other keys")
        if len({s.rollout for s in settings.values()}) > 1:
            raise ConfigError("the swept parameters change the rollout (hamiltonian.rollout_steps, rollout_dt, "
                              "rollout_states); sweep other keys")
        steps, dt, k = first.rollout
        names = state_names(system.dof)
        dim = 2 * system.dof
        layout = point_layout(test, names, max_fill=0.0)  # test states are samples, never a grid
        width = max(s.width for s in settings.values())
        exact = sweep_exact(grid, members, lambda m: system_and_test(settings[m.index])[0].hamiltonian(test))
        groups = {"": field_spec(grid, layout, (), cfg["output"]["dtype"], {}, exact)}
        groups[""]["u"].attrs.update(long_name="fitted Hamiltonian on the test states")
        groups[""]["u_exact"].attrs.update(long_name="exact Hamiltonian on the test states")
        for extra in (basis_spec(grid, 1, width, dim, width + 1), member_variables(grid, self.stages, 1)):
            for name, variables in extra.items():
                groups.setdefault(name, {}).update(variables)
        group_coords = {"diagnostics": {"stage": (("stage",), list(self.stages), {})}}
        if k:
            g = grid.dims
            # orbit i starts at test state i ("trajectory" names the variable, so not the dimension)
            path_dims, what = g + ("step", "orbit", "dim"), "symplectic-Euler rollout of the"
            groups["rollout"] = {
                "trajectory": Variable(path_dims, attrs={"long_name": f"{what} fitted Hamiltonian"}),
                "trajectory_exact": Variable(path_dims, attrs={"long_name": f"{what} exact Hamiltonian"}),
                "energy": Variable(g + ("step", "orbit"), attrs={"long_name": "exact H along the fitted rollout"}),
                "energy_drift": Variable(g, attrs={"long_name": "max |H(x_k) - H(x_0)| of the fitted rollout"}),
                "energy_drift_exact": Variable(g, attrs={"long_name": "the same for the exact H's rollout"}),
            }
            group_coords["rollout"] = {"step_time": (("step",), np.arange(steps + 1) * dt, {"units": "1"}),
                                       "dim": (("dim",), names, {"long_name": "state component"})}
        sizes = {**dict(zip(grid.dims, grid.sizes)), "point": len(test), "block": 1, "neuron": width, "dim": dim,
                 "coefficient": width + 1, "sv": width + 1, "stage": len(self.stages), "window": 1,
                 "step": steps + 1, "orbit": k}
        spec = StoreSpec(sizes, grid.dims, {**grid.coords, **layout.coords}, groups, group_coords=group_coords)
        shared = HamiltonianShared(test, layout, width, k)
        tasks = [MemberTask(self.name, path, m, grid, settings[m.index], shared, 1, self.stages, quiet,
                            assembly_bytes=8 * settings[m.index].n_train * dim * (settings[m.index].width + 2))
                 for m in members]
        info = {"problem": first.system, "params": json.dumps(first.params, default=str), "has_truth": True,
                "activation": first.activation, "dim": dim, "dof": system.dof, "flow_step": first.flow_step or 0.0}
        return Plan(tasks, spec, info)

    def run(self, task: MemberTask) -> dict:
        from pipeline.models.hamiltonian import HamiltonianNetwork, symplectic_euler

        s: HamiltonianSettings = task.settings
        shared: HamiltonianShared = task.shared
        if task.first_pending() >= 1:  # finished: its metrics are read back, so a resumed run's summary covers it
            stored = task.read("rollout") if shared.trajectories else {}
            return {"member": task.index, "skipped": True,
                    **{key: float(stored[key]) for key in ("energy_drift", "energy_drift_exact") if key in stored}}
        system = build_system(s)
        clock = Clock()
        start = clock.start()
        x, dx = system.sample(s.n_train, seed=s.data_seed)
        reference = (x[:1], system.hamiltonian(x[:1]))  # fixes H's additive constant
        x1 = system.flow(x, s.flow_step) if s.flow_step else None
        clock.stop("data", start)
        start = clock.start()
        model = HamiltonianNetwork(**s.network_kwargs(), random_state=task.member.seed)
        if x1 is None:
            model.fit(x, dx, reference=reference)
        else:
            model.fit_flow_map(x, x1, s.flow_step, reference=reference)
        clock.stop("fit", start)
        start = clock.start()
        k = shared.trajectories
        metrics = {}
        if k:
            x0 = shared.points[:k]
            fitted = symplectic_euler(model.gradient, x0, s.rollout_dt, s.rollout_steps)
            exact = symplectic_euler(system.gradient, x0, s.rollout_dt, s.rollout_steps)
            # H of every state of every step at once: (steps + 1, trajectories)
            energy = system.hamiltonian(fitted.reshape(-1, fitted.shape[-1])).reshape(fitted.shape[:2])
            energy_exact = system.hamiltonian(exact.reshape(-1, exact.shape[-1])).reshape(exact.shape[:2])
            metrics = {"energy_drift": float(np.max(np.abs(energy - energy[0]))),
                       "energy_drift_exact": float(np.max(np.abs(energy_exact - energy_exact[0])))}
        clock.stop("rollout", start)
        start = clock.start()
        h = model.predict(shared.points)
        truth = system.hamiltonian(shared.points)
        rel_l2 = float(np.linalg.norm(h - truth) / np.linalg.norm(truth))
        task.write("", {"u": (shared.layout.dims, shared.layout.to_grid(h))})
        coef = np.concatenate([padded(model.coef_, shared.width), [model.intercept_]])
        task.write("coefficients", {"c": (("coefficient",), coef)})
        write_basis(task, 0, model.network_.layers[0], int(model.rank_), model.singular_values_, shared.width,
                    shared.width + 1)
        if k:
            task.write("rollout", {"trajectory": (("step", "orbit", "dim"), fitted),
                                   "trajectory_exact": (("step", "orbit", "dim"), exact),
                                   "energy": (("step", "orbit"), energy),
                                   "energy_drift": ((), metrics["energy_drift"]),
                                   "energy_drift_exact": ((), metrics["energy_drift_exact"])})
        clock.stop("write", start)
        task.write_diagnostics(clock, rel_l2)
        task.mark_done(0)
        return {"member": task.index, "rel_l2": rel_l2, "rank": int(model.rank_), **metrics}

    def summary(self, results):
        rolled = [r for r in results if "energy_drift" in r]
        if not rolled:
            return {}
        return {"energy_drift_max": float(max(r["energy_drift"] for r in rolled)),
                "energy_drift_exact_max": float(max(r["energy_drift_exact"] for r in rolled))}

    def evaluate(self, result, points, times):
        """Each member's Ĥ from its stored basis; flow-map fits add (Δt/2) ∂_qĤ·∂_pĤ (what predict gives)."""
        from pipeline.models.hamiltonian import first_order_correction
        from pipeline.nn import SampledNetwork

        if times is not None:
            raise ValueError("a Hamiltonian run is not time-dependent: pass points only")
        width = shared_width(result)
        out = np.empty((result.members, len(points)))
        for m in range(result.members):
            # the run attributes hold the first member's activation and Δt; a sweep may change them
            point = result.sweep_point(m)
            activation = point.get("basis.activation", (None, result.attrs["activation"]))[1] or "tanh"
            step = point.get("hamiltonian.flow_step", (None, result.attrs.get("flow_step")))[1] or 0.0
            (layer,) = stored_layers(result, m, activation)
            if layer is None:
                raise ValueError(f"member {m} of this store has not finished; evaluate it after --resume")
            c = result.member_values("coefficients", m)["c"]
            coef = c[: layer.width]  # stored padded with NaN to the store's width; c0 follows at `width`
            out[m] = SampledNetwork((layer,))(points) @ coef + c[width]
            if step:
                out[m] += first_order_correction(layer.gradient(points, coef), float(step))
        return out

    def plot(self, result, plt):
        """H of the first member on the test states, its error, the rollouts and their energy error."""
        from pipeline.workflows.plots import log_magnitude

        root = result.dataset
        first = root.isel({d: 0 for d in result.member_dims}, missing_dims="ignore")
        dof = int(result.attrs.get("dof", int(result.attrs["dim"]) // 2))
        names = state_names(dof)
        h, exact = first["u"].values.astype(float), first["u_exact"].values.astype(float)
        err = log_magnitude(h - exact)
        label = result.member_label(0)
        fig, axes = plt.subplots(1, 4, figsize=(16.5, 3.6))
        if dof == 1:
            q, p = root["q"].values, root["p"].values
            for ax, values, cmap, title in ((axes[0], h, "viridis", f"fitted H, {label}"),
                                            (axes[1], err, "magma", "log10 |H - H_exact|")):
                fig.colorbar(ax.tricontourf(q, p, values, levels=40, cmap=cmap), ax=ax)
                ax.set(xlabel="q", ylabel="p", title=title)
        else:
            axes[0].plot(exact, h, ".", ms=1)
            axes[0].set(xlabel="exact H", ylabel="fitted H", title=f"fitted H, {label}")
            axes[1].hist(err, bins=60)
            axes[1].set(title="log10 |H - H_exact|")
        if "rollout" in result.tree.children:
            rollout = result.member_dataset("rollout", 0)
            fitted, reference = rollout["trajectory"].values, rollout["trajectory_exact"].values
            axes[2].plot(fitted[:, :, 0], fitted[:, :, dof], lw=1)
            axes[2].plot(reference[:, :, 0], reference[:, :, dof], "k--", lw=0.6)
            axes[2].set(xlabel=names[0], ylabel=names[dof], title="rollouts (exact H dashed)")
            energy = rollout["energy"].values
            change = np.abs(energy - energy[0]).max(axis=1)
            floor = 1e-17 * max(float(np.abs(energy).max()), 1e-300)  # the first state is exact
            axes[3].semilogy(rollout["step_time"].values, np.maximum(change, floor))
            axes[3].set(xlabel="t", title="max |H(x_k) - H(x_0)| along the rollouts")
        fig.suptitle(f"{result.attrs.get('problem', '')} (Hamiltonian network, {result.members} member(s))")
        return fig
