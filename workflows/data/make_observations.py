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
    from pipeline.pde.system_evolution_problems import brusselator_grid

    t, x, values = brusselator_grid(0.01, 2.0, seed=0)
    tt, xx = np.meshgrid(t, x[:, 0], indexing="ij")
    np.savetxt(HERE / "brusselator.csv", np.column_stack([xx.ravel(), tt.ravel(), values["u"].ravel(),
                                                          values["v"].ravel()]),
               delimiter=",", header="x,t,u,v", comments="", fmt="%.17g")


if __name__ == "__main__":
    poisson_source()
    brusselator()
