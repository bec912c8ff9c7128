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

from dataclasses import replace
from typing import Any

import aura._core as _core
from aura.backends.base import driver_not_installed
from aura.backends.capabilities import BackendCapabilities, for_backend
from aura.backends.sql_pool import (
    PooledSqlBackend,
    SslModes,
    check_options,
    credentials,
    pool_settings,
    ssl_mode,
)
from aura.config import ClientConfig, config_error

__all__ = ["AVAILABLE", "DSN_OPTIONS", "PostgresBackend", "from_config"]

# False when the Rust core was built without the `postgres` feature.
AVAILABLE = hasattr(_core, "postgres_connection")

# Beyond the §8 column: `.timeout(ms)` runs as `SET LOCAL statement_timeout`
# (SQLSTATE 57014 -> timeout), aggregate() runs in SQL, and search_text ranks
# with ts_rank_cd over a GIN-indexed tsvector (docs/sql-search.md).
_CAPABILITIES = replace(
    for_backend("postgres"),
    query_timeouts=True,
    aggregations_and_facets=True,
    full_text_search=True,
)

# DSN options forwarded to the server or the TLS set-up; others are rejected.
DSN_OPTIONS = ("application_name", "options", "sslmode", "sslrootcert")


_SSL_MODES = SslModes(
    option="sslmode",
    verify_full="verify-full",
    require="require",
    disable="disable",
    default="prefer",
    plaintext=("allow", "prefer"),
)


def _ssl(config: ClientConfig, options: dict[str, str]) -> tuple[str, str | None]:
    """``(sslmode, CA file)`` from the DSN options and ``tls=``."""
    mode, ca = options.get("sslmode"), options.get("sslrootcert")
    return ssl_mode(config, "postgres", mode, ca, _SSL_MODES)


class PostgresBackend(PooledSqlBackend):
    """Transactions run at REPEATABLE READ, PostgreSQL's snapshot isolation
    (a concurrent write to the same row -> ``conflict``)."""

    name = "postgres"

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        options = check_options(config, "postgres", DSN_OPTIONS)
        user, password = credentials(config, "PostgreSQL")
        self.connection = _core.postgres_connection(
            config.host,
            config.port,
            user,
            password=password,
            dbname=config.database,
            application_name=options.get("application_name"),
            server_options=options.get("options"),
            ssl=_ssl(config, options),
            pool=pool_settings(config),
            connect_timeout_s=config.connect_timeout_s,
            request_timeout_s=config.request_timeout_s,
        )

    @property
    def capabilities(self) -> BackendCapabilities:
        return _CAPABILITIES


def from_config(config: ClientConfig, *, transport: Any = None) -> PostgresBackend:
    """Registry hook for ``postgres://``, ``postgresql://``, ``postgresql+asyncpg://``."""
    if not AVAILABLE:
        raise driver_not_installed("tokio-postgres", "postgres", "postgres")
    if transport is not None:
        raise config_error("postgres:// does not take transport=", option="transport")
    return PostgresBackend(config)
