"""Query, mutation and traversal builders (API.md §4.2-§4.5, §5.1; §15 checks 15-19, 21,
23, 29-31, 33-36; §16 rows 9, 13-17, 20, 42)."""

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from aura.errors import AuraNotFoundError, AuraQueryError, AuraValidationError
from aura.query import (
    AggregateResult,
    DeleteBuilder,
    FacetBucket,
    FacetResult,
    MetricResult,
    QueryBuilder,
    SearchResultPage,
    SelectQuery,
    TraverseBuilder,
    UpdateBuilder,
)
from aura.query.builder import LATER
from aura.scores import SearchScores, search_scores

models = pytest.importorskip("aura.models")
from aura.fields import Field  # noqa: E402
from aura.vectors import Vector  # noqa: E402


class QbAuthor(models.AuraModel):
    id: int = Field(primary_key=True)
    name: str
    books: list["QbBook"]


class QbBook(models.AuraModel):
    id: int = Field(primary_key=True)
    title: str
    pages: int = 0
    author: QbAuthor | None = Field(default=None, link=True)


class QbDoc(models.AuraModel):
    id: int = Field(primary_key=True)
    title: str = Field(alias="TITLE")
    body: str = ""
    cat: str | None = None
    score: float = 0.0
    meta: dict = Field(default_factory=dict)
    embedding: Vector[3] | None = None


class Recorder:
    """A fake executor recording every IR a terminal sends."""

    def __init__(self, *results: Any, default: Any = None) -> None:
        self.results = list(results)
        self.default = default
        self.calls: list[tuple[dict[str, Any], Any]] = []
        self.streams: list[tuple[dict[str, Any], Any, int]] = []

    async def _execute(self, ir: dict[str, Any], model: Any) -> Any:
        self.calls.append((ir, model))
        return self.results.pop(0) if self.results else self.default

    def _select_now(self, query: Any, model: Any, cap: int | None) -> Any:
        return LATER  # every request goes through `_execute`, recorded

    def _stream(self, ir: dict[str, Any], model: Any, batch_size: int) -> AsyncIterator[Any]:
        self.streams.append((ir, model, batch_size))

        async def rows() -> AsyncIterator[Any]:
            for row in ("r1", "r2"):
                yield row

        return rows()

    def _capabilities(self) -> None:
        return None

    @property
    def last(self) -> dict[str, Any]:
        return self.calls[-1][0]


@contextmanager
def raises_exactly(cls: type[Exception], message: str) -> Iterator[Any]:
    """Like ``pytest.raises``, also checking the error's exact ``message``."""
    with pytest.raises(cls) as info:
        yield info
    assert info.value.message == message


def docs(executor: Any = None) -> QueryBuilder[QbDoc]:
    return QueryBuilder(QbDoc, executor or Recorder())


def field(name: str) -> dict[str, Any]:
    return {"kind": "field", "model": "QbDoc", "field": name}


# -- immutability (§15 check 15) -------------------------------------------------------


def test_check_15_where_returns_a_new_builder() -> None:
    q = docs().where(QbDoc.id == 1)
    q2 = q.where(QbDoc.body == "x")
    assert len(q.explain()["filters"]) == 1
    assert len(q2.explain()["filters"]) == 2


@pytest.mark.parametrize(
    "step",
    [
        lambda q: q.where(QbDoc.id == 1),
        lambda q: q.filter(QbDoc.id == 1),
        lambda q: q.find(id=1),
        lambda q: q.select("body"),
        lambda q: q.order_by(QbDoc.id),
        lambda q: q.limit(3),
        lambda q: q.offset(3),
        lambda q: q.timeout(10),
        lambda q: q.consistency("eventual"),
        lambda q: q.nearest("embedding", [1, 0, 0]),
        lambda q: q.similar_to("embedding", [1, 0, 0]),
        lambda q: q.text("body", query="x"),
        lambda q: q.fusion(alpha=0.5),
        lambda q: q.search_text("body", "x"),
        lambda q: q.search_vector("embedding", [1, 0, 0]),
        lambda q: q.search_hybrid("body", "x", "embedding", [1, 0, 0]),
        lambda q: q.facet("cat"),
        lambda q: q.aggregate_count(),
        lambda q: q.min("score"),
        lambda q: q.max("score"),
    ],
)
def test_every_method_leaves_the_original_unchanged(step: Any) -> None:
    base = docs().where(QbDoc.id > 0).limit(20)
    before = base.explain()
    before_query = base.query
    derived = step(base)
    assert derived is not base and isinstance(derived, QueryBuilder)
    assert base.explain() == before and base.query is before_query
    assert derived.explain() != before or derived.query != before_query


