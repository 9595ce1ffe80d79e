"""Seeds for reproducible parallel sampling (docs/design.md §3.4).

Every random draw of a run derives from one ``numpy.random.SeedSequence``: members, passes,
layers and weight blocks each get a child addressed by an explicit key (what
``SeedSequence.spawn`` would hand out, without its hidden counter).  A block's numbers
therefore depend only on its key, never on how many tasks, threads, workers or row chunks
the run used.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["child_seed", "root_seed"]


def root_seed(random_state=None) -> np.random.SeedSequence:
    """The root ``SeedSequence`` from a scikit-learn style ``random_state``.

    ``None`` draws fresh entropy; an int is the entropy; a ``RandomState`` or ``Generator``
    contributes one 63-bit draw (so repeated fits from the same instance differ, as in
    scikit-learn); a ``SeedSequence`` is used as it is.
    """
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {random_state}")
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(0, 2**63 - 1, dtype=np.int64)))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(0, 2**63 - 1)))
    raise ValueError(
        "random_state must be None, a non-negative int, a numpy RandomState/Generator or a "
        f"SeedSequence, got {random_state!r}"
    )


def child_seed(seed: np.random.SeedSequence, *key: int) -> np.random.SeedSequence:
    """The descendant of ``seed`` at ``key`` (``child_seed(s, i)`` equals ``s.spawn(i+1)[i]``)."""
    return np.random.SeedSequence(
        seed.entropy, spawn_key=tuple(seed.spawn_key) + tuple(int(k) for k in key),
        pool_size=seed.pool_size,
    )
