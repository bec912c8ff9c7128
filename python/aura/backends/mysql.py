"""The MySQL/MariaDB backend (``mysql://``, ``mariadb://``,
``mysql+aiomysql://``, ``mariadb+aiomysql://``).

The driver is built into the Rust core (mysql_async with its own pool, TLS
through rustls): no Python driver package is needed. Statements are
compiled from the Query IR by the shared SQL compiler for the MySQL
dialect and run by the shared executor in ``aura-sql``; rows are hydrated
on the event-loop thread. See docs/mysql.md for the semantics
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

__all__ = ["AVAILABLE", "DSN_OPTIONS", "MySQLBackend", "from_config"]

# False when the Rust core was built without the `mysql` feature.
AVAILABLE = hasattr(_core, "mysql_connection")

# Beyond the §8 column: `.timeout(ms)` runs as MariaDB's `SET STATEMENT
# max_statement_time=... FOR` (error 1969 -> timeout; a MySQL server refuses
# it, docs/mysql.md), aggregate() runs in SQL, and search_text ranks with
# MATCH ... AGAINST over a FULLTEXT index (docs/sql-search.md).
_CAPABILITIES = replace(
    for_backend("mysql"),
    query_timeouts=True,
    aggregations_and_facets=True,
    full_text_search=True,
)

# DSN options forwarded to the TLS set-up or checked; others are rejected.
# Both the MySQL client's spelling (ssl-mode) and the underscore one work.
DSN_OPTIONS = ("charset", "ssl-ca", "ssl-mode", "ssl_ca", "ssl_mode")


def _option(options: dict[str, str], name: str) -> str | None:
    dashed, underscored = options.get(name), options.get(name.replace("-", "_"))
    if dashed is not None and underscored is not None and dashed != underscored:
        raise config_error(f"{name} is given twice with different values", option=name)
    return dashed if dashed is not None else underscored


_SSL_MODES = SslModes(
    option="ssl-mode",
    verify_full="VERIFY_IDENTITY",
    require="REQUIRED",
    disable="DISABLED",
    default="PREFERRED",
    plaintext=("PREFERRED",),
)


def _ssl(config: ClientConfig, options: dict[str, str]) -> tuple[str, str | None]:
    """``(ssl-mode, CA file)`` from the DSN options and ``tls=``."""
    mode, ca = _option(options, "ssl-mode"), _option(options, "ssl-ca")
    return ssl_mode(config, "mysql", mode, ca, _SSL_MODES)


class MySQLBackend(PooledSqlBackend):
    """Transactions run at REPEATABLE READ from a consistent snapshot taken
    at ``begin`` (a write blocked by another transaction's row lock ->
    ``conflict``)."""

    name = "mysql"

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        options = check_options(config, "mysql", DSN_OPTIONS)
        user, password = credentials(config, "MySQL")
        self.connection = _core.mysql_connection(
            config.host,
            config.port,
            user,
            password=password,
            dbname=config.database,
            charset=options.get("charset"),
            ssl=_ssl(config, options),
            pool=pool_settings(config),
            connect_timeout_s=config.connect_timeout_s,
            request_timeout_s=config.request_timeout_s,
        )

    @property
    def capabilities(self) -> BackendCapabilities:
        return _CAPABILITIES


def from_config(config: ClientConfig, *, transport: Any = None) -> MySQLBackend:
    """Registry hook for ``mysql://``, ``mariadb://`` and their ``+aiomysql`` forms."""
    if not AVAILABLE:
        raise driver_not_installed("mysql_async", "mysql", "mysql")
    if transport is not None:
        raise config_error("mysql:// does not take transport=", option="transport")
    return MySQLBackend(config)
