"""The memory and SQLite backends end to end through the public API (API.md
§3, §4, §6-8, §15 conformance checks, §16 defects). Tests taking ``db`` (or
``library``) run on both backends with the same expectations; the memory
engine's semantics are the reference (§16 row 30). Memory-only checks use
``mem_db`` / ``docs``."""

from __future__ import annotations

import copy
import datetime as dt
import gc
import pickle
import struct
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

import aura
from _backends import BACKENDS, connect_backend, lacks, over_awp, skip_on_auradb
from aura import (
    AuraCapabilityError,
    AuraClientClosedError,
    AuraConstraintError,
    AuraDialectError,
    AuraNotFoundError,
    AuraQueryError,
    AuraSchemaError,
    AuraTransactionError,
    AuraValidationError,
    Field,
    Model,
    RelationshipNotLoadedError,
    Vector,
    search_scores,
)
from aura.transport import MemoryTransport, ReferenceServer


class MemAuthor(Model):
    id: int = Field(primary_key=True)
    name: str
    email: str = Field(unique=True)
    books: list[MemBook]


class MemBook(Model):
    id: int = Field(primary_key=True)
    title: str = Field(alias="TITLE")
    pages: int = Field(index=True)
    author: MemAuthor | None = Field(default=None, on_delete="cascade")
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)


class MemDoc(Model):
    id: int = Field(primary_key=True)
    title: str
    body: str
    embedding: Vector[3]


class MemTyped(Model):
    id: uuid.UUID = Field(primary_key=True)
    at: dt.datetime
    day: dt.date
    price: Decimal
    blob: bytes
    note: str | None = None


DATASET_D = [
    (1, "Refunds", "vector index for refunds", [1, 0, 0]),
    (2, "Apple", "the vector database index index", [0, 1, 0]),
    (3, "Banana", "cooking recipes", [0.7, 0.7, 0]),
]


# Redis refuses these models (unique fields and on_delete actions are not
# enforceable by key): see test_redis_refuses_the_library_models; its
# key-value conformance lives in test_redis_backend.py.
DOCUMENT_BACKENDS = [b for b in BACKENDS if b != "redis"]


@pytest.fixture
def backend(db: aura.Client) -> str:
    return db.backend.name


@pytest.fixture
async def mem_db() -> AsyncIterator[aura.Client]:
    async with aura.connect("memory://", models=[MemAuthor, MemBook, MemDoc, MemTyped]) as client:
        yield client


@pytest.fixture(params=DOCUMENT_BACKENDS)
async def db(request: pytest.FixtureRequest) -> AsyncIterator[aura.Client]:
    models = [MemAuthor, MemBook, MemDoc, MemTyped]
    async with connect_backend(request.param, models) as client:
        yield client


@pytest.fixture
async def library(db: aura.Client) -> aura.Client:
    rowling = MemAuthor(id=1, name="Rowling", email="jk@example.com")
    pratchett = MemAuthor(id=2, name="Pratchett", email="tp@example.com")
    await db.bulk_insert(MemAuthor, [rowling, pratchett])
    await db.bulk_insert(
        MemBook,
        [
            MemBook(id=1, title="Stone", pages=300, author=rowling, tags=["magic"]),
            MemBook(id=2, title="Chamber", pages=350, author=rowling, meta={"a": {"b": 3}}),
            MemBook(id=3, title="Mort", pages=250, author=pratchett, tags=["death", "magic"]),
            MemBook(id=4, title="Orphan", pages=100),
        ],
    )
    return db


async def _vector_search_refused(db: aura.Client) -> bool:
    """On a backend without vector search, assert the capability error."""
    if not lacks(db, "vector_search"):
        return False
    with pytest.raises(AuraCapabilityError) as info:
        await db.search(MemDoc).search_vector("embedding", [1, 0, 0]).all()
    assert info.value.context == {"backend": db.backend.name, "capability": "vector_search"}
    return True


@pytest.fixture
async def docs(mem_db: aura.Client) -> aura.Client:
    for id_, title, body, emb in DATASET_D:
        await mem_db.insert(MemDoc(id=id_, title=title, body=body, embedding=emb))
    return mem_db


# -- connecting ------------------------------------------------------------------------


async def test_connect_is_awaitable_and_a_context_manager() -> None:
    client = await aura.Aura.connect("aura+memory://", models=[MemAuthor])
    assert not client.is_closed
    assert client.backend.name == "memory"
    await client.close()
    await client.close()  # idempotent
    assert client.is_closed


async def test_every_connect_gets_an_empty_engine(db: aura.Client, backend: str) -> None:
    if backend not in ("memory", "sqlite"):
        pytest.skip(f"{backend}: a DSN names one shared server, not a fresh in-process store")
    await db.insert(MemAuthor(id=1, name="a", email="a@x"))
    async with aura.connect(f"{backend}://", models=[MemAuthor]) as other:
        assert await other.query(MemAuthor).count() == 0


