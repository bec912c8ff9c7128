"""The MongoDB backend (``mongodb://``, ``mongodb+motor://``) on the official
Rust driver in ``aura._core.MongoConnection``.

Documents are keyed by primary key (``_id`` = pk value, shown under the
pk's own name); the database is the DSN path (default ``aura``) and each
model has the collection of its class name. Filters compile to structured
filter documents in Rust; rows are hydrated there too. What the capability
matrix says MongoDB lacks (transactions, raw statements, traversal, vector
and text search) raises ``AuraCapabilityError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import aura._core as _core
from aura.backends.base import (
    AsyncConnectionBackend,
    NoTransactions,
    driver_not_installed,
)
from aura.backends.capabilities import BackendCapabilities, for_backend
from aura.config import ClientConfig, PasswordAuth, TokenAuth, config_error

if TYPE_CHECKING:
    pass

__all__ = ["AVAILABLE", "DEFAULT_DATABASE", "MongoDBBackend", "from_config", "mongodb_uri"]

DEFAULT_DATABASE = "aura"
# False when the Rust core was built without the `mongodb` feature.
AVAILABLE = hasattr(_core, "MongoConnection")


def mongodb_uri(config: ClientConfig) -> str:
    """The driver URI for a config: host, port and credentials from the
    config (so ``connect()`` overrides apply), DSN query options passed on,
    TLS and pool settings as URI options."""
    if isinstance(config.auth, TokenAuth):
        raise config_error(
            "MongoDB takes username/password credentials, not a token", option="auth"
        )
    tls = config.tls
    if tls.pinned_sha256 is not None:
        raise config_error(
            "TLSConfig.pinned_sha256 is not supported by the MongoDB backend", option="tls"
        )
    if tls.client_cert_path != tls.client_key_path:
        raise config_error(
            "MongoDB takes the client certificate and key in one PEM file: "
            "set client_cert_path and client_key_path to the same file",
            option="tls",
        )
    userinfo = ""
    if isinstance(config.auth, PasswordAuth):
        userinfo = f"{quote(config.auth.username, safe='')}:{quote(config.auth.password, safe='')}@"
    host = f"[{config.host}]" if ":" in config.host else config.host
    options: dict[str, str] = {str(k): str(v) for k, v in config.options.items()}
    if tls.enabled:
        options["tls"] = "true"
        if tls.ca_cert_path:
            options["tlsCAFile"] = tls.ca_cert_path
        if tls.client_cert_path:
            options["tlsCertificateKeyFile"] = tls.client_cert_path
        if not tls.verify_hostname:
            options["tlsAllowInvalidHostnames"] = "true"
    options.setdefault("maxPoolSize", str(config.pool.max_size))
    options.setdefault("minPoolSize", str(config.pool.min_size))
    query = urlencode(options)
    return f"mongodb://{userinfo}{host}:{config.port}/?{query}"


class MongoDBBackend(NoTransactions, AsyncConnectionBackend):
    name = "mongodb"

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.database = config.database or DEFAULT_DATABASE
        self.connection = _core.MongoConnection(
            mongodb_uri(config),
            self.database,
            connect_timeout_s=config.connect_timeout_s,
            request_timeout_s=config.request_timeout_s,
        )

    @property
    def capabilities(self) -> BackendCapabilities:
        return for_backend("mongodb")

    async def open_cursor(self, ir: dict[str, Any], txn: Any = None) -> _MongoCursor:
        cursor = ir.get("cursor")
        batch = int(cursor.get("batch_size", 1000)) if isinstance(cursor, dict) else 1000
        return _MongoCursor(await self.connection.cursor(ir, batch, txn))

    def explain(self, ir: dict[str, Any]) -> dict[str, Any]:
        """The IR plus the find command it becomes (``"mongodb"`` key)."""
        plan: dict[str, Any] = self.connection.explain(ir)
        return plan


class _MongoCursor:
    """A MongoDB server cursor; ``close()`` kills it on the server."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    async def fetch(self, batch_size: int) -> list[Any]:
        rows: list[Any] = await self._cursor.fetch(batch_size)
        return rows

    def close(self) -> None:
        self._cursor.close()

    @property
    def is_open(self) -> bool:
        return bool(self._cursor.is_open)


def from_config(config: ClientConfig, *, transport: Any = None) -> MongoDBBackend:
    """Registry hook for ``mongodb://`` / ``mongodb+motor://``."""
    if not AVAILABLE:
        raise driver_not_installed("motor.motor_asyncio", "mongodb", "mongodb")
    if transport is not None:
        raise config_error("mongodb:// does not take transport=", option="transport")
    return MongoDBBackend(config)
