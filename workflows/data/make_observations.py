"""Regenerate the synthetic observations of the inverse workflows (seeded; run from the repository root).

    python workflows/data/make_observations.py

* ``poisson_source.csv``: ``u = sin πx sin πy`` (``Δu = f``, ``poisson_sin2d``) at 200 uniform
  random points of the unit square, Gaussian noise of standard deviation 0.01
  (``pipeline.pde.inverse.source_inversion_case(200, 0.01, seed=0)``).
* ``brusselator.csv``: the Brusselator (D_u = 0.1, D_v = 0.05, a = 1, b = 1.7) from its
  Fourier reference at 32 points × 10 times of (0, 2], each field with Gaussian noise of 1 %
  of its root mean square.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def poisson_source():
    from pipeline.pde.inverse import source_inversion_case

    _, obs, _ = source_inversion_case(200, 0.01, seed=0)
    np.savetxt(HERE / "poisson_source.csv", np.column_stack([obs.points, obs.values]), delimiter=",",
               header="x,y,u", comments="", fmt="%.17g")


def brusselator():
    from pipeline.pde.system_references import brusselator_reference

    x = np.linspace(0, 2 * np.pi, 33)[:-1] + 0.05
    t = np.linspace(0.0, 2.0, 11)[1:]
    ref = {"d_u": 0.1, "d_v": 0.05, "a": 1.0, "b": 1.7, "t_end": 2.0}
    values = [np.array([brusselator_reference(x, tt, **ref)[i] for tt in t]) for i in range(2)]
    rng = np.random.default_rng(0)
    values = [v + 0.01 * np.sqrt(np.mean(v ** 2)) * rng.standard_normal(v.shape) for v in values]
    tt, xx = np.meshgrid(t, x, indexing="ij")
    np.savetxt(HERE / "brusselator.csv", np.column_stack([xx.ravel(), tt.ravel(), values[0].ravel(), values[1].ravel()]),
               delimiter=",", header="x,t,u,v", comments="", fmt="%.17g")


if __name__ == "__main__":
    poisson_source()
    brusselator()
