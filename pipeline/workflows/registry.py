"""The workflow kinds: which config section selects which kind, and kinds by stored name.

Adding a kind is one module with a :class:`~pipeline.workflows.base.WorkflowKind` subclass and
one line here (docs/design.md §6.3).
"""

from __future__ import annotations

from pipeline.config import ConfigError, register_sections
from pipeline.workflows.base import WorkflowKind
from pipeline.workflows.evolution import EvolutionKind
from pipeline.workflows.hamiltonian import HamiltonianKind
from pipeline.workflows.inverse import InverseKind
from pipeline.workflows.lti import LTIKind
from pipeline.workflows.partitioned import PartitionedKind, is_partitioned
from pipeline.workflows.partitioned_evolution import PartitionedEvolutionKind
from pipeline.workflows.pde import ProblemCache, StaticKind, is_evolution
from pipeline.workflows.supervised import SupervisedKind
from pipeline.workflows.system_evolution import SystemEvolutionKind, is_system_evolution
from pipeline.workflows.systems import SystemKind, is_system

__all__ = ["get_kind", "kind_for", "kinds"]

#: every kind, by the name stored in a run's ``kind`` attribute
KINDS: dict[str, WorkflowKind] = {k.name: k for k in (StaticKind(), EvolutionKind(), SystemKind(), InverseKind(),
                                                      SupervisedKind(), HamiltonianKind(), LTIKind(),
                                                      SystemEvolutionKind(), PartitionedKind(),
                                                      PartitionedEvolutionKind())}

def select_pde(cfg: dict) -> WorkflowKind:
    """A ``problem`` workflow is static, time-dependent or a system by the problem it builds."""
    if cfg.get("inverse") is not None:  # unknowns of the problem fitted to observations
        return KINDS["inverse"]
    problem = ProblemCache()(cfg["problem"])
    if is_system(problem):
        return KINDS["system"]
    if is_system_evolution(problem):
        return KINDS["system_evolution"]
    if is_evolution(problem):
        return KINDS["partitioned_evolution"] if is_partitioned(cfg) else KINDS["evolution"]
    return KINDS["partitioned"] if is_partitioned(cfg) else KINDS["static"]


#: the section a workflow names -> how its kind is chosen (PDEs: by the problem they build)
SECTIONS = {
    "problem": select_pde,
    "data": lambda cfg: KINDS["supervised"],
    "hamiltonian": lambda cfg: KINDS["hamiltonian"],
    "lti": lambda cfg: KINDS["lti"],
}


for _kind in KINDS.values():  # each kind's config sections join the one schema
    register_sections(_kind.section, _kind.sections, _kind.task)


def kinds() -> list[WorkflowKind]:
    return list(KINDS.values())


def kind_for(cfg: dict) -> WorkflowKind:
    """The kind of a validated workflow (exactly one task section is set)."""
    for section, choose in SECTIONS.items():
        if cfg.get(section) is not None:
            return choose(cfg)
    raise ConfigError(f"a workflow needs one of the sections {', '.join(SECTIONS)}")


def get_kind(name: str) -> WorkflowKind:
    """The kind of a stored run."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown workflow kind {name!r} in the store; known: {', '.join(KINDS)}") from None
