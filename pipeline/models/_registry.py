"""Looking up a named system with its parameters, with errors that list what exists."""

from __future__ import annotations

import inspect
from typing import Callable


def build_named(registry: dict[str, Callable], name: str, params: dict, what: str):
    """``registry[name](**params)``; an unknown name or parameter is a ValueError naming the choices."""
    try:
        factory = registry[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(registry)}") from None
    allowed = inspect.signature(factory).parameters
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"{what} {name!r} has no parameter {unknown[0]!r}; its parameters: "
                         f"{', '.join(allowed) or 'none'}")
    return factory(**params)