async def test_shared_reference_server() -> None:
    server = ReferenceServer()
    async with aura.connect(
        "memory://", transport=MemoryTransport(server), models=[MemAuthor]
    ) as a:
        await a.insert(MemAuthor(id=7, name="shared", email="s@x"))
        async with aura.connect("memory://", transport=MemoryTransport(server)) as b:
            row = await b.query(MemAuthor).where(MemAuthor.id == 7).one()
            assert row.name == "shared"
    assert "MemAuthor" in server.table_names()


async def test_unknown_scheme_is_config_error() -> None:
    with pytest.raises(aura.AuraError) as info:
        await aura.Aura.connect("oracle://x")
    assert info.value.code == "config_error"


async def test_closed_client_raises(db: aura.Client) -> None:  # check 50
    await db.close()
    with pytest.raises(AuraClientClosedError) as info:
        await db.query(MemAuthor).all()
    assert info.value.code == "client_closed"
    with pytest.raises(AuraClientClosedError):
        await db.insert(MemAuthor(id=1, name="a", email="a@x"))


async def test_reads_answered_in_the_call_match_awaited_ones() -> None:
    """The in-process engine answers reads without the awaited path when
    nothing is due first; the rows are those of that path, in and out of a
    transaction, and anything due first (a schema, a closed client) sends
    the read through it."""
    from aura.query.builder import LATER

    async with aura.connect("memory://", models=[MemDoc]) as db:
        await db.bulk_insert(
            MemDoc, [MemDoc(id=i, title=t, body=b, embedding=v) for i, t, b, v in DATASET_D]
        )
        query = db.search(MemDoc).search_text("body", "vector index").limit(2)
        ir = query.query.to_ir()
        now = db._select_now(query.query, MemDoc, None)
        awaited = await db._execute(ir, MemDoc)
        assert [r.id for r in now] == [r.id for r in awaited] == [2, 1]
        assert [search_scores(r) for r in now] == [search_scores(r) for r in awaited]
        assert [r.id for r in await query.all()] == [2, 1]
        assert (await query.first()).id == 2
        assert (await db.query(MemDoc).where(MemDoc.id == 3).one()).title == "Banana"
        async with db.transaction() as txn:
            await txn.insert(
                MemDoc(id=4, title="Kiwi", body="index index index", embedding=[0, 0, 1])
            )
            assert [r.id for r in await txn.query(MemDoc).order_by(MemDoc.id).all()] == [1, 2, 3, 4]
            assert [r.id for r in await db.query(MemDoc).order_by(MemDoc.id).all()] == [1, 2, 3]
        db.register_model(MemTyped)  # its table is created by the next awaited request
        typed = db.query(MemTyped).query
        assert db._select_now(typed, MemTyped, None) is LATER
        assert await db.query(MemTyped).all() == []
        assert db._select_now(typed, MemTyped, None) == []
    assert db._select_now(query.query, MemDoc, None) is LATER
    with pytest.raises(AuraClientClosedError):
        await query.all()


async def test_reads_on_the_engine_never_await_the_request_path() -> None:
    """all(), first() and one() on a ready client (or an active
    transaction) are answered in the call; count() still awaits."""
    async with aura.connect("memory://", models=[MemDoc]) as db:
        await db.insert(MemDoc(id=1, title="Apple", body="index", embedding=[1, 0, 0]))
        awaited: list[str] = []
        execute = db._execute

        async def spy(ir: dict[str, Any], model: Any, txn: Any = None) -> Any:
            awaited.append(ir["operation"])
            return await execute(ir, model, txn)

        db._execute = spy  # type: ignore[method-assign]
        reads = db.query(MemDoc).where(MemDoc.id == 1)
        assert [r.id for r in await reads.all()] == [1]
        assert (await reads.first()).id == 1
        assert (await reads.one()).title == "Apple"
        async with db.transaction() as txn:
            assert [r.id for r in await txn.query(MemDoc).all()] == [1]
            assert (await txn.query(MemDoc).one()).id == 1
        assert awaited == []
        assert await reads.count() == 1
        assert awaited == ["count"]


async def test_a_transaction_not_begun_refuses_reads_before_the_engine() -> None:
    async with aura.connect("memory://", models=[MemDoc]) as db:
        await db.insert(MemDoc(id=1, title="Apple", body="index", embedding=[1, 0, 0]))
        txn = db.transaction()
        errors = db.metrics.error_count
        for read in (txn.query(MemDoc).all, txn.query(MemDoc).first):
            with pytest.raises(AuraTransactionError) as info:
                await read()
            assert info.value.message == f"Transaction {txn.id} is not active (new)"
        assert db.metrics.error_count == errors


async def test_client_model_attribute(db: aura.Client) -> None:
    assert isinstance(db.MemAuthor, aura.QueryBuilder)
    with pytest.raises(AttributeError):
        _ = db.NoSuchModel
    assert db.model("MemAuthor") is MemAuthor
    with pytest.raises(AuraSchemaError):
        db.model("Nope")


