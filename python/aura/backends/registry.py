"""DSN scheme table and database-URL parsing (API.md §7).

Protocol schemes (``aura://`` & co.) are parsed into a ``ClientConfig`` by
``aura.config.parse_dsn``; database schemes are parsed here into a
``BackendURL``. Parsing never imports a driver.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from aura.config import (
    PROTOCOL_SCHEMES,
    PROTOCOL_SCHEMES_HELP,
    AuthConfig,
    ClientConfig,
    DSNParts,
    PasswordAuth,
    PoolConfig,
    RetryPolicy,
    TLSConfig,
    check_overrides,
    config_error,
    database_from_path,
    parse_dsn,
    split_dsn,
    split_scheme,
)
from aura.errors import AuraBackendError, AuraDriverNotInstalledError, AuraError

if TYPE_CHECKING:
    from aura.backends.base import Backend

__all__ = [
    "BACKEND_MODULES",
    "DEFAULT_PORTS",
    "SCHEME_FAMILY",
    "BackendURL",
    "backend_family",
    "backend_from_config",
    "client_config_for",
    "parse_backend_url",
    "resolve_backend",
]

# Every scheme of §7 → backend family (also the key of capabilities.MATRIX).
SCHEME_FAMILY: Mapping[str, str] = MappingProxyType(
    {
        "auradb": "auradb",
        "auradbs": "auradb",
        "aura": "aura",
        "aura+tcp": "aura",
        "auras": "aura",  # bundled protocol over TLS, *not* AuraDB (§16 row 47)
        "aura+memory": "memory",
        "memory": "memory",
        "sqlite": "sqlite",
        "sqlite+aiosqlite": "sqlite",
        "postgres": "postgres",
        "postgresql": "postgres",
        "postgresql+asyncpg": "postgres",
        "mysql": "mysql",
        "mysql+aiomysql": "mysql",
        "mariadb": "mysql",
        "mariadb+aiomysql": "mysql",
        "mongodb": "mongodb",
        "mongodb+motor": "mongodb",
        "redis": "redis",
        "redis+asyncio": "redis",
    }
)

DEFAULT_PORTS: Mapping[str, int] = MappingProxyType(
    {"postgres": 5432, "mysql": 3306, "mongodb": 27017, "redis": 6379}
)

SQLITE_MEMORY = ":memory:"
# Option keys whose values are printed as *** (drivers accept passwords in the query).
_SECRET_OPTION_WORDS = ("password", "passwd", "secret", "token")


def _supported_schemes_message(scheme: str) -> AuraError:
    database = ", ".join(f"{s}://" for s in SCHEME_FAMILY if s not in PROTOCOL_SCHEMES)
    return config_error(
        f"Unsupported DSN scheme '{scheme}'. Supported schemes: {PROTOCOL_SCHEMES_HELP}; "
        f"databases: {database}",
        scheme=scheme,
        supported=list(SCHEME_FAMILY),
    )


def backend_family(dsn: str) -> str:
    """The backend family of a DSN (``"auradb"``, ``"aura"``, ``"memory"``, ``"sqlite"``…)."""
    scheme, _ = split_scheme(dsn)
    family = SCHEME_FAMILY.get(scheme)
    if family is None:
        raise _supported_schemes_message(scheme)
    return family


@dataclass(frozen=True, repr=False)
class BackendURL:
    """A parsed database DSN; ``repr`` never shows the password."""

    scheme: str
    family: str
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    database: str | None = None
    options: dict[str, str] = field(default_factory=dict, hash=False)
    # All hosts of a multi-host MongoDB DSN (the first is host/port).
    hosts: tuple[tuple[str, int], ...] = ()
    # The original DSN, handed verbatim to the MongoDB and Redis drivers (§7).
    dsn: str = field(default="", compare=False)

    @property
    def is_memory(self) -> bool:
        """SQLite in-memory database (fresh per connection)."""
        return self.family == "sqlite" and self.database == SQLITE_MEMORY

    @property
    def address(self) -> str | None:
        if self.host is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def redis_db(self) -> int:
        """Redis DB index (``0`` when the DSN has no path)."""
        return int(self.database) if self.database else 0

    def __repr__(self) -> str:
        secret = None if self.password is None else "***"
        options = {
            k: "***" if any(w in k.lower() for w in _SECRET_OPTION_WORDS) else v
            for k, v in self.options.items()
        }
        return (
            f"BackendURL(scheme={self.scheme!r}, family={self.family!r}, host={self.host!r}, "
            f"port={self.port!r}, username={self.username!r}, password={secret}, "
            f"database={self.database!r}, options={options!r})"
        )

    __str__ = __repr__


def parse_backend_url(dsn: str) -> BackendURL:
    """Parse a database-scheme DSN (sqlite, postgres, mysql, mongodb, redis)."""
    scheme, rest = split_scheme(dsn)
    family = SCHEME_FAMILY.get(scheme)
    if family is None:
        raise _supported_schemes_message(scheme)
    if scheme in PROTOCOL_SCHEMES:
        raise config_error(
            f"'{scheme}://' is a protocol scheme; parse it with aura.config.parse_dsn()",
            scheme=scheme,
        )
    if family == "sqlite":
        return _parse_sqlite(scheme, rest, dsn.strip())
    return _parse_network(family, split_dsn(dsn), dsn.strip())


def _parse_sqlite(scheme: str, rest: str, dsn: str) -> BackendURL:
    """SQLAlchemy rules: ``sqlite:///app.db`` is relative, ``sqlite:////abs.db`` absolute."""
    location, _, query = rest.partition("?")
    # One "/" separates the (empty) authority from the path; what remains is the file.
    path = unquote(location[1:] if location.startswith("/") else location)
    database = path if path and path != SQLITE_MEMORY else SQLITE_MEMORY
    options = dict(parse_qsl(query, keep_blank_values=True))
    return BackendURL(scheme, "sqlite", database=database, options=options, dsn=dsn)


