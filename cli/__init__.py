"""The operator command line over the archive (``python -m cli``); never deployed."""

from .main import main

__all__ = ["main"]
