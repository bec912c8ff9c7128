"""The AuraDB native backend against the project's AWP 1 server, over real
sockets: TLS, token auth, wire error mapping, cursors, transactions, lost
servers and a fake peer that sends bad frames (API.md §3, §6-9, §16 rows
22-27; AWP1.md)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import struct
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import aura
from _pki import make_pki
from aura import (
    AuraAuthenticationError,
    AuraCapabilityError,
    AuraConnectionError,
    AuraConstraintError,
    AuraNotFoundError,
    AuraProtocolError,
    AuraRetryableTransactionError,
    AuraTimeoutError,
    Field,
    Model,
    Vector,
)
from aura.config import PasswordAuth, TLSConfig, TokenAuth
from aura.server import AuraServer


class AwpAuthor(Model):
    id: int = Field(primary_key=True)
    name: str
    email: str = Field(unique=True)


class AwpBook(Model):
    id: int = Field(primary_key=True)
    title: str = Field(alias="TITLE")
    pages: int = Field(index=True)
    author: AwpAuthor | None = Field(default=None)
    tags: list[str] = Field(default_factory=list)


class AwpTyped(Model):
    id: uuid.UUID = Field(primary_key=True)
    at: dt.datetime
    day: dt.date
    blob: bytes
    emb: Vector[2]
    meta: dict[str, Any] = Field(default_factory=dict)


class AwpShelf(Model):
    code: str = Field(primary_key=True)
    room: str


class AwpCopy(Model):
    id: int = Field(primary_key=True)
    shelf: AwpShelf | None = Field(default=None, on_delete="set_null")


class AwpBadge(Model):
    id: uuid.UUID = Field(primary_key=True)
    label: str


class AwpHolder(Model):
    id: int = Field(primary_key=True)
    badge: AwpBadge


MODELS = [AwpAuthor, AwpBook, AwpTyped, AwpShelf, AwpCopy, AwpBadge, AwpHolder]
TOKEN = "s3cret-token-value"


@pytest.fixture
def server() -> Iterator[AuraServer]:
    with AuraServer(port=0, log_to_stderr=False) as srv:
        yield srv


@pytest.fixture
async def client(server: AuraServer) -> AsyncIterator[aura.Client]:
    async with aura.connect(server.dsn, models=MODELS) as c:
        yield c


async def seed(client: aura.Client, n: int) -> None:
    author = await client.insert(AwpAuthor(id=1, name="Ann", email="ann@example.com"))
    books = [AwpBook(id=i, title=f"t{i}", pages=i, author=author) for i in range(1, n + 1)]
    assert await client.bulk_insert(AwpBook, books) == n


# --------------------------------------------------------------------- basics


async def test_crud_round_trip_and_capabilities(client: aura.Client) -> None:
    caps = client.capabilities()
    assert caps.name == "auradb"
    assert caps.vector_search and caps.query_timeouts and caps.transactions
    # The project's server advertises the search capabilities of AWP1.md §5.1.
    assert caps.full_text_search and caps.hybrid_search and caps.aggregations_and_facets
    assert caps.ranked_pagination and caps.approximate_vector_search
    await seed(client, 5)
    rows = await client.query(AwpBook).where(AwpBook.pages >= 3).order_by(AwpBook.id.desc()).all()
    assert [r.id for r in rows] == [5, 4, 3]
    assert rows[0].title == "t5"
    assert await client.query(AwpBook).where(AwpBook.title == "t2").count() == 1
    assert await client.query(AwpBook).where(AwpBook.id == 9).exists() is False
    book = await client.query(AwpBook).include("author").where(AwpBook.id == 2).one()
    assert book.author == AwpAuthor(id=1, name="Ann", email="ann@example.com")
    assert await client.update(AwpBook).where(AwpBook.id <= 2).set(pages=99).execute() == 2
    assert await client.query(AwpBook).where(AwpBook.pages == 99).count() == 2
    assert await client.delete(AwpBook).where(AwpBook.id.in_([1, 2, 3])).execute() == 3
    assert await client.query(AwpBook).count() == 2


async def test_links_to_string_keys_are_relationships_alone(client: aura.Client) -> None:
    # AuraDB's form: the relationship holds the target's key, with no field of
    # the same name (AuraDB refuses one); includes, filters and on_delete work.
    shelf = await client.insert(AwpShelf(code="A-1", room="north"))
    await client.insert(AwpShelf(code="B-2", room="south"))
    await client.bulk_insert(AwpCopy, [AwpCopy(id=1, shelf=shelf), AwpCopy(id=2)])
    copy = await client.query(AwpCopy).include("shelf").where(AwpCopy.id == 1).one()
    assert copy.shelf == AwpShelf(code="A-1", room="north")
    on_a = await client.query(AwpCopy).where(AwpCopy.shelf == shelf).all()
    assert [c.id for c in on_a] == [1]
    assert await client.delete(AwpShelf).where(AwpShelf.code == "A-1").execute() == 1
    orphan = await client.query(AwpCopy).include("shelf").where(AwpCopy.id == 1).one()
    assert orphan.shelf is None
    # A UUID key travels as its string form, like AuraDB's record keys.
    badge = await client.insert(AwpBadge(id=uuid.UUID(int=7), label="gold"))
    await client.insert(AwpHolder(id=1, badge=badge))
    holder = await client.query(AwpHolder).include("badge").where(AwpHolder.id == 1).one()
    assert holder.badge == AwpBadge(id=uuid.UUID(int=7), label="gold")
    holders = await client.query(AwpHolder).where(AwpHolder.badge == badge).all()
    assert [h.id for h in holders] == [1]


async def test_typed_values_use_the_wire_wrappers(client: aura.Client) -> None:
    key = uuid.UUID(int=7)
    at = dt.datetime(2024, 6, 4, 1, 2, 3, 250000, tzinfo=dt.UTC)
    await client.insert(
        AwpTyped(
            id=key,
            at=at,
            day=dt.date(2024, 1, 2),
            blob=b"\x00\xff",
            emb=Vector([1, 2]),
            meta={"b": 1, "a": [1]},
        )
    )
    got = await client.query(AwpTyped).where(AwpTyped.at == at).one()
    assert (got.id, got.at, got.day, got.blob, list(got.emb), got.meta) == (
        key,
        at,
        dt.date(2024, 1, 2),
        b"\x00\xff",
        [1.0, 2.0],
        {"a": [1], "b": 1},
    )
    explained = client.backend.explain(client.query(AwpTyped).where(AwpTyped.at == at).explain())
    assert explained["awp"]["filter"] == {
        "type": "compare",
        "field": "at",
        "op": "eq",
        "value": {"$timestamp": 1717462923250},
    }


async def test_on_conflict_and_upsert(client: aura.Client) -> None:
    await client.insert(AwpAuthor(id=1, name="Ann", email="a@x"))
    dup = [AwpAuthor(id=1, name="Dup", email="d@x"), AwpAuthor(id=2, name="Bob", email="b@x")]
    assert await client.bulk_insert(AwpAuthor, dup, on_conflict="ignore") == 1
    assert (await client.query(AwpAuthor).where(AwpAuthor.id == 1).one()).name == "Ann"
    assert await client.bulk_insert(AwpAuthor, dup, on_conflict="replace") == 2
    assert (await client.query(AwpAuthor).where(AwpAuthor.id == 1).one()).name == "Dup"
    stored = await client.upsert(AwpAuthor, key={"id": 2}, values={"name": "Bobby"})
    assert stored == AwpAuthor(id=2, name="Bobby", email="b@x")
    created = await client.upsert(AwpAuthor, key={"id": 3}, values={"name": "Cy", "email": "c@x"})
    assert created == AwpAuthor(id=3, name="Cy", email="c@x")


async def test_wire_errors_map_with_code_retryable_and_request_id(client: aura.Client) -> None:
    await client.insert(AwpAuthor(id=1, name="Ann", email="a@x"))
    with pytest.raises(AuraConstraintError) as info:
        await client.insert(AwpAuthor(id=1, name="Ann", email="a@x"))
    err = info.value
    assert (err.code, err.retryable) == ("unique_violation", False)
    assert isinstance(err.request_id, int) and err.request_id > 0
    assert f"(request_id={err.request_id})" in str(err)
    assert "wire_code" not in err.context
    with pytest.raises(AuraNotFoundError) as missing:
        await client.query(AwpBook).where(AwpBook.id == 404).one()
    assert missing.value.code == "not_found"


async def test_what_awp_cannot_express_is_a_capability_error(client: aura.Client) -> None:
    with pytest.raises(AuraCapabilityError):
        await client.query(AwpBook).where(AwpBook.title.startswith("t")).all()
    with pytest.raises(AuraCapabilityError):
        await client.raw("SELECT * FROM AwpBook")


async def test_timeout_ms_is_forwarded(client: aura.Client) -> None:
    await seed(client, 3)
    q = client.query(AwpBook).timeout(5000)
    assert client.backend.explain(q.explain())["awp"]["timeout_ms"] == 5000
    assert len(await q.all()) == 3


# --------------------------------------------------------------------- concurrency, cursors


async def test_many_requests_in_flight_on_one_connection(client: aura.Client) -> None:
    await seed(client, 64)
    results = await asyncio.gather(
        *(client.query(AwpBook).where(AwpBook.id == i).one() for i in range(1, 65))
    )
    assert [b.id for b in results] == list(range(1, 65))


async def test_large_results_stream_through_server_cursors(
    server: AuraServer, client: aura.Client
) -> None:
    await seed(client, 450)
    assert len(await client.query(AwpBook).all()) == 450  # .all() follows the cursor
    seen = [b.id async for b in client.query(AwpBook).order_by(AwpBook.id).stream(batch_size=64)]
    assert seen == list(range(1, 451))
    assert server.open_cursors == 0


async def test_leaving_a_stream_early_closes_the_server_cursor(
    server: AuraServer, client: aura.Client
) -> None:
    await seed(client, 300)
    stream = client.query(AwpBook).stream(batch_size=10)
    async for _ in stream:
        break
    assert server.open_cursors == 1
    await stream.aclose()
    # CURSOR_CLOSE is queued on the cursor's connection ahead of the next
    # request; the server answers in order, so once that request's answer
    # is in, the cursor is gone (no waiting).
    assert await client.query(AwpBook).count() == 300
    assert server.open_cursors == 0


# --------------------------------------------------------------------- transactions


async def test_transactions_are_snapshots_with_retryable_conflicts(client: aura.Client) -> None:
    await client.insert(AwpAuthor(id=1, name="Ann", email="a@x"))
    async with client.transaction() as tx:
        await tx.insert(AwpAuthor(id=2, name="Bob", email="b@x"))
        assert await tx.query(AwpAuthor).count() == 2
        assert await client.query(AwpAuthor).count() == 1
    assert await client.query(AwpAuthor).count() == 2
    t1, t2 = client.transaction(), client.transaction()
    await t1.begin()
    await t2.begin()
    await t1.update(AwpAuthor).where(AwpAuthor.id == 1).set(name="one").execute()
    await t2.update(AwpAuthor).where(AwpAuthor.id == 1).set(name="two").execute()
    await t1.commit()
    with pytest.raises(AuraRetryableTransactionError) as info:
        await t2.commit()
    assert (info.value.code, info.value.retryable) == ("conflict", True)
    assert isinstance(info.value, AuraConstraintError)
    assert (await client.query(AwpAuthor).where(AwpAuthor.id == 1).one()).name == "one"


async def test_server_stopped_mid_transaction_and_mid_cursor() -> None:
    srv = AuraServer(port=0, log_to_stderr=False)
    async with aura.connect(srv.dsn, models=MODELS, request_timeout_s=5.0) as c:
        await seed(c, 250)
        tx = c.transaction()
        await tx.begin()
        await tx.insert(AwpAuthor(id=9, name="Z", email="z@x"))
        stream = c.query(AwpBook).stream(batch_size=50)
        first = await stream.__anext__()
        assert first.id == 1
        srv.close()
        with pytest.raises(AuraConnectionError) as info:
            await tx.query(AwpAuthor).count()
        assert "rolled back" in str(info.value)
        with pytest.raises(AuraConnectionError):
            async for _ in stream:
                pass
    # A new server on a new port: nothing of the transaction survived anywhere.
    assert not srv.is_running


async def test_reads_reconnect_after_a_lost_connection() -> None:
    with AuraServer(port=0, log_to_stderr=False) as srv:
        async with aura.connect(srv.dsn, models=[AwpAuthor]) as c:
            await c.insert(AwpAuthor(id=1, name="Ann", email="a@x"))
            await c.backend.connection.close()  # drop the socket under the client
            assert await c.query(AwpAuthor).count() == 1  # idempotent read: reconnects
            await c.backend.connection.close()
            await c.insert(
                AwpAuthor(id=2, name="B", email="b@x")
            )  # fresh connection before sending
            assert await c.query(AwpAuthor).count() == 2


# --------------------------------------------------------------------- auth


async def test_token_auth_and_secrets_never_leak() -> None:
    with AuraServer(port=0, token=TOKEN, log_to_stderr=False) as srv:
        async with aura.connect(srv.dsn, models=[AwpAuthor], auth=TokenAuth(TOKEN)) as c:
            assert await c.ping()
            assert TOKEN not in repr(c.backend.connection)
        with pytest.raises(AuraAuthenticationError) as bad:
            await aura.connect(srv.dsn, models=[AwpAuthor], auth=TokenAuth("wrong-" + TOKEN))
        with pytest.raises(AuraAuthenticationError) as none:
            await aura.connect(srv.dsn, models=[AwpAuthor])
        assert none.value.code == "invalid_credentials"
        with pytest.raises(AuraAuthenticationError):
            await aura.connect(srv.dsn, auth=PasswordAuth("bob", TOKEN))
    # Closing waits for every connection, so all three log lines are in.
    err = bad.value
    assert err.code == "invalid_credentials"
    lines = srv.log_lines()
    assert sorted("authenticated=true" in line for line in lines) == [False, False, True]
    for text in (str(err), repr(err), repr(err.context), repr(srv), *lines):
        assert TOKEN not in text


# --------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def test_tls_verifies_chain_and_hostname(pki: Path) -> None:
    with AuraServer(
        "127.0.0.1",
        0,
        tls_cert=str(pki / "server.pem"),
        tls_key=str(pki / "server.key"),
        log_to_stderr=False,
    ) as srv:
        dsn = f"auradbs://localhost:{srv.port}"
        async with aura.connect(
            dsn, models=[AwpAuthor], tls=TLSConfig(enabled=True, ca_cert_path=str(pki / "ca.pem"))
        ) as c:
            await c.insert(AwpAuthor(id=1, name="Ann", email="a@x"))
            assert await c.query(AwpAuthor).count() == 1
        with pytest.raises(AuraConnectionError) as wrong_ca:
            await aura.connect(
                dsn, tls=TLSConfig(enabled=True, ca_cert_path=str(pki / "other-ca.pem"))
            )
        assert "TLS handshake" in str(wrong_ca.value)
        # Plain AWP to a TLS port: a TLS alert, reported as such.
        with pytest.raises(AuraConnectionError) as plain:
            await aura.connect(f"auradb://localhost:{srv.port}")
        assert "TLS" in str(plain.value)
    with AuraServer(
        "127.0.0.1",
        0,
        tls_cert=str(pki / "misnamed.pem"),
        tls_key=str(pki / "misnamed.key"),
        log_to_stderr=False,
    ) as srv:
        dsn = f"auradbs://localhost:{srv.port}"
        with pytest.raises(AuraConnectionError) as wrong_name:
            await aura.connect(dsn, tls=TLSConfig(enabled=True, ca_cert_path=str(pki / "ca.pem")))
        assert "TLS handshake" in str(wrong_name.value)
        # verify_hostname=False skips only the name check ...
        async with aura.connect(
            dsn,
            tls=TLSConfig(enabled=True, verify_hostname=False, ca_cert_path=str(pki / "ca.pem")),
        ) as c:
            assert await c.ping()
        # ... never the chain.
        with pytest.raises(AuraConnectionError):
            await aura.connect(
                dsn,
                tls=TLSConfig(
                    enabled=True, verify_hostname=False, ca_cert_path=str(pki / "other-ca.pem")
                ),
            )


async def test_tls_client_against_a_plain_port_fails_closed(pki: Path, server: AuraServer) -> None:
    with pytest.raises(AuraConnectionError):
        await aura.connect(
            f"auradbs://localhost:{server.port}",
            tls=TLSConfig(enabled=True, ca_cert_path=str(pki / "ca.pem")),
        )


# --------------------------------------------------------------------- fake peer


def frame(opcode: int, request_id: int, payload: bytes, *, txn: int = 0) -> bytes:
    """An independent AWP 1 encoder (struct + zlib) for the fake peer."""
    head = struct.pack(">4sBBHHBBI", b"AURA", 1, opcode, 1, 44, 0, 0, len(payload))
    head += request_id.to_bytes(16, "big") + txn.to_bytes(8, "big")
    head += struct.pack(">I", zlib.crc32(head))
    return head + payload + struct.pack(">I", zlib.crc32(payload))


HELLO_ACK = json.dumps(
    {
        "protocol_version": 1,
        "capabilities": {
            "server_version": "1.5.1",
            "protocol_version": 1,
            "capabilities": ["transactions"],
        },
        "auth_required": False,
        "authenticated": True,
    }
).encode()


def corrupt_payload_crc(b: bytes) -> bytes:
    return b[:-1] + bytes([b[-1] ^ 1])


def corrupt_header_crc(b: bytes) -> bytes:
    return b[:41] + bytes([b[41] ^ 1]) + b[42:]


REPLIES = {
    "payload_checksum": lambda rid: corrupt_payload_crc(frame(0x82, rid, b"x")),
    "header_checksum": lambda rid: corrupt_header_crc(frame(0x82, rid, b"")),
    "bad_magic": lambda rid: b"XURA" + frame(0x82, rid, b"")[4:],
    "truncated": lambda rid: frame(0x82, rid, b"0123456789")[:50],
    "oversized": lambda rid: frame(0x82, rid, b"y" * 4096),
    "wrong_request_id": lambda rid: frame(0x82, rid + 7, b""),
}


NOT_LEADER = json.dumps(
    {
        "code": "not_leader",
        "message": "not leader: this node is a follower",
        "retryable": True,
        "not_leader": {
            "current_node_id": "0000000000000001",
            "leader_client_addr": "127.0.0.1:7373",
            "leader_hint": "127.0.0.1:7373",
            "term": 7,
            "role": "follower",
        },
    }
).encode()
FATAL = b'{"code":"corruption","message":"corruption detected: header checksum mismatch"}'


async def fake_peer(
    reply: Any, *, close_after: bool = False, hello_ack: bytes = HELLO_ACK
) -> asyncio.Server:
    """A peer that answers HELLO, then sends ``reply(request_id)`` to the next request."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in (lambda rid: frame(0x81, rid, hello_ack), reply):
            head = await reader.readexactly(44)
            await reader.readexactly(struct.unpack(">I", head[12:16])[0] + 4)
            writer.write(answer(int.from_bytes(head[16:32], "big")))
            await writer.drain()
        if close_after:
            writer.close()
            return
        await reader.read()
        writer.close()

    return await asyncio.start_server(peer, "127.0.0.1", 0)


