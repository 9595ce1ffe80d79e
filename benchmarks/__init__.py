"""The benchmark scripts (run as `python benchmarks/<name>.py`) and the peer report (`python -m benchmarks.report`)."""
