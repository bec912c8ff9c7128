"""Transports carry requests of the bundled protocol (API.md §14)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Transport", "TransportStats"]


@dataclass
class TransportStats:
    """Counters a transport keeps about its own traffic."""

    requests: int = 0
    errors: int = 0
    open_cursors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "open_cursors": self.open_cursors,
            **self.extra,
        }


class Transport(ABC):
    """Where a client's requests go. ``kind`` names it in ``health()``."""

    kind: str = "transport"

    def __init__(self) -> None:
        self.stats = TransportStats()

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...