async def test_health_and_ping(db: aura.Client, backend: str) -> None:
    assert await db.ping() is True
    health = await db.health()
    assert health["status"] == "ok"
    assert health["backend"] == db.backend.name
    assert health["protocol_version"] == 1
    assert health["models"] == ["MemAuthor", "MemBook", "MemDoc", "MemTyped"]
    assert health["capabilities"] == db.capabilities().to_dict()


# -- reads -----------------------------------------------------------------------------


async def test_find_one_first_not_found(library: aura.Client) -> None:  # checks 18-19
    author = await library.MemAuthor.find(id=1)
    assert (author.id, author.name) == (1, "Rowling")
    with pytest.raises(AuraNotFoundError) as info:
        await library.MemAuthor.find(id=404)
    assert info.value.code == "not_found"
    assert info.value.message == "No MemAuthor matched the query"
    assert await library.query(MemAuthor).where(MemAuthor.id == 404).first() is None
    with pytest.raises(AuraQueryError) as multi:
        await library.query(MemBook).where(MemBook.pages > 0).one()
    assert multi.value.message == "Expected exactly one MemBook, found multiple"


async def test_filters_order_limit_offset(library: aura.Client) -> None:
    q = library.query(MemBook)
    assert [
        b.id for b in await q.where(MemBook.pages >= 300).order_by(MemBook.pages.desc()).all()
    ] == [2, 1]
    assert [b.id for b in await q.order_by(MemBook.pages).limit(2).offset(1).all()] == [3, 1]
    skip_on_auradb(library, "AWP 1 filters have no startswith/endswith/like")
    assert [b.id for b in await q.where(MemBook.title.startswith("M")).all()] == [3]
    assert [b.id for b in await q.where(MemBook.title.contains("ham")).all()] == [2]
    assert [b.id for b in await q.where(MemBook.title.like("_tone")).all()] == [1]
    assert [b.id for b in await q.where(MemBook.tags.contains("death")).all()] == [3]
    if library.backend.name in ("postgres", "mysql"):
        # Document paths compile for SQLite's json_extract only: an honest error.
        with pytest.raises(AuraDialectError):
            await q.where(MemBook.meta["a"]["b"] == 3).all()
    else:
        assert [b.id for b in await q.where(MemBook.meta["a"]["b"] == 3).all()] == [2]
    assert [b.id for b in await q.where(MemBook.id.in_([4, 2, 9])).all()] == [2, 4]
    assert await q.where(MemBook.id.in_([])).all() == []
    assert [b.id for b in await q.where(MemBook.author.is_null()).all()] == [4]
    # != matches nulls (API.md §4.1)
    assert [b.id for b in await q.where(MemBook.author != 1).all()] == [3, 4]
    assert [b.id for b in await q.where((MemBook.pages < 200) | (MemBook.id == 1)).all()] == [1, 4]
    assert [b.id for b in await q.where(~(MemBook.pages < 300)).all()] == [1, 2]
    assert await q.where(MemBook.pages > 0).count() == 4
    assert await q.where(MemBook.pages > 1000).exists() is False


async def test_model_instance_operand_and_alias(library: aura.Client) -> None:
    rowling = await library.MemAuthor.find(id=1)
    books = await library.query(MemBook).where(MemBook.author == rowling).all()
    assert [b.id for b in books] == [1, 2]
    # the aliased field is queryable and stored under its alias (§16 row 9)
    assert (await library.MemBook.find(title="Mort")).id == 3
    assert books[0].to_dict()["TITLE"] == "Stone"


async def test_projection(library: aura.Client) -> None:  # check 23
    book = await library.query(MemBook).where(MemBook.id == 1).select(MemBook.title).one()
    assert book.id == 1 and book.title == "Stone"
    with pytest.raises(AttributeError) as info:
        _ = book.pages
    assert str(info.value) == (
        "MemBook.pages is not available; it was not selected in this query's projection"
    )


async def test_relationships_need_include(library: aura.Client) -> None:  # check 22
    book = await library.MemBook.find(id=1)
    with pytest.raises(RelationshipNotLoadedError) as info:
        _ = book.author
    assert info.value.code == "relationship_not_loaded"
    assert info.value.context == {"relationship": "author"}
    assert book.to_dict()["author"] == 1  # the FK survives (§16 row 37)
    loaded = await library.query(MemBook).include("author").where(MemBook.id == 1).one()
    assert isinstance(loaded.author, MemAuthor) and loaded.author.name == "Rowling"
    orphan = await library.query(MemBook).include(MemBook.author).where(MemBook.id == 4).one()
    assert orphan.author is None


async def test_to_many_include_with_limit_and_order(library: aura.Client) -> None:
    skip_on_auradb(library, "AWP 1 has no reverse (to-many) links nor include limit/order")
    authors = (
        await library.query(MemAuthor)
        .include("books", limit=1, order_by=[MemBook.pages.desc()])
        .order_by(MemAuthor.id)
        .all()
    )
    assert [[b.id for b in a.books] for a in authors] == [[2], [3]]
    everything = await library.query(MemAuthor).include("books").order_by(MemAuthor.id).all()
    assert [[b.id for b in a.books] for a in everything] == [[1, 2], [3]]
    with pytest.raises(AuraQueryError) as info:
        library.query(MemAuthor).include("nope")
    assert info.value.message == "MemAuthor has no relationship 'nope' to include"


