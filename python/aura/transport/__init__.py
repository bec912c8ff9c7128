"""Transports: how a client reaches an engine."""

from aura.transport.base import Transport, TransportStats
from aura.transport.memory import MemoryTransport, ReferenceServer

__all__ = ["MemoryTransport", "ReferenceServer", "Transport", "TransportStats"]
