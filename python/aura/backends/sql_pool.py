"""What the pooled SQL backends (PostgreSQL, MySQL/MariaDB) share.

Their drivers live in the Rust core behind one binding,
``_core.SqlPoolConnection``; a backend module only checks its DSN options
and credentials and builds the connection. Requests, transactions,
cursors and ``explain`` are the same for all of them and live here.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aura.backends.base import AsyncConnectionBackend
from aura.backends.sql_schema import plan_against
from aura.config import ClientConfig, PasswordAuth, TLSConfig, TokenAuth, config_error
from aura.schema import MigrationPlan, compile_models

if TYPE_CHECKING:
    from aura.models import AuraModel

__all__ = [
    "PooledSqlBackend",
    "SslModes",
    "check_options",
    "credentials",
    "pool_settings",
    "ssl_mode",
]


def check_options(config: ClientConfig, backend: str, supported: tuple[str, ...]) -> dict[str, str]:
    """The DSN options, refusing any the backend does not forward."""
    options = {k: str(v) for k, v in config.options.items()}
    unknown = sorted(set(options) - set(supported))
    if unknown:
        raise config_error(
            f"Unsupported {backend} DSN option(s): {', '.join(unknown)}; "
            f"supported: {', '.join(supported)}",
            options=unknown,
        )
    return options


def credentials(config: ClientConfig, database: str) -> tuple[str, str | None]:
    """``(user, password)``; the OS user when the DSN names none."""
    auth = config.auth
    if isinstance(auth, TokenAuth):
        raise config_error(f"{database} takes a user and password, not a token", option="auth")
    if isinstance(auth, PasswordAuth):
        return auth.username or getpass.getuser(), auth.password or None
    return getpass.getuser(), None


@dataclass(frozen=True)
class SslModes:
    """A driver's spelling of its TLS modes (PostgreSQL ``verify-full``,
    MySQL ``VERIFY_IDENTITY``...)."""

    option: str
    verify_full: str
    require: str
    disable: str
    default: str
    # Modes that may connect without TLS: refused when TLS is required.
    plaintext: tuple[str, ...] = ()


def ssl_mode(
    config: ClientConfig, backend: str, mode: str | None, ca_file: str | None, modes: SslModes
) -> tuple[str, str | None]:
    """``(mode, CA file)`` from the DSN's TLS mode and CA and ``tls=``: a
    contradiction or a setting the driver cannot apply is refused."""
    tls = config.tls
    if tls.client_cert_path or tls.client_key_path or tls.pinned_sha256:
        raise config_error(
            f"The {backend} backend supports server verification only: client certificates "
            "and pinned_sha256 are not available",
            option="tls",
        )
    ca_file = ca_file or tls.ca_cert_path
    if tls.enabled:
        allows_plaintext = {m.upper() for m in (modes.disable, *modes.plaintext)}
        if mode is not None and mode.upper() in allows_plaintext:
            raise config_error(
                f"{modes.option}={mode} may connect without TLS, which contradicts "
                "tls=TLSConfig(enabled=True)"
            )
        mode = mode or (modes.verify_full if tls.verify_hostname else modes.require)
    elif tls != TLSConfig() and tls.ca_cert_path is None:
        raise config_error("tls= settings need TLSConfig(enabled=True)", option="tls")
    return mode or modes.default, ca_file


def pool_settings(config: ClientConfig) -> tuple[int, int, float, float, float]:
    """``PoolConfig`` as the binding takes it."""
    pool = config.pool
    return (
        pool.min_size,
        pool.max_size,
        pool.acquire_timeout_s,
        pool.max_lifetime_s,
        pool.idle_timeout_s,
    )


class PooledSqlBackend(AsyncConnectionBackend):
    """A backend on ``_core.SqlPoolConnection``."""

    async def diff_schema(self, models: Iterable[type[AuraModel]]) -> MigrationPlan:
        """Changes that would bring the live tables of ``models`` to their
        declared schema (columns, types, nullability, primary key, unique
        and plain indexes, full-text indexes; see ``sql_schema``)."""
        models = list(models)
        target = compile_models(models)
        live = await self.connection.describe(self._register(models))
        return plan_against(target, live)

    def pool_status(self) -> tuple[int, int, int]:
        """``(open, idle, max)`` connections of the pool."""
        status: tuple[int, int, int] = self.connection.pool_status()
        return status

    async def open_cursor(self, ir: dict[str, Any], txn: Any = None) -> _PooledCursor:
        return _PooledCursor(await self.connection.cursor(ir, txn))

    def explain(self, ir: dict[str, Any]) -> dict[str, Any]:
        """The IR plus the SQL it compiles to (``sql``) and the database's
        ``EXPLAIN`` lines (``plan``)."""
        plan: dict[str, Any] = self.connection.explain(ir)
        return plan

    async def begin(self, isolation: str) -> Any:
        """A transaction on a pooled connection of its own, at the level the
        backend's docs state."""
        return await self.connection.begin()

    async def commit(self, txn: Any) -> None:
        await self.connection.end(txn, True)

    async def rollback(self, txn: Any) -> None:
        await self.connection.end(txn, False)


class _PooledCursor:
    """Rows of one select, hydrated a batch per fetch."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    async def fetch(self, batch_size: int) -> list[Any]:
        rows: list[Any] = self._cursor.fetch(batch_size)
        return rows

    def close(self) -> None:
        self._cursor.close()