async def test_traverse(library: aura.Client) -> None:
    skip_on_auradb(library, "AWP 1 has no graph traversal (capability graph_traversal)")
    if lacks(library, "graph_traversal"):
        with pytest.raises(AuraCapabilityError) as info:
            await library.traverse(MemBook).start(MemBook.pages > 280).out("author").all()
        assert info.value.context == {
            "backend": library.backend.name,
            "capability": "graph_traversal",
        }
        return
    authors = await library.traverse(MemBook).start(MemBook.pages > 280).out("author").all()
    assert [a.id for a in authors] == [1]
    books = await library.traverse(MemAuthor).start(MemAuthor.id == 2).out("books").all()
    assert [b.title for b in books] == ["Mort"]


async def test_typed_round_trip(db: aura.Client) -> None:
    key = uuid.UUID("12345678-1234-5678-1234-567812345678")
    row = MemTyped(
        id=key,
        at=dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
        day=dt.date(2024, 5, 2),
        price=Decimal("10.25"),
        blob=b"\x00\xffdata",
    )
    await db.insert(row)
    back = await db.query(MemTyped).where(MemTyped.id == key).one()
    assert back == row
    assert isinstance(back.id, uuid.UUID) and isinstance(back.price, Decimal)
    assert back.blob == b"\x00\xffdata" and back.note is None
    later = (
        await db.query(MemTyped).where(MemTyped.at > dt.datetime(2024, 1, 1, tzinfo=dt.UTC)).all()
    )
    assert later == [row]


async def test_hydrated_vector_written_back_unread(db: aura.Client) -> None:
    """A hydrated vector whose components were never read stores as they were."""
    await db.insert(MemDoc(id=1, title="a", body="b", embedding=[1.0, -2.5, 0.125]))
    stored = await db.query(MemDoc).where(MemDoc.id == 1).one()
    await db.insert(MemDoc(id=2, title="c", body="d", embedding=stored.embedding))
    back = await db.query(MemDoc).order_by(MemDoc.id).all()
    assert [d.embedding.to_list() for d in back] == [[1.0, -2.5, 0.125]] * 2
    assert back[1].embedding == back[0].embedding == Vector([1.0, -2.5, 0.125])


async def test_hydrated_vector_is_a_plain_vector_decoded_on_first_read(db: aura.Client) -> None:
    await db.insert(MemDoc(id=1, title="a", body="b", embedding=[1.0, -2.5, 1e-300]))
    vec = (await db.query(MemDoc).where(MemDoc.id == 1).one()).embedding
    assert type(vec) is Vector
    if db.backend.name == "memory":  # the engine's own f64 values, shared with the row
        store = vec._store
        assert type(store) is aura._core.NativeF64s
        view = memoryview(store)
        assert view.readonly and view.nbytes == 24
        assert view.tobytes() == struct.pack("=3d", 1.0, -2.5, 1e-300)
        with pytest.raises(TypeError, match="read-only"):
            view[0:1] = b"x"
    assert vec.to_list() == [1.0, -2.5, 1e-300]
    assert type(vec._store) is list
    assert vec.dimension == 3


async def test_a_hydrated_vector_outlives_its_row_and_copies_unread(db: aura.Client) -> None:
    await db.insert(MemDoc(id=1, title="a", body="b", embedding=[0.5, 2.0, -1.0]))
    vec = (await db.query(MemDoc).where(MemDoc.id == 1).one()).embedding
    await db.update(MemDoc).where(MemDoc.id == 1).set(embedding=[9.0, 9.0, 9.0]).execute()
    await db.delete(MemDoc).where(MemDoc.id == 1).execute()
    gc.collect()
    assert pickle.loads(pickle.dumps(vec)) == vec
    assert copy.deepcopy(vec) == vec == Vector([0.5, 2.0, -1.0])
    assert hash(vec) == hash(Vector([0.5, 2.0, -1.0]))


async def test_stream_batches_and_cancellation(library: aura.Client, backend: str) -> None:
    ids = [b.id async for b in library.query(MemBook).order_by(MemBook.id).stream(batch_size=3)]
    assert ids == [1, 2, 3, 4]
    if library.backend.name != "memory":
        pytest.skip(f"{library.backend.name}: ReferenceServer cursor counts are memory-only")
    server = library.backend.server  # type: ignore[attr-defined]
    before = library.metrics.stream_cancellations
    async for _ in library.query(MemBook).stream(batch_size=1):
        assert server.open_cursor_count == 1
        break
    assert server.open_cursor_count == 0
    assert library.metrics.stream_cancellations == before + 1
    with pytest.raises(AuraQueryError):
        library.query(MemBook).stream(batch_size=0)


