"""YAML from users (workflow files, ``--set`` values), read with limits before anything else.

A workflow is data: plain mappings, lists, strings, numbers, booleans and nulls.  Before the
text is turned into Python objects its event stream is scanned (PyYAML's parser is iterative,
its composer recursive): too large a text, nesting deeper than :data:`MAX_DEPTH`, more than
:data:`MAX_NODES` values, or any alias (``*name``, the "billion laughs" expansion) is refused
with a :class:`pipeline.errors.ConfigError`.  The values are then built by a safe loader that
also refuses duplicate keys (YAML's "last one wins" hides typos) and every tag outside the core
schema (``!!set``, ``!!binary``, ``!!timestamp``, ``!!omap`` …).
"""

from __future__ import annotations

import yaml

from pipeline.errors import ConfigError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "read_yaml"]

MAX_BYTES = 1 << 20  # a workflow is a few kB; 1 MiB leaves room for long sweep lists
MAX_DEPTH = 32  # the schema nests 4 deep; sweep values and parameters a few more
MAX_NODES = 200_000

_PLAIN = (str, int, float, bool, type(None), list, dict)


class _Loader(yaml.SafeLoader):
    """The safe loader, with duplicate keys refused."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (list, dict)):
                raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a plain value",
                                                        key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)


def _scan(text: str, where: str) -> None:
    depth = nodes = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            raise ConfigError(f"{where}: YAML aliases (*{event.anchor}) are not accepted (line {mark.line + 1}); "
                              "write the value out")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"{where}: nested more than {MAX_DEPTH} levels deep (line {event.start_mark.line + 1})")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        if isinstance(event, (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            nodes += 1
            if nodes > MAX_NODES:
                raise ConfigError(f"{where}: more than {MAX_NODES} values; a workflow is a few kB of settings")


def _check_types(value, where: str, path: str = "") -> None:
    if not isinstance(value, _PLAIN):
        kind = {set: "a set (!!set)", bytes: "binary data (!!binary)"}.get(type(value), type(value).__name__)
        raise ConfigError(f"{where}: {path or 'the value'} is {kind}; only mappings, lists, strings, numbers, "
                          "booleans and null are accepted")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_types(item, where, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_types(item, where, f"{path}[{i}]")


def read_yaml(text: str, where: str):
    """The plain Python value of a user's YAML ``text``; ``where`` names it in errors."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ConfigError(f"{where}: larger than {MAX_BYTES // 1024} KiB; a workflow is a few kB of settings")
    try:
        _scan(text, where)
        value = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no Python objects
    except yaml.MarkedYAMLError as err:
        line = f" (line {err.problem_mark.line + 1})" if err.problem_mark is not None else ""
        raise ConfigError(f"{where}: not valid YAML: {err.problem or err.context}{line}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: not valid YAML: {' '.join(str(err).split())}") from None
    _check_types(value, where)
    return value