async def test_not_leader_keeps_routing_hints_and_request_id() -> None:
    fake = await fake_peer(lambda rid: frame(0xFF, rid, NOT_LEADER))
    async with fake:
        client = await aura.connect(f"auradb://127.0.0.1:{fake.sockets[0].getsockname()[1]}")
        with pytest.raises(aura.AuraNotLeaderError) as info:
            await client.ping()
        err = info.value
        assert (err.code, err.retryable, err.request_id) == ("not_leader", True, 2)
        assert (err.leader_addr, err.current_node_id) == ("127.0.0.1:7373", "0000000000000001")
        await client.close()


async def test_fatal_id_zero_error_fails_pending_requests() -> None:
    fake = await fake_peer(lambda rid: frame(0xFF, 0, FATAL), close_after=True)
    async with fake:
        client = await aura.connect(f"auradb://127.0.0.1:{fake.sockets[0].getsockname()[1]}")
        with pytest.raises(AuraConnectionError) as info:
            await client.ping()
        assert "header checksum mismatch" in str(info.value)
        await client.close()


async def test_a_silent_peer_fails_requests_by_the_request_timeout() -> None:
    """A peer that stops answering: each request fails by the request
    timeout (the connection is closed, never resynchronised; idempotent
    requests are re-sent once on a new connection), never a hang."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readexactly(44)
        await reader.readexactly(struct.unpack(">I", head[12:16])[0] + 4)
        writer.write(frame(0x81, int.from_bytes(head[16:32], "big"), HELLO_ACK))
        await writer.drain()
        await reader.read()  # silent until the client closes
        writer.close()

    fake = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = fake.sockets[0].getsockname()[1]
    async with fake:
        client = await aura.connect(f"auradb://127.0.0.1:{port}?request_timeout=0.3")
        start = time.perf_counter()
        results = await asyncio.gather(*(client.ping() for _ in range(3)), return_exceptions=True)
        elapsed = time.perf_counter() - start
        assert all(isinstance(r, (AuraTimeoutError, AuraConnectionError)) for r in results)
        assert any(isinstance(r, AuraTimeoutError) for r in results)
        timeout = next(r for r in results if isinstance(r, AuraTimeoutError))
        assert timeout.code == "timeout" and "timed out after 0.300s" in str(timeout)
        # One timeout, then at most one re-sent round: well under 3 s.
        assert 0.3 <= elapsed < 3.0, elapsed
        await client.close()


@pytest.mark.parametrize("kind", sorted(REPLIES))
async def test_fake_peer_bad_frames_are_protocol_errors(kind: str) -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readexactly(44)
        rid = int.from_bytes(head[16:32], "big")
        await reader.readexactly(struct.unpack(">I", head[12:16])[0] + 4)
        writer.write(frame(0x81, rid, HELLO_ACK))
        head = await reader.readexactly(44)  # the PING
        await reader.readexactly(struct.unpack(">I", head[12:16])[0] + 4)
        writer.write(REPLIES[kind](int.from_bytes(head[16:32], "big")))
        await writer.drain()
        if kind == "truncated":
            writer.close()
            return
        await reader.read()  # until the client closes
        writer.close()

    fake = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = fake.sockets[0].getsockname()[1]
    async with fake:
        client = await aura.connect(f"auradb://127.0.0.1:{port}", max_payload_bytes=1024)
        with pytest.raises(AuraProtocolError):
            await client.ping()
        assert client.backend.connection is not None
        await client.close()


def _hello_ack(capabilities: list[str]) -> bytes:
    body = json.loads(HELLO_ACK)
    body["capabilities"]["capabilities"] = capabilities
    return json.dumps(body, separators=(",", ":")).encode()


async def ok_peer(capabilities: list[str], opcodes: list[int]) -> asyncio.Server:
    """A peer advertising ``capabilities`` that answers every later request
    with OK and records its opcode."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(44)
                await reader.readexactly(struct.unpack(">I", head[12:16])[0] + 4)
                rid = int.from_bytes(head[16:32], "big")
                if head[5] == 0x01:
                    writer.write(frame(0x81, rid, _hello_ack(capabilities)))
                else:
                    opcodes.append(head[5])
                    writer.write(frame(0x90, rid, b'{"ok":true}'))
                await writer.drain()
        except asyncio.IncompleteReadError:
            writer.close()

    return await asyncio.start_server(peer, "127.0.0.1", 0)