def test_builders_share_nothing_mutable() -> None:
    base = docs().select("body")
    ir = base.explain()
    ir["projection"].append("cat")
    assert base.explain()["projection"] == ["body"]
    assert isinstance(base.query, SelectQuery)
    assert base.model is QbDoc


def test_include_clones() -> None:
    base = QueryBuilder(QbBook, Recorder())
    with_author = base.include("author")
    assert "include" not in base.explain()
    assert with_author.explain()["include"] == [{"link": "author"}]


# -- filters, projection, sort, paging ---------------------------------------------------


def test_find_uses_storage_names_for_names_and_aliases() -> None:
    """§16 row 9: filters on an aliased field use the storage name."""
    by_name = docs().find(title="T", id=1).explain()["filters"]
    by_alias = docs().find(TITLE="T").explain()["filters"]
    assert by_name[0] == {
        "kind": "compare",
        "op": "eq",
        "left": field("TITLE"),
        "right": {"kind": "literal", "value": "T"},
    }
    assert by_name[1]["left"] == field("id")
    assert by_alias == by_name[:1]


def test_find_unknown_field() -> None:
    with pytest.raises(AuraQueryError, match="QbDoc has no field 'nope'") as info:
        docs().find(nope=1)
    assert info.value.code == "query_error"


def test_where_rejects_non_predicates() -> None:
    for bad in (True, QbDoc.id, QbDoc.embedding.cosine_distance([1, 0, 0]), "id = 1"):
        with pytest.raises(AuraQueryError):
            docs().where(bad)


def test_python_boolean_operators_fail_loudly() -> None:
    """§16 row 42: ``and`` cannot silently drop a condition."""
    with pytest.raises(TypeError):
        docs().where(QbDoc.id == 1 and QbDoc.cat == "a")
    with pytest.raises(TypeError):
        docs().where(not (QbDoc.id == 1))


def test_classes_without_a_schema_are_not_checked() -> None:
    class Plain:
        pass

    ir = QueryBuilder(Plain, Recorder()).find(anything=1).select("x.y").explain()
    assert ir["model"] == "Plain" and ir["projection"] == ["x.y"]
    assert ir["filters"][0]["left"] == {"kind": "field", "model": "Plain", "field": "anything"}


def test_where_accepts_several_predicates() -> None:
    ir = docs().where(QbDoc.id == 1, QbDoc.cat.is_null()).explain()
    assert [f["op"] for f in ir["filters"]] == ["eq", "is_null"]


def test_select_resolves_storage_names_and_paths() -> None:
    ir = docs().select(QbDoc.title, "body", "TITLE", QbDoc.meta["a"], "meta.b").explain()
    assert ir["projection"] == ["TITLE", "body", "meta.a", "meta.b"]
    with pytest.raises(AuraQueryError, match="QbDoc has no field 'zzz'"):
        docs().select("zzz")
    with pytest.raises(AuraQueryError, match="is not a field of QbDoc"):
        docs().select(QbBook.title)


def test_order_by_appends_and_defaults_to_ascending() -> None:
    ir = docs().order_by(QbDoc.title).order_by(QbDoc.id.desc(), "score").explain()
    assert ir["sort"] == [
        {"field": "TITLE", "direction": "asc"},
        {"field": "id", "direction": "desc"},
        {"field": "score", "direction": "asc"},
    ]
    with pytest.raises(AuraQueryError):
        docs().order_by("nope")


def test_check_16_limit_and_offset_raise_synchronously() -> None:
    with pytest.raises(AuraQueryError, match="limit must be non-negative"):
        docs().limit(-1)
    with pytest.raises(AuraQueryError, match="offset must be non-negative"):
        docs().offset(-1)
    for bad in (1.5, True, "3", None):
        with pytest.raises(AuraQueryError):
            docs().limit(bad)
    assert docs().limit(0).offset(0).explain()["limit"] == 0


