"""The bundled protocol (API.md §14) over real sockets against the
project's server (``AuraServer(protocol="bundled")``): conformance check 49,
fail-closed frame decoding, TLS over ``auras://``, token auth, multiplexing
and cursor release. The memory conformance tests also run over ``aura://``
(tests/_backends.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import aura
import aura._core as _core
from _pki import make_pki
from aura import (
    AuraAuthenticationError,
    AuraConnectionError,
    AuraProtocolError,
    AuraProtocolVersionError,
    AuraRetryableTransactionError,
    Field,
    Model,
)
from aura.config import TLSConfig, TokenAuth
from aura.server import AuraServer


class BndItem(Model):
    id: int = Field(primary_key=True)
    name: str


GOLDEN_PING = (
    "41555241010302000000000b0000000000000000000000000000000161d970257b226e6f6e6365223a317daf53e026"
)
TOKEN = "bundled-s3cret"


@pytest.fixture
def server() -> Iterator[AuraServer]:
    with AuraServer(port=0, log_to_stderr=False, protocol="bundled") as srv:
        yield srv


@pytest.fixture
async def client(server: AuraServer) -> AsyncIterator[aura.Client]:
    async with aura.connect(server.dsn, models=[BndItem]) as c:
        yield c


def test_check_49_golden_ping_and_a_flipped_header_byte() -> None:
    frame = _core.bundled_encode_frame(
        3, 1, 0, json.dumps({"nonce": 1}, separators=(",", ":")).encode()
    )
    assert frame.hex() == GOLDEN_PING
    assert _core.bundled_decode_frame(frame) == (3, 1, 0, b'{"nonce":1}')
    for at in range(32):
        bad = bytearray(frame)
        bad[at] ^= 0x01
        with pytest.raises(AuraProtocolError):
            _core.bundled_decode_frame(bytes(bad))
    bad = bytearray(frame)
    bad[4] = 2
    with pytest.raises(AuraProtocolVersionError):
        _core.bundled_decode_frame(bytes(bad))
    with pytest.raises(AuraProtocolError, match="exceeds max 10"):
        _core.bundled_decode_frame(frame, 10)
    compressed = _core.bundled_encode_frame(5, 2, 7, b"x" * 1000, compress=True)
    assert _core.bundled_decode_frame(compressed) == (5, 2, 7, b"x" * 1000)


async def test_dsn_reaches_the_bundled_server(server: AuraServer, client: aura.Client) -> None:
    assert server.dsn == f"aura://{server.address}"
    assert client.backend.name == "auradb"
    assert type(client.backend).__name__ == "BundledBackend"
    await client.bulk_insert(BndItem, [BndItem(id=i, name=f"n{i}") for i in range(1, 65)])
    found = await asyncio.gather(
        *(client.query(BndItem).where(BndItem.id == i).one() for i in range(1, 65))
    )
    assert [b.id for b in found] == list(range(1, 65))
    async with aura.connect(f"aura+tcp://{server.address}", models=[BndItem]) as other:
        assert await other.query(BndItem).count() == 64


async def test_compressed_requests(server: AuraServer) -> None:
    async with aura.connect(f"{server.dsn}?compression=1", models=[BndItem]) as c:
        await c.insert(BndItem(id=1, name="z" * 10_000))
        assert (await c.BndItem.find(id=1)).name == "z" * 10_000


async def test_leaving_a_stream_early_releases_the_cursor(
    server: AuraServer, client: aura.Client
) -> None:
    await client.bulk_insert(BndItem, [BndItem(id=i, name="n") for i in range(1, 301)])
    seen = [b.id async for b in client.query(BndItem).order_by(BndItem.id).stream(batch_size=64)]
    assert seen == list(range(1, 301))
    assert server.open_cursors == 0
    stream = client.query(BndItem).stream(batch_size=10)
    async for _ in stream:
        break
    assert server.open_cursors == 1
    await stream.aclose()
    # CURSOR_CLOSE precedes the next request on the connection.
    assert await client.query(BndItem).count() == 300
    assert server.open_cursors == 0


async def test_conflicts_are_retryable_transaction_errors(client: aura.Client) -> None:
    await client.insert(BndItem(id=1, name="a"))
    t1, t2 = client.transaction(), client.transaction()
    await t1.begin()
    await t2.begin()
    await t1.update(BndItem).where(BndItem.id == 1).set(name="one").execute()
    await t2.update(BndItem).where(BndItem.id == 1).set(name="two").execute()
    await t1.commit()
    with pytest.raises(AuraRetryableTransactionError) as info:
        await t2.commit()
    assert (info.value.code, info.value.retryable) == ("conflict", True)


async def test_token_auth() -> None:
    with AuraServer(port=0, token=TOKEN, protocol="bundled", log_to_stderr=False) as srv:
        with pytest.raises(AuraAuthenticationError) as info:
            await aura.connect(srv.dsn, auth=TokenAuth("wrong"))
        assert TOKEN not in str(info.value) and "wrong" not in str(info.value)
        async with aura.connect(srv.dsn, auth=TokenAuth(TOKEN), models=[BndItem]) as c:
            assert await c.ping()
    assert all(TOKEN not in line for line in srv.log_lines())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("bundled-pki"))


async def test_tls_over_auras(pki: Path) -> None:
    with AuraServer(
        "127.0.0.1",
        0,
        tls_cert=str(pki / "server.pem"),
        tls_key=str(pki / "server.key"),
        protocol="bundled",
        log_to_stderr=False,
    ) as srv:
        assert srv.dsn.startswith("auras://")
        dsn = f"auras://localhost:{srv.port}"
        tls = TLSConfig(enabled=True, ca_cert_path=str(pki / "ca.pem"))
        async with aura.connect(dsn, models=[BndItem], tls=tls) as c:
            await c.insert(BndItem(id=1, name="over tls"))
            assert (await c.BndItem.find(id=1)).name == "over tls"
        with pytest.raises(AuraConnectionError, match="TLS handshake"):
            await aura.connect(
                dsn, tls=TLSConfig(enabled=True, ca_cert_path=str(pki / "other-ca.pem"))
            )
        # Plaintext to a TLS port never silently works.
        with pytest.raises((AuraConnectionError, AuraProtocolError)):
            await aura.connect(f"aura://localhost:{srv.port}", connect_timeout_s=2.0)


async def test_serve_with_a_bundled_port_runs_both_listeners(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import threading

    from aura.server import serve

    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=serve,
        args=("127.0.0.1", 0),
        kwargs={"ready": ready, "stop": stop, "bundled_port": 0, "log_to_stderr": False},
    )
    thread.start()
    try:
        assert ready.wait(30)
        lines = capsys.readouterr().out.splitlines()
        dsns = [line.rsplit(" ", 1)[1] for line in lines if "listening on" in line]
        assert [d.split("://")[0] for d in dsns] == ["auradb", "aura"]
        async with aura.connect(dsns[1], models=[BndItem]) as bundled:
            await bundled.insert(BndItem(id=7, name="over the bundled port"))
            assert (await bundled.BndItem.find(id=7)).name == "over the bundled port"
        async with aura.connect(dsns[0]) as awp:
            assert await awp.ping()
    finally:
        stop.set()
        thread.join(30)
