"""The bundled reference protocol over TCP (``aura://``, ``aura+tcp://``) or
TLS (``auras://``), API.md §14, spoken by ``aura._core.BundledConnection``.

Requests carry the Query IR itself; the server (``aura serve
--bundled-port``, or ``AuraServer(protocol="bundled")``) runs it on its
engine. No AuraDB server speaks this protocol: AuraDB over TLS is
``auradbs://`` (§16 row 47). The backend's name is ``auradb`` (§7).
"""

from __future__ import annotations

from typing import Any

import aura._core as _core
from aura.backends.auradb_native import wire_client_options
from aura.backends.base import AsyncConnectionBackend
from aura.backends.capabilities import BackendCapabilities, for_backend
from aura.config import ClientConfig, PasswordAuth, config_error

__all__ = ["BundledBackend", "from_config"]


class BundledBackend(AsyncConnectionBackend):
    name = "auradb"

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._caps = for_backend("aura")
        self.connection = _core.BundledConnection(
            config.host,
            config.port,
            **wire_client_options(config),
            compression=config.compression,
            payload_checksum=config.payload_checksum,
        )

    def _check_config(self) -> None:
        if isinstance(self.config.auth, PasswordAuth):
            # The server checks bearer tokens only; sending a password it
            # cannot verify would fail later with a less clear error.
            raise config_error(
                "the bundled-protocol server authenticates with TokenAuth; "
                "PasswordAuth is not supported",
                option="auth",
            )
        if self.config.tls.pinned_sha256 is not None:
            raise config_error(
                "TLSConfig.pinned_sha256 is not supported by the bundled protocol client",
                option="tls.pinned_sha256",
            )

    @property
    def capabilities(self) -> BackendCapabilities:
        return self._caps

    async def open(self) -> None:
        self._check_config()
        await self.connection.open()
        # The documented record (API.md §8), plus the additive HNSW flag
        # when the server's handshake acknowledges it.
        features = set(self.connection.server_features)
        self._caps = self._caps.with_flags(
            approximate_vector_search="approximate_vector_search" in features
        )

    def pool_status(self) -> tuple[int, int]:
        """``(open, max)`` pooled connections."""
        status: tuple[int, int] = self.connection.pool_status()
        return status

    async def server_schema(self) -> list[dict[str, Any]]:
        """The model schemas the server holds."""
        schemas: list[dict[str, Any]] = await self.connection.server_schema()
        return schemas

    async def open_cursor(self, ir: dict[str, Any], txn: Any = None) -> Any:
        return await self.connection.cursor(ir, txn)

    def explain(self, ir: dict[str, Any]) -> dict[str, Any]:
        plan: dict[str, Any] = self.connection.explain(ir)
        return plan

    async def begin(self, isolation: str) -> Any:
        return await self.connection.begin()

    async def commit(self, txn: Any) -> None:
        await self.connection.commit(txn)

    async def rollback(self, txn: Any) -> None:
        await self.connection.rollback(txn)


def from_config(config: ClientConfig, *, transport: Any = None) -> BundledBackend:
    """Registry hook for ``aura://``, ``aura+tcp://`` and ``auras://``."""
    if transport is not None:
        raise config_error(
            "aura:// speaks the bundled protocol over its own socket; pass a "
            "MemoryTransport to use the in-process engine instead",
            option="transport",
        )
    return BundledBackend(config)