def test_timeout_requires_positive_int() -> None:
    assert docs().timeout(25).explain()["timeout_ms"] == 25
    for bad in (0, -5, True, 2.5, "10", None):
        with pytest.raises(AuraQueryError, match="timeout must be a positive int"):
            docs().timeout(bad)


def test_consistency_levels() -> None:
    assert docs().explain()["consistency"] == "strong"
    assert docs().consistency("eventual").explain()["consistency"] == "eventual"
    with pytest.raises(AuraQueryError, match="consistency"):
        docs().consistency("weak")


# -- includes ----------------------------------------------------------------------------


def test_include_unknown_relationship() -> None:
    books = QueryBuilder(QbBook, Recorder())
    with pytest.raises(AuraQueryError, match="QbBook has no relationship 'nope' to include"):
        books.include("nope")
    with pytest.raises(AuraQueryError, match="QbBook has no relationship 'title' to include"):
        books.include("title")


def test_include_with_limit_and_order() -> None:
    authors = QueryBuilder(QbAuthor, Recorder())
    ir = authors.include(QbAuthor.books, limit=2, order_by=[QbBook.pages.desc(), "title"])
    assert ir.explain()["include"] == [
        {
            "link": "books",
            "limit": 2,
            "sort": [
                {"field": "pages", "direction": "desc"},
                {"field": "title", "direction": "asc"},
            ],
        }
    ]
    with pytest.raises(AuraQueryError):
        authors.include("books", limit=-1)
    with pytest.raises(AuraQueryError, match="QbBook has no field 'nope'"):
        authors.include("books", order_by=["nope"])


# -- vector search ---------------------------------------------------------------------------


def test_nearest_and_metric() -> None:
    q = docs().nearest(QbDoc.embedding, Vector([1, 0, 0]), limit=4)
    ir = q.explain()
    assert ir["vector"] == {"field": "embedding", "metric": "cosine", "query": [1.0, 0.0, 0.0]}
    assert ir["limit"] == 4
    assert q.metric("dot").explain()["vector"]["metric"] == "dot"
    assert (
        docs().similar_to("embedding", [0, 1, 0], metric="euclidean").explain()["vector"]["metric"]
        == "euclidean"
    )


def test_check_30_unsupported_metric() -> None:
    with raises_exactly(AuraQueryError, "Unsupported vector metric 'l2'"):
        docs().nearest("embedding", [1, 0, 0], metric="l2")
    for name in ("euclidean_distance", "l2", "COSINE"):
        with pytest.raises(AuraQueryError, match="Unsupported vector metric"):
            docs().nearest("embedding", [1, 0, 0]).metric(name)
        with pytest.raises(AuraQueryError, match="Unsupported vector metric"):
            docs().search_vector("embedding", [1, 0, 0], metric=name)
        with pytest.raises(AuraQueryError, match="Unsupported vector metric"):
            docs().search_hybrid("body", "x", "embedding", [1, 0, 0], metric=name)


def test_metric_requires_a_vector_clause() -> None:
    with pytest.raises(AuraQueryError, match=r"metric\(\) requires a prior similar_to\(\)/nearest"):
        docs().metric("dot")


def test_nearest_limit_is_validated() -> None:
    with pytest.raises(AuraQueryError):
        docs().nearest("embedding", [1, 0, 0], limit=-1)
    with pytest.raises(AuraQueryError):
        docs().nearest("embedding", [1, 0, 0], limit=True)


def test_query_vector_dimension_must_match() -> None:
    """§16 row 16."""
    message = "Query vector for QbDoc.embedding expects dimension 3, got 2"
    with pytest.raises(AuraValidationError, match=message) as info:
        docs().nearest("embedding", [1, 0])
    assert info.value.code == "validation_error"
    assert info.value.context == {
        "model": "QbDoc",
        "field": "embedding",
        "expected": 3,
        "actual": 2,
    }
    with pytest.raises(AuraValidationError, match=message):
        docs().search_vector(QbDoc.embedding, [1, 0])
    with pytest.raises(AuraValidationError, match=message):
        docs().search_hybrid("body", "x", "embedding", Vector([1, 0]))
    with pytest.raises(AuraValidationError):
        docs().nearest("embedding", "abc")


