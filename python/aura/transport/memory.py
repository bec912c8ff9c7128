"""The in-process transport: clients that share a ``ReferenceServer`` share
one in-memory engine (API.md §3.3)."""

from __future__ import annotations

from typing import Any

import aura._core as _core
from aura.config import DEFAULT_MAX_PAYLOAD_BYTES
from aura.errors import AuraSchemaError
from aura.transport.base import Transport

__all__ = ["MemoryTransport", "ReferenceServer"]


class ReferenceServer:
    """One in-memory engine that several clients can share."""

    def __init__(self) -> None:
        self.engine = _core.MemoryEngine()
        self.open_cursor_count = 0
        # The compiled schema of each table created through this server, for
        # ``MemoryBackend.diff_schema`` (the engine keeps its own copy in Rust).
        self.schemas: dict[str, Any] = {}  # name -> aura.schema.ModelSchema

    def held_schemas(self) -> dict[str, Any]:
        """``{name: schema}`` of the tables the engine holds now."""
        names = self.engine.table_names()
        return {name: self.schemas[name] for name in names if name in self.schemas}

    def load_schema(self, models: list[dict[str, Any]]) -> None:
        """Create tables for schema-document model dicts whose classes are
        registered (``aura.registered_models()``)."""
        from aura.models import get_model

        connection = _core.MemoryConnection(self.engine)
        for entry in models:
            name = entry.get("name") if isinstance(entry, dict) else None
            cls = get_model(name) if isinstance(name, str) else None
            if cls is None:
                raise AuraSchemaError(f"Unknown model '{name}'", context={"model": name})
            connection.register(_core.ModelPlan(*cls._aura_plan()))
            self.schemas[cls.__name__] = cls.model_schema()

    def table_names(self) -> list[str]:
        return sorted(self.engine.table_names())


class MemoryTransport(Transport):
    """Reach a ``ReferenceServer`` in process (a fresh one by default)."""

    kind = "memory"

    def __init__(
        self,
        server: ReferenceServer | None = None,
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        super().__init__()
        self.server = server if server is not None else ReferenceServer()
        self.max_payload_bytes = max_payload_bytes
        self.is_open = False

    async def open(self) -> None:
        self.is_open = True

    async def close(self) -> None:
        self.is_open = False
