"""Immutable client configuration and protocol DSN parsing (API.md §3.2, §7).

Every configuration problem raises ``AuraError`` with code ``config_error``;
no bare ``TypeError``/``ValueError`` escapes (API.md §16 row 28). Secrets
print as ``***`` in every ``repr`` and never appear in error messages.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from aura.errors import AuraError

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_PORT",
    "MIN_MAX_PAYLOAD_BYTES",
    "PROTOCOL_SCHEMES",
    "TLS_SCHEMES",
    "AuthConfig",
    "ClientConfig",
    "PasswordAuth",
    "PoolConfig",
    "RetryPolicy",
    "TLSConfig",
    "TokenAuth",
    "parse_dsn",
]

DEFAULT_PORT = 7171
DEFAULT_MAX_PAYLOAD_BYTES = 67108864
MIN_MAX_PAYLOAD_BYTES = 64

# Schemes served by ClientConfig; database schemes live in aura.backends.registry.
PROTOCOL_SCHEMES: tuple[str, ...] = (
    "aura",
    "aura+tcp",
    "auras",
    "auradb",
    "auradbs",
    "aura+memory",
    "memory",
)
TLS_SCHEMES = frozenset({"auras", "auradbs"})
MEMORY_SCHEMES = frozenset({"aura+memory", "memory"})

# Spelled out because `auras` is easy to mistake for AuraDB over TLS (§16 row 47).
PROTOCOL_SCHEMES_HELP = (
    "aura://, aura+tcp:// (bundled reference protocol over TCP), "
    "auras:// (bundled reference protocol over TLS; AuraDB over TLS is auradbs://), "
    "auradb://, auradbs:// (AuraDB native AWP 1, auradbs = TLS), "
    "aura+memory://, memory:// (in-process memory engine)"
)

_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$", re.DOTALL)
_PIN_RE = re.compile(r"^[0-9A-Fa-f]{64}$")


def config_error(message: str, **context: Any) -> AuraError:
    """The one error type for configuration and DSN problems."""
    return AuraError(message, code="config_error", context=context)


# --------------------------------------------------------------------------- validators


def _is_number(value: Any) -> bool:
    # bool is an int subclass but never a meaningful duration or size.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_seconds(name: str, value: Any) -> float:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise config_error(f"{name} must be a positive, finite number of seconds", option=name)
    return float(value)


def _non_negative_seconds(name: str, value: Any) -> float:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise config_error(f"{name} must be a non-negative, finite number of seconds", option=name)
    return float(value)


def _int_at_least(name: str, value: Any, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise config_error(f"{name} must be an integer >= {minimum}", option=name)
    return value


def _require_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise config_error(f"{name} must be a bool", option=name)
    return value


def _require_str(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise config_error(f"{name} must be a non-empty string", option=name)


def _set(obj: Any, name: str, value: Any) -> None:
    # Frozen dataclasses normalise their own fields in __post_init__.
    object.__setattr__(obj, name, value)


# --------------------------------------------------------------------------- auth


@dataclass(frozen=True)
class AuthConfig:
    """Base of the credential objects; ``headers()`` feeds the handshake."""

    def headers(self) -> dict[str, str]:
        return {}


@dataclass(frozen=True, repr=False)
class TokenAuth(AuthConfig):
    """Bearer-token credentials (the only kind the AuraDB native backend accepts)."""

    token: str

    def __post_init__(self) -> None:
        if not isinstance(self.token, str):
            raise config_error("TokenAuth token must be a string", option="token")

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def __repr__(self) -> str:
        return "TokenAuth(token=***)"

    __str__ = __repr__


@dataclass(frozen=True, repr=False)
class PasswordAuth(AuthConfig):
    """Username/password credentials (from a DSN's userinfo or given explicitly)."""

    username: str
    password: str

    def __post_init__(self) -> None:
        if not isinstance(self.username, str) or not isinstance(self.password, str):
            raise config_error("PasswordAuth username and password must be strings", option="auth")

    def headers(self) -> dict[str, str]:
        return {"auth-username": self.username, "auth-password": self.password}

    def __repr__(self) -> str:
        return f"PasswordAuth(username={self.username!r}, password=***)"

    __str__ = __repr__


# --------------------------------------------------------------------------- TLS / retry / pool


@dataclass(frozen=True)
class TLSConfig:
    """TLS settings; no CA path means the system trust store, cert+key means mTLS."""

    enabled: bool = False
    verify_hostname: bool = True
    ca_cert_path: str | None = None
    client_cert_path: str | None = None
    client_key_path: str | None = None
    pinned_sha256: str | None = None

    def __post_init__(self) -> None:
        _require_bool("tls.enabled", self.enabled)
        _require_bool("tls.verify_hostname", self.verify_hostname)
        for name in ("ca_cert_path", "client_cert_path", "client_key_path"):
            _require_str(f"tls.{name}", getattr(self, name), optional=True)
        if self.client_key_path is not None and self.client_cert_path is None:
            raise config_error(
                "tls.client_key_path needs tls.client_cert_path", option="client_key_path"
            )
        pin = self.pinned_sha256
        if pin is not None and not (isinstance(pin, str) and _PIN_RE.match(pin.replace(":", ""))):
            raise config_error(
                "tls.pinned_sha256 must be 64 hex digits (colons allowed)", option="pinned_sha256"
            )

    @property
    def mutual(self) -> bool:
        """True when a client certificate is presented (mTLS)."""
        return self.client_cert_path is not None and self.client_key_path is not None

    @property
    def pinned_digest(self) -> bytes | None:
        """The pinned certificate SHA-256 as raw bytes, or ``None``."""
        if self.pinned_sha256 is None:
            return None
        return bytes.fromhex(self.pinned_sha256.replace(":", ""))


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for the bundled protocol path: 0, base, base·m, base·m², … capped at max."""

    max_attempts: int = 3
    base_delay_s: float = 0.05
    max_delay_s: float = 2.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        _int_at_least("retry.max_attempts", self.max_attempts, 1)
        _set(self, "base_delay_s", _non_negative_seconds("retry.base_delay_s", self.base_delay_s))
        _set(self, "max_delay_s", _non_negative_seconds("retry.max_delay_s", self.max_delay_s))
        m = self.multiplier
        if not _is_number(m) or not math.isfinite(m) or m < 1:
            raise config_error("retry.multiplier must be a finite number >= 1", option="multiplier")
        _set(self, "multiplier", float(m))

    def delay_for_attempt(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (1-based); the first attempt never waits."""
        if attempt <= 1:
            return 0.0
        try:
            delay = self.base_delay_s * self.multiplier ** (attempt - 2)
        except OverflowError:  # huge attempt numbers: the cap applies anyway
            return self.max_delay_s
        return min(delay, self.max_delay_s)


@dataclass(frozen=True)
class PoolConfig:
    """Connection pool policy."""

    min_size: int = 1
    max_size: int = 16
    acquire_timeout_s: float = 5.0
    max_lifetime_s: float = 1800.0
    idle_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        _int_at_least("pool.min_size", self.min_size, 0)
        _int_at_least("pool.max_size", self.max_size, 1)
        if self.min_size > self.max_size:
            raise config_error("pool.min_size must not exceed pool.max_size", option="min_size")
        for name in ("acquire_timeout_s", "max_lifetime_s", "idle_timeout_s"):
            _set(self, name, _positive_seconds(f"pool.{name}", getattr(self, name)))


# --------------------------------------------------------------------------- client config


@dataclass(frozen=True, repr=False)
class ClientConfig:
    """Everything a client needs to reach one endpoint; built by ``parse_dsn``."""

    scheme: str
    host: str
    port: int
    database: str | None = None
    connect_timeout_s: float = 10.0
    request_timeout_s: float = 30.0
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    compression: bool = False
    payload_checksum: bool = True
    auth: AuthConfig | None = None
    tls: TLSConfig = field(default_factory=TLSConfig)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    pool: PoolConfig = field(default_factory=PoolConfig)
    # hash=False keeps the frozen config hashable despite the dict.
    options: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _require_str("scheme", self.scheme)
        _set(self, "scheme", self.scheme.lower())
        _require_str("host", self.host)
        # Port 0 = no network port (file-backed SQLite); DSN ports are always 1..65535.
        port = self.port
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise config_error("port must be an integer in 0..65535", option="port")
        _require_str("database", self.database, optional=True)
        for name in ("connect_timeout_s", "request_timeout_s"):
            _set(self, name, _positive_seconds(name, getattr(self, name)))
        _int_at_least("max_payload_bytes", self.max_payload_bytes, MIN_MAX_PAYLOAD_BYTES)
        _require_bool("compression", self.compression)
        _require_bool("payload_checksum", self.payload_checksum)
        self._check_policies()

    def _check_policies(self) -> None:
        if self.auth is not None and not isinstance(self.auth, AuthConfig):
            raise config_error("auth must be TokenAuth, PasswordAuth or None", option="auth")
        for name, cls in (("tls", TLSConfig), ("retry", RetryPolicy), ("pool", PoolConfig)):
            if not isinstance(getattr(self, name), cls):
                raise config_error(f"{name} must be a {cls.__name__}", option=name)
        if not isinstance(self.options, Mapping):
            raise config_error("options must be a mapping", option="options")
        # A private copy so later mutation of the caller's dict cannot leak in.
        _set(self, "options", {str(k): v for k, v in self.options.items()})

    @property
    def is_memory(self) -> bool:
        return self.scheme in MEMORY_SCHEMES

    @property
    def address(self) -> str:
        """``host:port``; IPv6 hosts are bracketed so the port stays unambiguous."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def with_overrides(self, **changes: Any) -> ClientConfig:
        """A copy with some fields replaced (validated like the constructor)."""
        _reject_unknown(changes, _CONFIG_FIELDS)
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        return (
            f"ClientConfig(scheme={self.scheme!r}, host={self.host!r}, port={self.port!r}, "
            f"database={self.database!r}, tls={self.tls.enabled!r}, auth={self.auth!r})"
        )

    __str__ = __repr__


_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(ClientConfig))
# `scheme` comes from the DSN; auth/tls/retry/pool are parse_dsn's named parameters.
_DSN_OVERRIDES = _CONFIG_FIELDS - {"scheme", "auth", "tls", "retry", "pool"}


def check_overrides(overrides: Mapping[str, Any]) -> None:
    """Reject connect keywords that are not ``ClientConfig`` field overrides."""
    _reject_unknown(overrides, _DSN_OVERRIDES)


def _reject_unknown(changes: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise config_error(
            f"Unknown configuration option(s): {', '.join(unknown)}; "
            f"expected one of: {', '.join(sorted(allowed))}",
            options=unknown,
        )


# --------------------------------------------------------------------------- DSN splitting


@dataclass(frozen=True, repr=False)
class DSNParts:
    """A DSN split into its raw pieces (percent-decoded where the RFC allows)."""

    scheme: str
    username: str | None
    password: str | None
    hosts: tuple[tuple[str, int | None], ...]
    path: str
    query: tuple[tuple[str, str], ...]

    def __repr__(self) -> str:
        secret = None if self.password is None else "***"
        return f"DSNParts(scheme={self.scheme!r}, hosts={self.hosts!r}, password={secret})"


def split_scheme(dsn: Any) -> tuple[str, str]:
    """``(lower-case scheme, rest after '://')``; ``config_error`` when malformed."""
    if not isinstance(dsn, str) or not dsn.strip():
        raise config_error("DSN must be a non-empty string")
    match = _SCHEME_RE.match(dsn.strip())
    if match is None:
        raise config_error("DSN must look like '<scheme>://[user[:password]@]host[:port][/db]'")
    return match.group(1).lower(), match.group(2)


def split_dsn(dsn: Any) -> DSNParts:
    """Split a network DSN; several comma-separated hosts are allowed (MongoDB)."""
    scheme, rest = split_scheme(dsn)
    rest = rest.partition("#")[0]
    rest, _, query = rest.partition("?")
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    userinfo, at, hostinfo = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    hosts = tuple(_split_host(h) for h in hostinfo.split(",")) if hostinfo else ()
    return DSNParts(scheme, username, password, hosts, path, tuple(_parse_query(query)))


def _split_host(hostport: str) -> tuple[str, int | None]:
    if hostport.startswith("["):  # [IPv6]:port
        host, _, tail = hostport[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else tail
    elif hostport.count(":") == 1:
        host, _, port_text = hostport.partition(":")
    else:
        host, port_text = hostport, ""
    if not host:
        raise config_error("DSN host must not be empty")
    if not port_text:
        return unquote(host).lower(), None
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
        raise config_error("DSN port must be an integer in 1..65535", option="port")
    return unquote(host).lower(), int(port_text)


def _parse_query(query: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(query, keep_blank_values=True)
    except ValueError as exc:  # e.g. too many fields
        raise config_error("DSN query string is malformed") from exc


def database_from_path(path: str) -> str | None:
    """Path without its leading ``/``, percent-decoded; empty → ``None``."""
    name = unquote(path[1:] if path.startswith("/") else path)
    return name or None


# --------------------------------------------------------------------------- parse_dsn


def _query_float(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise config_error(f"DSN option '{name}' must be a positive number of seconds", option=name)
    return value


def _query_payload_limit(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        value = -1
    if value < MIN_MAX_PAYLOAD_BYTES:
        raise config_error(
            f"DSN option 'max_payload_bytes' must be an integer >= {MIN_MAX_PAYLOAD_BYTES}",
            option="max_payload_bytes",
        )
    return value


def _apply_query(pairs: tuple[tuple[str, str], ...], fields: dict[str, Any]) -> None:
    options: dict[str, str] = {}
    for key, text in pairs:
        if key == "connect_timeout":
            fields["connect_timeout_s"] = _query_float(key, text)
        elif key == "request_timeout":
            fields["request_timeout_s"] = _query_float(key, text)
        elif key == "max_payload_bytes":
            fields["max_payload_bytes"] = _query_payload_limit(text)
        elif key in ("compression", "payload_checksum"):
            fields[key] = text.strip().lower() in _TRUE_WORDS
        else:
            options[key] = text  # last repeated value wins
    fields["options"] = options


def _unsupported_scheme(scheme: str) -> AuraError:
    return config_error(
        f"Unsupported scheme '{scheme}' for parse_dsn(); supported protocol schemes: "
        f"{PROTOCOL_SCHEMES_HELP}. Database DSNs (sqlite://, postgresql://, mysql://, "
        "mongodb://, redis://) are parsed by aura.backends.registry.parse_backend_url().",
        scheme=scheme,
        supported=list(PROTOCOL_SCHEMES),
    )


def parse_dsn(
    dsn: str,
    *,
    auth: AuthConfig | None = None,
    tls: TLSConfig | None = None,
    retry: RetryPolicy | None = None,
    pool: PoolConfig | None = None,
    **overrides: Any,
) -> ClientConfig:
    """Parse a protocol-scheme DSN into a ``ClientConfig`` (API.md §7).

    Keyword overrides replace the parsed values; ``auth``/``tls`` given here
    always win over the DSN's userinfo and the scheme's TLS default.
    """
    parts = split_dsn(dsn)
    if parts.scheme not in PROTOCOL_SCHEMES:
        raise _unsupported_scheme(parts.scheme)
    check_overrides(overrides)
    if len(parts.hosts) > 1:
        raise config_error("Protocol DSNs take a single host", scheme=parts.scheme)
    host, port = parts.hosts[0] if parts.hosts else ("localhost", None)
    fields: dict[str, Any] = {
        "scheme": parts.scheme,
        "host": host,
        "port": DEFAULT_PORT if port is None else port,
        "database": database_from_path(parts.path),
        "auth": auth if auth is not None else _dsn_auth(parts),
        "tls": tls if tls is not None else TLSConfig(enabled=parts.scheme in TLS_SCHEMES),
        "retry": retry if retry is not None else RetryPolicy(),
        "pool": pool if pool is not None else PoolConfig(),
    }
    _apply_query(parts.query, fields)
    fields.update(overrides)
    return ClientConfig(**fields)


def _dsn_auth(parts: DSNParts) -> PasswordAuth | None:
    if parts.username is None and parts.password is None:
        return None
    return PasswordAuth(parts.username or "", parts.password or "")
