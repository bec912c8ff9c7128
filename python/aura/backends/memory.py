"""The in-memory engine backend (``memory://``, ``aura+memory://``).

Every call runs the Rust engine in process and completes on the spot, so
these coroutines never suspend: no thread hop for microsecond work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import aura._core as _core
from aura.backends.base import Backend
from aura.backends.capabilities import BackendCapabilities, for_backend
from aura.schema import MigrationPlan, compile_models, generate_migration
from aura.transport.memory import MemoryTransport

if TYPE_CHECKING:
    from aura.models import AuraModel

__all__ = ["MemoryBackend"]

# The engine runs every documented search clause (BM25, exact and HNSW
# vectors, hybrid fusion), aggregations, ranked pages and deadlines.
_CAPABILITIES = for_backend("memory")


def plan_of(model: type[AuraModel]) -> Any:
    """The compiled ``ModelPlan`` of a model class (cached on the class)."""
    plan = model.__dict__.get("__aura_native_plan__")
    if plan is None:
        plan = _core.ModelPlan(*model._aura_plan())
        type.__setattr__(model, "__aura_native_plan__", plan)
    return plan


class MemoryBackend(Backend):
    name = "memory"
    # Fixed for this backend: a plain attribute, read once per request.
    capabilities: BackendCapabilities = _CAPABILITIES

    def __init__(self, transport: MemoryTransport | None = None) -> None:
        self.transport = transport if transport is not None else MemoryTransport()
        self.server = self.transport.server
        self.connection = _core.MemoryConnection(self.server.engine)
        # The engine answers in the call: the client skips the coroutine.
        self.execute_now = self.connection.execute
        self.select_now = self.connection.select

    async def open(self) -> None:
        await self.transport.open()

    async def close(self) -> None:
        await self.transport.close()

    async def ping(self) -> bool:
        return self.transport.is_open

    async def create_schema(self, models: Iterable[type[AuraModel]]) -> None:
        for model in models:
            self.connection.register(plan_of(model))
            self.server.schemas[model.__name__] = model.model_schema()

    async def drop_schema(self, models: Iterable[type[AuraModel]]) -> None:
        """Drop each model's table and its rows (§16 row 39)."""
        for model in models:
            self.connection.drop_table(model.__name__)
            self.server.schemas.pop(model.__name__, None)

    async def diff_schema(self, models: Iterable[type[AuraModel]]) -> MigrationPlan:
        """Changes that would bring the held tables of ``models`` to their
        declared schema: a model without a table shows up as ``add_model``.
        Tables of models not passed are left out of the plan."""
        target = compile_models(list(models))
        held = self.server.held_schemas()
        current = [held[schema.name] for schema in target if schema.name in held]
        return generate_migration(current, target)

    async def execute(self, ir: dict[str, Any], txn: Any = None) -> Any:
        return self.connection.execute(ir, txn)

    async def insert(
        self,
        model: type[AuraModel],
        instances: Sequence[AuraModel],
        on_conflict: str | None = None,
        txn: Any = None,
    ) -> int:
        return int(self.connection.insert(model.__name__, list(instances), on_conflict, txn))

    async def upsert(
        self, ir: dict[str, Any], instance: AuraModel | None, txn: Any = None
    ) -> AuraModel | None:
        return self.connection.upsert(ir, instance, txn)

    async def raw(
        self, statement: str, params: Any = None, txn: Any = None
    ) -> list[dict[str, Any]]:
        return self.connection.raw(statement, params, txn)

    async def open_cursor(self, ir: dict[str, Any], txn: Any = None) -> _MemoryCursor:
        return _MemoryCursor(self, self.connection.cursor(ir, txn))

    def explain(self, ir: dict[str, Any]) -> dict[str, Any]:
        return self.connection.explain(ir)

    async def begin(self, isolation: str) -> Any:
        return self.connection.begin()

    async def commit(self, txn: Any) -> None:
        self.connection.commit(txn)

    async def rollback(self, txn: Any) -> None:
        self.connection.rollback(txn)


class _MemoryCursor:
    """A cursor over a fixed result set; hydrates one batch per fetch."""

    def __init__(self, backend: MemoryBackend, cursor: Any) -> None:
        self._backend = backend
        self._cursor = cursor
        backend.server.open_cursor_count += 1

    async def fetch(self, batch_size: int) -> list[Any]:
        return self._cursor.fetch(self._backend.connection, batch_size)

    def close(self) -> None:
        if self._cursor.is_open:
            self._cursor.close()
            self._backend.server.open_cursor_count -= 1


def from_config(config: Any, *, transport: MemoryTransport | None = None) -> MemoryBackend:
    """Registry hook: memory DSNs ignore host and path (API.md §3.3)."""
    return MemoryBackend(transport)
