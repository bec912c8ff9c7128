"""aura.config and the DSN registry (API.md §3.2, §7; §15 checks 43-45; §16 rows 28, 47)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aura.backends.registry import (
    SCHEME_FAMILY,
    BackendURL,
    backend_family,
    client_config_for,
    parse_backend_url,
    resolve_backend,
)
from aura.config import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_PORT,
    PROTOCOL_SCHEMES,
    AuthConfig,
    ClientConfig,
    PasswordAuth,
    PoolConfig,
    RetryPolicy,
    TLSConfig,
    TokenAuth,
    parse_dsn,
)
from aura.errors import AuraBackendError, AuraError


def config_error(call, *args, **kwargs) -> AuraError:
    with pytest.raises(AuraError) as info:
        call(*args, **kwargs)
    assert info.value.code == "config_error"
    assert type(info.value) is AuraError
    return info.value


# --------------------------------------------------------------------------- constants / auth


def test_constants() -> None:
    assert DEFAULT_PORT == 7171
    assert DEFAULT_MAX_PAYLOAD_BYTES == 67108864 == 64 * 1024 * 1024


def test_token_auth_redacts_and_builds_bearer_header() -> None:
    auth = TokenAuth("s3cret")
    assert repr(auth) == "TokenAuth(token=***)"  # §15 check 45
    assert str(auth) == "TokenAuth(token=***)"
    assert auth.headers() == {"authorization": "Bearer s3cret"}
    assert auth.token == "s3cret"
    assert isinstance(auth, AuthConfig)


def test_password_auth_redacts_and_builds_headers() -> None:
    auth = PasswordAuth("bob", "s3cret")
    assert repr(auth) == "PasswordAuth(username='bob', password=***)"
    assert str(auth) == repr(auth)
    assert auth.headers() == {"auth-username": "bob", "auth-password": "s3cret"}


def test_auth_objects_are_frozen_and_comparable() -> None:
    auth = TokenAuth("t")
    with pytest.raises(dataclasses.FrozenInstanceError):
        auth.token = "x"  # type: ignore[misc]
    assert TokenAuth("t") == TokenAuth("t")
    assert hash(PasswordAuth("a", "b")) == hash(PasswordAuth("a", "b"))
    assert AuthConfig().headers() == {}


def test_auth_rejects_non_strings() -> None:
    config_error(TokenAuth, 123)
    config_error(PasswordAuth, "bob", None)


# --------------------------------------------------------------------------- TLS / retry / pool


def test_tls_defaults() -> None:
    tls = TLSConfig()
    assert dataclasses.astuple(tls) == (False, True, None, None, None, None)
    assert not tls.mutual
    assert tls.pinned_digest is None


def test_tls_mutual_and_pin() -> None:
    pin = "AB:" * 31 + "AB"
    tls = TLSConfig(True, client_cert_path="c.pem", client_key_path="k.pem", pinned_sha256=pin)
    assert tls.mutual
    assert tls.pinned_digest == bytes([0xAB]) * 32
    assert TLSConfig(client_cert_path="both.pem").mutual is False


@pytest.mark.parametrize(
    "kwargs",
    [
        {"enabled": "yes"},
        {"verify_hostname": 1},
        {"ca_cert_path": ""},
        {"client_key_path": "k.pem"},
        {"pinned_sha256": "abc"},
        {"pinned_sha256": "zz" * 32},
    ],
)
def test_tls_validation(kwargs: dict) -> None:
    config_error(TLSConfig, **kwargs)


def test_retry_policy_defaults_and_delays() -> None:
    policy = RetryPolicy()
    assert dataclasses.astuple(policy) == (3, 0.05, 2.0, 2.0)
    delays = [policy.delay_for_attempt(n) for n in range(0, 9)]
    assert delays == [0.0, 0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
    assert policy.delay_for_attempt(10_000) == 2.0  # no OverflowError


def test_retry_policy_custom_multiplier_one() -> None:
    policy = RetryPolicy(max_attempts=1, base_delay_s=0.5, max_delay_s=0.3, multiplier=1)
    assert policy.multiplier == 1.0 and isinstance(policy.multiplier, float)
    assert [policy.delay_for_attempt(n) for n in (1, 2, 3)] == [0.0, 0.3, 0.3]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "retry.max_attempts must be an integer >= 1"),
        ({"max_attempts": True}, "retry.max_attempts must be an integer >= 1"),
        ({"max_attempts": 2.0}, "retry.max_attempts must be an integer >= 1"),
        ({"base_delay_s": -0.1}, "retry.base_delay_s must be a non-negative, finite number"),
        ({"max_delay_s": -1}, "retry.max_delay_s must be a non-negative, finite number"),
        ({"max_delay_s": math.inf}, "retry.max_delay_s must be a non-negative, finite number"),
        ({"multiplier": 0.5}, "retry.multiplier must be a finite number >= 1"),
        ({"multiplier": "2"}, "retry.multiplier must be a finite number >= 1"),
    ],
)
def test_retry_policy_validation(kwargs: dict, message: str) -> None:
    assert config_error(RetryPolicy, **kwargs).message.startswith(message)


def test_pool_defaults() -> None:
    assert dataclasses.astuple(PoolConfig()) == (1, 16, 5.0, 1800.0, 300.0)
    assert PoolConfig(min_size=0, max_size=1).min_size == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_size": -1}, "pool.min_size must be an integer >= 0"),
        ({"max_size": 0}, "pool.max_size must be an integer >= 1"),
        ({"min_size": 5, "max_size": 4}, "pool.min_size must not exceed pool.max_size"),
        ({"acquire_timeout_s": 0}, "pool.acquire_timeout_s must be a positive, finite number"),
        ({"idle_timeout_s": math.nan}, "pool.idle_timeout_s must be a positive, finite number"),
    ],
)
def test_pool_validation(kwargs: dict, message: str) -> None:
    assert config_error(PoolConfig, **kwargs).message.startswith(message)


# --------------------------------------------------------------------------- ClientConfig


def test_client_config_defaults() -> None:
    config = ClientConfig("aura", "h", 7171)
    assert config.database is None
    assert config.connect_timeout_s == 10.0
    assert config.request_timeout_s == 30.0
    assert config.max_payload_bytes == 67108864
    assert config.compression is False
    assert config.payload_checksum is True
    assert config.auth is None
    assert config.tls == TLSConfig()
    assert config.retry == RetryPolicy()
    assert config.pool == PoolConfig()
    assert config.options == {}
    assert [f.name for f in dataclasses.fields(ClientConfig)] == [
        "scheme", "host", "port", "database", "connect_timeout_s", "request_timeout_s",
        "max_payload_bytes", "compression", "payload_checksum", "auth", "tls", "retry",
        "pool", "options",
    ]  # fmt: skip


def test_client_config_repr_is_exact_and_redacted() -> None:
    config = ClientConfig("aura", "h", 7171, "app", auth=PasswordAuth("bob", "s3cret"))
    expected = (
        "ClientConfig(scheme='aura', host='h', port=7171, database='app', tls=False, "
        "auth=PasswordAuth(username='bob', password=***))"
    )
    assert repr(config) == expected
    assert str(config) == expected
    token = ClientConfig("auradbs", "h", 1, tls=TLSConfig(True), auth=TokenAuth("tok"))
    assert repr(token) == (
        "ClientConfig(scheme='auradbs', host='h', port=1, database=None, tls=True, "
        "auth=TokenAuth(token=***))"
    )


def test_client_config_properties() -> None:
    assert ClientConfig("memory", "x", 7171).is_memory
    assert ClientConfig("aura+memory", "x", 7171).is_memory
    assert not ClientConfig("aura", "x", 7171).is_memory
    assert ClientConfig("aura", "db.example", 9000).address == "db.example:9000"
    assert ClientConfig("aura", "::1", 7171).address == "[::1]:7171"


def test_client_config_is_frozen_hashable_and_copies_options() -> None:
    options = {"a": "1"}
    config = ClientConfig("aura", "h", 7171, options=options)
    options["b"] = "2"
    assert config.options == {"a": "1"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.host = "x"  # type: ignore[misc]
    assert hash(config) == hash(ClientConfig("aura", "h", 7171, options={"z": 1}))


def test_client_config_normalises_scheme_and_numbers() -> None:
    config = ClientConfig("AURA", "h", 7171, connect_timeout_s=5, request_timeout_s=1)
    assert config.scheme == "aura"
    assert config.connect_timeout_s == 5.0 and isinstance(config.connect_timeout_s, float)


def test_with_overrides() -> None:
    base = parse_dsn("aura://bob:pw@h/app")
    changed = base.with_overrides(port=9000, request_timeout_s=2, options={"k": "v"})
    assert (changed.port, changed.request_timeout_s, changed.options) == (9000, 2.0, {"k": "v"})
    assert (changed.host, changed.database, changed.auth) == ("h", "app", base.auth)
    assert base.port == 7171  # original untouched
    assert base.with_overrides() == base


def test_with_overrides_unknown_keyword_is_config_error() -> None:
    err = config_error(parse_dsn("aura://h").with_overrides, bogus=1)
    assert err.message.startswith("Unknown configuration option(s): bogus; expected one of: ")
    assert err.context["options"] == ["bogus"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"port": 70000}, "port must be an integer in 0..65535"),
        ({"port": "7171"}, "port must be an integer in 0..65535"),
        ({"port": True}, "port must be an integer in 0..65535"),
        ({"host": ""}, "host must be a non-empty string"),
        ({"database": 3}, "database must be a non-empty string"),
        ({"connect_timeout_s": 0}, "connect_timeout_s must be a positive, finite number"),
        ({"request_timeout_s": None}, "request_timeout_s must be a positive, finite number"),
        ({"max_payload_bytes": 63}, "max_payload_bytes must be an integer >= 64"),
        ({"compression": 1}, "compression must be a bool"),
        ({"payload_checksum": "true"}, "payload_checksum must be a bool"),
        ({"auth": "token"}, "auth must be TokenAuth, PasswordAuth or None"),
        ({"tls": None}, "tls must be a TLSConfig"),
        ({"retry": {}}, "retry must be a RetryPolicy"),
        ({"pool": None}, "pool must be a PoolConfig"),
        ({"options": [("a", 1)]}, "options must be a mapping"),
    ],
)
def test_with_overrides_validates(change: dict, message: str) -> None:
    assert config_error(parse_dsn("aura://h").with_overrides, **change).message.startswith(message)


# --------------------------------------------------------------------------- parse_dsn


def test_parse_dsn_conformance_43() -> None:
    config = parse_dsn("aura://h/app")
    assert (config.scheme, config.host, config.port, config.database) == ("aura", "h", 7171, "app")
    assert config.tls.enabled is False
    assert parse_dsn("auradbs://h").tls.enabled is True


@pytest.mark.parametrize("scheme", PROTOCOL_SCHEMES)
def test_parse_dsn_every_protocol_scheme(scheme: str) -> None:
    config = parse_dsn(f"{scheme}://host")
    assert config.scheme == scheme
    assert config.port == DEFAULT_PORT
    assert config.tls.enabled is (scheme in ("auras", "auradbs"))
    assert config.is_memory is (scheme in ("memory", "aura+memory"))


def test_parse_dsn_defaults_for_bare_memory_dsn() -> None:
    config = parse_dsn("memory://")
    assert (config.host, config.port, config.database, config.auth) == (
        "localhost",
        7171,
        None,
        None,
    )
    assert config.options == {}


def test_parse_dsn_is_case_insensitive_on_scheme() -> None:
    config = parse_dsn("AuraDBS://Example.COM:9000")
    assert (config.scheme, config.host, config.port, config.tls.enabled) == (
        "auradbs",
        "example.com",
        9000,
        True,
    )


def test_parse_dsn_credentials_are_percent_decoded() -> None:
    config = parse_dsn("aura://b%40b:p%3Aw%2Fd%40@h:7000/my%20db")
    assert config.auth == PasswordAuth("b@b", "p:w/d@")
    assert config.database == "my db"
    assert "p:w/d@" not in repr(config)


def test_parse_dsn_repr_hides_password_check_45() -> None:
    assert "s3cret" not in repr(parse_dsn("aura://bob:s3cret@h"))
    assert "s3cret" not in str(parse_dsn("aura://bob:s3cret@h"))


def test_parse_dsn_user_without_password() -> None:
    assert parse_dsn("aura://bob@h").auth == PasswordAuth("bob", "")


def test_parse_dsn_explicit_auth_and_tls_win() -> None:
    token = TokenAuth("t")
    config = parse_dsn("auras://bob:pw@h", auth=token, tls=TLSConfig(enabled=False))
    assert config.auth is token
    assert config.tls.enabled is False
    forced = parse_dsn("aura://h", tls=TLSConfig(enabled=True, verify_hostname=False))
    assert forced.tls == TLSConfig(enabled=True, verify_hostname=False)


def test_parse_dsn_retry_and_pool() -> None:
    retry, pool = RetryPolicy(max_attempts=5), PoolConfig(max_size=2)
    config = parse_dsn("aura://h", retry=retry, pool=pool)
    assert config.retry is retry and config.pool is pool


def test_parse_dsn_ipv6_host() -> None:
    config = parse_dsn("aura://[::1]:7200/db")
    assert (config.host, config.port, config.address) == ("::1", 7200, "[::1]:7200")


def test_parse_dsn_query_options() -> None:
    config = parse_dsn(
        "aura://h/db?connect_timeout=1.5&request_timeout=20&max_payload_bytes=64"
        "&compression=ON&payload_checksum=no&region=eu&tag=a&tag=b&empty="
    )
    assert config.connect_timeout_s == 1.5
    assert config.request_timeout_s == 20.0
    assert config.max_payload_bytes == 64
    assert config.compression is True
    assert config.payload_checksum is False
    assert config.options == {"region": "eu", "tag": "b", "empty": ""}


@pytest.mark.parametrize("word", ["1", "true", "TRUE", "Yes", "on", " on "])
def test_parse_dsn_true_words(word: str) -> None:
    assert parse_dsn(f"aura://h?compression={word}").compression is True


@pytest.mark.parametrize("word", ["0", "false", "off", "", "y", "enabled"])
def test_parse_dsn_other_words_are_false(word: str) -> None:
    assert parse_dsn(f"aura://h?payload_checksum={word}").payload_checksum is False


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("connect_timeout=abc", "DSN option 'connect_timeout' must be a positive number"),
        ("connect_timeout=0", "DSN option 'connect_timeout' must be a positive number"),
        ("request_timeout=-1", "DSN option 'request_timeout' must be a positive number"),
        ("request_timeout=nan", "DSN option 'request_timeout' must be a positive number"),
        ("request_timeout=inf", "DSN option 'request_timeout' must be a positive number"),
        ("max_payload_bytes=63", "DSN option 'max_payload_bytes' must be an integer >= 64"),
        ("max_payload_bytes=1e6", "DSN option 'max_payload_bytes' must be an integer >= 64"),
        ("max_payload_bytes=", "DSN option 'max_payload_bytes' must be an integer >= 64"),
    ],
)
def test_parse_dsn_bad_query_values_are_config_errors(query: str, message: str) -> None:
    assert config_error(parse_dsn, f"aura://h?{query}").message.startswith(message)


def test_parse_dsn_keyword_overrides_apply_last() -> None:
    config = parse_dsn(
        "aura://h:1000/a?request_timeout=5&compression=1&x=1",
        host="other",
        port=2000,
        database="b",
        request_timeout_s=9,
        compression=False,
        connect_timeout_s=3,
        max_payload_bytes=128,
        payload_checksum=False,
        options={"y": "2"},
    )
    assert (config.host, config.port, config.database) == ("other", 2000, "b")
    assert (config.request_timeout_s, config.connect_timeout_s) == (9.0, 3.0)
    assert (config.compression, config.payload_checksum, config.max_payload_bytes) == (
        False,
        False,
        128,
    )
    assert config.options == {"y": "2"}


def test_parse_dsn_unknown_keyword_is_config_error_not_type_error() -> None:
    err = config_error(parse_dsn, "aura://h", timeout=3)
    assert "Unknown configuration option(s): timeout" in err.message
    config_error(parse_dsn, "aura://h", scheme="auras")


def test_parse_dsn_bad_keyword_values_are_config_errors() -> None:
    config_error(parse_dsn, "aura://h", port="x")
    config_error(parse_dsn, "aura://h", auth="secret")
    config_error(parse_dsn, "aura://h", max_payload_bytes=10)


@pytest.mark.parametrize(
    "dsn", ["http://h", "oracle://x", "postgresql://h/db", "sqlite:///a.db", "auradb+tls://h"]
)
def test_parse_dsn_non_protocol_scheme_check_44(dsn: str) -> None:
    err = config_error(parse_dsn, dsn)
    assert err.message.startswith(f"Unsupported scheme '{dsn.split(':')[0]}' for parse_dsn()")
    for scheme in PROTOCOL_SCHEMES:
        assert f"{scheme}://" in err.message
    # §16 row 47: auras is the bundled protocol over TLS, AuraDB over TLS is auradbs.
    assert "auras:// (bundled reference protocol over TLS; AuraDB over TLS is auradbs://)" in (
        err.message
    )
    assert err.context["supported"] == list(PROTOCOL_SCHEMES)


@pytest.mark.parametrize("dsn", ["", "   ", None, 42, b"aura://h", "aura:/h", "h:7171", "//h"])
def test_parse_dsn_empty_or_malformed(dsn: object) -> None:
    config_error(parse_dsn, dsn)


def test_parse_dsn_empty_message() -> None:
    assert config_error(parse_dsn, "").message == "DSN must be a non-empty string"


@pytest.mark.parametrize("dsn", ["aura://h:99999", "aura://h:abc", "aura://h:0", "aura://:7171"])
def test_parse_dsn_bad_authority(dsn: str) -> None:
    config_error(parse_dsn, dsn)


def test_parse_dsn_rejects_several_hosts() -> None:
    config_error(parse_dsn, "aura://a,b")


def test_parse_dsn_error_messages_never_contain_password() -> None:
    err = config_error(parse_dsn, "aura://bob:s3cret@h:bad")
    assert "s3cret" not in str(err) and "s3cret" not in repr(err.context)


@given(
    user=st.text(min_size=1, max_size=12),
    password=st.text(max_size=12),
    database=st.text(min_size=1, max_size=12),
)
def test_parse_dsn_round_trips_quoted_userinfo(user: str, password: str, database: str) -> None:
    from urllib.parse import quote

    dsn = f"aura://{quote(user, safe='')}:{quote(password, safe='')}@h/{quote(database)}"
    config = parse_dsn(dsn)
    assert config.auth == PasswordAuth(user, password)
    assert config.database == database


# --------------------------------------------------------------------------- registry


def test_scheme_family_covers_every_section_7_scheme() -> None:
    assert dict(SCHEME_FAMILY) == {
        "auradb": "auradb",
        "auradbs": "auradb",
        "aura": "aura",
        "aura+tcp": "aura",
        "auras": "aura",
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
    assert set(PROTOCOL_SCHEMES) <= set(SCHEME_FAMILY)


def test_backend_family() -> None:
    assert backend_family("PostgreSQL+AsyncPG://h/db") == "postgres"
    assert backend_family("auras://h") == "aura"
    assert backend_family("auradbs://h") == "auradb"
    assert backend_family("memory://") == "memory"


@pytest.mark.parametrize("dsn", ["oracle://x", "http://h", "mongodb+srv://h"])
def test_backend_family_unknown_scheme_lists_supported(dsn: str) -> None:
    err = config_error(backend_family, dsn)
    assert err.message.startswith(f"Unsupported DSN scheme '{dsn.split(':')[0]}'. Supported")
    for scheme in SCHEME_FAMILY:
        assert f"{scheme}://" in err.message


@pytest.mark.parametrize("dsn", ["", None, 3, "nothing"])
def test_backend_family_bad_input(dsn: object) -> None:
    config_error(backend_family, dsn)


@pytest.mark.parametrize(
    ("dsn", "family", "host", "port"),
    [
        ("postgresql://h/db", "postgres", "h", 5432),
        ("postgres://h:6000/db", "postgres", "h", 6000),
        ("mysql+aiomysql://h/db", "mysql", "h", 3306),
        ("MariaDB://h/db", "mysql", "h", 3306),
        ("mongodb://h/db", "mongodb", "h", 27017),
        ("redis+asyncio://h/0", "redis", "h", 6379),
        ("postgresql:///db", "postgres", "localhost", 5432),
    ],
)
def test_parse_backend_url_default_ports(dsn: str, family: str, host: str, port: int) -> None:
    url = parse_backend_url(dsn)
    assert (url.family, url.host, url.port) == (family, host, port)
    assert url.scheme == dsn.split(":")[0].lower()


def test_parse_backend_url_full_postgres() -> None:
    url = parse_backend_url("postgresql://us%40er:p%40ss%2Fw@db.local:5433/app?sslmode=require")
    assert url == BackendURL(
        scheme="postgresql",
        family="postgres",
        host="db.local",
        port=5433,
        username="us@er",
        password="p@ss/w",
        database="app",
        options={"sslmode": "require"},
        hosts=(("db.local", 5433),),
    )
    assert url.address == "db.local:5433"
    assert "p@ss/w" not in repr(url) and "p%40ss" not in repr(url)
    assert repr(url) == (
        "BackendURL(scheme='postgresql', family='postgres', host='db.local', port=5433, "
        "username='us@er', password=***, database='app', options={'sslmode': 'require'})"
    )


def test_backend_url_repr_redacts_secret_options() -> None:
    url = parse_backend_url("mysql://h/db?password=hunter2&ssl_key=/k.pem")
    assert "hunter2" not in repr(url)
    assert "'password': '***'" in repr(url)
    assert url.options["password"] == "hunter2"


def test_backend_url_keeps_full_dsn_for_drivers() -> None:
    dsn = "mongodb://u:pw@h1:27017,h2:27018/app?replicaSet=rs0"
    url = parse_backend_url(dsn)
    assert url.dsn == dsn
    assert url.hosts == (("h1", 27017), ("h2", 27018))
    assert (url.host, url.port, url.database) == ("h1", 27017, "app")
    assert "pw" not in repr(url).replace("password", "")


def test_parse_backend_url_redis_db_index() -> None:
    assert parse_backend_url("redis://:pw@r:6380/3").database == "3"
    assert parse_backend_url("redis://:pw@r:6380/3").redis_db == 3
    assert parse_backend_url("redis://r").database is None
    assert parse_backend_url("redis://r").redis_db == 0
    url = parse_backend_url("redis://:pw@r")
    assert (url.username, url.password) == (None, "pw")
    config_error(parse_backend_url, "redis://r/cache")


def test_parse_backend_url_multi_host_only_for_mongodb() -> None:
    config_error(parse_backend_url, "postgresql://a,b/db")


@pytest.mark.parametrize(
    ("dsn", "database", "memory"),
    [
        ("sqlite:///app.db", "app.db", False),  # SQLAlchemy: three slashes = relative
        ("sqlite:////abs/app.db", "/abs/app.db", False),
        ("sqlite://rel.db", "rel.db", False),
        ("sqlite+aiosqlite:///data/x.db", "data/x.db", False),
        ("sqlite://", ":memory:", True),
        ("sqlite://:memory:", ":memory:", True),
        ("sqlite:///:memory:", ":memory:", True),
        ("SQLITE:///my%20file.db", "my file.db", False),
    ],
)
def test_parse_backend_url_sqlite(dsn: str, database: str, memory: bool) -> None:
    url = parse_backend_url(dsn)
    assert (url.family, url.database, url.is_memory) == ("sqlite", database, memory)
    assert (url.host, url.port, url.address) == (None, None, None)


def test_parse_backend_url_sqlite_query_options() -> None:
    url = parse_backend_url("sqlite:///app.db?mode=ro&timeout=5")
    assert (url.database, url.options) == ("app.db", {"mode": "ro", "timeout": "5"})


@pytest.mark.parametrize("dsn", ["aura://h", "auradbs://h", "memory://"])
def test_parse_backend_url_rejects_protocol_schemes(dsn: str) -> None:
    assert "parse it with aura.config.parse_dsn()" in config_error(parse_backend_url, dsn).message


@pytest.mark.parametrize("dsn", ["", None, "oracle://x", "postgresql://h:port/db"])
def test_parse_backend_url_errors(dsn: object) -> None:
    config_error(parse_backend_url, dsn)


def test_client_config_for_protocol_and_database() -> None:
    assert client_config_for("aura://h/app", {"port": 9}).port == 9
    config = client_config_for(
        "postgresql://u:p@db/app?sslmode=require",
        {"request_timeout_s": 3, "pool": PoolConfig(max_size=4)},
    )
    assert (config.scheme, config.host, config.port, config.database) == (
        "postgresql",
        "db",
        5432,
        "app",
    )
    assert config.auth == PasswordAuth("u", "p")
    assert config.options == {"sslmode": "require"}
    assert (config.request_timeout_s, config.pool.max_size) == (3.0, 4)
    sqlite = client_config_for("sqlite:///app.db")
    assert (sqlite.host, sqlite.port, sqlite.database) == ("localhost", 0, "app.db")


def test_client_config_for_rejects_unknown_keywords_for_every_scheme() -> None:
    for dsn in ("aura://h", "sqlite://", "redis://r/0"):
        config_error(client_config_for, dsn, {"bogus": 1})
    config_error(client_config_for, "mongodb://a,b/db")


def test_resolve_backend_rejects_transport_for_database_schemes() -> None:
    config_error(resolve_backend, "sqlite://", transport=object())


def test_resolve_backend_unknown_scheme() -> None:
    config_error(resolve_backend, "oracle://x")


def test_resolve_backend_missing_backend_module_is_backend_error(monkeypatch) -> None:
    from aura.backends import registry
    from aura.errors import AuraDriverNotInstalledError

    monkeypatch.setattr(
        registry, "BACKEND_MODULES", {**registry.BACKEND_MODULES, "redis": "aura._no_such_mod"}
    )
    # a database backend left out of the build names how to get it (issue 6)
    with pytest.raises(AuraDriverNotInstalledError) as info:
        resolve_backend("redis://r/0")
    assert isinstance(info.value, AuraBackendError)
    assert info.value.message == (
        "The 'redis' driver is required for the redis backend but is not included in this "
        "build of aura-connector. Install with: pip install aura-connector[redis]"
    )
    assert info.value.context == {"driver": "redis", "extra": "redis", "backend": "redis"}


def test_resolve_backend_uses_module_from_config(monkeypatch) -> None:
    import sys
    import types

    from aura.backends import registry

    module = types.ModuleType("aura._fake_backend")
    calls: list = []

    def from_config(config: ClientConfig, *, transport: object = None) -> int:
        calls.append((config, transport))
        return 7

    module.from_config = from_config  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "aura._fake_backend", module)
    monkeypatch.setattr(
        registry, "BACKEND_MODULES", {**registry.BACKEND_MODULES, "aura": "aura._fake_backend"}
    )
    transport = types.SimpleNamespace(kind="tcp")
    assert resolve_backend("aura://h:9/app", transport=transport, request_timeout_s=4) == 7
    config, used = calls[0]
    assert (config.port, config.request_timeout_s, used) == (9, 4.0, transport)
    # A memory transport selects the in-process engine whatever the protocol scheme.
    monkeypatch.setattr(
        registry, "BACKEND_MODULES", {**registry.BACKEND_MODULES, "memory": "aura._fake_backend"}
    )
    assert resolve_backend("auradb://h", transport=types.SimpleNamespace(kind="memory")) == 7


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://u@127.0.0.1:1/db?sslmode=prefer",
        "postgresql://u@127.0.0.1:1/db?sslmode=allow",
        "postgresql://u@127.0.0.1:1/db?sslmode=disable",
        "mysql://u@127.0.0.1:1/db?ssl-mode=PREFERRED",
        "mariadb://u@127.0.0.1:1/db?ssl_mode=disabled",
    ],
)
async def test_required_tls_refuses_modes_that_allow_plaintext(dsn: str) -> None:
    import aura
    from aura.config import TLSConfig

    with pytest.raises(AuraError) as info:
        await aura.connect(dsn, tls=TLSConfig(enabled=True))
    assert info.value.code == "config_error"
    assert "may connect without TLS" in info.value.message
