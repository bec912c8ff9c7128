"""The backend contract every DSN resolves to, and the one capability check.

A backend receives Query IR dicts (API.md §10) and model classes; it never
receives query text built from user values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from aura.backends.capabilities import CLAUSE_FLAGS, OPERATION_FLAGS, BackendCapabilities
from aura.errors import AuraBackendCapabilityError

if TYPE_CHECKING:
    from aura.models import AuraModel
    from aura.schema import MigrationPlan

__all__ = [
    "AsyncConnectionBackend",
    "Backend",
    "BackendCursor",
    "BackendResult",
    "NoTransactions",
    "check_capabilities",
    "driver_not_installed",
    "require",
]


def require(caps: BackendCapabilities, flag: str, what: str) -> None:
    """Raise the documented capability error unless ``caps`` has ``flag``."""
    if not caps.supports(flag):
        _refuse(caps, flag, what)


def _refuse(caps: BackendCapabilities, flag: str, what: str) -> NoReturn:
    raise AuraBackendCapabilityError(
        f"Backend '{caps.name}' does not support {what}",
        context={"backend": caps.name, "capability": flag},
    )


# Every IR key that needs a capability (requests without one skip the checks).
_CHECKED_KEYS = frozenset(clause for clause, _, _ in CLAUSE_FLAGS)


def check_capabilities(caps: BackendCapabilities, ir: dict[str, Any]) -> None:
    """API.md §8 enforcement, before any I/O: a clause a backend cannot run
    raises here and is never silently dropped."""
    if not caps.refuses_queries:  # a backend with every flag (the memory engine)
        return
    derived = OPERATION_FLAGS.get(ir["operation"])
    if derived is not None:
        require(caps, *derived)
    elif ir.keys().isdisjoint(_CHECKED_KEYS):  # looks up the 4 keys, not every IR key
        return
    # The flags here are known names: read them directly (no `supports`
    # call per clause on the per-query path).
    for clause, flag, what in CLAUSE_FLAGS:
        if clause in ir and not getattr(caps, flag):
            _refuse(caps, flag, what)


@dataclass(frozen=True)
class BackendResult:
    """A raw result: rows as storage-form dicts plus backend metadata."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    affected: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


class BackendCursor(Protocol):
    """A server-side cursor: rows are fetched a batch at a time."""

    async def fetch(self, batch_size: int) -> list[Any]:
        """The next batch of model instances; empty when exhausted."""
        ...

    def close(self) -> None:
        """Release the cursor now (idempotent, callable from ``__del__``)."""
        ...


class Backend(ABC):
    """One database family. Instances are created by ``resolve_backend``."""

    name: str = "backend"
    # Set by a backend whose requests complete inside the call (the
    # in-process engine): `execute_now(ir, txn, metrics)` runs a read or
    # write IR and, given `client.metrics`, counts and times it natively.
    execute_now: Callable[[dict[str, Any], Any, Any], Any] | None = None
    # Set by the same backends: `select_now(query, cap, txn, metrics)` runs
    # a builder's `SelectQuery` node itself (its limit lowered to `cap`
    # when given), without its IR dict where the node's shape allows.
    select_now: Callable[[Any, int | None, Any, Any], Any] | None = None
    # Set by a backend whose connection answers with an awaitable that
    # records itself: `execute_async(ir, txn, metrics)` returns it and,
    # given `client.metrics`, the request is counted and timed natively
    # when it completes (no Python coroutine of its own per request).
    execute_async: Callable[[dict[str, Any], Any, Any], Awaitable[Any]] | None = None

    @property
    @abstractmethod
    def capabilities(self) -> BackendCapabilities: ...

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> bool: ...

    @abstractmethod
    async def create_schema(self, models: Iterable[type[AuraModel]]) -> None: ...

    @abstractmethod
    async def drop_schema(self, models: Iterable[type[AuraModel]]) -> None: ...

    async def diff_schema(self, models: Iterable[type[AuraModel]]) -> MigrationPlan:
        """A ``MigrationPlan`` from the stored schema to ``models``; backends
        that can read their stored schema override this."""
        raise AuraBackendCapabilityError(
            f"Backend '{self.name}' cannot diff its stored schema",
            context={"backend": self.name, "capability": "schema_migrations"},
        )

    @abstractmethod
    async def execute(self, ir: dict[str, Any], txn: Any = None) -> Any:
        """Run a select/count/exists/update/delete/traverse IR."""

    @abstractmethod
    async def insert(
        self,
        model: type[AuraModel],
        instances: Sequence[AuraModel],
        on_conflict: str | None = None,
        txn: Any = None,
    ) -> int: ...

    @abstractmethod
    async def upsert(
        self, ir: dict[str, Any], instance: AuraModel | None, txn: Any = None
    ) -> AuraModel | None: ...

    @abstractmethod
    async def raw(
        self, statement: str, params: Any = None, txn: Any = None
    ) -> list[dict[str, Any]]: ...

    @abstractmethod
    async def open_cursor(self, ir: dict[str, Any], txn: Any = None) -> BackendCursor: ...

    @abstractmethod
    def explain(self, ir: dict[str, Any]) -> dict[str, Any]: ...

    @abstractmethod
    async def begin(self, isolation: str) -> Any: ...

    @abstractmethod
    async def commit(self, txn: Any) -> None: ...

    @abstractmethod
    async def rollback(self, txn: Any) -> None: ...


