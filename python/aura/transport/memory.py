"""The in-process transport: clients that share a ``ReferenceServer`` share
one in-memory engine (API.md §3.3)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import aura._core as _core
from aura._convert import to_storage
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

    @property
    def _tables(self) -> _Tables:
        """``{model: {pk: row}}`` over the engine, for tests that seed or
        inspect rows directly (rows are storage-form dicts; writes go through
        the engine with its constraints)."""
        return _Tables(self)


def _registered(name: str) -> Any:
    from aura.models import get_model

    cls = get_model(name)
    if cls is None:
        raise KeyError(name)
    return cls


class _Tables(Mapping[str, "_Table"]):
    def __init__(self, server: ReferenceServer) -> None:
        self._server = server

    def __getitem__(self, name: str) -> _Table:
        return _Table(self._server, _registered(name))

    def __iter__(self) -> Iterator[str]:
        return iter(self._server.table_names())

    def __len__(self) -> int:
        return len(self._server.table_names())


class _Table(MutableMapping[Any, dict[str, Any]]):
    """One table as ``{pk: storage-form row}``; created on first use."""

    def __init__(self, server: ReferenceServer, cls: Any) -> None:
        self._cls = cls
        self._name: str = cls.__name__
        self._pk: str | None = cls.model_schema().primary_key
        self._conn = _core.MemoryConnection(server.engine)
        self._conn.register(_core.ModelPlan(*cls._aura_plan()))
        server.schemas.setdefault(self._name, cls.model_schema())

    def _ir(self, operation: str, key: Any = None) -> dict[str, Any]:
        filters = []
        if key is not None:
            field = {"kind": "field", "model": self._name, "field": self._pk}
            literal = {"kind": "literal", "value": to_storage(key)}
            filters.append({"kind": "compare", "op": "eq", "left": field, "right": literal})
        ir: dict[str, Any] = {"operation": operation, "model": self._name, "filters": filters}
        if operation == "select":
            ir["consistency"] = "strong"
        return ir

    def __getitem__(self, key: Any) -> dict[str, Any]:
        rows = self._conn.execute(self._ir("select", key))
        if not rows:
            raise KeyError(key)
        row: dict[str, Any] = rows[0].to_dict()
        return row

    def __setitem__(self, key: Any, row: Mapping[str, Any]) -> None:
        values = dict(row)
        if self._pk is not None:
            values[self._pk] = key
        self._conn.insert(self._name, [self._cls(**values)], "replace")

    def __delitem__(self, key: Any) -> None:
        if not self._conn.execute(self._ir("delete", key)):
            raise KeyError(key)

    def __iter__(self) -> Iterator[Any]:
        rows = self._conn.execute(self._ir("select"))
        return iter([row.primary_key_value() for row in rows])

    def __len__(self) -> int:
        return int(self._conn.execute(self._ir("count")))


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