async def test_explain_shows_the_access_path(library: aura.Client) -> None:
    if library.backend.name != "memory":
        pytest.skip(
            f"{library.backend.name}: backend.explain() shows the request; "
            "access paths are server-side"
        )
    explain = library.backend.explain
    by_pk = explain(library.query(MemBook).where(MemBook.id == 2).explain())
    assert by_pk["plan"]["access"] == "primary_key"
    by_unique = explain(
        library.query(MemAuthor).where(MemAuthor.email == "tp@example.com").explain()
    )
    assert by_unique["plan"]["access"] == "unique_index"
    by_index = explain(library.query(MemBook).where(MemBook.pages > 200).explain())
    assert by_index["plan"]["access"] == "index"
    scan = explain(library.query(MemBook).where(MemBook.title == "Mort").explain())
    assert scan["plan"]["access"] == "full_scan"


async def test_explain_ir_matches_spec_example(db: aura.Client) -> None:  # check 17
    ir = (
        db.query(MemDoc)
        .where(MemDoc.title.contains("R"))
        .order_by(MemDoc.id.desc())
        .limit(2)
        .offset(1)
        .select(MemDoc.title)
        .timeout(50)
        .explain()
    )
    assert ir == {
        "operation": "select",
        "model": "MemDoc",
        "filters": [
            {
                "kind": "compare",
                "op": "contains",
                "left": {"kind": "field", "model": "MemDoc", "field": "title"},
                "right": {"kind": "literal", "value": "R"},
            }
        ],
        "projection": ["title"],
        "sort": [{"field": "id", "direction": "desc"}],
        "limit": 2,
        "offset": 1,
        "consistency": "strong",
        "timeout_ms": 50,
    }
    # the engine reads the same IR back unchanged (plus its plan, and SQL on SQL backends)
    engine_view = db.backend.explain(ir)
    # What each backend adds: the AWP payload, the MongoDB filter, the
    # bundled request, or the engine's plan.
    extra = {"auradb": "awp" if over_awp(db) else "request", "mongodb": "mongodb"}
    engine_view.pop(extra.get(db.backend.name, "plan"))
    engine_view.pop("sql", None)
    assert list(engine_view.items()) == list(ir.items())


# -- writes ----------------------------------------------------------------------------


async def test_duplicates_and_on_conflict(db: aura.Client) -> None:  # check 20
    await db.insert(MemAuthor(id=1, name="a", email="a@x"))
    with pytest.raises(AuraConstraintError) as info:
        await db.insert(MemAuthor(id=1, name="b", email="b@x"))
    # AuraDB keeps its wire code (API.md §9).
    assert info.value.code == ("unique_violation" if over_awp(db) else "constraint_violation")
    assert "a@x" not in str(info.value)  # no bound values in messages
    assert (
        await db.bulk_insert(
            MemAuthor, [MemAuthor(id=1, name="c", email="c@x")], on_conflict="ignore"
        )
        == 0
    )
    assert (await db.MemAuthor.find(id=1)).name == "a"
    await db.insert(MemAuthor(id=1, name="d", email="d@x"), on_conflict="replace")
    assert (await db.MemAuthor.find(id=1)).name == "d"
    with pytest.raises(AuraConstraintError) as unique:
        await db.insert(MemAuthor(id=2, name="e", email="d@x"))
    assert unique.value.message.endswith("MemAuthor.email must be unique")
    with pytest.raises(AuraQueryError):
        await db.insert(MemAuthor(id=3, name="f", email="f@x"), on_conflict="merge")
    with pytest.raises(AuraQueryError):
        await db.bulk_insert(MemAuthor, [], batch_size=0)


async def test_bulk_insert_accepts_dicts_and_batches(db: aura.Client) -> None:
    rows = [{"id": i, "name": f"n{i}", "email": f"{i}@x"} for i in range(25)]
    assert await db.bulk_insert(MemAuthor, rows, batch_size=10) == 25
    assert await db.query(MemAuthor).count() == 25


async def test_update_and_delete(library: aura.Client) -> None:  # check 21
    with pytest.raises(AuraQueryError) as info:
        library.update(MemBook).where(MemBook.id == 1).execute()
    assert info.value.message == "update requires at least one set() assignment"
    changed = await library.update(MemBook).where(MemBook.pages > 280).set(pages=999).execute()
    assert changed == 2
    assert await library.query(MemBook).where(MemBook.pages == 999).count() == 2
    # matched rows count even when the value does not change (§16 row 30)
    assert await library.update(MemBook).where(MemBook.id == 1).set(pages=999).execute() == 1
    assert await library.delete(MemBook).where(MemBook.id == 4).execute() == 1
    assert await library.delete(MemBook).execute() == 3
    assert await library.query(MemBook).count() == 0


