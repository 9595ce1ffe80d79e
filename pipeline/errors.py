"""Errors in what a user gave (a workflow, a ``--set`` value, a path): one line, no traceback.

Its own module so that the readers of user input (``config``, ``yaml_input``) share it without
importing each other; :mod:`pipeline.config` re-exports it.
"""

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """An invalid workflow or input; the message names the offending key."""
