"""The installed version (a module of its own, so that any module may import it without a cycle)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("swim-pipeline")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