def _is_db_index(database: str | None) -> bool:
    return database is None or (database.isascii() and database.isdigit())


def _parse_network(family: str, parts: DSNParts, dsn: str) -> BackendURL:
    default_port = DEFAULT_PORTS[family]
    hosts = tuple((h, default_port if p is None else p) for h, p in parts.hosts)
    if len(hosts) > 1 and family != "mongodb":
        raise config_error(f"{family} DSNs take a single host", scheme=parts.scheme)
    host, port = hosts[0] if hosts else ("localhost", default_port)
    database = database_from_path(parts.path)
    if family == "redis" and not _is_db_index(database):
        raise config_error(
            "Redis DSN path must be a database index (e.g. redis://host:6379/0)",
            scheme=parts.scheme,
        )
    return BackendURL(
        scheme=parts.scheme,
        family=family,
        host=host,
        port=port,
        username=parts.username,
        password=parts.password,
        database=database,
        options=dict(parts.query),
        hosts=hosts or ((host, port),),
        dsn=dsn,
    )


# --------------------------------------------------------------------------- config → backend

PROTOCOL_FAMILIES = frozenset({"auradb", "aura", "memory"})

# Family → module defining ``from_config(config, *, transport=None) -> Backend``.
BACKEND_MODULES: Mapping[str, str] = MappingProxyType(
    {
        "auradb": "aura.backends.auradb_native",
        "aura": "aura.backends.auradb",
        "memory": "aura.backends.memory",
        "sqlite": "aura.backends.sqlite",
        "postgres": "aura.backends.postgresql",
        "mysql": "aura.backends.mysql",
        "mongodb": "aura.backends.mongodb",
        "redis": "aura.backends.redis",
    }
)