def driver_not_installed(module: str, backend: str, extra: str) -> Exception:
    """The API.md §9 error for a backend whose driver is not in this build."""
    from aura.errors import AuraDriverNotInstalledError

    return AuraDriverNotInstalledError(
        f"The '{module}' driver is required for the {backend} backend but is not installed. "
        f"Install with: pip install aura-connector[{extra}]",
        context={"driver": module, "extra": extra, "backend": backend},
    )


class NoTransactions:
    """Mixin for backends without transactions (API.md §6): ``begin`` raises
    the capability error (the client raises it earlier, at ``transaction()``)."""

    name: str

    def _no_transactions(self) -> AuraBackendCapabilityError:
        return AuraBackendCapabilityError(
            f"Backend '{self.name}' does not support transactions",
            context={"backend": self.name, "capability": "transactions"},
        )

    async def begin(self, isolation: str) -> Any:
        raise self._no_transactions()

    async def commit(self, txn: Any) -> None:
        raise self._no_transactions()

    async def rollback(self, txn: Any) -> None:
        raise self._no_transactions()


class AsyncConnectionBackend(Backend):
    """A backend whose ``connection`` (a Rust binding) answers execute,
    insert and upsert with awaitables; the delegation lives here once."""

    connection: Any

    async def open(self) -> None:
        await self.connection.open()

    async def close(self) -> None:
        await self.connection.close()

    async def ping(self) -> bool:
        return bool(await self.connection.ping())

    def _register(self, models: Iterable[type[AuraModel]]) -> list[str]:
        """Hand each model's compiled plan to the connection; their names."""
        from aura.backends.memory import plan_of

        names = []
        for model in models:
            self.connection.register(plan_of(model))
            names.append(model.__name__)
        return names

    async def create_schema(self, models: Iterable[type[AuraModel]]) -> None:
        await self.connection.create_schema(self._register(models))

    async def drop_schema(self, models: Iterable[type[AuraModel]]) -> None:
        await self.connection.drop_schema([m.__name__ for m in models])

    async def execute(self, ir: dict[str, Any], txn: Any = None) -> Any:
        return await self.connection.execute(ir, txn)

    async def insert(
        self,
        model: type[AuraModel],
        instances: Sequence[AuraModel],
        on_conflict: str | None = None,
        txn: Any = None,
    ) -> int:
        return int(await self.connection.insert(model.__name__, list(instances), on_conflict, txn))

    async def upsert(
        self, ir: dict[str, Any], instance: AuraModel | None, txn: Any = None
    ) -> AuraModel | None:
        stored: AuraModel | None = await self.connection.upsert(ir, instance, txn)
        return stored

    async def raw(
        self, statement: str, params: Any = None, txn: Any = None
    ) -> list[dict[str, Any]]:
        require(self.capabilities, "raw_queries", "raw queries")
        rows: list[dict[str, Any]] = await self.connection.raw(statement, params, txn)
        return rows
