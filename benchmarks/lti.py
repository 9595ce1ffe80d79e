"""Continuous-time networks for LTI systems against scipy.signal.lsim.

For each system: the output error of the network against ``lsim`` (first-order hold, the
same piecewise-linear input), as relative L2 over the trajectory and as max |Δy| / max |y|,
the a-priori estimate the network reports, the construction time, and the simulation time of
1000 steps against lsim's (speed-up after construction).

    python benchmarks/lti.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import scipy.signal  # noqa: E402

from _harness import markdown_table, write_results  # noqa: E402


def main() -> None:
    from pipeline.models.lti import LTINetwork
    from pipeline.models.lti_systems import convection_diffusion, diffusion_2d, jordan_system, mass_spring_chain

    cases = [
        ("diffusion 60×60 (3600 states), all modes", diffusion_2d(60), None, 1.0),
        ("diffusion 60×60 (3600 states), 100 modes", diffusion_2d(60), 100, 1.0),
        ("convection–diffusion, cell Péclet 0.97", convection_diffusion(100, 0.97), None, 2.0),
        ("Jordan block (defective)", jordan_system(), None, 5.0),
        ("mass–spring chain, 30 masses", mass_spring_chain(30), None, 60.0),
    ]
    rows, reference_cache = [], {}
    for label, (A, B, C, D), modes, t_end in cases:
        t = np.linspace(0, t_end, 1001)
        u = np.column_stack([np.sin(2 * np.pi * t * (i + 1) / t_end) + 0.5 * (t > (0.3 + 0.2 * i) * t_end)
                             for i in range(B.shape[1])])
        system = label.split(",")[0]  # the two diffusion rows share one lsim reference
        if system not in reference_cache:
            dense = A.toarray() if hasattr(A, "toarray") else A
            start, cpu = time.perf_counter(), time.process_time()
            _, ref, _ = scipy.signal.lsim((dense, B, C, D), u, t)
            reference_cache[system] = (ref.reshape(len(t), -1), time.perf_counter() - start,
                                       time.process_time() - cpu)
        ref, lsim_seconds, lsim_cpu = reference_cache[system]
        start = time.perf_counter()
        net = LTINetwork(A, B, C, D, modes=modes)
        construct = time.perf_counter() - start
        cpu = time.process_time()
        result = net.simulate(t, u)
        simulate_cpu = time.process_time() - cpu
        rows.append({
            "system": label, "method": net.method, "neurons": str(net.layers),
            "rel_l2": float(np.linalg.norm(result.y - ref) / np.linalg.norm(ref)),
            "max_rel": float(np.abs(result.y - ref).max() / np.abs(ref).max()),
            "estimate": result.error_estimate, "construct_s": construct, "simulate_s": result.seconds,
            "simulate_cpu_s": simulate_cpu, "lsim_s": lsim_seconds, "lsim_cpu_s": lsim_cpu,
            "speedup": lsim_seconds / result.seconds,
        })
        print(f"  {label}: done", file=sys.stderr)
    path = write_results("lti", {"rows": rows})
    print("\nLTI networks against scipy.signal.lsim (1000 steps, piecewise-linear input)\n")
    print(markdown_table(rows, [("system", "system", ""), ("method", "method", ""), ("rel_l2", "rel. L2", ".1e"),
                                ("max_rel", "max rel.", ".1e"), ("estimate", "a-priori estimate", ".1e"),
                                ("construct_s", "construct s", ".2f"), ("simulate_s", "simulate s", ".4f"),
                                ("simulate_cpu_s", "simulate CPU s", ".4f"), ("lsim_s", "lsim s", ".2f"),
                                ("lsim_cpu_s", "lsim CPU s", ".2f"), ("speedup", "speed-up", ".0f")]))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
