"""Sampled Hamiltonian networks against a back-propagation-trained Hamiltonian neural network.

Same training data (uniform samples of the phase-space box and their exact time derivatives),
same independent test set (5000 uniform points), same error: the relative L2 error of H after
fixing the additive constant at the same reference point. Each contender runs in its own
process; wall and CPU seconds (all threads) of the fit are reported.

Ours: one sampled hidden layer and one least-squares solve over Hamilton's equations
(configurations of the acceptance runs). The peer: the Hamiltonian neural network of Greydanus
et al. (2019) in PyTorch: an MLP ``2n-200-200-1`` (tanh, float64, inputs scaled to [-1, 1],
output scaled by the RMS of the target derivatives), trained by Adam (learning rate 1e-3, cosine decay to 1e-5, random mini-batches of 1000 points) on the same loss,
``|∂_p H - q̇|² + |∂_q H + ṗ|²`` through autograd. It needs PyTorch (``pip install
torch==2.13.0``, or the ``peers`` extra); without it its rows are skipped.

    python benchmarks/hamiltonian.py [--steps 5000] [--batch 1000] [--henon-heiles | --systems NAME ...]
    python benchmarks/hamiltonian.py --flow-map

``--flow-map`` fits the pendulum from pairs ``(x_k, x_{k+1})`` of its exact flow map (step
Δt = 0.01 and 0.05, 8000 pairs, ELM width 800) with and without the first-order correction
(``results/hamiltonian_flow_map.json``; no back-propagation peer).

Hénon–Heiles (width 5000, 20k points, A-SWIM and ELM: about 5 minutes here) runs only with
``--henon-heiles`` or when named in ``--systems``; results go to ``results/hamiltonian.json``, or
``results/hamiltonian_<systems>.json`` for a selection.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import blas_threads, entry, markdown_table, measure, run_isolated, write_results  # noqa: E402

SCRIPT = str(Path(__file__).resolve())

# system -> (training points, our configurations): those of the acceptance runs, and for the
# double pendulum also a wider one (its error falls slowly with the width)
CASES = {
    "pendulum": (10_000, [dict(width=1000, sampler="elm", weight_scale=1.0, bias_scale=3.0)]),
    "lotka_volterra": (10_000, [dict(width=1000, sampler="aswim")]),
    "double_pendulum": (10_000, [dict(width=2000, sampler="elm", weight_scale=0.5, bias_scale=2.0),
                                 dict(width=4000, sampler="elm", weight_scale=0.5, bias_scale=2.0)]),
    "henon_heiles": (20_000, [dict(width=5000, sampler="aswim"), dict(width=5000, sampler="elm")]),
    # 20 dimensions: smooth sine ridge features (the acceptance test's configuration)
    "coupled_oscillators": (5_000, [dict(width=1500, activation="sin", sampler="elm", weight_scale=0.15,
                                         bias_scale=math.pi)]),
}
#: parameters of the systems that take some
SYSTEM_PARAMS = {"coupled_oscillators": {"dof": 10}}
#: the flow-map fits: steps Δt, pairs, configuration
FLOW_MAP = {"steps": (0.01, 0.05), "pairs": 8000, "config": dict(width=800, weight_scale=1.0, bias_scale=3.0)}


def _data(system_name: str, n_train: int):
    from pipeline.models.hamiltonian_systems import get_system

    system = get_system(system_name, **SYSTEM_PARAMS.get(system_name, {}))
    x, dx = system.sample(n_train, seed=0)
    xt, _ = system.sample(5000, seed=1)
    return system, x, dx, xt


def _relative_error(predict, system, x, xt) -> float:
    import numpy as np

    h_ref = system.hamiltonian(x[:1])
    ht = system.hamiltonian(xt)
    h = predict(xt) - predict(x[:1]) + h_ref  # the constant fixed at the same reference point
    return float(np.linalg.norm(h - ht) / np.linalg.norm(ht))


def run_ours(system_name: str, case: int) -> dict:
    from pipeline.models.hamiltonian import HamiltonianNetwork

    n_train, configs = CASES[system_name]
    config = configs[case]
    system, x, dx, xt = _data(system_name, n_train)
    model, metrics = measure(lambda: HamiltonianNetwork(random_state=0, **config).fit(
        x, dx, reference=(x[:1], system.hamiltonian(x[:1]))))
    return {**metrics, "rel_l2": _relative_error(model.predict, system, x, xt),
            "method": f"sampled, {config['sampler'].upper()} width {config['width']}"}


def run_flow_map(dt: float, correct: bool) -> dict:
    """The pendulum from pairs of its exact flow map (integrated to 1e-13) with step ``dt``."""
    import scipy.integrate

    from pipeline.models.hamiltonian import HamiltonianNetwork

    system, x0, _, xt = _data("pendulum", FLOW_MAP["pairs"])
    flow = scipy.integrate.solve_ivp(lambda t, y: system.vector_field(y.reshape(-1, 2)).ravel(), (0, dt),
                                     x0.ravel(), method="DOP853", rtol=1e-13, atol=1e-13)
    x1 = flow.y[:, -1].reshape(-1, 2)
    config = FLOW_MAP["config"]
    model, metrics = measure(lambda: HamiltonianNetwork(random_state=0, **config).fit_flow_map(
        x0, x1, dt, reference=(x0[:1], system.hamiltonian(x0[:1])), correct=correct))
    return {**metrics, "rel_l2": _relative_error(model.predict, system, x0, xt), "dt": dt, "corrected": correct,
            "method": f"sampled from flow-map pairs, ELM width {config['width']}, "
                      + ("corrected" if correct else "uncorrected")}


def run_hnn(system_name: str, steps: int, batch: int) -> dict:
    import numpy as np
    import torch

    n_train, _ = CASES[system_name]
    system, x, dx, xt = _data(system_name, n_train)
    torch.manual_seed(0)
    dim = x.shape[1]
    n = dim // 2
    centre, half = (system.upper + system.lower) / 2, (system.upper - system.lower) / 2
    net = torch.nn.Sequential(torch.nn.Linear(dim, 200), torch.nn.Tanh(), torch.nn.Linear(200, 200), torch.nn.Tanh(),
                              torch.nn.Linear(200, 1)).double()
    xs = torch.tensor((x - centre) / half)
    # ∂H/∂x_scaled = half ∂H/∂x, so (∂_p H, ∂_q H) = (q̇, -ṗ) reads, in scaled coordinates:
    target = np.concatenate([dx[:, :n] * half[n:], -dx[:, n:] * half[:n]], axis=1)
    # the network learns H / sigma (unit-size gradients: Hamiltonians spanning thousands, as
    # Lotka–Volterra's on [0, 8]², are otherwise out of reach of Adam's steps)
    sigma = float(np.sqrt(np.mean(target ** 2)))
    target = torch.tensor(target / sigma)

    def train():
        optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps, eta_min=1e-5)
        generator = torch.Generator().manual_seed(1)
        for _ in range(steps):
            idx = torch.randint(len(x), (batch,), generator=generator)
            xb = xs[idx].detach().requires_grad_(True)
            optimiser.zero_grad()
            (grad,) = torch.autograd.grad(net(xb).sum(), xb, create_graph=True)
            loss = torch.mean((torch.cat([grad[:, n:], grad[:, :n]], dim=1) - target[idx]) ** 2)
            loss.backward()
            optimiser.step()
            schedule.step()
        return float(loss)

    final_loss, metrics = measure(train)

    def predict(points):
        with torch.no_grad():
            return sigma * net(torch.tensor((points - centre) / half)).numpy()[:, 0]

    return {**metrics, "rel_l2": _relative_error(predict, system, x, xt), "final_loss": final_loss,
            "method": f"HNN 200-200 tanh, {steps} Adam steps of {batch} (PyTorch {torch.__version__}, float64)"}


def run_contender(spec: dict) -> dict:
    if spec["kind"] == "ours":
        return run_ours(spec["system"], spec["case"])
    if spec["kind"] == "flow_map":
        return run_flow_map(spec["dt"], spec["corrected"])
    return run_hnn(spec["system"], spec["steps"], spec["batch"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000, help="Adam steps of the back-propagation peer")
    parser.add_argument("--batch", type=int, default=1000, help="its mini-batch size")
    parser.add_argument("--henon-heiles", action="store_true", help="include Hénon–Heiles (width 5000, minutes)")
    parser.add_argument("--systems", nargs="+", choices=list(CASES), help="only these systems")
    parser.add_argument("--flow-map", action="store_true", help="only the pendulum flow-map fits")
    args = parser.parse_args()
    if args.flow_map:
        rows = []
        for dt in FLOW_MAP["steps"]:
            for corrected in (True, False):
                out = run_isolated(SCRIPT, {"kind": "flow_map", "dt": dt, "corrected": corrected}, env=blas_threads(2))
                rows.append({"system": "pendulum", "training points": FLOW_MAP["pairs"], **out})
                print(f"  dt {dt} / {out['method']}: rel. L2 {out['rel_l2']:.2e} in {out['wall_s']:.1f} s",
                      file=sys.stderr)
        path = write_results("hamiltonian_flow_map", {"rows": rows})
        print("\nPendulum from flow-map pairs (symplectic Euler relations), with and without the correction\n")
        print(markdown_table(rows, [("dt", "Δt", "g"), ("method", "method", ""), ("rel_l2", "rel. L2 of H", ".1e"),
                                    ("wall_s", "wall s", ".1f"), ("cpu_s", "CPU s", ".1f")]))
        print(f"\nwritten to {path}")
        return
    have_torch = importlib.util.find_spec("torch") is not None
    if not have_torch:
        print("PyTorch is not installed: the back-propagation rows are skipped (pip install torch==2.13.0)",
              file=sys.stderr)
    systems = args.systems or [s for s in CASES if s != "henon_heiles" or args.henon_heiles]
    rows = []
    for system in systems:
        contenders = [{"kind": "ours", "system": system, "case": i} for i in range(len(CASES[system][1]))]
        if have_torch:
            contenders.append({"kind": "hnn", "system": system, "steps": args.steps, "batch": args.batch})
        for spec in contenders:
            # both sides get the machine's two cores (our BLAS and threads; PyTorch's intra-op pool)
            out = run_isolated(SCRIPT, spec, env=blas_threads(2))
            rows.append({"system": system, "training points": CASES[system][0], **out})
            print(f"  {system} / {out['method']}: rel. L2 {out['rel_l2']:.2e} in {out['wall_s']:.1f} s",
                  file=sys.stderr)
    for system in systems:
        ours = [r for r in rows if r["system"] == system and not r["method"].startswith("HNN")]
        peer = [r for r in rows if r["system"] == system and r["method"].startswith("HNN")]
        for row in ours if peer else []:
            row["error_ratio"] = peer[0]["rel_l2"] / row["rel_l2"]
            row["cpu_ratio"] = peer[0]["cpu_s"] / row["cpu_s"]
    name = "hamiltonian" if not args.systems else "hamiltonian_" + "_".join(args.systems)
    path = write_results(name, {"steps": args.steps, "batch": args.batch, "rows": rows})
    print("\nHamiltonian networks: sampled (one least-squares solve) vs back-propagation (HNN), same data\n")
    print(markdown_table(rows, [("system", "system", ""), ("training points", "points", "d"), ("method", "method", ""),
                                ("rel_l2", "rel. L2 of H", ".1e"), ("wall_s", "wall s", ".1f"),
                                ("cpu_s", "CPU s", ".1f"), ("error_ratio", "HNN error / ours", ".1e"),
                                ("cpu_ratio", "HNN CPU / ours", ".2g")]))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    entry(run_contender, main)