def client_config_for(dsn: str, options: Mapping[str, Any] | None = None) -> ClientConfig:
    """A ``ClientConfig`` for any supported DSN plus ``connect()`` keywords.

    Unknown keywords raise ``config_error`` for every scheme (§16 row 28); the
    database backends must honour or reject auth/tls/pool themselves.
    """
    opts = dict(options or {})
    if backend_family(dsn) in PROTOCOL_FAMILIES:
        return parse_dsn(dsn, **opts)
    return _database_config(parse_backend_url(dsn), opts)


def _database_config(url: BackendURL, opts: dict[str, Any]) -> ClientConfig:
    auth, tls, retry, pool = (opts.pop(k, None) for k in ("auth", "tls", "retry", "pool"))
    check_overrides(opts)
    if len(url.hosts) > 1:
        # ClientConfig has one host; refusing beats silently dropping replicas.
        raise config_error(
            "Multi-host MongoDB DSNs are not supported yet; use a single host or a proxy",
            scheme=url.scheme,
        )
    if auth is not None and not isinstance(auth, AuthConfig):
        raise config_error("auth must be TokenAuth, PasswordAuth or None", option="auth")
    config = ClientConfig(
        scheme=url.scheme,
        host=url.host or "localhost",
        port=url.port or 0,
        database=url.database,
        auth=auth if auth is not None else _url_auth(url),
        tls=tls if tls is not None else TLSConfig(),
        retry=retry if retry is not None else RetryPolicy(),
        pool=pool if pool is not None else PoolConfig(),
        options=dict(url.options),
    )
    return config.with_overrides(**opts) if opts else config


def _url_auth(url: BackendURL) -> PasswordAuth | None:
    if url.username is None and url.password is None:
        return None
    return PasswordAuth(url.username or "", url.password or "")


def backend_from_config(config: ClientConfig, *, transport: Any = None) -> Backend:
    """Instantiate (not open) the backend a config names; drivers load at open."""
    family = SCHEME_FAMILY.get(config.scheme)
    if family is None:
        raise _supported_schemes_message(config.scheme)
    if transport is not None:
        family = _family_for_transport(family, transport)
    module_name = BACKEND_MODULES[family]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        module = None
    factory = getattr(module, "from_config", None)
    if factory is None and family in DATABASE_DRIVERS:
        raise _driver_not_installed(family)
    if factory is None:
        raise AuraBackendError(
            f"The {family} backend is not available in this build",
            context={"backend": family, "module": module_name},
        )
    backend: Backend = factory(config, transport=transport)
    return backend


# Database family -> (driver built into the Rust core, pip extra). Drivers are
# compiled in, so "not installed" means this build of the package left the
# backend out; the extra names the build that has it.
DATABASE_DRIVERS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "sqlite": ("rusqlite", "sqlite"),
        "postgres": ("tokio-postgres", "postgres"),
        "mysql": ("mysql_async", "mysql"),
        "mongodb": ("mongodb", "mongodb"),
        "redis": ("redis", "redis"),
    }
)


def _driver_not_installed(family: str) -> AuraDriverNotInstalledError:
    driver, extra = DATABASE_DRIVERS[family]
    return AuraDriverNotInstalledError(
        f"The '{driver}' driver is required for the {family} backend but is not included "
        f"in this build of aura-connector. Install with: pip install aura-connector[{extra}]",
        context={"driver": driver, "extra": extra, "backend": family},
    )


def _family_for_transport(family: str, transport: Any) -> str:
    if family not in PROTOCOL_FAMILIES:
        raise config_error(
            "transport= is only accepted for protocol schemes (aura://, auradb://, memory://)",
            option="transport",
        )
    # A MemoryTransport means the in-process engine whatever the protocol scheme.
    return "memory" if getattr(transport, "kind", None) == "memory" else family


def resolve_backend(
    target: ClientConfig | str, *, transport: Any = None, **options: Any
) -> Backend:
    """DSN or ``ClientConfig`` → backend instance (API.md §1.1)."""
    if isinstance(target, ClientConfig):
        if options:
            target = target.with_overrides(**options)
        return backend_from_config(target, transport=transport)
    return backend_from_config(client_config_for(target, options), transport=transport)
