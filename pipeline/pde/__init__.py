"""PDE solving with sampled networks: domains, operators, conditions, problems, solvers."""

from pipeline.pde.conditions import BoundaryCondition, Dirichlet, Neumann, Periodic, Robin
from pipeline.pde.domains import Ball, BoundarySample, Box, Domain
from pipeline.pde.polygons import LShape, Polygon, UserDomain
from pipeline.pde.operators import (
    LinearOperator,
    advection,
    biharmonic,
    derivative,
    directional,
    gradient,
    helmholtz,
    identity,
    laplacian,
    normal_derivative,
)
from pipeline.pde.problems import PROBLEMS, StaticProblem, get_problem, problem_names
from pipeline.pde.static import StaticSolution, solve_static
from pipeline.pde.evolution import Evolution, EvolutionProblem, EvolutionResult, evolve
from pipeline.pde import evolution_problems as _evolution_problems  # noqa: F401  (registers the problems)
from pipeline.pde import large_domain_problems as _large_domain_problems  # noqa: F401  (registers them)
from pipeline.pde.fields import Equation, Jet
from pipeline.pde.systems import ConvergenceError, SystemProblem, SystemSolution
from pipeline.pde.gauss_newton import solve_system
from pipeline.pde import system_problems as _system_problems  # noqa: F401  (registers the problems)
from pipeline.pde.system_evolution import SystemEvolution, SystemEvolutionProblem, SystemEvolutionResult, evolve_system
from pipeline.pde import system_evolution_problems as _system_evolution_problems  # noqa: F401  (registers them)
from pipeline.pde.observations import Observations
from pipeline.pde.inverse_evolution import IdentifiabilityError, InverseResult, estimate_parameters, gridded_observations
from pipeline.pde.partition import Partition
from pipeline.pde.partitioned import PartitionedSolution, solve_partitioned
from pipeline.pde.partitioned_evolution import PartitionedEvolution, evolve_partitioned

__all__ = [
    "PROBLEMS",
    "Ball",
    "BoundaryCondition",
    "BoundarySample",
    "Box",
    "Dirichlet",
    "ConvergenceError",
    "Domain",
    "Equation",
    "Evolution",
    "EvolutionProblem",
    "EvolutionResult",
    "IdentifiabilityError",
    "InverseResult",
    "Jet",
    "LShape",
    "LinearOperator",
    "Neumann",
    "Observations",
    "Partition",
    "PartitionedEvolution",
    "PartitionedSolution",
    "Periodic",
    "Polygon",
    "Robin",
    "StaticProblem",
    "StaticSolution",
    "SystemEvolution",
    "SystemEvolutionProblem",
    "SystemEvolutionResult",
    "SystemProblem",
    "SystemSolution",
    "UserDomain",
    "advection",
    "biharmonic",
    "derivative",
    "directional",
    "estimate_parameters",
    "evolve",
    "evolve_partitioned",
    "evolve_system",
    "get_problem",
    "gradient",
    "gridded_observations",
    "helmholtz",
    "identity",
    "laplacian",
    "normal_derivative",
    "problem_names",
    "solve_partitioned",
    "solve_static",
    "solve_system",
]