def test_search_vector_sets_limit_and_approximate() -> None:
    ir = docs().search_vector("embedding", [1, 0, 0], metric="dot", top_k=3).explain()
    assert ir["limit"] == 3 and "vector_ann" not in ir
    assert ir["vector"]["metric"] == "dot"
    approx = docs().search_vector("embedding", [1, 0, 0], approximate=True).explain()
    assert approx["vector_ann"] == {}  # §15 check 33
    tuned = (
        docs()
        .search_vector("embedding", [1, 0, 0], approximate={"ef_search": 40, "m": 16})
        .explain()
    )
    assert tuned["vector_ann"] == {"m": 16, "ef_search": 40}
    exact = docs().search_vector("embedding", [1, 0, 0], approximate=True)
    assert "vector_ann" not in exact.nearest("embedding", [0, 1, 0]).explain()
    for off in (False, None):
        assert (
            "vector_ann"
            not in docs().search_vector("embedding", [1, 0, 0], approximate=off).explain()
        )


@pytest.mark.parametrize(
    "approximate", [{"zz": 1}, {"m": 0}, {"m": True}, {"ef_search": "8"}, {"m": -1}, "yes", 1]
)
def test_check_31_bad_approximate_options(approximate: Any) -> None:
    with pytest.raises(AuraQueryError):
        docs().search_vector("embedding", [1, 0, 0], approximate=approximate)


def test_check_29_top_k_must_be_positive() -> None:
    for bad in (0, -1, True, 2.0):
        with pytest.raises(AuraQueryError, match="top_k must be a positive int"):
            docs().search_vector("embedding", [1, 0, 0], top_k=bad)
        with pytest.raises(AuraQueryError, match="top_k must be a positive int"):
            docs().search_hybrid("body", "x", "embedding", [1, 0, 0], top_k=bad)


# -- text search ------------------------------------------------------------------------------


def test_search_text_ir() -> None:
    ir = docs().search_text(QbDoc.title, "vector index", limit=5).explain()
    assert ir["text_search"] == {
        "field": "TITLE",
        "query": "vector index",
        "operator": "or",
        "rank": "bm25",
    }
    assert ir["limit"] == 5


def test_bm25_zero_parameters_are_honoured() -> None:
    """§16 row 14: k1=0 and b=0 are values, not "unset"."""
    ir = docs().search_text("body", "x", k1=0, b=0).explain()["text_search"]
    assert ir["k1"] == 0 and ir["b"] == 0
    hybrid = docs().search_hybrid("body", "x", "embedding", [1, 0, 0], k1=0.0, b=0.0)
    assert hybrid.explain()["hybrid"]["k1"] == 0.0 and hybrid.explain()["hybrid"]["b"] == 0.0
    ranked = docs().search_text("body", "x", rank="term_frequency", operator="and", k1=2, b=1)
    assert ranked.explain()["text_search"] == {
        "field": "body",
        "query": "x",
        "operator": "and",
        "rank": "term_frequency",
        "k1": 2,
        "b": 1,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": "   "}, "query must be a non-blank string"),
        ({"query": ""}, "query must be a non-blank string"),
        ({"query": 3}, "query must be a non-blank string"),
        ({"rank": "tfidf"}, "Unsupported rank 'tfidf'"),
        ({"operator": "xor"}, "Unsupported operator 'xor'"),
        ({"k1": -0.1}, "k1 must be a non-negative number"),
        ({"k1": True}, "k1 must be a non-negative number"),
        ({"k1": "1"}, "k1 must be a non-negative number"),
        ({"b": 1.5}, "b must be a number between 0 and 1"),
        ({"b": -0.5}, "b must be a number between 0 and 1"),
        ({"b": False}, "b must be a number between 0 and 1"),
        ({"limit": -1}, "limit must be non-negative"),
    ],
)
def test_check_31_search_text_validation(kwargs: dict[str, Any], message: str) -> None:
    query = kwargs.pop("query", "refunds")
    with pytest.raises(AuraQueryError, match=message):
        docs().search_text("body", query, **kwargs)


def test_search_text_unknown_field() -> None:
    with pytest.raises(AuraQueryError, match="QbDoc has no field 'text'"):
        docs().search_text("text", "x")
    # The field is checked before the other arguments.
    for bad in ({"query": ""}, {"query": "x", "rank": "bad"}, {"query": "x", "k1": -1}):
        with pytest.raises(AuraQueryError, match="QbDoc has no field 'text'"):
            docs().search_text("text", **bad)


