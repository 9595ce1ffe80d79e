"""Workflow members of the two networks that are computed rather than trained on a PDE.

``hamiltonian``: a Hamiltonian network fitted from samples of a named system (time derivatives,
or flow-map pairs with step ``flow_step``), its Hamiltonian on the test states, its basis (so
``open_result(...).evaluate`` rebuilds it), and a symplectic rollout next to the rollout of the
exact Hamiltonian.

``lti``: a continuous-time network constructed from ``(A, B, C, D)`` of a named system, the
outputs it simulates for the workflow's input, ``scipy.signal.lsim``'s outputs as reference,
and the network itself (its neurons' block-diagonal dynamics and input, output and
feed-through weights) in ``/network/<member>``.

Each member is one task that writes its own regions of the store and marks itself done last;
:mod:`pipeline.runner` prepares the layout and runs the graph.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from pipeline.config import ConfigError
from pipeline.runner import _clock, _log, _mark_done, _padded, _since, _write_diagnostics
from pipeline.store import Layout, basis_variables, progress, write

__all__ = ["HAMILTONIAN_STAGES", "LTI_STAGES", "hamiltonian_layout", "lti_input", "lti_layout",
           "run_hamiltonian_member", "run_lti_member"]

#: timed stages of the members, stored as diagnostics/wall_seconds and cpu_seconds
HAMILTONIAN_STAGES = ("data", "fit", "rollout", "write")
LTI_STAGES = ("construct", "simulate", "reference", "write")


def _already_done(job) -> bool:
    """A member marked done (a resumed run) is skipped."""
    done = bool(progress(job.path)[job.member.index, 0])
    if done:
        _log(job, "already done")
    return done


# ----------------------------------------------------------------------------- Hamiltonian
def _system(section):
    from pipeline.models.hamiltonian_systems import get_system

    try:
        return get_system(section["system"], **section["params"])
    except (ValueError, TypeError) as err:
        raise ConfigError(f"hamiltonian: {err}") from None


def hamiltonian_settings(cfg: dict) -> dict:
    """Keyword arguments of :class:`HamiltonianNetwork` set by a workflow (defaults: ELM, width 1000)."""
    basis = cfg["basis"]
    out = {"width": basis["width"] or 1000, "activation": basis["activation"] or "tanh",
           "sampler": basis["sampler"] or "elm"}
    for key in ("weight_scale", "bias_scale"):
        if basis[key] is not None:
            out[key] = basis[key]
    if cfg["solver"]["rcond"] is not None:
        out["rcond"] = cfg["solver"]["rcond"]
    unused = [f"{s}.{k}" for s, k in (("solver", "ridge"), ("solver", "prune"), ("solver", "kappa"),
                                      ("solver", "relaxation"), ("solver", "boundary"), ("basis", "curvature_scale"),
                                      ("basis", "active_directions"), ("basis", "active_scale"))
              if cfg[s][k] is not None]
    if unused:
        raise ConfigError(f"{unused[0]} does not apply to a 'hamiltonian' workflow; remove it")
    return out


def hamiltonian_layout(cfg: dict, members) -> tuple[Layout, np.ndarray, dict]:
    """Layout, test states and run attributes of a Hamiltonian workflow (checks every member)."""
    from pipeline.models.hamiltonian import HamiltonianNetwork

    systems = [_system(m.config["hamiltonian"]) for m in members]
    for mem in members:
        HamiltonianNetwork(**hamiltonian_settings(mem.config))._sampler()  # validates width, activation order
    first, section = systems[0], cfg["hamiltonian"]
    if any(s.dof != first.dof for s in systems):
        raise ConfigError("the swept parameters change the number of degrees of freedom; sweep other keys")
    test, _ = first.sample(section["n_test"], seed=section["data_seed"] + 1)
    exact = np.stack([s.hamiltonian(test) for s in systems])
    widths = [hamiltonian_settings(m.config)["width"] for m in members]
    width, dim = max(widths), 2 * first.dof
    m = len(members)
    k = min(section["rollout_states"], section["n_test"])
    steps = section["rollout_steps"] + 1
    import dask.array as da

    rollout = xr.Dataset({
        "trajectory": (("member", "step", "trajectory", "dim"),
                       da.full((m, steps, k, dim), np.nan, chunks=(1, steps, k, dim)),
                       {"long_name": "symplectic-Euler rollout of the fitted Hamiltonian"}),
        "trajectory_exact": (("member", "step", "trajectory", "dim"),
                             da.full((m, steps, k, dim), np.nan, chunks=(1, steps, k, dim)),
                             {"long_name": "the same rollout with the exact Hamiltonian"}),
        "energy": (("member", "step", "trajectory"), da.full((m, steps, k), np.nan, chunks=(1, steps, k)),
                   {"long_name": "exact H along the fitted rollout"}),
        "energy_drift": (("member",), da.full((m,), np.nan, chunks=(1,)),
                         {"long_name": "max |H(x_k) - H(x_0)| of the fitted rollout"}),
        "energy_drift_exact": (("member",), da.full((m,), np.nan, chunks=(1,)),
                               {"long_name": "the same for the rollout of the exact H (the integrator's share)"}),
    }, coords={"step_time": ("step", np.arange(steps) * section["rollout_dt"])})
    layout = Layout("hamiltonian", m, test, None, width + 1, width, dim, state=width + 1,
                    singular_values=width + 1, stages=HAMILTONIAN_STAGES, dtype=cfg["output"]["dtype"],
                    u_exact=exact, extra={"rollout": rollout})
    info = {"problem": section["system"], "params": section["params"], "dof": first.dof,
            "flow_step": section["flow_step"] or 0.0, "has_truth": True}
    return layout, test, info


def run_hamiltonian_member(job) -> dict:
    from pipeline.models.hamiltonian import HamiltonianNetwork, energy_drift, symplectic_euler

    m = job.member.index
    if _already_done(job):
        return {"member": m, "skipped": True}
    section = job.member.config["hamiltonian"]
    system = _system(section)
    timings = {}
    start = _clock()
    x, dx = system.sample(section["n_train"], seed=section["data_seed"])
    reference = (x[:1], system.hamiltonian(x[:1]))
    x1 = system.flow(x, section["flow_step"]) if section["flow_step"] else None
    timings["data"] = _since(start)
    start = _clock()
    model = HamiltonianNetwork(**job.settings, random_state=job.member.seed)
    if x1 is None:
        model.fit(x, dx, reference=reference)
    else:
        model.fit_flow_map(x, x1, section["flow_step"], reference=reference)
    timings["fit"] = _since(start)
    start = _clock()
    k = min(section["rollout_states"], len(job.points))
    x0 = job.points[:k]
    steps, dt = section["rollout_steps"], section["rollout_dt"]
    if k:
        fitted = symplectic_euler(model.gradient, x0, dt, steps)
        exact = symplectic_euler(system.gradient, x0, dt, steps)
        energy = np.stack([system.hamiltonian(state) for state in fitted])
        drift = energy_drift(system.hamiltonian, fitted)
        drift_exact = energy_drift(system.hamiltonian, exact)
    timings["rollout"] = _since(start)
    start = _clock()
    h = model.predict(job.points)
    truth = system.hamiltonian(job.points)
    rel_l2 = float(np.linalg.norm(h - truth) / np.linalg.norm(truth))
    region = {"member": slice(m, m + 1)}
    write(job.path, "", {"u": (("member", "point"), h[None])}, {**region, "point": slice(None)})
    coef = np.concatenate([_padded(model.coef_, job.width), [model.intercept_]])
    write(job.path, "coefficients", {"c": (("member", "coefficient"), coef[None])}, {**region, "coefficient": slice(None)})
    write(job.path, "basis", basis_variables(model.network_.layers[0], job.width),
          {**region, "block": slice(0, 1), "neuron": slice(None), "dim": slice(None)})
    write(job.path, "diagnostics", {"rank": (("member", "block"), [[model.rank_]]),
                                    "singular_values": (("member", "block", "sv"),
                                                        _padded(model.singular_values_, job.sv_size)[None, None])},
          {**region, "block": slice(0, 1), "sv": slice(None)})
    if k:
        write(job.path, "rollout", {
            "trajectory": (("member", "step", "trajectory", "dim"), fitted[None]),
            "trajectory_exact": (("member", "step", "trajectory", "dim"), exact[None]),
            "energy": (("member", "step", "trajectory"), energy[None]),
            "energy_drift": (("member",), [drift]), "energy_drift_exact": (("member",), [drift_exact])},
            {**region, "step": slice(None), "trajectory": slice(None), "dim": slice(None)})
    timings["write"] = _since(start)
    _write_diagnostics(job, timings, rel_l2, HAMILTONIAN_STAGES)
    _mark_done(job, 0)
    _log(job, f"fitted: rank {model.rank_}, rel. L2 of H {rel_l2:.3e}"
              + (f", energy drift {drift:.2e} (exact H, same integrator: {drift_exact:.2e})" if k else ""))
    return {"member": m, "rel_l2": rel_l2, "rank": int(model.rank_),
            **({"energy_drift": drift, "energy_drift_exact": drift_exact} if k else {})}


# ----------------------------------------------------------------------------- LTI
def _lti_system(section):
    from pipeline.models.lti_systems import get_lti_system

    try:
        return get_lti_system(section["system"], **section["params"])
    except (ValueError, TypeError) as err:
        raise ConfigError(f"lti: {err}") from None


def lti_input(kind: str, t: np.ndarray, inputs: int, seed) -> np.ndarray:
    """The input signal ``(len(t), inputs)`` of an LTI workflow.

    ``sine``: per input ``sin(2π (i+1) t / T)`` plus a half-unit step at ``(0.3 + 0.2 i) T``;
    ``step``: a unit step at ``T / 10``; ``random``: independent standard normal values at every
    sample (drawn from the member's seed), held piecewise linear or constant.
    """
    span = t[-1] - t[0]
    if kind == "sine":
        return np.column_stack([np.sin(2 * np.pi * (t - t[0]) * (i + 1) / span) + 0.5 * (t > t[0] + (0.3 + 0.2 * i) * span)
                                for i in range(inputs)])
    if kind == "step":
        return np.repeat((t >= t[0] + 0.1 * span).astype(float)[:, None], inputs, axis=1)
    if kind == "random":
        return np.random.default_rng(seed).standard_normal((len(t), inputs))
    raise ConfigError(f"lti.input must be one of sine, step, random; got {kind!r}")


def lti_layout(cfg: dict, members) -> tuple[Layout, np.ndarray, dict]:
    """Layout, output times and run attributes of an LTI workflow (checks every member)."""
    systems = [_lti_system(m.config["lti"]) for m in members]
    shapes = {(s[1].shape[1], s[2].shape[0]) for s in systems}
    if len(shapes) > 1:
        raise ConfigError("the swept parameters change the numbers of inputs or outputs; sweep other keys")
    for mem, (A, _, _, _) in zip(members, systems):
        modes = mem.config["lti"]["modes"]
        if modes is not None and modes >= A.shape[0]:
            raise ConfigError(f"lti.modes must be below the number of states ({A.shape[0]}); got {modes} "
                              "(null keeps all modes)")
    section = cfg["lti"]
    spans = {(m.config["lti"]["t_end"], m.config["lti"]["steps"]) for m in members}
    if len(spans) > 1:
        raise ConfigError("the swept parameters change the output times (lti.t_end, lti.steps); sweep other keys")
    times = np.linspace(0.0, section["t_end"], section["steps"] + 1)
    inputs, outputs = next(iter(shapes))
    layout = Layout("lti", len(members), None, times, 1, 1, 1, state=1, singular_values=1, stages=LTI_STAGES,
                    dtype=cfg["output"]["dtype"], field_axis="output", field_size=outputs,
                    exact_by_members=section["reference"], sampled_basis=False, time_chunk=len(times))
    info = {"problem": section["system"], "params": section["params"], "states": int(systems[0][0].shape[0]),
            "inputs": inputs, "outputs": outputs, "has_truth": section["reference"]}
    return layout, times, info


def _network_dataset(net) -> xr.Dataset:
    """The constructed network: block-diagonal neuron dynamics (COO), input/output/feed-through weights."""
    import scipy.sparse as sp

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


def run_lti_member(job) -> dict:
    import scipy.signal

    from pipeline.models.lti import LTINetwork

    m = job.member.index
    if _already_done(job):
        return {"member": m, "skipped": True}
    section = job.member.config["lti"]
    A, B, C, D = _lti_system(section)
    t = job.times
    u = lti_input(section["input"], t, B.shape[1], job.member.seed)
    timings = {}
    start = _clock()
    try:
        net = LTINetwork(A, B, C, D, modes=section["modes"], cond_limit=section["cond_limit"])
    except ValueError as err:
        raise ConfigError(f"lti: {err}") from None
    timings["construct"] = _since(start)
    start = _clock()
    result = net.simulate(t, u, hold=section["hold"])
    timings["simulate"] = _since(start)
    rel_l2, reference = None, None
    if section["reference"]:
        start = _clock()
        dense = A.toarray() if hasattr(A, "toarray") else A
        _, reference, _ = scipy.signal.lsim((dense, B, C, D), u, t, interp=section["hold"] == "foh")
        reference = np.asarray(reference).reshape(len(t), -1)
        timings["reference"] = _since(start)
        rel_l2 = float(np.linalg.norm(result.y - reference) / np.linalg.norm(reference))
    start = _clock()
    region = {"member": slice(m, m + 1), "time": slice(None), "output": slice(None)}
    fields = {"u": (("member", "time", "output"), result.y[None])}
    if reference is not None:
        fields["u_exact"] = (("member", "time", "output"), reference[None])
    write(job.path, "", fields, region)
    network = _network_dataset(net)
    network["input_signal"] = (("time", "input"), u, {"long_name": "the input u(t) simulated"})
    network.attrs.update({"error_estimate": result.error_estimate, "hold": section["hold"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network.to_zarr(job.path, group=f"network/{m}", mode="w", consolidated=False, zarr_format=3)
    timings["write"] = _since(start)
    _write_diagnostics(job, timings, rel_l2, LTI_STAGES)
    _mark_done(job, 0)
    layers = net.layers
    _log(job, f"{net.method}: {layers['first_order']} first-order, {layers['second_order']} second-order neurons"
              + (f", cascaded blocks {layers['cascaded_blocks']}" if layers["cascaded_blocks"] else "")
              + (f"; rel. error {rel_l2:.3e} against lsim" if reference is not None else ""))
    return {"member": m, "rel_l2": rel_l2, "error_estimate": result.error_estimate,
            "method": net.method, "simulate_seconds": result.seconds,
            "reference_seconds": timings.get("reference", (np.nan,))[0]}
