"""Perdure: self-hosted durable functions for Python."""

from perdure.errors import PerdureError

__all__ = ["PerdureError", "__version__"]

__version__ = "0.1.0"
