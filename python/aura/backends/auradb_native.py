"""The AuraDB native backend (``auradb://``, ``auradbs://``): AWP 1 over TCP
or TLS, spoken by the Rust client in ``aura._core.AuraDbConnection``.

The IR is translated into AWP payloads in Rust (one translation module)
and result rows are hydrated there too. Capabilities follow the server's
HELLO_ACK list: a feature the server does not advertise raises
``AuraCapabilityError`` before anything is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aura._core as _core
from aura.backends.base import AsyncConnectionBackend
from aura.backends.capabilities import BackendCapabilities, auradb_capabilities, for_backend
from aura.config import ClientConfig, PasswordAuth, TokenAuth, config_error
from aura.errors import AuraAuthenticationError

if TYPE_CHECKING:
    pass

__all__ = ["AuraDBNativeBackend", "from_config", "wire_client_options"]


def wire_client_options(config: ClientConfig) -> dict[str, Any]:
    """What both protocol clients (AWP 1 and the bundled protocol) take
    from the config: TLS, token, timeouts, payload limit and the pool of
    multiplexed connections (``acquire_timeout_s`` has no part: a request
    never waits for a connection to be free)."""
    tls, auth, pool = config.tls, config.auth, config.pool
    return {
        "tls": tls.enabled,
        "ca_cert_path": tls.ca_cert_path,
        "verify_hostname": tls.verify_hostname,
        "client_cert_path": tls.client_cert_path,
        "client_key_path": tls.client_key_path,
        "token": auth.token if isinstance(auth, TokenAuth) else None,
        "connect_timeout_s": config.connect_timeout_s,
        "request_timeout_s": config.request_timeout_s,
        "max_payload_bytes": config.max_payload_bytes,
        "pool": (pool.min_size, pool.max_size, pool.max_lifetime_s, pool.idle_timeout_s),
    }


class AuraDBNativeBackend(AsyncConnectionBackend):
    name = "auradb"

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._caps = for_backend("auradb")
        self.connection = _core.AuraDbConnection(
            config.host, config.port, **wire_client_options(config)
        )
        # Requests record their own metrics: the client awaits the
        # connection's future directly.
        self.execute_async = self.connection.execute

    @property
    def capabilities(self) -> BackendCapabilities:
        return self._caps

    def _check_config(self) -> None:
        if isinstance(self.config.auth, PasswordAuth):
            raise AuraAuthenticationError(
                "The AuraDB native backend accepts only TokenAuth (a static token); "
                "username/password credentials are not supported",
                context={"backend": self.name, "address": self.config.address},
            )
        if self.config.tls.pinned_sha256 is not None:
            raise config_error(
                "TLSConfig.pinned_sha256 is not supported by the AuraDB native backend",
                option="tls.pinned_sha256",
            )
        if self.config.compression:
            raise config_error(
                "AWP 1 defines no compression; use compression=False", option="compression"
            )

    async def open(self) -> None:
        self._check_config()
        await self.connection.open()
        self._caps = auradb_capabilities(self.connection.server_capabilities)

    def pool_status(self) -> tuple[int, int]:
        """``(open, max)`` pooled connections."""
        status: tuple[int, int] = self.connection.pool_status()
        return status

    async def server_schema(self) -> list[dict[str, Any]]:
        """The collection schemas the server holds (SCHEMA_LIST)."""
        schemas: list[dict[str, Any]] = await self.connection.server_schema()
        return schemas

    async def open_cursor(self, ir: dict[str, Any], txn: Any = None) -> _AuraDbCursor:
        return _AuraDbCursor(await self.connection.cursor(ir, txn))

    def explain(self, ir: dict[str, Any]) -> dict[str, Any]:
        plan: dict[str, Any] = self.connection.explain(ir)
        return plan

    async def begin(self, isolation: str) -> Any:
        return await self.connection.begin()

    async def commit(self, txn: Any) -> None:
        await self.connection.commit(txn)

    async def rollback(self, txn: Any) -> None:
        await self.connection.rollback(txn)


class _AuraDbCursor:
    """A server cursor; ``close()`` sends CURSOR_CLOSE when rows remain."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @property
    def server_cursor_id(self) -> int | None:
        cursor_id: int | None = self._cursor.server_cursor_id
        return cursor_id

    async def fetch(self, batch_size: int) -> list[Any]:
        rows: list[Any] = await self._cursor.fetch(batch_size)
        return rows

    def close(self) -> None:
        self._cursor.close()


def from_config(config: ClientConfig, *, transport: Any = None) -> AuraDBNativeBackend:
    """Registry hook for ``auradb://`` / ``auradbs://``."""
    if transport is not None:
        raise config_error(
            "auradb:// speaks AWP 1 over its own socket; transport= is not accepted",
            option="transport",
        )
    return AuraDBNativeBackend(config)
