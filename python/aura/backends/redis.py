"""The Redis backend (``redis://``, ``redis+asyncio://``): key-value only,
on the Rust ``redis`` crate in ``aura._core.RedisConnection``.

One JSON string per row at ``<prefix><Model>:<pk>`` (the typed format of
ARCHITECTURE.md "Redis"), the DB index from the DSN path. Rows are read,
updated and deleted by primary key (``where(M.id == k)`` / ``in_``); other
filters, ordering, projection, includes, transactions, raw statements,
streams, explain and aggregates raise ``AuraCapabilityError``. The DSN
option ``key_prefix`` (e.g. ``redis://h/0?key_prefix=app1:``) namespaces
the keys; other DSN options are rejected.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import aura._core as _core
from aura.backends.base import (
    AsyncConnectionBackend,
    NoTransactions,
    driver_not_installed,
    require,
)
from aura.backends.capabilities import BackendCapabilities, for_backend
from aura.config import ClientConfig, PasswordAuth, TokenAuth, config_error

if TYPE_CHECKING:
    from aura.models import AuraModel

__all__ = ["AVAILABLE", "KEY_PREFIX_OPTION", "RedisBackend", "from_config"]

KEY_PREFIX_OPTION = "key_prefix"
# False when the Rust core was built without the `redis` feature.
AVAILABLE = hasattr(_core, "RedisConnection")


class RedisBackend(NoTransactions, AsyncConnectionBackend):
    name = "redis"

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        unknown = sorted(set(config.options) - {KEY_PREFIX_OPTION})
        if unknown:
            raise config_error(
                f"Unsupported Redis DSN option(s): {', '.join(unknown)}; "
                f"supported: {KEY_PREFIX_OPTION}",
                options=unknown,
            )
        if config.tls.enabled:
            raise config_error("TLS to Redis is not part of this build", option="tls")
        if isinstance(config.auth, TokenAuth):
            raise config_error(
                "Redis takes a password (and optional username), not a token", option="auth"
            )
        database = config.database or "0"
        if not (database.isascii() and database.isdigit()):
            raise config_error("Redis database must be a DB index", option="database")
        username = password = None
        if isinstance(config.auth, PasswordAuth):
            username = config.auth.username or None
            password = config.auth.password
        self.connection = _core.RedisConnection(
            config.host,
            config.port,
            int(database),
            username=username,
            password=password,
            prefix=str(config.options.get(KEY_PREFIX_OPTION, "")),
            connect_timeout_s=config.connect_timeout_s,
            request_timeout_s=config.request_timeout_s,
        )

    @property
    def capabilities(self) -> BackendCapabilities:
        return for_backend("redis")

    @property
    def key_prefix(self) -> str:
        return str(self.connection.prefix)

    async def create_schema(self, models: Iterable[type[AuraModel]]) -> None:
        """Register the models; a model without a primary key is an
        ``AuraQueryError``, unique fields or ``on_delete`` actions (which
        Redis cannot enforce) an ``AuraCapabilityError``."""
        self._register(models)

    async def drop_schema(self, models: Iterable[type[AuraModel]]) -> None:
        """Delete every row of each model."""
        await self.connection.drop_models([m.__name__ for m in models])

    async def open_cursor(self, ir: dict[str, Any], txn: Any = None) -> Any:
        require(self.capabilities, "server_side_cursors", "streams (server-side cursors)")

    def explain(self, ir: dict[str, Any]) -> dict[str, Any]:
        require(self.capabilities, "explain", "explain")
        return {}  # pragma: no cover - require() raised


def from_config(config: ClientConfig, *, transport: Any = None) -> RedisBackend:
    """Registry hook for ``redis://`` / ``redis+asyncio://``."""
    if not AVAILABLE:
        raise driver_not_installed("redis.asyncio", "redis", "redis")
    if transport is not None:
        raise config_error("redis:// does not take transport=", option="transport")
    return RedisBackend(config)
