"""Ranked full-text search and aggregates on the SQL backends: SQLite (FTS5
bm25()), PostgreSQL (ts_rank_cd over a GIN-indexed tsvector) and
MySQL/MariaDB (MATCH ... AGAINST over a FULLTEXT index), docs/sql-search.md.
Scores are each database's own; what every backend shares is checked
exactly: candidates, score order with ties broken by the primary key,
global ranks, writes reflected, refusals. SQLite's exact scores and FTS5
specifics are in tests/test_sqlite_search.py."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

import aura
from _backends import connect_backend
from aura import AuraCapabilityError, AuraDialectError, Field, Model
from aura.scores import search_scores

KINDS = ["sqlite", "postgresql", "mysql"]
RANKING = {"sqlite": "bm25(", "postgres": "ts_rank_cd", "mysql": "MATCH"}


class RankDoc(Model):
    id: int = Field(primary_key=True)
    kind: str = "x"
    body: str | None = Field(default=None, full_text=True)
    title: str = ""


DOCS = [
    (1, "x", "apple apple apple banana"),
    (2, "y", "apple banana"),
    (3, "x", "banana cherry"),
    (4, "x", "cherry date"),
    (5, "y", "date elderberry"),
    (6, "x", "fig grape"),
    (7, "y", None),
]


@pytest.fixture(params=KINDS)
async def db(request: pytest.FixtureRequest) -> AsyncIterator[aura.Client]:
    async with connect_backend(request.param, [RankDoc]) as client:
        await client.bulk_insert(RankDoc, [RankDoc(id=i, kind=k, body=b) for i, k, b in DOCS])
        yield client


async def ids(q: object) -> list[int]:
    return [row.id for row in await q.all()]  # type: ignore[attr-defined]


async def ranked(q: object) -> list[tuple[int, float, int]]:
    """(id, score, rank) of every row, checked to be in score order with
    ties broken by the primary key and ranks 1..n."""
    rows = await q.all()  # type: ignore[attr-defined]
    out = [(r.id, search_scores(r).score, search_scores(r).rank) for r in rows]
    assert [rank for _, _, rank in out] == list(range(1, len(out) + 1))
    for (a, sa, _), (b, sb, _) in itertools.pairwise(out):
        assert sa > sb or (sa == sb and a < b), out
    return out


async def test_candidates_order_and_ranks(db: aura.Client) -> None:
    apple = await ranked(db.search(RankDoc).search_text("body", "apple"))
    assert [i for i, _, _ in apple] == [1, 2]  # three matches outrank one
    assert apple[1][1] > 0
    first = await db.search(RankDoc).search_text("body", "apple").first()
    assert first is not None
    assert (search_scores(first).text_score, search_scores(first).vector_score) == (None, None)
    both = await ranked(db.search(RankDoc).search_text("body", "cherry date"))
    assert both[0][0] == 4  # the one document with both terms
    assert sorted(i for i, _, _ in both) == [3, 4, 5]


async def test_ranks_are_global_with_offset_and_limit(db: aura.Client) -> None:
    q = db.search(RankDoc).search_text("body", "banana cherry date")
    everything = [i for i, _, _ in await ranked(q)]
    assert sorted(everything) == [1, 2, 3, 4, 5]
    page = await q.offset(1).limit(2).all()
    assert [r.id for r in page] == everything[1:3]
    assert [search_scores(r).rank for r in page] == [2, 3]


async def test_operator_and_requires_every_term(db: aura.Client) -> None:
    q = db.search(RankDoc).search_text("body", "banana apple", operator="and")
    assert await ids(q) == [1, 2]
    none = db.search(RankDoc).search_text("body", "apple cherry", operator="and")
    assert await ids(none) == []
    assert await ids(db.search(RankDoc).search_text("body", "...")) == []


async def test_filters_projection_and_order_by_combine_with_search(db: aura.Client) -> None:
    q = db.search(RankDoc).search_text("body", "banana").where(RankDoc.kind == "x")
    assert sorted(await ids(q)) == [1, 3]
    await db.bulk_insert(
        RankDoc,
        [RankDoc(id=i, kind=k, body="kiwi", title=t) for i, k, t in [(8, "a", "b"), (9, "b", "a")]],
    )
    kiwi = db.search(RankDoc).search_text("body", "kiwi")
    assert await ids(kiwi) == [8, 9]  # equal scores: the key breaks the tie
    assert await ids(kiwi.order_by(RankDoc.title.asc())) == [9, 8]
    projected = await kiwi.select(RankDoc.kind).all()
    assert [(r.id, r.kind) for r in projected] == [(8, "a"), (9, "b")]


async def test_writes_are_reflected_in_the_index(db: aura.Client) -> None:
    apple = db.search(RankDoc).search_text("body", "apple")
    await db.update(RankDoc).where(RankDoc.id == 1).set(body="plum").execute()
    assert await ids(apple) == [2]
    await db.delete(RankDoc).where(RankDoc.id == 2).execute()
    assert await ids(apple) == []
    await db.insert(RankDoc(id=10, body="apple"))
    await db.upsert(RankDoc, key={RankDoc.id: 11}, values={"body": "apple pie"})
    assert sorted(await ids(apple)) == [10, 11]
    await db.update(RankDoc).where(RankDoc.id == 7).set(body="apple").execute()
    await db.update(RankDoc).where(RankDoc.id == 7).set(body=None).execute()
    assert sorted(await ids(apple)) == [10, 11]


async def test_search_in_a_transaction(db: aura.Client) -> None:
    async with db.transaction() as txn:
        await txn.insert(RankDoc(id=30, body="mango"))
        inside = await ids(txn.search(RankDoc).search_text("body", "mango"))
        # InnoDB applies FULLTEXT changes at commit (docs/sql-search.md).
        assert inside == ([] if db.backend.name == "mysql" else [30])
        assert await ids(db.search(RankDoc).search_text("body", "mango")) == []
    assert await ids(db.search(RankDoc).search_text("body", "mango")) == [30]


async def test_what_cannot_be_ranked_raises(db: aura.Client) -> None:
    q = db.search(RankDoc)
    with pytest.raises(AuraCapabilityError) as k1:
        await q.search_text("body", "apple", k1=2.0).all()
    assert k1.value.context["capability"] == "full_text_search"
    with pytest.raises(AuraCapabilityError):
        await q.search_text("body", "apple", rank="term_frequency").all()
    with pytest.raises(AuraDialectError) as plain:
        await q.search_text("title", "apple").all()
    assert "full_text=True" in plain.value.message
    with pytest.raises(AuraCapabilityError):
        await q.search_text("body", "apple").search_pages(page_size=2).__anext__()


async def test_stream_and_explain_of_a_ranked_query(db: aura.Client) -> None:
    q = db.search(RankDoc).search_text("body", "banana")
    everything = [(r.id, search_scores(r).rank) for r in await q.all()]
    streamed = [(r.id, search_scores(r).rank) async for r in q.stream(batch_size=1)]
    assert streamed == everything and len(streamed) == 3
    out = db.backend.explain(q.explain())
    assert RANKING[db.backend.name] in out["sql"]
    assert out["plan"]


async def test_search_scoped_aggregate(db: aura.Client) -> None:
    result = await (
        db.query(RankDoc)
        .where(RankDoc.kind == "x")
        .search_text("body", "banana")
        .facet("kind")
        .aggregate_count()
        .aggregate()
    )
    assert (result.matched, result.scanned, result.search_scoped) == (2, 4, True)
    assert [(b.value, b.count) for b in result.facet("kind").buckets] == [("x", 2)]
    assert result.metric("count") == 2


async def test_aggregate_edge_cases(db: aura.Client) -> None:
    empty = await (
        db.query(RankDoc)
        .where(RankDoc.id > 100)
        .aggregate_count()
        .min("id")
        .sum("id")
        .avg("id")
        .facet("kind")
        .group_by("kind")
        .aggregate()
    )
    assert [m.value for m in empty.metrics] == [0, None, None, None]
    assert (empty.facet("kind").buckets, empty.groups) == ([], [])
    typed = await db.query(RankDoc).sum("id").avg("id").facet("body", limit=2).aggregate()
    assert [m.value for m in typed.metrics] == [28, 4.0]
    assert isinstance(typed.metrics[0].value, int) and isinstance(typed.metrics[1].value, float)
    assert [(b.value, b.count) for b in typed.facet("body").buckets] == [
        ("apple apple apple banana", 1),
        ("apple banana", 1),
    ]