@pytest.mark.parametrize(
    ("advertised", "flag"),
    [
        (["transactions"], "full_text_search"),
        (["transactions"], "hybrid_search"),
        (["transactions"], "vector_search"),
        (["transactions"], "aggregations_and_facets"),
        (["vector_exact_search"], "ranked_pagination"),
        (["vector_exact_search"], "query_timeouts"),
        (["vector_exact_search"], "approximate_vector_search"),
        (["aggregations_and_facets"], "group_by_aggregation"),
    ],
)
async def test_unadvertised_features_are_refused_before_sending(
    advertised: list[str], flag: str
) -> None:
    """Every optional field is gated on the server's HELLO_ACK (§16 row 22):
    a refused query sends no QUERY frame (only the schema was created)."""
    opcodes: list[int] = []
    fake = await ok_peer(advertised, opcodes)
    async with fake:
        dsn = f"auradb://127.0.0.1:{fake.sockets[0].getsockname()[1]}"
        async with aura.connect(dsn, models=[AwpTyped]) as client:
            q = client.search(AwpTyped)
            attempts = {
                "full_text_search": lambda: q.search_text("meta", "x").all(),
                "hybrid_search": lambda: q.search_hybrid("meta", "x", "emb", [1, 0]).all(),
                "vector_search": lambda: q.search_vector("emb", [1, 0]).all(),
                "aggregations_and_facets": lambda: q.facet("day").aggregate(),
                "ranked_pagination": lambda: anext(
                    q.search_vector("emb", [1, 0]).search_pages(page_size=1)
                ),
                "query_timeouts": lambda: q.timeout(10).all(),
                "approximate_vector_search": lambda: q.search_vector(
                    "emb", [1, 0], approximate=True
                ).all(),
                "group_by_aggregation": lambda: q.group_by("day").aggregate_count().aggregate(),
            }
            with pytest.raises(AuraCapabilityError) as info:
                await attempts[flag]()
            assert info.value.context["capability"] == flag
    assert 0x20 not in opcodes  # SCHEMA_CREATE (0x10) only, never a QUERY


