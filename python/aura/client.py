"""The client: connecting, the executor that builders call, writes, and
transactions (API.md §3, §6)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from aura.backends.base import Backend, BackendCursor, check_capabilities, require
from aura.backends.capabilities import BackendCapabilities
from aura.backends.registry import resolve_backend
from aura.config import ClientConfig
from aura.errors import (
    AuraBackendCapabilityError,
    AuraClientClosedError,
    AuraConnectionError,
    AuraError,
    AuraQueryError,
    AuraSchemaError,
    AuraTransactionError,
    AuraValidationError,
)
from aura.models import AuraModel
from aura.observability import Metrics, TelemetryConfig, Tracer
from aura.query import DeleteBuilder, QueryBuilder, TraverseBuilder, UpdateBuilder
from aura.query.ast import SelectQuery, build_upsert
from aura.query.builder import LATER
from aura.transport.base import Transport

__all__ = ["Aura", "Client", "LeaderRedirect", "Transaction", "connect"]

M = TypeVar("M", bound=AuraModel)
T = TypeVar("T")

_ISOLATION = {"snapshot": "snapshot", "snapshot_isolation": "snapshot", "serializable": "snapshot"}
_ON_CONFLICT = (None, "ignore", "replace")


def _related_models(models: Iterable[type[AuraModel]]) -> list[type[AuraModel]]:
    """The models plus every relationship target, recursively, in order."""
    seen: dict[str, type[AuraModel]] = {}
    pending = list(models)
    while pending:
        model = pending.pop(0)
        if not (isinstance(model, type) and issubclass(model, AuraModel)):
            raise AuraSchemaError(f"Expected a model class, got {type(model).__name__}")
        if seen.get(model.__name__) is model:
            continue
        seen[model.__name__] = model
        for info in model.__aura_fields__.values():
            if info.is_relationship and info.model_type is not None:
                pending.append(info.model_type)
    return list(seen.values())


def _check_on_conflict(on_conflict: Any) -> None:
    if on_conflict not in _ON_CONFLICT:
        raise AuraQueryError(
            f"on_conflict must be None, 'ignore' or 'replace', got {on_conflict!r}"
        )


class Client:
    """An open connection to one backend; builders run through it."""

    def __init__(
        self,
        config: ClientConfig,
        transport: Transport | None = None,
        models: Iterable[type[AuraModel]] = (),
        *,
        telemetry: Any = None,
        backend: Backend | None = None,
        metrics: Metrics | None = None,
        telemetry_bridge: Tracer | None = None,
    ) -> None:
        if backend is None and transport is None:
            raise AuraConnectionError("Client needs a transport or a backend")
        if backend is None:
            backend = resolve_backend(config, transport=transport)
        self._config = config
        self._backend = backend
        self._transport = transport
        self._metrics = metrics if metrics is not None else Metrics()
        self._set_telemetry(TelemetryConfig.from_value(telemetry))
        self._tracer = telemetry_bridge or Tracer(self._telemetry)
        self._models: dict[str, type[AuraModel]] = {}
        self._pending: list[type[AuraModel]] = []
        self._opened = False
        self._closed = False
        self._txn_ids = itertools.count(1)
        for model in models:
            self.register_model(model)

    def _set_telemetry(self, telemetry: TelemetryConfig) -> None:
        self._telemetry = telemetry
        # What a backend's `execute_now` records into (None: recording off).
        self._native_metrics = self._metrics if telemetry.metrics else None

    # -- lifecycle -----------------------------------------------------

    async def _open(self) -> Client:
        if self._closed:
            raise AuraClientClosedError("Client is closed")
        if not self._opened:
            await self._backend.open()
            self._opened = True
        await self._create_pending()
        return self

    async def _create_pending(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            await self._backend.create_schema(pending)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._opened:
            await self._backend.close()

    async def __aenter__(self) -> Client:
        return await self._open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @classmethod
    def connect(cls, dsn: str, **options: Any) -> _Connector:
        return connect(dsn, **options)

    # -- properties ----------------------------------------------------

    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def metrics(self) -> Metrics:
        return self._metrics

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def transport(self) -> Transport:
        transport = getattr(self._backend, "transport", None)
        if not isinstance(transport, Transport):
            require(self.capabilities(), "native_protocol", "client.transport")
        return transport  # type: ignore[return-value]

    def capabilities(self) -> BackendCapabilities:
        return self._backend.capabilities

    def _capabilities(self) -> BackendCapabilities:
        return self._backend.capabilities

    # -- models --------------------------------------------------------

    def register_model(self, model: type[AuraModel]) -> None:
        for related in _related_models([model]):
            if self._models.get(related.__name__) is not related:
                self._models[related.__name__] = related
                self._pending.append(related)
                self._expose(related)

    def _expose(self, model: type[AuraModel]) -> None:
        """Make ``client.<ModelName>`` a builder for the model.

        An instance attribute rather than ``__getattr__``: defining
        ``__getattr__`` slows every attribute read on the client, which sits
        on the per-query path. Builders are immutable, so sharing one is the
        same as handing out a fresh one. Client members keep precedence.
        """
        name = model.__name__
        if hasattr(type(self), name):
            return
        current = self.__dict__.get(name)
        if current is None or isinstance(current, QueryBuilder):
            self.__dict__[name] = QueryBuilder(model, self)

    if TYPE_CHECKING:
        # For type checkers only: ``client.<ModelName>`` is a QueryBuilder.
        def __getattr__(self, name: str) -> QueryBuilder[Any]: ...

    def model(self, name: str) -> type[AuraModel]:
        try:
            return self._models[name]
        except KeyError:
            raise AuraSchemaError(f"Unknown model '{name}'", context={"model": name}) from None

    async def _ensure(self, model: type[AuraModel] | None) -> None:
        if self._closed:
            raise AuraClientClosedError("Client is closed")
        if model is not None and self._models.get(model.__name__) is not model:
            self.register_model(model)
        if self._pending:
            await self._create_pending()

    # -- the executor protocol (builders call these) -------------------

    def _is_ready(self, model: type[AuraModel] | None) -> bool:
        """Whether ``_ensure(model)`` has nothing to do (the per-request fast path)."""
        return not (
            self._closed
            or self._pending
            or (model is not None and self._models.get(model.__name__) is not model)
        )

    def _select_now(
        self, query: SelectQuery, model: type[AuraModel], cap: int | None, txn: Any = None
    ) -> Any:
        """The read in the call, or ``LATER`` (see ``Executor``): when the
        backend answers in process and refuses no clause, no span is open
        and ``_ensure`` has nothing to do."""
        backend = self._backend
        select_now = backend.select_now
        if (
            select_now is None
            or self._tracer.enabled
            or backend.capabilities.refuses_queries
            or not self._is_ready(model)
        ):
            return LATER
        return select_now(query, cap, txn, self._native_metrics)

    def _run_now(self, ir: dict[str, Any], txn: Any) -> Any:
        """A ready request on a backend that answers in process, with no
        span open: the native call runs, counts and times it (no
        coroutine, no Python-side timing). Else ``LATER``."""
        run_now = self._backend.execute_now
        if run_now is None or self._tracer.enabled:
            return LATER
        check_capabilities(self._backend.capabilities, ir)
        return run_now(ir, txn, self._native_metrics)

    async def _execute(
        self, ir: dict[str, Any], model: type[AuraModel] | None, txn: Any = None
    ) -> Any:
        # _is_ready() inlined: this is the per-query path.
        if (
            self._closed
            or self._pending
            or (model is not None and self._models.get(model.__name__) is not model)
        ):
            await self._ensure(model)
        answer = self._run_now(ir, txn)
        if answer is not LATER:
            return answer
        backend = self._backend
        check_capabilities(backend.capabilities, ir)
        run_async = backend.execute_async
        if run_async is not None and not self._tracer.enabled:
            # Counted and timed natively when the future settles (no
            # Python-side timing); spans still go through _observe.
            return await run_async(ir, txn, self._native_metrics)
        return await self._observe(ir, backend.execute(ir, txn))

    async def _observe(self, ir: dict[str, Any], work: Awaitable[T]) -> T:
        """Run one request, recording metrics (and a span when enabled)."""
        operation = ir["operation"]
        tracer = self._tracer
        if not self._telemetry.metrics:
            if tracer.enabled:
                with tracer.span(operation, ir):
                    return await work
            return await work
        metrics = self._metrics
        started = perf_counter()
        try:
            if tracer.enabled:
                with tracer.span(operation, ir):
                    result = await work
            else:  # no span to open: skip the context manager altogether
                result = await work
        except Exception as exc:  # not BaseException: cancellation is no error
            metrics.record_error(exc)  # the code of any failure (§16 row 43)
            raise
        finally:
            metrics.record_query(operation, perf_counter() - started)
        return result

    def _stream(
        self, ir: dict[str, Any], model: type[AuraModel], batch_size: int, txn: Any = None
    ) -> RowStream:
        self._check_open()
        check_capabilities(self._backend.capabilities, ir)
        return RowStream(self, ir, model, batch_size, txn)

    # -- builders ------------------------------------------------------

    def query(self, model: type[M]) -> QueryBuilder[M]:
        self._check_open()
        return QueryBuilder(model, self)

    search = query

    def update(self, model: type[M]) -> UpdateBuilder[M]:
        self._check_open()
        return UpdateBuilder(model, self)

    def delete(self, model: type[M]) -> DeleteBuilder[M]:
        self._check_open()
        return DeleteBuilder(model, self)

    def traverse(self, model: type[M]) -> TraverseBuilder[M]:
        self._check_open()
        return TraverseBuilder(model, self)

    def _check_open(self) -> None:
        if self._closed:
            raise AuraClientClosedError("Client is closed")

    # -- writes --------------------------------------------------------

    async def insert(self, instance: M, *, on_conflict: str | None = None, _txn: Any = None) -> M:
        _check_on_conflict(on_conflict)
        if not isinstance(instance, AuraModel):
            raise AuraValidationError(
                f"insert() expects a model instance, got {type(instance).__name__}"
            )
        model = type(instance)
        if not self._is_ready(model):
            await self._ensure(model)
        ir = {"operation": "insert", "model": model.__name__}
        await self._observe(ir, self._backend.insert(model, [instance], on_conflict, _txn))
        return instance

    async def bulk_insert(
        self,
        model: type[M],
        rows: Iterable[M | Mapping[str, Any]],
        *,
        batch_size: int = 1000,
        on_conflict: str | None = None,
    ) -> int:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise AuraQueryError("batch_size must be a positive integer")
        _check_on_conflict(on_conflict)
        await self._ensure(model)
        instances = [row if isinstance(row, model) else model(**row) for row in rows]  # type: ignore[arg-type]
        written = 0
        ir = {"operation": "insert", "model": model.__name__}
        for start in range(0, len(instances), batch_size):
            batch = instances[start : start + batch_size]
            written += await self._observe(
                ir, self._backend.insert(model, batch, on_conflict, None)
            )
        return written

    async def upsert(
        self,
        model: type[M],
        *,
        key: Mapping[Any, Any],
        values: Mapping[Any, Any],
        _txn: Any = None,
    ) -> M:
        await self._ensure(model)
        ir = build_upsert(model, key, values)
        instance, failure = _insert_candidate(model, key, values)
        stored = await self._observe(ir, self._backend.upsert(ir, instance, _txn))
        if stored is None:
            assert failure is not None
            raise failure
        return stored  # type: ignore[return-value]

    async def raw(
        self, statement: str, params: Any = None, *, _txn: Any = None
    ) -> list[dict[str, Any]]:
        await self._ensure(None)
        require(self._backend.capabilities, "raw_queries", "raw queries")
        if not isinstance(statement, str) or not statement.strip():
            raise AuraQueryError("raw() needs a non-empty statement")
        ir = {"operation": "raw", "statement": statement, "params": params}
        return await self._observe(ir, self._backend.raw(statement, params, _txn))

    # -- transactions --------------------------------------------------

    def transaction(self, *, isolation: str = "snapshot") -> Transaction:
        self._check_open()
        if isolation not in _ISOLATION:
            raise AuraTransactionError(
                f"Unsupported isolation level '{isolation}'; use 'snapshot' "
                "('snapshot_isolation' and 'serializable' are accepted aliases)",
                context={"isolation": str(isolation)},
            )
        require(self._backend.capabilities, "transactions", "transactions")
        return Transaction(self, next(self._txn_ids), _ISOLATION[isolation])

    # -- health --------------------------------------------------------

    async def ping(self) -> bool:
        self._check_open()
        return await self._backend.ping()

    async def health(self) -> dict[str, Any]:
        try:
            ok = await self.ping()
        except AuraError:
            ok = False
        transport = getattr(self._backend, "transport", None)
        return {
            "status": "ok" if ok else "degraded",
            "protocol_version": 1,
            "address": self._config.address,
            "backend": self._backend.name,
            "capabilities": self.capabilities().to_dict(),
            "transport": getattr(transport, "kind", self._backend.name),
            "stats": transport.stats.to_dict() if isinstance(transport, Transport) else {},
            "metrics": self._metrics.snapshot(),
            "models": sorted(self._models),
        }

    async def server_schema(self) -> list[dict[str, Any]]:
        require(self.capabilities(), "native_protocol", "server_schema()")
        return [model.model_schema().to_dict() for _, model in sorted(self._models.items())]

    # -- leader helpers (single node: there is never another leader) ----

    async def connect_to_leader(
        self,
        error: Any,
        *,
        models: Iterable[type[AuraModel]] | None = None,
        allow_insecure: bool = False,
    ) -> Client:
        address = getattr(error, "leader_addr", None)
        if not address:
            raise AuraConnectionError("The not-leader error carries no leader address")
        return await self.reconnect_to(address, models=models, allow_insecure=allow_insecure)

    async def reconnect_to(
        self,
        address: str,
        *,
        models: Iterable[type[AuraModel]] | None = None,
        allow_insecure: bool = False,
    ) -> Client:
        require(self.capabilities(), "native_protocol", "reconnect_to()")
        raise AuraBackendCapabilityError(
            f"Backend '{self._backend.name}' runs in process and has no other node to reach",
            context={"backend": self._backend.name, "capability": "leader_redirect"},
        )

    def with_leader_redirect(self, *, max_redirects: int = 1) -> LeaderRedirect:
        if (
            isinstance(max_redirects, bool)
            or not isinstance(max_redirects, int)
            or not 0 <= max_redirects <= 10
        ):
            raise AuraQueryError("max_redirects must be an int between 0 and 10")
        return LeaderRedirect(self, max_redirects)


def _field_attr(model: type[AuraModel], key: Any) -> str:
    """Attribute name for a FieldReference or a field name/alias."""
    name = getattr(key, "name", key)
    fields = model.__aura_fields__
    if name in fields:
        return str(name)
    for attr, info in fields.items():
        if info.storage_name == name:
            return attr
    raise AuraQueryError(f"{model.__name__} has no field '{name}'", context={"field": str(name)})


def _insert_candidate(
    model: type[M], key: Mapping[Any, Any], values: Mapping[Any, Any]
) -> tuple[M | None, AuraError | None]:
    """The row an upsert inserts when nothing matches (key plus values, with
    defaults), or the validation error that prevents building it."""
    merged = {_field_attr(model, k): v for k, v in {**key, **values}.items()}
    try:
        return model(**merged), None
    except AuraError as err:
        return None, err


class Transaction:
    """A snapshot transaction (API.md §6). Builders made from it run inside it."""

    def __init__(self, client: Client, txn_id: int, isolation: str) -> None:
        self._client = client
        self.id = txn_id
        self.isolation = isolation
        self._handle: Any = None
        self._state = "new"

    async def begin(self) -> Transaction:
        if self._state != "new":
            raise AuraTransactionError(f"Transaction {self.id} was already started")
        self._client._check_open()
        await self._client._ensure(None)
        self._handle = await self._client.backend.begin(self.isolation)
        self._state = "active"
        return self

    async def commit(self) -> None:
        if self._state in ("committed", "rolled_back"):
            return
        self._require_active()
        self._state = "committed"
        await self._client.backend.commit(self._handle)

    async def rollback(self) -> None:
        if self._state in ("committed", "rolled_back"):
            return
        self._require_active()
        self._state = "rolled_back"
        await self._client.backend.rollback(self._handle)

    async def __aenter__(self) -> Transaction:
        return await self.begin()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.commit()
        else:
            await self.rollback()

    def _require_active(self) -> None:
        if self._state != "active":
            raise AuraTransactionError(
                f"Transaction {self.id} is not active ({self._state.replace('_', ' ')})",
                context={"transaction_id": self.id},
            )

    # -- executor protocol ---------------------------------------------

    async def _execute(self, ir: dict[str, Any], model: type[AuraModel] | None) -> Any:
        self._require_active()
        return await self._client._execute(ir, model, self._handle)

    def _select_now(self, query: SelectQuery, model: type[AuraModel], cap: int | None) -> Any:
        self._require_active()
        return self._client._select_now(query, model, cap, self._handle)

    def _stream(
        self, ir: dict[str, Any], model: type[AuraModel], batch_size: int
    ) -> AsyncIterator[AuraModel]:
        self._require_active()
        return self._client._stream(ir, model, batch_size, self._handle)

    def _capabilities(self) -> BackendCapabilities:
        return self._client.capabilities()

    # -- builders and writes -------------------------------------------

    def query(self, model: type[M]) -> QueryBuilder[M]:
        return QueryBuilder(model, self)

    search = query

    def update(self, model: type[M]) -> UpdateBuilder[M]:
        return UpdateBuilder(model, self)

    def delete(self, model: type[M]) -> DeleteBuilder[M]:
        return DeleteBuilder(model, self)

    async def insert(self, instance: M, *, on_conflict: str | None = None) -> M:
        self._require_active()
        return await self._client.insert(instance, on_conflict=on_conflict, _txn=self._handle)

    async def upsert(
        self, model: type[M], *, key: Mapping[Any, Any], values: Mapping[Any, Any]
    ) -> M:
        self._require_active()
        return await self._client.upsert(model, key=key, values=values, _txn=self._handle)


class LeaderRedirect:
    """Opt-in bounded retry of a write on the leader named by a not-leader
    error; no other error triggers a redirect."""

    def __init__(self, client: Client, max_redirects: int) -> None:
        self._client = client
        self._max_redirects = max_redirects

    @property
    def client(self) -> Client:
        return self._client

    @property
    def max_redirects(self) -> int:
        return self._max_redirects

    async def run(self, factory: Callable[[], Awaitable[T]]) -> T:
        from aura.errors import AuraNotLeaderError

        redirects = 0
        while True:
            try:
                return await factory()
            except AuraNotLeaderError as err:
                if redirects >= self._max_redirects or not err.leader_addr:
                    raise
                redirects += 1
                self._client = await self._client.connect_to_leader(err)

    async def insert(self, instance: M, *, on_conflict: str | None = None) -> M:
        return await self.run(lambda: self._client.insert(instance, on_conflict=on_conflict))

    async def bulk_insert(self, model: type[M], rows: Iterable[Any], **kw: Any) -> int:
        rows = list(rows)
        return await self.run(lambda: self._client.bulk_insert(model, rows, **kw))

    async def upsert(
        self, model: type[M], *, key: Mapping[Any, Any], values: Mapping[Any, Any]
    ) -> M:
        return await self.run(lambda: self._client.upsert(model, key=key, values=values))

    async def raw(self, statement: str, params: Any = None) -> list[dict[str, Any]]:
        return await self.run(lambda: self._client.raw(statement, params))

    def transaction(self, **kw: Any) -> Transaction:
        raise AuraTransactionError("Transactions are never redirected; use connect_to_leader()")

    def stream(self, *args: Any, **kw: Any) -> Any:
        raise AuraBackendCapabilityError(
            "Streams are never redirected; use connect_to_leader()",
            context={"backend": self._client.backend.name, "capability": "leader_redirect"},
        )


class RowStream:
    """``stream()``: an async iterator over a server cursor holding at most
    one batch. Leaving early (break, exception, cancellation) closes the
    cursor as soon as the iterator is dropped and counts a cancellation."""

    def __init__(
        self, client: Client, ir: dict[str, Any], model: type[AuraModel], batch_size: int, txn: Any
    ) -> None:
        self._client = client
        self._ir = ir
        self._model = model
        self._batch_size = batch_size
        self._txn = txn
        self._cursor: BackendCursor | None = None
        self._batch: list[Any] = []
        self._pos = 0
        self._state = "new"

    def __aiter__(self) -> RowStream:
        return self

    async def __anext__(self) -> Any:
        if self._pos < len(self._batch):
            row = self._batch[self._pos]
            self._pos += 1
            return row
        if self._state == "closed":
            raise StopAsyncIteration
        if self._cursor is None:
            await self._client._ensure(self._model)
            if self._client._telemetry.metrics:
                self._client.metrics.record_query(self._ir["operation"])
            self._cursor = await self._client.backend.open_cursor(self._ir, self._txn)
            self._state = "open"
        # Released before the next batch arrives: at most one is held.
        self._batch = []
        self._batch = await self._cursor.fetch(self._batch_size)
        self._pos = 0
        if not self._batch:
            self._finish(cancelled=False)
            raise StopAsyncIteration
        return await self.__anext__()

    def _finish(self, *, cancelled: bool) -> None:
        if self._state != "open":
            self._state = "closed"
            return
        self._state = "closed"
        self._batch = []
        if self._cursor is not None:
            self._cursor.close()
        if cancelled and self._client._telemetry.metrics:
            self._client.metrics.record_stream_cancellation()

    async def aclose(self) -> None:
        self._finish(cancelled=True)

    def __del__(self) -> None:
        self._finish(cancelled=True)


class _Connector:
    """What ``connect()`` returns: awaitable (an open client) and an async
    context manager (closed on exit)."""

    def __init__(self, factory: Callable[[], Client]) -> None:
        self._factory = factory
        self._client: Client | None = None

    async def _open(self) -> Client:
        self._client = self._factory()
        return await self._client._open()

    def __await__(self) -> Generator[Any, None, Client]:
        return self._open().__await__()

    async def __aenter__(self) -> Client:
        return await self._open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.close()


def connect(
    dsn: str,
    *,
    models: Iterable[type[AuraModel]] = (),
    transport: Transport | None = None,
    telemetry: Any = None,
    **options: Any,
) -> _Connector:
    """Connect to the backend the DSN names (API.md §3.1, §7)."""
    from aura.backends.registry import client_config_for

    config = client_config_for(dsn, options)
    models = tuple(models)

    def factory() -> Client:
        backend = resolve_backend(config, transport=transport)
        return Client(config, transport, models, telemetry=telemetry, backend=backend)

    return _Connector(factory)


class Aura:
    """Facade: ``await Aura.connect(dsn, models=[...])``."""

    connect = staticmethod(connect)