async def test_primary_key_update_rekeys(library: aura.Client) -> None:  # §16 row 11
    if library.backend.name == "mongodb":  # _id is immutable: rejected, never half-done
        with pytest.raises(AuraQueryError) as info:
            await library.update(MemBook).where(MemBook.id == 4).set(id=40).execute()
        assert info.value.message.startswith("MongoDB cannot change the primary key MemBook.id")
        assert (await library.MemBook.find(id=4)).title == "Orphan"
        return
    await library.update(MemBook).where(MemBook.id == 4).set(id=40).execute()
    assert (await library.MemBook.find(id=40)).title == "Orphan"
    assert await library.query(MemBook).where(MemBook.id == 4).first() is None
    with pytest.raises(AuraConstraintError):
        await library.update(MemBook).where(MemBook.id == 40).set(id=1).execute()


async def test_update_set_validates(library: aura.Client) -> None:  # §16 row 10
    with pytest.raises(AuraQueryError):
        library.update(MemBook).set(nope=1)
    with pytest.raises(AuraValidationError):
        library.update(MemBook).set(pages="many")


async def test_on_delete_cascade(library: aura.Client) -> None:  # §16 row 12
    assert await library.delete(MemAuthor).where(MemAuthor.id == 1).execute() == 1
    assert [b.id for b in await library.query(MemBook).order_by(MemBook.id).all()] == [3, 4]


async def test_upsert(db: aura.Client) -> None:
    first = await db.upsert(
        MemAuthor, key={MemAuthor.id: 5}, values={"name": "new", "email": "n@x"}
    )
    assert (first.id, first.name) == (5, "new")
    second = await db.upsert(MemAuthor, key={"id": 5}, values={MemAuthor.name: "renamed"})
    assert (second.name, second.email) == ("renamed", "n@x")
    assert await db.query(MemAuthor).count() == 1
    with pytest.raises(AuraValidationError):
        await db.upsert(MemAuthor, key={"id": 6}, values={"name": "no email"})


async def test_raw(library: aura.Client) -> None:
    skip_on_auradb(library, "AWP 1 has no raw statements (capability raw_queries)")
    if lacks(library, "raw_queries"):
        with pytest.raises(AuraCapabilityError) as info:
            await library.raw("SELECT * FROM MemAuthor")
        assert info.value.context == {"backend": library.backend.name, "capability": "raw_queries"}
        return
    if library.backend.name == "postgres":  # $1.. placeholders, dict bound in order
        rows = await library.raw('SELECT * FROM "MemAuthor" WHERE id = $1', {"id": 2})
    elif library.backend.name == "mysql":  # ? placeholders, dict bound in order
        rows = await library.raw("SELECT * FROM MemAuthor WHERE id = ?", {"id": 2})
    else:
        rows = await library.raw("SELECT * FROM MemAuthor WHERE id = $id", {"id": 2})
    assert rows == [{"id": 2, "name": "Pratchett", "email": "tp@example.com"}]


async def test_raw_memory_accepts_only_simple_selects(mem_db: aura.Client) -> None:
    with pytest.raises(AuraQueryError):
        await mem_db.raw("DELETE FROM MemAuthor")


async def test_not_null_enforced_on_reassigned_instance(db: aura.Client) -> None:
    author = MemAuthor(id=1, name="a", email="a@x")
    author.name = None  # type: ignore[assignment]
    with pytest.raises(AuraConstraintError) as info:
        await db.insert(author)
    assert info.value.message.endswith("MemAuthor.name cannot be null")


# -- vector search (exact) -----------------------------------------------------------


async def test_search_vector_cosine(docs: aura.Client) -> None:  # check 25
    if await _vector_search_refused(docs):
        return
    rows = (
        await docs.search(MemDoc)
        .search_vector("embedding", [1, 0, 0], metric="cosine", top_k=3)
        .all()
    )
    assert [r.id for r in rows] == [1, 3, 2]
    assert [round(r.__score__, 6) for r in rows] == [1.0, 0.707107, 0.0]
    assert [search_scores(r).rank for r in rows] == [1, 2, 3]
    assert search_scores(rows[0]).text_score is None


@pytest.mark.parametrize(
    ("metric", "scores"),
    [("euclidean", [-0.0, -0.761577, -1.414214]), ("dot", [1.0, 0.7, 0.0])],
)
async def test_search_vector_metrics(
    docs: aura.Client, metric: str, scores: list[float]
) -> None:  # check 26
    if await _vector_search_refused(docs):
        return
    rows = (
        await docs.search(MemDoc)
        .search_vector("embedding", [1, 0, 0], metric=metric, top_k=3)
        .all()
    )
    assert [r.id for r in rows] == [1, 3, 2]
    assert [round(r.__score__, 6) for r in rows] == scores


async def test_vector_search_validates_dimension(docs: aura.Client) -> None:  # §16 row 16
    with pytest.raises(AuraValidationError):
        docs.search(MemDoc).search_vector("embedding", [1, 0])


async def test_nearest_with_offset_keeps_global_rank(docs: aura.Client) -> None:
    if await _vector_search_refused(docs):
        return
    rows = await docs.search(MemDoc).nearest("embedding", [1, 0, 0]).offset(1).limit(1).all()
    assert [(r.id, r.__rank__) for r in rows] == [(3, 2)]


