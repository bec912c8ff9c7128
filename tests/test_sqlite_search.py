"""SQLite ranked full-text search (FTS5 bm25(), docs/sql-search.md): exact
orders and FTS5 specifics, and diff_schema against the live tables. What
every SQL backend shares (aggregates included) is in tests/test_sql_ranked.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import aura
from aura import AuraCapabilityError, AuraDialectError, Field, Model
from aura.scores import search_scores


class SqlFtsDoc(Model):
    id: int = Field(primary_key=True)
    kind: str = "x"
    body: str | None = Field(default=None, full_text=True)
    title: str = ""


class SqlFtsKeyed(Model):
    key: str = Field(primary_key=True)
    body: str = Field(full_text=True)


class SqlShape(Model):
    id: int = Field(primary_key=True)
    name: str = Field(index=True)
    email: str = Field(unique=True)
    n: int | None = None
    body: str = Field(default="", full_text=True)


DOCS = [
    (1, "x", "apple apple apple banana"),
    (2, "y", "apple banana"),
    (3, "x", "banana cherry"),
    (4, "x", "cherry date"),
    (5, "y", "date elderberry"),
    (6, "x", "fig grape"),
    (7, "y", None),
]


@pytest.fixture
async def db() -> AsyncIterator[aura.Client]:
    async with aura.connect("sqlite://", models=[SqlFtsDoc, SqlFtsKeyed, SqlShape]) as client:
        await client.bulk_insert(SqlFtsDoc, [SqlFtsDoc(id=i, kind=k, body=b) for i, k, b in DOCS])
        yield client


async def ids(q: object) -> list[int]:
    return [row.id for row in await q.all()]  # type: ignore[attr-defined]


# -- ranking ---------------------------------------------------------------------------


async def test_ranked_order_and_scores(db: aura.Client) -> None:
    rows = await db.search(SqlFtsDoc).search_text("body", "apple").all()
    assert [r.id for r in rows] == [1, 2]
    scores = [search_scores(r) for r in rows]
    assert [s.rank for s in scores] == [1, 2]
    assert scores[0].score > scores[1].score > 0
    assert (scores[0].text_score, scores[0].vector_score) == (None, None)
    # "cherry date" matches 4 twice over: it ranks first; then 3 and 5 (one term each).
    assert await ids(db.search(SqlFtsDoc).search_text("body", "Cherry, DATE!")) == [4, 3, 5]


async def test_ranks_are_global_with_offset_and_limit(db: aura.Client) -> None:
    q = db.search(SqlFtsDoc).search_text("body", "banana cherry date")
    everything = await ids(q)
    # two-term documents first; a longer document ranks below a shorter one
    assert everything == [4, 3, 5, 2, 1]
    page = await q.offset(1).limit(2).all()
    assert [r.id for r in page] == everything[1:3]
    assert [search_scores(r).rank for r in page] == [2, 3]


async def test_filters_and_order_by_combine_with_search(db: aura.Client) -> None:
    q = db.search(SqlFtsDoc).search_text("body", "banana").where(SqlFtsDoc.kind == "x")
    assert await ids(q) == [3, 1]
    # Equal documents tie on score: order_by breaks the tie, then the key.
    await db.bulk_insert(
        SqlFtsDoc,
        [
            SqlFtsDoc(id=i, kind=k, body="kiwi", title=t)
            for i, k, t in [(8, "a", "b"), (9, "b", "a")]
        ],
    )
    kiwi = db.search(SqlFtsDoc).search_text("body", "kiwi")
    assert await ids(kiwi) == [8, 9]
    assert await ids(kiwi.order_by(SqlFtsDoc.title.asc())) == [9, 8]
    projected = await kiwi.select(SqlFtsDoc.kind).all()
    assert [(r.id, r.kind) for r in projected] == [(8, "a"), (9, "b")]


async def test_writes_are_reflected_in_the_index(db: aura.Client) -> None:
    apple = db.search(SqlFtsDoc).search_text("body", "apple")
    await db.update(SqlFtsDoc).where(SqlFtsDoc.id == 1).set(body="plum").execute()
    assert await ids(apple) == [2]
    await db.delete(SqlFtsDoc).where(SqlFtsDoc.id == 2).execute()
    assert await ids(apple) == []
    await db.insert(SqlFtsDoc(id=10, body="Apple"))
    await db.upsert(SqlFtsDoc, key={SqlFtsDoc.id: 11}, values={"body": "apple pie"})
    assert await ids(apple) == [10, 11]
    # A primary-key change moves the rowid: the index follows it.
    await db.update(SqlFtsDoc).where(SqlFtsDoc.id == 10).set(id=20).execute()
    assert await ids(apple) == [20, 11]
    # null -> text -> null keeps the index consistent.
    await db.update(SqlFtsDoc).where(SqlFtsDoc.id == 7).set(body="apple").execute()
    await db.update(SqlFtsDoc).where(SqlFtsDoc.id == 7).set(body=None).execute()
    assert await ids(apple) == [20, 11]
    await db.insert(SqlFtsKeyed(key="k", body="apple"))
    rows = await db.search(SqlFtsKeyed).search_text("body", "apple").all()
    assert [r.key for r in rows] == ["k"]
    integrity = await db.raw(
        'INSERT INTO "SqlFtsDoc__fts_body"("SqlFtsDoc__fts_body", rank) '
        "VALUES ('integrity-check', 1)"
    )
    assert integrity == []


async def test_rows_stored_before_the_index_are_indexed(db: aura.Client) -> None:
    await db.raw('DROP TABLE "SqlFtsDoc__fts_body"')
    await db.backend.create_schema([SqlFtsDoc])
    assert await ids(db.search(SqlFtsDoc).search_text("body", "apple")) == [1, 2]


async def test_search_in_a_transaction_sees_its_own_writes(db: aura.Client) -> None:
    async with db.transaction() as txn:
        await txn.insert(SqlFtsDoc(id=30, body="mango"))
        assert await ids(txn.search(SqlFtsDoc).search_text("body", "mango")) == [30]
        assert await ids(db.search(SqlFtsDoc).search_text("body", "mango")) == []
    assert await ids(db.search(SqlFtsDoc).search_text("body", "mango")) == [30]


async def test_what_fts5_cannot_rank_raises(db: aura.Client) -> None:
    q = db.search(SqlFtsDoc)
    with pytest.raises(AuraCapabilityError) as k1:
        await q.search_text("body", "apple", k1=2.0).all()
    assert k1.value.context == {"backend": "sqlite", "capability": "full_text_search"}
    assert await ids(q.search_text("body", "apple", k1=1.2, b=0.75)) == [1, 2]
    with pytest.raises(AuraCapabilityError):
        await q.search_text("body", "apple", rank="term_frequency").all()
    with pytest.raises(AuraDialectError) as plain:
        await q.search_text("title", "apple").all()
    assert "full_text=True" in plain.value.message
    with pytest.raises(AuraCapabilityError):
        await q.search_text("body", "apple").search_pages(page_size=2).__anext__()


async def test_stream_and_explain_of_a_ranked_query(db: aura.Client) -> None:
    q = db.search(SqlFtsDoc).search_text("body", "banana")
    streamed = [(r.id, search_scores(r).rank) async for r in q.stream(batch_size=1)]
    # 2 and 3 tie (one match in two words): the primary key breaks the tie.
    assert streamed == [(2, 1), (3, 2), (1, 3)]
    assert [r.id for r in await q.all()] == [2, 3, 1]
    out = db.backend.explain(q.explain())
    assert '-bm25("SqlFtsDoc__fts_body")' in out["sql"]
    assert any("SqlFtsDoc__fts_body" in step for step in out["plan"])


# -- diff_schema -------------------------------------------------------------------------


def changes(plan: object) -> list[tuple[str, str, str, bool]]:
    return [(c.kind, c.model, c.target, c.destructive) for c in plan.changes]  # type: ignore[attr-defined]


async def test_diff_schema_of_matching_tables_is_empty(db: aura.Client) -> None:
    assert (await db.backend.diff_schema([SqlFtsDoc, SqlFtsKeyed, SqlShape])).is_empty


async def test_diff_schema_reports_a_missing_table() -> None:
    async with aura.connect("sqlite://") as client:
        plan = await client.backend.diff_schema([SqlShape])
        assert changes(plan) == [("add_model", "SqlShape", "", False)]


async def test_diff_schema_reads_the_live_table(db: aura.Client) -> None:
    await db.raw('ALTER TABLE "SqlShape" DROP COLUMN "n"')
    await db.raw('ALTER TABLE "SqlShape" ADD COLUMN "legacy" TEXT')
    await db.raw('DROP INDEX "idx_SqlShape_name"')
    await db.raw('DROP TABLE "SqlShape__fts_body"')
    plan = await db.backend.diff_schema([SqlShape])
    assert changes(plan) == [
        ("add_field", "SqlShape", "n", False),
        ("alter_field", "SqlShape", "body", False),
        ("drop_field", "SqlShape", "legacy", True),
        ("add_index", "SqlShape", "name", False),
    ]


async def test_diff_schema_sees_type_and_nullability_changes() -> None:
    async with aura.connect("sqlite://") as client:
        await client.raw(
            'CREATE TABLE "SqlShape" ("id" INTEGER NOT NULL PRIMARY KEY, "name" TEXT, '
            '"email" TEXT NOT NULL UNIQUE, "n" TEXT, "body" TEXT NOT NULL)'
        )
        plan = await client.backend.diff_schema([SqlShape])
    assert [(c.kind, c.target, c.destructive, c.detail) for c in plan.changes] == [
        ("alter_field", "body", False, "full_text: false -> true"),
        ("alter_field", "n", True, 'type: "sql TEXT" -> "int"'),
        ("alter_field", "name", True, "nullable: true -> false"),
        ("add_index", "name", False, "add index on name"),
    ]
