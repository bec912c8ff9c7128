"""The PostgreSQL backend (``postgres://``, ``postgresql://``,
``postgresql+asyncpg://``).

The driver is built into the Rust core (tokio-postgres with a
deadpool-postgres pool, TLS through rustls): no Python driver package is
needed. Statements are compiled from the Query IR by the shared SQL
compiler and run by the shared executor in ``aura-sql``; rows are hydrated
on the event-loop thread. See docs/postgres.md for the semantics
(transactions, timeouts, DSN options, what SQL cannot express).
"""

from __future__ import annotations

import getpass
from dataclasses import replace
from typing import Any

import aura._core as _core
from aura.backends.base import AsyncConnectionBackend, driver_not_installed
from aura.backends.capabilities import BackendCapabilities, for_backend
from aura.config import ClientConfig, PasswordAuth, TLSConfig, TokenAuth, config_error

__all__ = ["AVAILABLE", "DSN_OPTIONS", "PostgresBackend", "from_config"]

# False when the Rust core was built without the `postgres` feature.
AVAILABLE = hasattr(_core, "PostgresConnection")

# `.timeout(ms)` runs as `SET LOCAL statement_timeout` (SQLSTATE 57014 -> timeout).
_CAPABILITIES = replace(for_backend("postgres"), query_timeouts=True)

# DSN options forwarded to the server or the TLS set-up; others are rejected.
DSN_OPTIONS = ("application_name", "options", "sslmode", "sslrootcert")


def _check_options(config: ClientConfig) -> dict[str, str]:
    options = {k: str(v) for k, v in config.options.items()}
    unknown = sorted(set(options) - set(DSN_OPTIONS))
    if unknown:
        raise config_error(
            f"Unsupported postgres DSN option(s): {', '.join(unknown)}; "
            f"supported: {', '.join(DSN_OPTIONS)}",
            options=unknown,
        )
    return options


def _ssl(config: ClientConfig, options: dict[str, str]) -> tuple[str, str | None]:
    """``(sslmode, CA file)`` from the DSN options and ``tls=``."""
    tls = config.tls
    if tls.client_cert_path or tls.client_key_path or tls.pinned_sha256:
        raise config_error(
            "The postgres backend supports server verification only: client certificates "
            "and pinned_sha256 are not available",
            option="tls",
        )
    ca_file = options.get("sslrootcert") or tls.ca_cert_path
    mode = options.get("sslmode")
    if tls.enabled:
        wanted = "verify-full" if tls.verify_hostname else "require"
        if mode == "disable":
            raise config_error("sslmode=disable contradicts tls=TLSConfig(enabled=True)")
        mode = mode or wanted
    elif tls != TLSConfig() and tls.ca_cert_path is None:
        raise config_error("tls= settings need TLSConfig(enabled=True)", option="tls")
    return mode or "prefer", ca_file


def _credentials(config: ClientConfig) -> tuple[str, str | None]:
    auth = config.auth
    if isinstance(auth, TokenAuth):
        raise config_error("PostgreSQL takes a user and password, not a token", option="auth")
    if isinstance(auth, PasswordAuth):
        return auth.username or getpass.getuser(), auth.password or None
    return getpass.getuser(), None


class PostgresBackend(AsyncConnectionBackend):
    name = "postgres"

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        options = _check_options(config)
        user, password = _credentials(config)
        pool = config.pool
        self.connection = _core.PostgresConnection(
            config.host,
            config.port,
            user,
            password=password,
            dbname=config.database,
            application_name=options.get("application_name"),
            server_options=options.get("options"),
            ssl=_ssl(config, options),
            pool=(
                pool.min_size,
                pool.max_size,
                pool.acquire_timeout_s,
                pool.max_lifetime_s,
                pool.idle_timeout_s,
            ),
            connect_timeout_s=config.connect_timeout_s,
            request_timeout_s=config.request_timeout_s,
        )

    @property
    def capabilities(self) -> BackendCapabilities:
        return _CAPABILITIES

    def pool_status(self) -> tuple[int, int, int]:
        """``(open, idle, max)`` connections of the pool."""
        status: tuple[int, int, int] = self.connection.pool_status()
        return status

    async def open_cursor(self, ir: dict[str, Any], txn: Any = None) -> _PostgresCursor:
        return _PostgresCursor(await self.connection.cursor(ir, txn))

    def explain(self, ir: dict[str, Any]) -> dict[str, Any]:
        """The IR plus the SQL it compiles to (``sql``) and PostgreSQL's
        ``EXPLAIN`` lines (``plan``)."""
        plan: dict[str, Any] = self.connection.explain(ir)
        return plan

    async def begin(self, isolation: str) -> Any:
        """A snapshot transaction: REPEATABLE READ, PostgreSQL's snapshot
        isolation (a concurrent write to the same row -> ``conflict``)."""
        return await self.connection.begin()

    async def commit(self, txn: Any) -> None:
        await self.connection.end(txn, True)

    async def rollback(self, txn: Any) -> None:
        await self.connection.end(txn, False)


class _PostgresCursor:
    """Rows of one select, hydrated a batch per fetch."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    async def fetch(self, batch_size: int) -> list[Any]:
        rows: list[Any] = self._cursor.fetch(batch_size)
        return rows

    def close(self) -> None:
        self._cursor.close()


def from_config(config: ClientConfig, *, transport: Any = None) -> PostgresBackend:
    """Registry hook for ``postgres://``, ``postgresql://``, ``postgresql+asyncpg://``."""
    if not AVAILABLE:
        raise driver_not_installed("tokio-postgres", "postgres", "postgres")
    if transport is not None:
        raise config_error("postgres:// does not take transport=", option="transport")
    return PostgresBackend(config)
