"""echo-cli: learn how recurrent networks remember by echoing random integers.

The version below is the only place it is written: pyproject.toml reads it when the package is
built, and `echo-cli --version` and metrics.json's provenance report it.
"""

__version__ = "0.2.0"