def test_legacy_text_and_fusion() -> None:
    ir = docs().nearest("embedding", [1, 0, 0]).text("title", "body", query="x").fusion(alpha=0)
    assert ir.explain()["text"] == {"fields": ["TITLE", "body"], "query": "x"}
    assert ir.explain()["fusion"] == {"alpha": 0}
    assert docs().fusion(alpha=1).explain()["fusion"] == {"alpha": 1}
    for bad in (-0.1, 1.01, True, "0.5", float("nan")):
        with pytest.raises(AuraQueryError, match="fusion alpha must be between 0 and 1"):
            docs().fusion(alpha=bad)
    with pytest.raises(AuraQueryError):
        docs().text(query="x")


# -- hybrid search ----------------------------------------------------------------------------


def test_search_hybrid_ir() -> None:
    ir = (
        docs()
        .search_hybrid(
            QbDoc.title,
            "vector",
            "embedding",
            [1, 0, 0],
            weights=(0.7, 0.3),
            fusion="reciprocal_rank_fusion",
            top_k=4,
            metric="dot",
            operator="and",
        )
        .explain()
    )
    assert ir["hybrid"] == {
        "text_field": "TITLE",
        "text_query": "vector",
        "vector_field": "embedding",
        "vector": [1.0, 0.0, 0.0],
        "top_k": 4,
        "metric": "dot",
        "weights": {"text": 0.7, "vector": 0.3},
        "fusion": "reciprocal_rank_fusion",
        "operator": "and",
    }
    assert ir["limit"] == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fusion": "rrf"}, "Unsupported fusion 'rrf'"),
        ({"weights": (0, 0)}, "not both zero"),
        ({"weights": (-1, 2)}, "non-negative"),
        ({"weights": (1,)}, "pair of numbers"),
        ({"weights": ("a", 1)}, "pair of numbers"),
        ({"operator": "nand"}, "Unsupported operator"),
        ({"top_k": 0}, "top_k must be a positive int"),
        ({"k1": -1}, "k1 must be"),
        ({"b": 2}, "b must be"),
    ],
)
def test_check_29_search_hybrid_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(AuraQueryError, match=message):
        docs().search_hybrid("body", "vector", "embedding", [1, 0, 0], **kwargs)


def test_search_hybrid_blank_query() -> None:
    with pytest.raises(AuraQueryError, match="search_hybrid query must be a non-blank string"):
        docs().search_hybrid("body", " \t", "embedding", [1, 0, 0])


# -- aggregations -------------------------------------------------------------------------------


def test_facets_and_metrics_feed_aggregate_only() -> None:
    q = docs().facet(QbDoc.cat, limit=5).facet("TITLE").aggregate_count().min("score").max("id")
    assert "facets" not in q.explain() and "metrics" not in q.explain()
    assert q.query.aggregate_ir()["facets"] == [{"field": "cat", "limit": 5}, {"field": "TITLE"}]
    assert q.query.aggregate_ir()["metrics"] == [
        {"op": "count"},
        {"op": "min", "field": "score"},
        {"op": "max", "field": "id"},
    ]


def test_facet_and_metric_validation() -> None:
    with pytest.raises(AuraQueryError, match=r"facet\(\) requires a field name"):
        docs().facet("")
    for bad in (0, -1, True):
        with pytest.raises(AuraQueryError, match="facet limit must be a positive int"):
            docs().facet("cat", limit=bad)
    with pytest.raises(AuraQueryError, match=r"min\(\) requires a field name"):
        docs().min("")
    with pytest.raises(AuraQueryError, match=r"max\(\) requires a field name"):
        docs().max("  ")
    with pytest.raises(AuraQueryError, match="QbDoc has no field 'nope'"):
        docs().facet("nope")


async def test_check_35_aggregate_needs_something_and_raises_synchronously() -> None:
    recorder = Recorder()
    with pytest.raises(AuraQueryError, match="aggregate"):
        docs(recorder).where(QbDoc.id > 1).aggregate()  # no await: raised at the call
    assert recorder.calls == []


