"""The SQLite backend (``sqlite://``, ``sqlite+aiosqlite://``).

The driver is built into the Rust core (rusqlite with a bundled SQLite): no
Python driver package is needed. Every call queues a job on the driver's own
threads and awaits a future that the driver completes through the event
loop, so SQLite never blocks the loop. See docs/sqlite.md for the semantics
(paths, transactions, timeouts, what SQL cannot express).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import aura._core as _core
from aura._convert import to_storage
from aura.backends.base import Backend
from aura.backends.capabilities import BackendCapabilities, for_backend
from aura.backends.memory import plan_of
from aura.backends.registry import SQLITE_MEMORY
from aura.backends.sql_schema import plan_against
from aura.config import ClientConfig, PoolConfig, TLSConfig, config_error
from aura.schema import MigrationPlan, compile_models

if TYPE_CHECKING:
    from aura.models import AuraModel

__all__ = ["DEFAULT_BUSY_TIMEOUT_S", "SqliteBackend", "from_config"]

# Beyond the §8 column: `.timeout(ms)` is enforced by SQLite's progress
# handler (interrupt), aggregate() runs in SQL, and search_text ranks with
# FTS5 bm25() (docs/sql-search.md). Vector and hybrid search stay False.
_CAPABILITIES = replace(
    for_backend("sqlite"),
    query_timeouts=True,
    aggregations_and_facets=True,
    full_text_search=True,
)

DEFAULT_BUSY_TIMEOUT_S = 5.0
_MODES = {"ro": True, "rw": False, "rwc": False}
_KNOWN_OPTIONS = ("timeout", "mode")


def _options(config: ClientConfig) -> tuple[float, bool]:
    """``timeout`` (seconds a writer waits for the lock) and ``mode``;
    any other DSN option is rejected rather than ignored (§16 row 28)."""
    options = dict(config.options)
    unknown = sorted(set(options) - set(_KNOWN_OPTIONS))
    if unknown:
        raise config_error(
            f"Unsupported sqlite DSN option(s): {', '.join(unknown)}; "
            f"supported: {', '.join(_KNOWN_OPTIONS)}",
            options=unknown,
        )
    try:
        busy = float(options.get("timeout", DEFAULT_BUSY_TIMEOUT_S))
    except ValueError:
        raise config_error("sqlite DSN option 'timeout' must be a number of seconds") from None
    if busy < 0:
        raise config_error("sqlite DSN option 'timeout' must be non-negative")
    mode = options.get("mode", "rwc")
    if mode not in _MODES:
        raise config_error("sqlite DSN option 'mode' must be one of ro, rw, rwc")
    return busy, _MODES[mode]


def _check_unsupported(config: ClientConfig) -> None:
    if config.auth is not None:
        raise config_error("SQLite has no authentication; remove auth= / DSN credentials")
    if config.tls != TLSConfig():
        raise config_error("SQLite is a local file; tls= does not apply")


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, config: ClientConfig) -> None:
        _check_unsupported(config)
        self._busy_timeout_s, self._read_only = _options(config)
        database = config.database or SQLITE_MEMORY
        # None: a private database for this client (fresh per connection).
        self._path: str | None = None if database == SQLITE_MEMORY else database
        self._pool: PoolConfig = config.pool
        self._conn: Any = None

    @property
    def capabilities(self) -> BackendCapabilities:
        return _CAPABILITIES

    @property
    def path(self) -> str:
        """The database file (a temporary file for ``:memory:``)."""
        return str(self._connection().path)

    def _connection(self) -> Any:
        if self._conn is None:
            from aura.errors import AuraClientClosedError

            raise AuraClientClosedError("Client is closed")
        return self._conn

    async def _call(self, method: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        method(*args, future, loop)
        return await future

    async def open(self) -> None:
        pool = self._pool
        self._conn = await self._call(
            _core.SqliteConnection.open,
            self._path,
            self._read_only,
            self._busy_timeout_s,
            (
                pool.min_size,
                pool.max_size,
                pool.acquire_timeout_s,
                pool.max_lifetime_s,
                pool.idle_timeout_s,
            ),
        )

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def ping(self) -> bool:
        rows = await self.raw("SELECT 1 AS ok")
        return rows == [{"ok": 1}]

    async def create_schema(self, models: Iterable[type[AuraModel]]) -> None:
        conn = self._connection()
        names = []
        for model in models:
            conn.register(plan_of(model))
            names.append(model.__name__)
        await self._call(conn.create_schema, names)

    async def diff_schema(self, models: Iterable[type[AuraModel]]) -> MigrationPlan:
        """Changes that would bring the live tables of ``models`` to their
        declared schema (columns, types, nullability, primary key, unique
        and plain indexes, full-text indexes; see ``sql_schema``). A model
        without a table shows up as ``add_model``; other tables are left out."""
        conn = self._connection()
        models = list(models)
        target = compile_models(models)
        for model in models:
            conn.register(plan_of(model))
        live = await self._call(conn.describe, [schema.name for schema in target])
        return plan_against(target, live)

    async def drop_schema(self, models: Iterable[type[AuraModel]]) -> None:
        conn = self._connection()
        await self._call(conn.drop_schema, [model.__name__ for model in models])

    async def execute(self, ir: dict[str, Any], txn: Any = None) -> Any:
        conn = self._connection()
        return await self._call(conn.execute, ir, txn)

    async def insert(
        self,
        model: type[AuraModel],
        instances: Sequence[AuraModel],
        on_conflict: str | None = None,
        txn: Any = None,
    ) -> int:
        conn = self._connection()
        rows = instances if isinstance(instances, list) else list(instances)
        return int(await self._call(conn.insert, model.__name__, rows, on_conflict, txn))

    async def upsert(
        self, ir: dict[str, Any], instance: AuraModel | None, txn: Any = None
    ) -> AuraModel | None:
        conn = self._connection()
        return await self._call(conn.upsert, ir, instance, txn)

    async def raw(
        self, statement: str, params: Any = None, txn: Any = None
    ) -> list[dict[str, Any]]:
        conn = self._connection()
        bound = None if params is None else to_storage(params)
        return await self._call(conn.raw, statement, bound, txn)

    async def open_cursor(self, ir: dict[str, Any], txn: Any = None) -> _SqliteCursor:
        conn = self._connection()
        return _SqliteCursor(conn, await self._call(conn.cursor, ir, txn))

    def explain(self, ir: dict[str, Any]) -> dict[str, Any]:
        """The IR plus the SQL it compiles to (``sql``) and SQLite's
        ``EXPLAIN QUERY PLAN`` details (``plan``)."""
        return self._connection().explain(ir)

    async def begin(self, isolation: str) -> Any:
        conn = self._connection()
        return await self._call(conn.begin)

    async def commit(self, txn: Any) -> None:
        await self._call(self._connection().end, txn, True)

    async def rollback(self, txn: Any) -> None:
        await self._call(self._connection().end, txn, False)


class _SqliteCursor:
    """Rows of one select, hydrated a batch per fetch."""

    def __init__(self, conn: Any, cursor: Any) -> None:
        self._conn = conn
        self._cursor = cursor

    async def fetch(self, batch_size: int) -> list[Any]:
        return self._cursor.fetch(self._conn, batch_size)

    def close(self) -> None:
        self._cursor.close()


def from_config(config: ClientConfig, *, transport: Any = None) -> SqliteBackend:
    """Registry hook: ``sqlite:///rel.db``, ``sqlite:////abs.db``, ``sqlite://``."""
    return SqliteBackend(config)
