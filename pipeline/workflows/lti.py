"""LTI workflows (``lti:``): a continuous-time network constructed from a named system's (A, B, C, D).

Every member constructs an :class:`~pipeline.models.lti.LTINetwork` (all modes, or the slowest
``modes`` with the static correction), simulates it for the workflow's input signal and stores
the outputs (``u``: member dims × time × output), ``scipy.signal.lsim``'s outputs on the dense
system as reference (``u_exact``: written by the members, since a ``random`` input is drawn
from each member's seed) and the network itself (its neurons' block-diagonal dynamics, input,
output and feed-through weights, the simulated input) in the free-form group
``/network/<flat member index>``.  There is no sampled basis: ``evaluate`` has nothing to do.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np

from pipeline.config import NULL, ConfigError, Field, Section, positive, positive_int
from pipeline.store import StoreSpec, Variable, open_group
from pipeline.workflows.base import Clock, MemberTask, Plan, WorkflowKind, member_variables

__all__ = ["LTIKind", "LTISettings", "build_lti_system", "lti_input"]


LTI_SECTION = Section({
    "system": Field(str, doc="LTI system (diffusion_2d, convection_diffusion, mass_spring_chain, jordan)"),
    "params": Field(dict, {}, doc="system parameters, e.g. {n: 30}"),
    "modes": Field((int, NULL), None, check=positive_int, doc="keep the slowest modes only (null: all)"),
    "hold": Field(str, "foh", choices=("foh", "zoh"), doc="piecewise-linear or piecewise-constant input"),
    "input": Field(str, "sine", choices=("sine", "step", "random"),
                   doc="input signal: sines plus steps, a unit step, or random values (seeded per member)"),
    "t_end": Field(float, 1.0, check=positive, doc="end of the simulated interval (it starts at 0)"),
    "steps": Field(int, 1000, check=positive_int, doc="uniform steps of the simulation"),
    "reference": Field(bool, True, doc="compare with scipy.signal.lsim on the dense system"),
    "cond_limit": Field(float, 1e8, check=positive, doc="largest modal-transformation condition number"),
}, doc="a continuous-time network constructed from (A, B, C, D) (instead of a problem)", optional=True)


@dataclass(frozen=True)
class LTISettings:
    """One member's ``lti`` section."""

    system: str
    params: dict
    modes: int | None
    hold: str
    input: str
    t_end: float
    steps: int
    reference: bool
    cond_limit: float

    @classmethod
    def from_config(cls, cfg: dict) -> "LTISettings":
        s = cfg["lti"]
        return cls(s["system"], dict(s["params"]), s["modes"], s["hold"], s["input"], s["t_end"], s["steps"],
                   s["reference"], s["cond_limit"])

    @property
    def times(self) -> np.ndarray:
        return np.linspace(0.0, self.t_end, self.steps + 1)


def build_lti_system(settings: LTISettings):
    """``(A, B, C, D)`` of the named system."""
    from pipeline.models.lti_systems import get_lti_system

    try:
        return get_lti_system(settings.system, **settings.params)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"lti: {err}") from None


def lti_input(kind: str, t: np.ndarray, inputs: int, seed) -> np.ndarray:
    """The input signal ``(len(t), inputs)`` of an LTI workflow.

    ``sine``: per input ``sin(2π (i+1) t / T)`` plus a half-unit step at ``(0.3 + 0.2 i) T``;
    ``step``: a unit step at ``T / 10``; ``random``: independent standard normal values at every
    sample (drawn from the member's seed), held piecewise linear or constant.
    """
    span = t[-1] - t[0]
    i = np.arange(inputs)
    if kind == "sine":
        return (np.sin(2 * np.pi * (t - t[0])[:, None] * (i + 1) / span)
                + 0.5 * (t[:, None] > t[0] + (0.3 + 0.2 * i) * span))
    if kind == "step":
        return np.repeat((t >= t[0] + 0.1 * span).astype(float)[:, None], inputs, axis=1)
    if kind == "random":
        return np.random.default_rng(seed).standard_normal((len(t), inputs))
    raise ConfigError(f"lti.input must be one of sine, step, random; got {kind!r}")