async def test_aggregate_sends_ir_and_parses_result() -> None:
    payload = {
        "collection": "QbDoc",
        "matched": 5,
        "scanned": 5,
        "filter_present": False,
        "search_scoped": True,
        "metrics": [{"op": "count", "value": 5}, {"op": "min", "field": "score", "value": 1.5}],
        "facets": [
            {"field": "cat", "buckets": [{"value": "a", "count": 2}, {"value": "b", "count": 2}]}
        ],
    }
    recorder = Recorder(payload)
    q = docs(recorder).search_text("body", "x").facet("cat").aggregate_count().min("score")
    result = await q.aggregate()
    ir, model = recorder.calls[0]
    assert model is QbDoc and ir["operation"] == "aggregate"
    assert ir["text_search"]["query"] == "x"
    assert isinstance(result, AggregateResult)
    assert result.search_scoped and result.matched == 5 and result.collection == "QbDoc"
    assert result.metric("count") == 5 and result.metric("min", "score") == 1.5
    assert result.metric("max") is None
    facet = result.facet("cat")
    assert isinstance(facet, FacetResult) and not facet.used_index
    assert facet.buckets == [("a", 2), ("b", 2)]
    assert facet.buckets[0] == FacetBucket("a", 2) and facet.buckets[0].count == 2
    assert result.facet(QbDoc.cat) is facet and result.facet("zz") is None
    assert result.metrics[1] == MetricResult("min", 1.5, "score")


# -- terminals --------------------------------------------------------------------------------


async def test_all_sends_the_select_ir() -> None:
    recorder = Recorder(["a", "b"])
    q = docs(recorder).where(QbDoc.id > 1).limit(5)
    assert await q.all() == ["a", "b"]
    assert recorder.calls == [(q.explain(), QbDoc)]


async def test_first_sends_limit_1() -> None:
    recorder = Recorder(["a"], [])
    q = docs(recorder).order_by(QbDoc.id)
    assert await q.first() == "a"
    assert recorder.last == {**q.explain(), "limit": 1}
    assert list(recorder.last) == ["operation", "model", "sort", "limit", "consistency"]
    assert await q.first() is None
    zero = docs(Recorder([]))
    await zero.limit(0).first()
    assert zero._executor.last["limit"] == 0


async def test_one_sends_limit_2_and_checks_cardinality() -> None:
    recorder = Recorder(["a"], [], ["a", "b"])
    q = docs(recorder).find(id=1)
    assert await q.one() == "a"
    assert recorder.last["limit"] == 2
    with raises_exactly(AuraNotFoundError, "No QbDoc matched the query") as missing:
        await q.one()
    assert missing.value.code == "not_found"
    with raises_exactly(AuraQueryError, "Expected exactly one QbDoc, found multiple"):
        await q.one()
    assert q.explain().get("limit") is None  # terminals do not change the builder


async def test_await_builder_is_one() -> None:
    recorder = Recorder(["a"], [])
    assert await docs(recorder).find(id=1) == "a"
    assert recorder.last["limit"] == 2
    with pytest.raises(AuraNotFoundError):
        await docs(recorder).find(id=404)


async def test_count_and_exists_send_filters_and_timeout_only() -> None:
    recorder = Recorder(3, 1, 0)
    q = (
        docs(recorder)
        .where(QbDoc.id > 1)
        .search_text("body", "x")
        .order_by(QbDoc.id)
        .limit(4)
        .select("body")
        .timeout(30)
    )
    assert await q.count() == 3
    filters = [(QbDoc.id > 1).to_ir()]
    assert recorder.last == {
        "operation": "count",
        "model": "QbDoc",
        "filters": filters,
        "timeout_ms": 30,
    }
    assert await q.exists() is True
    assert recorder.last == {
        "operation": "exists",
        "model": "QbDoc",
        "filters": filters,
        "timeout_ms": 30,
    }
    await docs(recorder).count()
    assert recorder.last == {"operation": "count", "model": "QbDoc", "filters": []}


async def test_stream_sends_cursor_ir() -> None:
    recorder = Recorder()
    q = docs(recorder).where(QbDoc.id > 1).timeout(5)
    rows = [row async for row in q.stream(batch_size=2)]
    assert rows == ["r1", "r2"]
    ir, model, batch_size = recorder.streams[0]
    assert ir == {**q.explain(), "cursor": {"batch_size": 2}}
    assert model is QbDoc and batch_size == 2
    assert recorder.streams[0][0]["timeout_ms"] == 5