# Bursts of requests the pool-growth test sends at most.
GROWTH_BURSTS = 50


@pytest.mark.parametrize("scheme", ["auradb", "aura"])
async def test_pool_config_opens_min_size_and_caps_at_max_size(scheme: str) -> None:
    from aura.config import PoolConfig

    protocol = "awp" if scheme == "auradb" else "bundled"
    with AuraServer(port=0, protocol=protocol, log_to_stderr=False) as srv:
        dsn = f"{scheme}://{srv.address}"
        pool = PoolConfig(min_size=3, max_size=3)
        async with aura.connect(dsn, models=[AwpAuthor], pool=pool) as db:
            assert db.backend.pool_status() == (3, 3)
            assert srv.active_connections == 3
            authors = [AwpAuthor(id=i, name=f"a{i}", email=f"a{i}@x") for i in range(50)]
            await db.bulk_insert(AwpAuthor, authors)
            found = await asyncio.gather(
                *(db.query(AwpAuthor).where(AwpAuthor.id == i % 50).one() for i in range(300))
            )
            assert [a.id for a in found] == [i % 50 for i in range(300)]
            assert db.backend.pool_status() == (3, 3)
            assert srv.active_connections == 3
        single = PoolConfig(min_size=1, max_size=1)
        async with aura.connect(dsn, models=[AwpAuthor], pool=single) as db:
            await asyncio.gather(*(db.query(AwpAuthor).count() for _ in range(100)))
            assert db.backend.pool_status() == (1, 1)
        # Busy connections make the pool grow (one opening at a time, while
        # the open ones keep serving) up to max_size, never past it. How many
        # requests one connection holds at once depends on the machine's
        # timing, so bursts of 400 are sent until the pool has grown.
        growing = PoolConfig(min_size=1, max_size=3)
        async with aura.connect(dsn, models=[AwpAuthor], pool=growing) as db:
            for _ in range(GROWTH_BURSTS):
                counts = await asyncio.gather(*(db.query(AwpAuthor).count() for _ in range(400)))
                assert counts == [50] * 400
                open_, max_size = db.backend.pool_status()
                assert max_size == 3 and open_ <= 3
                if open_ >= 2:
                    break
            assert 2 <= open_ <= 3
            assert srv.active_connections == open_


async def test_an_expired_pooled_connection_is_replaced(server: AuraServer) -> None:
    from aura.config import PoolConfig

    pool = PoolConfig(min_size=1, max_size=2, max_lifetime_s=0.05)
    async with aura.connect(server.dsn, models=[AwpAuthor], pool=pool) as db:
        await db.insert(AwpAuthor(id=1, name="a", email="a@x"))
        await asyncio.sleep(0.1)
        assert (await db.query(AwpAuthor).where(AwpAuthor.id == 1).one()).name == "a"
        assert db.backend.pool_status() == (1, 2)