def network_dataset(net):
    """The constructed network: block-diagonal neuron dynamics (COO), input/output/feed-through weights."""
    import scipy.sparse as sp
    import xarray as xr

    a = sp.block_diag([b.a for b in net.blocks], format="coo")  # the blocks are contiguous, in order
    sizes = [b.size for b in net.blocks]
    return xr.Dataset({
        "a_row": ("entry", a.row.astype(np.int64)), "a_col": ("entry", a.col.astype(np.int64)),
        "a_value": ("entry", a.data, {"long_name": "z' = A_blocks z + b u (block-diagonal A, COO)"}),
        "neuron_order": ("neuron", np.repeat(sizes, sizes),
                         {"long_name": "1: first-order neuron, 2: second-order, k: cascaded block"}),
        "b": (("neuron", "input"), net.b_modal), "c": (("output", "neuron"), net.c_modal),
        "d": (("output", "input"), net.d_effective, {"long_name": "feed-through, with the dropped modes' static gain"}),
    }, attrs={"method": net.method, "transform_condition": net.transform_condition,
              "first_order": net.layers["first_order"], "second_order": net.layers["second_order"]})


@dataclass(frozen=True)
class LTIShared:
    times: np.ndarray


class LTIKind(WorkflowKind):
    """An LTI network per member: its outputs (``u``), the lsim reference, the network itself."""

    name = "lti"
    label = "LTI"
    section = "lti"
    sections = {"lti": LTI_SECTION}
    task = 'an LTI network'
    keys: dict = {}  # basis, solver, collocation and time keys do not apply
    devices = ("cpu",)
    stages = ("construct", "simulate", "reference", "write")

    def plan(self, cfg, members, grid, path, quiet) -> Plan:
        settings = {m.index: LTISettings.from_config(m.config) for m in members}
        built: dict = {}

        def system(s: LTISettings):
            """(A, B, C, D), built once per distinct system and parameters."""
            key = json.dumps([s.system, s.params], sort_keys=True, default=str)
            if key not in built:
                built[key] = build_lti_system(s)
            return built[key]

        systems = {i: system(s) for i, s in settings.items()}
        shapes = {(b.shape[1], c.shape[0]) for _, b, c, _ in systems.values()}
        if len(shapes) > 1:
            raise ConfigError("the swept parameters change the numbers of inputs or outputs; sweep other keys")
        for i, s in settings.items():
            states = systems[i][0].shape[0]
            if s.modes is not None and s.modes >= states:
                raise ConfigError(f"lti.modes must be below the number of states ({states}); got {s.modes} "
                                  "(null keeps all modes)")
        if len({(s.t_end, s.steps) for s in settings.values()}) > 1:
            raise ConfigError("the swept parameters change the output times (lti.t_end, lti.steps); sweep other keys")
        first = settings[members[0].index]
        times = first.times
        inputs, outputs = next(iter(shapes))
        has_truth = any(s.reference for s in settings.values())
        dims = grid.dims + ("time", "output")
        dtype = cfg["output"]["dtype"]
        root = {"u": Variable(dims, dtype, {"long_name": "outputs y(t) of the network", "units": "1"})}
        if has_truth:  # depends on each member's input: the members write it
            root["u_exact"] = Variable(dims, dtype, {"long_name": "scipy.signal.lsim outputs of the dense system",
                                                     "units": "1"})
        groups = {"": root, "network": {}}  # network/<member>: written whole by each member
        for name, variables in member_variables(grid, self.stages, 1).items():
            groups.setdefault(name, {}).update(variables)
        sizes = {**dict(zip(grid.dims, grid.sizes)), "time": len(times), "output": outputs,
                 "stage": len(self.stages), "window": 1}
        coords = {**grid.coords, "time": (("time",), times, {"long_name": "time", "units": "1", "axis": "T"}),
                  "output": (("output",), np.arange(outputs), {"long_name": "output of the system"})}
        spec = StoreSpec(sizes, grid.dims, coords, groups,
                         group_coords={"diagnostics": {"stage": (("stage",), list(self.stages), {})}})
        shared = LTIShared(times)
        tasks = [MemberTask(self.name, path, m, grid, settings[m.index], shared, 1, self.stages, quiet)
                 for m in members]
        info = {"problem": first.system, "params": json.dumps(first.params, default=str), "has_truth": has_truth,
                "activation": "none", "states": int(systems[members[0].index][0].shape[0]), "inputs": inputs,
                "outputs": outputs}
        return Plan(tasks, spec, info)

    def run(self, task: MemberTask) -> dict:
        import scipy.signal

        from pipeline.models.lti import LTINetwork

        if task.first_pending() >= 1:
            return self._stored_metrics(task)
        s: LTISettings = task.settings
        A, B, C, D = build_lti_system(s)
        t = task.shared.times
        u = lti_input(s.input, t, B.shape[1], task.member.seed)
        clock = Clock()
        start = clock.start()
        try:
            net = LTINetwork(A, B, C, D, modes=s.modes, cond_limit=s.cond_limit)
        except ValueError as err:
            raise ConfigError(f"lti: {err}") from None
        clock.stop("construct", start)
        start = clock.start()
        result = net.simulate(t, u, hold=s.hold)
        clock.stop("simulate", start)
        rel_l2, reference, reference_seconds = None, None, None
        if s.reference:
            start = clock.start()
            dense = A.toarray() if hasattr(A, "toarray") else A
            _, reference, _ = scipy.signal.lsim((dense, B, C, D), u, t, interp=s.hold == "foh")
            reference = np.asarray(reference).reshape(len(t), -1)
            clock.stop("reference", start)
            reference_seconds = clock.stages["reference"][0]
            rel_l2 = float(np.linalg.norm(result.y - reference) / np.linalg.norm(reference))
        start = clock.start()
        fields = {"u": (("time", "output"), result.y)}
        if reference is not None:
            fields["u_exact"] = (("time", "output"), reference)
        task.write("", fields)
        network = network_dataset(net)
        network["input_signal"] = (("time", "input"), u, {"long_name": "the input u(t) simulated"})
        # kept with the network: a resumed run reports a finished member's metrics from them
        network.attrs.update({"error_estimate": result.error_estimate, "hold": s.hold,
                              "simulate_seconds": result.seconds})
        if reference_seconds is not None:
            network.attrs["reference_seconds"] = reference_seconds
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            network.to_zarr(task.path, group=f"network/{task.index}", mode="w", consolidated=False, zarr_format=3)
        clock.stop("write", start)
        task.write_diagnostics(clock, rel_l2)
        task.mark_done(0)
        return {"member": task.index, "rel_l2": rel_l2, "error_estimate": result.error_estimate, "method": net.method,
                "simulate_seconds": result.seconds, "reference_seconds": reference_seconds}

    @staticmethod
    def _stored_metrics(task: MemberTask) -> dict:
        """A finished member's metrics, read back from its network: a resumed run's summary still covers it."""
        attrs = open_group(task.path, f"network/{task.index}").attrs
        return {"member": task.index, "skipped": True, "error_estimate": attrs.get("error_estimate"),
                "method": attrs.get("method"), "simulate_seconds": attrs.get("simulate_seconds"),
                "reference_seconds": attrs.get("reference_seconds")}

    def summary(self, results):
        out = {}
        estimates = [r["error_estimate"] for r in results if r.get("error_estimate") is not None]
        if estimates:
            out["error_estimate_max"] = float(max(estimates))
        pairs = [(r["reference_seconds"], r["simulate_seconds"]) for r in results
                 if r.get("reference_seconds") is not None and r.get("simulate_seconds")]
        if pairs:
            out["speedup_vs_lsim_min"] = float(min(a / b for a, b in pairs))
        return out

    def evaluate(self, result, points, times):
        raise ValueError("an LTI run has no spatial basis to evaluate: its outputs are u (member dims, time, output) "
                         "in the store and each member's network is in /network/<flat member index>")

    def plot(self, result, plt):
        """Outputs of the first member against time (reference dashed), its input, every member's error."""

        root = result.dataset
        t = root["time"].values
        lead = result.member_dims
        u = root["u"].transpose(*lead, "time", "output").values.astype(float).reshape(-1, len(t), root.sizes["output"])
        exact = None
        if "u_exact" in root:
            exact = root["u_exact"].transpose(*lead, "time", "output").values.astype(float).reshape(u.shape)
        fig, axes = plt.subplots(1, 3 if exact is not None else 2, figsize=(13, 3.6))
        label = result.member_label(0)
        axes[0].plot(t, u[0], label=[f"output {j}" for j in range(u.shape[2])])
        if exact is not None:
            axes[0].plot(t, exact[0], "k--", lw=0.8)
        axes[0].set(xlabel="t", title=f"outputs, {label} (reference dashed)")
        axes[0].legend(fontsize=7)
        if "network" in result.tree.children and "0" in result.tree["network"].children:
            axes[1].plot(t, result.tree["network/0"].to_dataset()["input_signal"].values)
            axes[1].set(xlabel="t", title=f"input, {label}")
        if exact is not None:
            error = np.abs(u - exact).max(axis=2)  # (members, time)
            floor = 1e-17 * np.maximum(np.abs(exact).max(axis=(1, 2)), 1e-300)  # the first sample is exact
            for m in range(len(u)):
                axes[2].semilogy(t, np.maximum(error[m], floor[m]), label=result.member_label(m))
            axes[2].set(xlabel="t", title="max |y - y_lsim| over outputs")
            axes[2].legend(fontsize=7)
        fig.suptitle(f"{result.attrs.get('problem', '')} (LTI network, {result.members} member(s))")
        return fig
