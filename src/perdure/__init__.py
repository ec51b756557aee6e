"""Perdure: self-hosted durable functions for Python."""

from perdure.client import Client
from perdure.errors import PerdureError

__all__ = ["Client", "PerdureError"]

__version__ = "0.1.0"
