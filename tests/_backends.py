"""Backends the conformance tests run over: the memory engine, SQLite,
``auradb://`` (the project's AWP 1 server on a free local port, or the
server ``AURA_TEST_AURADB_DSN`` names), ``aura://`` (the project's
bundled-protocol server on a free local port), both again over TLS
(``auradbs://``, ``auras://``, a CA made for the run), MongoDB, Redis and
PostgreSQL.

MongoDB: ``AURA_TEST_MONGODB_DSN`` points at an external server; otherwise
the MongoDB-wire-compatible ``nx-27017`` server (the ``dev`` extra) is
started once on a free loopback port. Each connection gets its own
database and drops its collections afterwards.

Redis: ``AURA_TEST_REDIS_DSN`` (``.ci/run`` sets it); unset, the Redis
runs are skipped with the reason. Each connection gets a unique key prefix
and deletes its rows afterwards.

PostgreSQL: ``AURA_TEST_POSTGRES_DSN`` (``.ci/run`` sets it); unset, the
runs are skipped with the reason. Each connection works in a schema of its
own (``CREATE SCHEMA aura_t_<uuid>``, selected through the DSN's
``options=-c search_path=...``), dropped with everything in it afterwards.

MySQL/MariaDB: ``AURA_TEST_MYSQL_DSN`` (e.g.
``mysql://root@127.0.0.1:3306/test``); unset, the runs are skipped with the
reason. Each connection works in a database of its own
(``CREATE DATABASE aura_t_<uuid>``), dropped afterwards.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

import aura
from aura.config import TLSConfig
from aura.server import AuraServer

BACKENDS = [
    "memory",
    "sqlite",
    "auradb",
    "auradbs",
    "aura",
    "auras",
    "mongodb",
    "redis",
    "postgresql",
    "mysql",
]

_pki: dict[str, Path] = {}


def session_pki() -> Path:
    """A CA and a localhost certificate, made once per test run."""
    if "dir" not in _pki:
        from _pki import make_pki

        workdir = Path(tempfile.mkdtemp(prefix="aura-pki-"))
        atexit.register(shutil.rmtree, workdir, True)
        _pki["dir"] = make_pki(workdir)
    return _pki["dir"]


_nx: dict[str, Any] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop_nx() -> None:
    proc = _nx.get("proc")
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    workdir = _nx.get("dir")
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


def mongodb_base_dsn() -> str:
    """The MongoDB server the tests use (started on first use)."""
    external = os.environ.get("AURA_TEST_MONGODB_DSN")
    if external:
        return external
    if "dsn" in _nx:
        return str(_nx["dsn"])
    if "error" in _nx:
        pytest.skip(str(_nx["error"]))
    exe = Path(sys.executable).with_name("nx-27017")
    if not exe.exists():
        _nx["error"] = "mongodb: nx-27017 is not installed (pip install -e .[dev])"
        pytest.skip(_nx["error"])
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="aura-nx-")
    _nx["dir"] = workdir
    proc = subprocess.Popen(
        [
            str(exe),
            "--data-dir",
            "memory",
            "--host",
            "127.0.0.1",
            "-p",
            str(port),
            "--log-file",
            os.path.join(workdir, "nx.log"),
            "--pid-file",
            os.path.join(workdir, "nx.pid"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _nx["proc"] = proc
    atexit.register(_stop_nx)
    # Wait until it accepts connections (start-up, not a timed assertion).
    for _ in range(200):
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                _nx["dsn"] = f"mongodb://127.0.0.1:{port}"
                return str(_nx["dsn"])
        except OSError:
            time.sleep(0.05)
    _nx["error"] = "mongodb: the local nx-27017 server did not start"
    pytest.skip(_nx["error"])


def redis_base_dsn() -> str:
    dsn = os.environ.get("AURA_TEST_REDIS_DSN")
    if not dsn:
        pytest.skip("redis: AURA_TEST_REDIS_DSN is not set (e.g. redis://127.0.0.1:6379/0)")
    return dsn


def _with_path(dsn: str, path: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def unique_mongodb_dsn() -> str:
    return _with_path(mongodb_base_dsn(), f"/aura_t_{uuid.uuid4().hex[:12]}")


def unique_redis_dsn() -> str:
    dsn = redis_base_dsn()
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}key_prefix=aura-test-{uuid.uuid4().hex[:12]}:"


def postgres_base_dsn() -> str:
    dsn = os.environ.get("AURA_TEST_POSTGRES_DSN")
    if not dsn:
        pytest.skip(
            "postgresql: AURA_TEST_POSTGRES_DSN is not set "
            "(e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    return dsn


@asynccontextmanager
async def postgres_schema_dsn() -> AsyncIterator[str]:
    """A DSN whose connections work in a fresh schema, dropped on exit."""
    base = postgres_base_dsn()
    schema = f"aura_t_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in base else "?"
    dsn = f"{base}{sep}options={quote(f'-c search_path={schema}')}"
    async with aura.connect(base) as admin:
        await admin.raw(f'CREATE SCHEMA "{schema}"')
        try:
            yield dsn
        finally:
            await admin.raw(f'DROP SCHEMA "{schema}" CASCADE')


def mysql_base_dsn() -> str:
    dsn = os.environ.get("AURA_TEST_MYSQL_DSN")
    if not dsn:
        pytest.skip("mysql: AURA_TEST_MYSQL_DSN is not set (e.g. mysql://root@127.0.0.1:3306/test)")
    return dsn


@asynccontextmanager
async def mysql_database_dsn() -> AsyncIterator[str]:
    """A DSN on a fresh database, dropped with everything in it on exit."""
    base = mysql_base_dsn()
    name = f"aura_t_{uuid.uuid4().hex[:12]}"
    async with aura.connect(base) as admin:
        await admin.raw(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        try:
            yield _with_path(base, f"/{name}")
        finally:
            await admin.raw(f"DROP DATABASE IF EXISTS `{name}`")


@asynccontextmanager
async def connect_backend(kind: str, models: Iterable[type[Any]]) -> AsyncIterator[aura.Client]:
    """A client on a fresh, empty store of the given kind."""
    models = list(models)
    if kind in ("memory", "sqlite"):  # a fresh in-memory database each time
        async with aura.connect(f"{kind}://", models=models) as client:
            yield client
        return
    if kind in ("auradbs", "auras"):  # the same servers over TLS
        pki = session_pki()
        protocol = "awp" if kind == "auradbs" else "bundled"
        tls = TLSConfig(enabled=True, ca_cert_path=str(pki / "ca.pem"))
        with AuraServer(
            "127.0.0.1",
            0,
            tls_cert=str(pki / "server.pem"),
            tls_key=str(pki / "server.key"),
            log_to_stderr=False,
            protocol=protocol,
        ) as server:
            dsn = f"{kind}://localhost:{server.port}"
            async with aura.connect(dsn, models=models, tls=tls) as client:
                yield client
        return
    external = os.environ.get("AURA_TEST_AURADB_DSN") if kind == "auradb" else None
    if kind in ("auradb", "aura") and not external:
        protocol = "awp" if kind == "auradb" else "bundled"
        with AuraServer(port=0, log_to_stderr=False, protocol=protocol) as server:
            async with aura.connect(server.dsn, models=models) as client:
                yield client
        return
    if kind == "postgresql":
        async with postgres_schema_dsn() as dsn, aura.connect(dsn, models=models) as client:
            yield client
        return
    if kind == "mysql":
        async with mysql_database_dsn() as dsn, aura.connect(dsn, models=models) as client:
            yield client
        return
    if external:  # a real AuraDB server (docs/auradb-compatibility.md)
        dsn = external
    else:
        dsn = unique_mongodb_dsn() if kind == "mongodb" else unique_redis_dsn()
    async with aura.connect(dsn, models=models) as client:
        try:
            yield client
        finally:
            models = list(client._models.values())
            if client.is_closed:  # the test closed it: clean up on a new one
                async with aura.connect(dsn) as cleaner:
                    await cleaner.backend.drop_schema(models)
            else:
                await client.backend.drop_schema(models)


def over_awp(client: aura.Client) -> bool:
    """True for the AWP 1 backend (``auradb://``). The bundled protocol's
    backend is also named ``auradb`` (API.md §7) but carries the IR as is."""
    from aura.backends.auradb_native import AuraDBNativeBackend

    return isinstance(client.backend, AuraDBNativeBackend)


def skip_on_auradb(client: aura.Client, reason: str) -> None:
    """Skip, visibly and with the reason, what AWP 1 cannot express."""
    if over_awp(client):
        pytest.skip(f"auradb://: {reason}")


def lacks(client: aura.Client, flag: str) -> bool:
    """True when the backend's capability record does not have ``flag``."""
    return not client.capabilities().supports(flag)