async def test_plain_rows_have_no_scores(docs: aura.Client) -> None:
    row = await docs.MemDoc.find(id=1)
    assert search_scores(row) == aura.SearchScores(None, None, None, None)


async def test_ranked_text_without_the_capability_raises(db: aura.Client) -> None:
    if not lacks(db, "full_text_search"):  # check 41 where text is not ranked
        pytest.skip(f"{db.backend.name}: ranks text (tests/test_memory_search.py)")
    with pytest.raises(AuraCapabilityError) as info:
        await db.search(MemDoc).search_text("body", "vector index").all()
    assert info.value.context == {"backend": db.backend.name, "capability": "full_text_search"}


# -- the product's first example ------------------------------------------------------


async def test_readme_example_runs_verbatim() -> None:
    import pathlib
    import re
    import subprocess
    import sys

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S)
    assert code is not None
    result = subprocess.run(
        [sys.executable, "-c", code.group(1)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[(1, 1.0), (2, 0.0)]"


class MemFragile(Model):
    id: int = Field(primary_key=True)

    def __aura_post_load__(self) -> None:
        if self.id == 1200:
            raise ValueError("hook failed")


async def test_large_fetch_restores_the_collector_state() -> None:
    # Hydrating a large batch pauses the cyclic GC; its prior state comes
    # back afterwards, also when hydration fails part-way.
    async with aura.connect("memory://", models=[MemFragile, MemAuthor]) as db:
        await db.bulk_insert(
            MemAuthor, [{"id": i, "name": f"n{i}", "email": f"{i}@x"} for i in range(1500)]
        )
        await db.bulk_insert(MemFragile, [{"id": i} for i in range(1500)])
        assert gc.isenabled()
        rows = await db.query(MemAuthor).all()
        assert [r.id for r in rows] == list(range(1500))
        assert gc.isenabled()
        with pytest.raises(ValueError, match="hook failed"):
            await db.query(MemFragile).all()
        assert gc.isenabled()
        gc.disable()
        try:
            assert len(await db.query(MemAuthor).all()) == 1500
            assert not gc.isenabled()
        finally:
            gc.enable()


async def test_ir_dicts_parse_in_any_key_order_and_reject_non_json(library: aura.Client) -> None:
    if library.backend.name != "memory":
        pytest.skip(f"{library.backend.name}: reads the in-process connection's IR parser directly")
    conn = library.backend.connection  # type: ignore[attr-defined]
    ir = library.query(MemBook).where(MemBook.id == 2).explain()
    assert [b.id for b in conn.execute(ir, None)] == [2]
    # Tags need not come first; tuples read as lists.
    reordered = dict(reversed(list(ir.items())))
    reordered["filters"] = tuple(dict(reversed(list(f.items()))) for f in ir["filters"])
    assert [b.id for b in conn.execute(reordered, None)] == [2]
    for bad, message in [
        ({**ir, 5: 1}, "Invalid query IR: dict keys must be strings"),
        ({**ir, "filters": {1, 2}}, "Invalid query IR: unsupported type set"),
        ({**ir, "limit": True}, "Invalid query IR: invalid value, expected u64"),
        ({**ir, "zzz": 1}, "Invalid query IR: unknown field `zzz`"),
        ({"model": "MemBook"}, "Invalid query IR: missing field `operation`"),
    ]:
        with pytest.raises(AuraQueryError) as info:
            conn.execute(bad, None)
        assert str(info.value).startswith(f"[query_error] {message}"), info.value


async def test_reference_server_tables_seed_and_inspect() -> None:
    server = ReferenceServer()
    server._tables["MemAuthor"][3] = {"name": "Seeded", "email": "seed@x"}
    assert server._tables["MemAuthor"][3] == {"id": 3, "name": "Seeded", "email": "seed@x"}
    async with aura.connect(
        "memory://", transport=MemoryTransport(server), models=[MemAuthor]
    ) as db:
        assert (await db.MemAuthor.find(id=3)).name == "Seeded"
        await db.insert(MemAuthor(id=4, name="Other", email="o@x"))
    table = server._tables["MemAuthor"]
    assert list(table) == [3, 4] and len(table) == 2
    del table[3]
    assert list(table) == [4] and "MemAuthor" in server._tables
    with pytest.raises(KeyError):
        _ = table[3]
    with pytest.raises(KeyError):
        _ = server._tables["NoSuchModel"]


@pytest.mark.parametrize(
    ("model", "capability"), [(MemAuthor, "unique_constraints"), (MemBook, "relationships")]
)
async def test_redis_refuses_the_library_models(model: type[Model], capability: str) -> None:
    """Unique fields and on_delete actions cannot be enforced by key."""
    with pytest.raises(AuraCapabilityError) as info:
        async with connect_backend("redis", [model]):
            pass
    assert info.value.context["backend"] == "redis"
    assert info.value.context["capability"] == capability


# -- metrics --------------------------------------------------------------------------


async def test_metrics_are_counted_alike(db: aura.Client) -> None:
    """Every backend counts the same requests, errors and latencies
    (API.md §16 row 43), whichever path records them."""
    db.metrics.reset()
    await db.insert(MemAuthor(id=10, name="A", email="a@example.com"))
    with pytest.raises(AuraConstraintError):
        await db.insert(MemAuthor(id=10, name="B", email="b@example.com"))
    await db.query(MemAuthor).all()
    await db.query(MemAuthor).where(MemAuthor.id == 10).one()
    await db.query(MemAuthor).count()
    await db.query(MemAuthor).exists()
    await db.update(MemAuthor).where(MemAuthor.id == 10).set(name="C").execute()
    await db.delete(MemAuthor).where(MemAuthor.id == 10).execute()
    metrics = db.metrics
    assert metrics.query_count == {
        "insert": 2,
        "select": 2,
        "count": 1,
        "exists": 1,
        "update": 1,
        "delete": 1,
    }
    # Over AWP 1 the server's wire code is the error's code (API.md §9).
    code = "unique_violation" if over_awp(db) else "constraint_violation"
    assert metrics.error_count == {code: 1}
    assert metrics.request_latency.count == 8


class _Greeter:
    def greet(self) -> str:
        return f"hello {self.id}"  # type: ignore[attr-defined]


class MemMixed(MemAuthor, _Greeter):
    pass


class MemOverDict(Model, dict):  # type: ignore[misc]
    id: int = Field(primary_key=True)


async def test_hydration_builds_mixins_and_refuses_builtin_layouts() -> None:
    """Rows of a model with Python mixins are built directly; a model over
    a built-in type (another memory layout) is refused, never built wrong."""
    async with aura.connect("memory://", models=[MemMixed, MemOverDict]) as db:
        await db.insert(MemMixed(id=7, name="m", email="m@example.com"))
        mixed = await db.query(MemMixed).one()
        assert (type(mixed), mixed.greet()) == (MemMixed, "hello 7")
        await db.insert(MemOverDict(id=1))
        with pytest.raises(TypeError, match="is not safe"):
            await db.query(MemOverDict).one()


class MemGuarded(Model):
    id: int = Field(primary_key=True)
    name: str = Field(full_text=True)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{name} is read-only")


class _ScoreView:
    @property
    def __score__(self) -> float:
        return float(self.__dict__["__score__"]) * 100


class MemViewed(_ScoreView, Model):
    id: int = Field(primary_key=True)
    name: str = Field(full_text=True)


# More attributes than CPython shares among one class's instances (30).
MemWide = type(Model)(
    "MemWide",
    (Model,),
    {
        "__module__": __name__,
        "__annotations__": {"id": "int", **{f"f{i}": "int" for i in range(40)}},
        "id": Field(primary_key=True),
    },
)


async def test_hydration_fills_instance_dicts_past_setattr_and_descriptors() -> None:
    """Hydration writes fields and scores into the instance's __dict__: never
    through a model's own __setattr__ nor a mixin's property of the same
    name, and for models wider than the attributes CPython shares per class."""
    async with aura.connect("memory://", models=[MemGuarded, MemViewed, MemWide]) as db:
        await db.insert(MemGuarded(id=1, name="alpha beta"))
        (row,) = await db.search(MemGuarded).search_text("name", "beta").all()
        score = row.__dict__["__score__"]
        assert score > 0
        assert vars(row) == {
            "id": 1,
            "name": "alpha beta",
            "__score__": score,
            "__text_score__": None,
            "__vector_score__": None,
            "__rank__": 1,
        }
        await db.insert(MemViewed(id=2, name="alpha beta"))
        (viewed,) = await db.search(MemViewed).search_text("name", "beta").all()
        assert viewed.__score__ == viewed.__dict__["__score__"] * 100 == score * 100
        values = {f"f{i}": i * i for i in range(40)}
        await db.insert(MemWide(id=7, **values))
        wide = await db.query(MemWide).one()
        assert vars(wide) == {"id": 7, **values}
        picked = await db.query(MemWide).select("id", "f39").one()
        assert vars(picked) == {"id": 7, "f39": 39 * 39}


class MemBadge(Model):
    id: uuid.UUID = Field(primary_key=True)
    label: str


class MemHolder(Model):
    id: int = Field(primary_key=True)
    badge: MemBadge | None = None


@pytest.mark.parametrize("kind", DOCUMENT_BACKENDS)
async def test_links_to_uuid_keys(kind: str) -> None:
    # The key is stored in its storage form, as the target's own key field.
    async with connect_backend(kind, [MemBadge, MemHolder]) as db:
        badge = await db.insert(MemBadge(id=uuid.UUID(int=7), label="gold"))
        await db.insert(MemHolder(id=1, badge=badge))
        await db.insert(MemHolder(id=2))
        holder = await db.query(MemHolder).include("badge").where(MemHolder.id == 1).one()
        assert holder.badge == MemBadge(id=uuid.UUID(int=7), label="gold")
        found = await db.query(MemHolder).where(MemHolder.badge == badge).all()
        assert [h.id for h in found] == [1]
