"""Serve the in-memory engine over AWP 1 and/or the bundled protocol (what
``aura serve`` runs).

``AuraServer`` starts a server in the background and returns at once; the
``serve()`` function runs one in the foreground until interrupted (the CLI
entry point). The token is handed to Rust, which keeps only a salted hash
of it; it never appears in a log line or a ``repr``::

    from aura.server import AuraServer
    server = AuraServer(port=0, token="s3cret")      # port 0: pick a free one
    dsn = f"auradb://{server.address}"              # clients connect here
    ...
    server.close()                                   # graceful shutdown

``protocol="bundled"`` serves the bundled protocol of API.md §14 instead
(``aura://`` / ``auras://`` clients), with the same TLS, token and limits.
"""

from __future__ import annotations

import signal
import threading
from types import TracebackType
from typing import Any

import aura._core as _core

__all__ = ["AuraServer", "serve"]


_SCHEMES = {("awp", False): "auradb", ("awp", True): "auradbs"}
_SCHEMES.update({("bundled", False): "aura", ("bundled", True): "auras"})


class AuraServer:
    """A running server over a memory engine (``engine=None``: a new one),
    speaking AWP 1 (``protocol="awp"``) or the bundled protocol
    (``protocol="bundled"``).

    TLS is on when both ``tls_cert`` and ``tls_key`` (PEM files) are given;
    then the listener speaks TLS from the first byte (``auradbs://`` /
    ``auras://``). Limits default to AWP1.md §1.1.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7171,
        *,
        token: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        engine: Any = None,
        max_payload_bytes: int = 16 * 1024 * 1024,
        page_size: int = 100,
        cursor_timeout_s: float = 300.0,
        transaction_timeout_s: float = 300.0,
        max_query_time_ms: int = 30_000,
        max_query_limit: int = 1_000_000,
        log_to_stderr: bool = True,
        protocol: str = "awp",
    ) -> None:
        self._server = _core.AwpServer(
            engine,
            host,
            port,
            token=token,
            tls_cert=tls_cert,
            tls_key=tls_key,
            max_payload_bytes=max_payload_bytes,
            page_size=page_size,
            cursor_timeout_s=cursor_timeout_s,
            transaction_timeout_s=transaction_timeout_s,
            max_query_time_ms=max_query_time_ms,
            max_query_limit=max_query_limit,
            log_to_stderr=log_to_stderr,
            protocol=protocol,
        )
        self.tls = tls_cert is not None
        self.protocol = protocol

    @property
    def address(self) -> str:
        """``host:port`` actually bound."""
        address: str = self._server.address
        return address

    @property
    def port(self) -> int:
        port: int = self._server.port
        return port

    @property
    def dsn(self) -> str:
        """A DSN that reaches this server (``auradb[s]://`` or ``aura[s]://``)."""
        return f"{_SCHEMES[(self.protocol, self.tls)]}://{self.address}"

    @property
    def is_running(self) -> bool:
        running: bool = self._server.is_running
        return running

    @property
    def active_connections(self) -> int:
        active: int = self._server.active_connections
        return active

    @property
    def open_cursors(self) -> int:
        """Server cursors currently held, over all connections."""
        count: int = self._server.open_cursors
        return count

    def log_lines(self) -> list[str]:
        """The last connection log lines (one per closed connection)."""
        lines: list[str] = self._server.log_lines()
        return lines

    def close(self) -> None:
        """Graceful stop (idempotent): open connections finish their current
        request, roll back what they hold and close."""
        self._server.close()

    def __enter__(self) -> AuraServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._server).replace("AwpServer", "AuraServer", 1)


def serve(
    host: str = "127.0.0.1",
    port: int = 7171,
    *,
    token: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
    bundled_port: int | None = None,
    **limits: Any,
) -> None:
    """Serve in the foreground until SIGINT/SIGTERM (or ``stop`` is set),
    then shut down gracefully. ``ready`` is set once the ports are bound.
    ``bundled_port`` also serves the bundled protocol, over the same engine."""
    stop = stop if stop is not None else threading.Event()
    if bundled_port is not None and limits.get("engine") is None:
        limits["engine"] = _core.MemoryEngine()  # one engine behind both listeners
    servers = [AuraServer(host, port, token=token, tls_cert=tls_cert, tls_key=tls_key, **limits)]
    if bundled_port is not None:
        servers.append(
            AuraServer(
                host,
                bundled_port,
                token=token,
                tls_cert=tls_cert,
                tls_key=tls_key,
                protocol="bundled",
                **limits,
            )
        )
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        for each in servers:
            print(f"aura serve: listening on {each.dsn}", flush=True)
        if ready is not None:
            ready.set()
        while not stop.wait(0.2):
            pass
    finally:
        for each in servers:
            each.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