def test_stream_batch_size_validated_synchronously() -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(AuraQueryError, match="batch_size"):
            docs().stream(batch_size=bad)


# -- search_pages (§15 check 34, §16 row 20) ----------------------------------------------------


def test_check_34_search_pages_requires_a_ranked_clause() -> None:
    message = "search_pages requires a ranked clause (search_text, search_vector, or search_hybrid)"
    with raises_exactly(AuraQueryError, message):
        docs().where(QbDoc.id > 1).search_pages(page_size=2)
    with pytest.raises(AuraQueryError, match="page_size"):
        docs().search_text("body", "x").search_pages(page_size=0)


async def test_search_pages_follow_the_cursor() -> None:
    recorder = Recorder((["a", "b"], "c1"), (["c", "d"], "c2"), (["e"], None))
    q = docs(recorder).search_text("body", "x")
    pages = [page async for page in q.search_pages(page_size=2)]
    assert [p.rows for p in pages] == [["a", "b"], ["c", "d"], ["e"]]
    assert [p.cursor for p in pages] == ["c1", "c2", None]
    assert [p.has_more for p in pages] == [True, True, False]
    sent = [ir for ir, _model in recorder.calls]
    assert [ir.get("cursor") for ir in sent] == [None, "c1", "c2"]
    assert all(ir["operation"] == "search_page" and ir["page_size"] == 2 for ir in sent)
    assert sent[0] == {**q.explain(), "operation": "search_page", "page_size": 2}


async def test_search_pages_honour_top_k() -> None:
    recorder = Recorder((["a", "b"], "c1"), (["c", "d"], "c2"), default=(["x"], "more"))
    q = docs(recorder).search_vector("embedding", [1, 0, 0], top_k=3)
    pages = [page async for page in q.search_pages(page_size=2)]
    assert [p.rows for p in pages] == [["a", "b"], ["c"]]
    assert pages[-1].cursor is None and not pages[-1].has_more
    assert [ir["page_size"] for ir, _ in recorder.calls] == [2, 1]


async def test_pages_and_aggregates_carry_the_timeout() -> None:
    """§16 row 13: the deadline travels with every terminal."""
    recorder = Recorder(([], None), {"metrics": []})
    q = docs(recorder).search_text("body", "x").aggregate_count().timeout(70)
    _ = [page async for page in q.search_pages(page_size=5)]
    await q.aggregate()
    assert [ir["timeout_ms"] for ir, _model in recorder.calls] == [70, 70]


async def test_search_pages_stop_on_an_empty_page() -> None:
    recorder = Recorder(([], "stuck"))
    pages = [p async for p in docs(recorder).search_text("body", "x").search_pages()]
    assert pages == [SearchResultPage([], None)]
    assert recorder.calls[0][0]["page_size"] == 50


def test_search_result_page_defaults() -> None:
    page = SearchResultPage()
    assert page.rows == [] and page.cursor is None and not page.has_more


# -- update / delete ----------------------------------------------------------------------------


async def test_update_builder() -> None:
    recorder = Recorder(2)
    base = UpdateBuilder(QbDoc, recorder)
    update = base.where(QbDoc.id > 1).set(title="T", meta={"a": 1}).set(score=2)
    assert base.node.to_ir()["set"] == {} and base.node.to_ir()["filters"] == []
    ir = update.node.to_ir()
    assert ir == {
        "operation": "update",
        "model": "QbDoc",
        "filters": [(QbDoc.id > 1).to_ir()],
        "set": {"TITLE": "T", "meta": {"a": 1}, "score": 2.0},
    }
    assert await update.execute() == 2
    assert recorder.calls == [(ir, QbDoc)]


def test_update_set_converts_values_to_storage_form() -> None:
    """§16 row 8: set() values go through the row conversion."""
    ir = UpdateBuilder(QbDoc, Recorder()).set(embedding=Vector([1, 2, 3]), cat=None).node.to_ir()
    assert ir["set"] == {"embedding": [1.0, 2.0, 3.0], "cat": None}
    author = QbAuthor(id=9, name="N")
    book_ir = UpdateBuilder(QbBook, Recorder()).set(author=author).node.to_ir()
    assert book_ir["set"] == {"author": 9}


