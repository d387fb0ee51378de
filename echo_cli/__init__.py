"""echo-cli: learn how recurrent networks remember by echoing random integers."""

__version__ = "0.1.0"
