"""Poise: DORA delivery figures beside SLOs, error budgets and incidents."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("poise")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0.0.0+checkout"