def test_update_set_validation() -> None:
    """§16 row 10: unknown fields and ill-typed values are rejected at set()."""
    update = UpdateBuilder(QbDoc, Recorder())
    with pytest.raises(AuraQueryError, match="QbDoc has no field 'nope'"):
        update.set(nope=1)
    for bad in ({"title": 3}, {"score": "high"}, {"title": None}, {"embedding": [1, 2]}):
        with pytest.raises(AuraValidationError):
            update.set(**bad)
    with pytest.raises(AuraQueryError):
        UpdateBuilder(QbAuthor, Recorder()).set(books=[])
    with pytest.raises(AuraValidationError):
        UpdateBuilder(QbBook, Recorder()).set(author=QbDoc(id=1, title="x"))
    with pytest.raises(AuraQueryError):
        update.set()


def test_check_21_update_without_set_raises_synchronously() -> None:
    recorder = Recorder()
    with raises_exactly(AuraQueryError, "update requires at least one set() assignment"):
        UpdateBuilder(QbDoc, recorder).where(QbDoc.id == 1).execute()
    assert recorder.calls == []


async def test_delete_builder() -> None:
    recorder = Recorder(3, 1)
    base = DeleteBuilder(QbDoc, recorder)
    assert await base.execute() == 3
    assert recorder.last == {"operation": "delete", "model": "QbDoc", "filters": []}
    scoped = base.where(QbDoc.cat == "a")
    assert await scoped.execute() == 1
    assert recorder.last["filters"] == [(QbDoc.cat == "a").to_ir()]
    assert base.node.filters == ()
    with pytest.raises(AuraQueryError):
        base.where(QbDoc.id)


# -- traversal --------------------------------------------------------------------------------


async def test_traverse_builder() -> None:
    recorder = Recorder(["author-row"])
    base = TraverseBuilder(QbBook, recorder)
    walk = base.start(QbBook.id == 1).out("author").where(QbAuthor.name == "J").limit(3)
    ir = walk.explain()
    assert ir == {
        "operation": "traverse",
        "model": "QbBook",
        "start": [(QbBook.id == 1).to_ir()],
        "steps": ["author"],
        "max_depth": 5,
        "filters": [(QbAuthor.name == "J").to_ir()],
        "limit": 3,
    }
    assert base.explain()["steps"] == [] and base.target is QbBook
    assert walk.target is QbAuthor
    assert await walk.all() == ["author-row"]
    assert recorder.calls == [(ir, QbAuthor)]  # rows hydrate as the final target model
    back = walk.out(QbAuthor.books)
    assert back.explain()["steps"] == ["author", "books"] and back.target is QbBook


def test_traverse_validation() -> None:
    walk = TraverseBuilder(QbBook, Recorder())
    for bad in (0, -1, True):
        with pytest.raises(AuraQueryError, match="max_depth must be >= 1"):
            walk.max_depth(bad)
    with pytest.raises(AuraQueryError):
        walk.limit(-1)
    with pytest.raises(AuraQueryError, match="QbBook has no relationship 'nope'"):
        walk.out("nope")
    with pytest.raises(AuraQueryError, match="QbAuthor has no relationship 'author'"):
        walk.out("author").out("author")


async def test_traverse_exceeding_max_depth() -> None:
    recorder = Recorder([])
    walk = TraverseBuilder(QbBook, recorder).out("author").out("books").max_depth(1)
    with raises_exactly(AuraQueryError, "traversal exceeds max_depth"):
        walk.explain()
    with raises_exactly(AuraQueryError, "traversal exceeds max_depth"):
        walk.all()  # raised at the call, before any await
    assert recorder.calls == []
    assert await walk.max_depth(2).all() == []


# -- scores --------------------------------------------------------------------------------------


def test_search_scores() -> None:
    row = QbDoc(id=1, title="t")
    assert search_scores(row) == SearchScores(None, None, None, None)
    row.__dict__.update({"__score__": 0.5, "__vector_score__": 1.0, "__rank__": 2})
    scores = search_scores(row)
    assert scores == SearchScores(score=0.5, text_score=None, vector_score=1.0, rank=2)
    with pytest.raises(AttributeError):
        scores.score = 1.0
    assert search_scores(object()) == SearchScores()
