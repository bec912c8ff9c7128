"""Expressions and the Query IR (API.md §4.1, §10; §15 checks 13, 14, 17; §16 rows 8, 9, 42)."""

import copy
import dataclasses
import datetime as dt
import enum
import json
import pickle
import uuid
from decimal import Decimal
from typing import Any

import pytest

from aura.errors import AuraQueryError, AuraValidationError
from aura.query import (
    BooleanOp,
    Comparison,
    CountQuery,
    DeleteQuery,
    DistanceExpr,
    ExistsQuery,
    FieldReference,
    Include,
    InsertQuery,
    Literal,
    Not,
    OrderTerm,
    Param,
    Predicate,
    QueryBuilder,
    RawQuery,
    SelectQuery,
    TextSearch,
    TraverseQuery,
    UpdateQuery,
    UpsertQuery,
    VectorSearch,
    and_,
    build_insert,
    build_upsert,
    not_,
    or_,
)
from aura.query.ast import HybridSearch, TextRankedSearch, _one_dict_init, evolve

models = pytest.importorskip("aura.models")
from aura.fields import Field  # noqa: E402
from aura.vectors import Vector  # noqa: E402


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class IrAuthor(models.AuraModel):
    id: int = Field(primary_key=True)
    name: str


class IrBook(models.AuraModel):
    id: int = Field(primary_key=True)
    title: str = Field(alias="TITLE")
    pages: int = 0
    meta: dict = Field(default_factory=dict)
    tags: list = Field(default_factory=list)
    color: Color | None = None
    embedding: Vector[3] | None = None
    author: IrAuthor | None = Field(default=None, link=True)


def named_like(name: str, model: type) -> type:
    """A plain class called ``name`` sharing ``model``'s fields, with references.

    Spec examples use the model names ``User`` and ``Doc``; real models with
    those names would collide with other test modules in the global registry.
    """
    cls = type(name, (), {"__aura_fields__": model.__aura_fields__})
    for attr, info in model.__aura_fields__.items():
        setattr(cls, attr, FieldReference(cls, attr, info=info))
    return cls


class DocFields(models.AuraModel):
    id: int = Field(primary_key=True)
    title: str
    body: str = ""
    meta: dict = Field(default_factory=dict)


User = named_like("User", DocFields)
Doc = named_like("Doc", DocFields)


def literal(value: Any) -> dict[str, Any]:
    return {"kind": "literal", "value": value}


def book(attr: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "field", "model": "IrBook", "field": attr, **extra}


# -- field references ---------------------------------------------------------------


def test_check_13_exact_compare_ir() -> None:
    assert (User.id == 1).to_ir() == {
        "kind": "compare",
        "op": "eq",
        "left": {"kind": "field", "model": "User", "field": "id"},
        "right": {"kind": "literal", "value": 1},
    }


def test_check_14_document_path() -> None:
    ir = (User.meta["a"]["b"] == 3).to_ir()
    assert ir["left"] == {"kind": "field", "model": "User", "field": "meta", "path": ["a", "b"]}
    assert list(ir["left"]) == ["kind", "model", "field", "path"]


def test_field_reference_attributes() -> None:
    ref = IrBook.title
    assert isinstance(ref, FieldReference)
    assert ref.model is IrBook and ref.model_name == "IrBook"
    assert ref.name == "title" and ref.storage == "TITLE"
    assert ref.path == () and ref.field_path == "TITLE"
    assert IrBook.embedding.vector_dim == 3 and ref.vector_dim is None
    nested = IrBook.meta["a"]["b"]
    assert nested.path == ("a", "b") and nested.field_path == "meta.a.b"


def test_constructor_signature_and_info_lookup() -> None:
    info = IrBook.__aura_fields__["title"]
    explicit = FieldReference(IrBook, "title", info=info, path=("x",))
    looked_up = FieldReference(IrBook, "title")
    assert explicit.storage == looked_up.storage == "TITLE"
    assert explicit.info is looked_up.info is info
    assert explicit.to_ir() == book("TITLE", path=["x"])


def test_ir_uses_storage_name_for_aliases() -> None:
    assert (IrBook.title == "x").to_ir()["left"] == book("TITLE")
    assert IrBook.title.desc().to_ir() == {"field": "TITLE", "direction": "desc"}


@pytest.mark.parametrize(
    ("build", "op", "right"),
    [
        (lambda: IrBook.pages != 1, "ne", 1),
        (lambda: IrBook.pages < 1, "lt", 1),
        (lambda: IrBook.pages <= 1, "le", 1),
        (lambda: IrBook.pages > 1, "gt", 1),
        (lambda: IrBook.pages >= 1, "ge", 1),
        (lambda: 1 < IrBook.pages, "gt", 1),
        (lambda: IrBook.pages.in_([1, 2]), "in", [1, 2]),
        (lambda: IrBook.pages.in_(x for x in (3,)), "in", [3]),
        (lambda: IrBook.pages.not_in((1, 2)), "not_in", [1, 2]),
        (lambda: IrBook.pages.in_([]), "in", []),
        (lambda: IrBook.title.contains("R"), "contains", "R"),
        (lambda: IrBook.tags.contains("x"), "contains", "x"),
        (lambda: IrBook.title.startswith("a"), "startswith", "a"),
        (lambda: IrBook.title.endswith("z"), "endswith", "z"),
        (lambda: IrBook.title.like("a%_"), "like", "a%_"),
        (lambda: IrBook.title.is_null(), "is_null", None),
        (lambda: IrBook.title.is_not_null(), "is_not_null", None),
        (lambda: IrBook.meta["k"].exists(), "exists", None),
        (lambda: IrBook.title == None, "eq", None),  # noqa: E711
    ],
)
def test_operators(build: Any, op: str, right: Any) -> None:
    predicate = build()
    assert isinstance(predicate, Comparison)
    ir = predicate.to_ir()
    assert list(ir) == ["kind", "op", "left", "right"]
    assert ir["op"] == op and ir["right"] == literal(right)


def test_operator_argument_checks() -> None:
    with pytest.raises(AuraQueryError):
        IrBook.pages.in_("abc")
    with pytest.raises(AuraQueryError):
        IrBook.pages.in_(5)
    for method in ("startswith", "endswith", "like"):
        with pytest.raises(AuraQueryError, match=f"{method}\\(\\) expects a string"):
            getattr(IrBook.title, method)(1)
    with pytest.raises(AuraQueryError, match="Document path keys must be strings"):
        IrBook.meta[0]
    with pytest.raises(TypeError):
        iter(IrBook.meta)


class _Now:
    pass


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (dt.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (dt.time(3, 4), "03:04:00"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (Decimal("1.50"), "1.50"),
        (Color.RED, "red"),
        (b"\x00\x01", {"__bytes__": "AAE="}),
        (Vector([1, 2]), [1.0, 2.0]),
        ((1, Color.BLUE), [1, "blue"]),
    ],
)
def test_literals_use_storage_form(value: Any, stored: Any) -> None:
    """§16 row 8: literals never reach the wire as raw Python objects."""
    assert (IrBook.meta == value).to_ir()["right"] == literal(stored)
    assert Literal(value).value == stored


def test_in_list_elements_are_converted() -> None:
    ir = IrBook.color.in_([Color.RED, Color.BLUE]).to_ir()
    assert ir["right"] == literal(["red", "blue"])


def test_model_instance_operand_becomes_primary_key() -> None:
    rowling = IrAuthor(id=7, name="J")
    assert (IrBook.author == rowling).to_ir() == (IrBook.author == 7).to_ir()
    assert IrBook.author.in_([rowling]).to_ir()["right"] == literal([7])


def test_unencodable_literal_raises_serialization_error() -> None:
    from aura.errors import AuraSerializationError

    with pytest.raises(AuraSerializationError):
        IrBook.meta == _Now()  # noqa: B015


def test_field_to_field_comparison_ir() -> None:
    ir = (IrBook.pages == IrBook.id).to_ir()
    assert ir["right"] == book("id")


# -- truthiness (§16 row 42) ----------------------------------------------------------


def test_bool_of_predicate_raises() -> None:
    predicates = [
        IrBook.pages == 1,
        IrBook.pages > 1,
        (IrBook.pages == 1) & (IrBook.id == 2),
        ~(IrBook.pages == 1),
        IrBook.title.contains("x"),
    ]
    for predicate in predicates:
        with pytest.raises(TypeError):
            bool(predicate)
    with pytest.raises(TypeError):
        _ = (IrBook.pages == 1) and (IrBook.id == 2)


def test_reference_equality_evaluates_by_identity() -> None:
    assert IrBook.title == IrBook.title
    assert not (IrBook.title == IrBook.pages)
    assert IrBook.title != IrBook.pages
    assert not (IrBook.title != IrBook.title)
    assert IrBook.meta["a"] == IrBook.meta["a"]
    assert not (IrBook.meta["a"] == IrBook.meta["b"])
    assert FieldReference(IrBook, "title") == IrBook.title


def test_references_work_as_dict_keys_and_in_sets() -> None:
    assert hash(FieldReference(IrBook, "title")) == hash(IrBook.title)
    keys = {IrBook.title: 1, IrBook.pages: 2, IrBook.meta["a"]: 3}
    assert keys[FieldReference(IrBook, "title")] == 1
    assert keys[IrBook.meta["a"]] == 3
    assert IrBook.meta["b"] not in keys
    assert len({IrBook.title, FieldReference(IrBook, "title"), IrBook.pages}) == 2
    assert IrBook.title in [IrBook.pages, IrBook.title]


def test_references_are_immutable_and_copy_safely() -> None:
    ref = IrBook.title
    with pytest.raises(AttributeError):
        ref.name = "x"
    predicate = ref == "a"
    with pytest.raises(AttributeError):
        predicate.op = "ne"
    assert copy.copy(ref) is ref and copy.deepcopy(predicate) is predicate
    clone = pickle.loads(pickle.dumps(IrBook.meta["a"] == Color.RED))
    assert clone.to_ir() == (IrBook.meta["a"] == "red").to_ir()


# -- boolean logic ---------------------------------------------------------------------


def test_boolean_combinators() -> None:
    a, b, c = IrBook.pages == 1, IrBook.id == 2, IrBook.title == "t"
    conj = a & b
    assert isinstance(conj, BooleanOp) and isinstance(conj, Predicate)
    assert conj.to_ir() == {"kind": "bool", "op": "and", "operands": [a.to_ir(), b.to_ir()]}
    assert (a | b).to_ir()["op"] == "or"
    assert (~a).to_ir() == {"kind": "not", "operand": a.to_ir()}
    assert isinstance(~a, Not)
    assert and_(a, b, c).to_ir()["operands"] == [a.to_ir(), b.to_ir(), c.to_ir()]
    assert or_(a, b).to_ir() == (a | b).to_ir()
    assert not_(a).to_ir() == (~a).to_ir()
    nested = ((a & b) | ~c).to_ir()
    assert nested["operands"][0]["kind"] == "bool" and nested["operands"][1]["kind"] == "not"


def test_combinators_reject_non_predicates() -> None:
    with pytest.raises(AuraQueryError):
        and_(IrBook.pages == 1, True)
    with pytest.raises(AuraQueryError):
        or_(IrBook.title)
    with pytest.raises(AuraQueryError):
        not_(IrBook.embedding.cosine_distance([1, 0, 0]))
    with pytest.raises(AuraQueryError):
        BooleanOp("xor", [IrBook.pages == 1])


# -- order terms, distances, params ------------------------------------------------------


def test_order_terms() -> None:
    term = IrBook.pages.asc()
    assert isinstance(term, OrderTerm)
    assert term.to_ir() == {"field": "pages", "direction": "asc"}
    assert IrBook.meta["a"].desc().to_ir() == {"field": "meta.a", "direction": "desc"}
    with pytest.raises(AuraQueryError):
        OrderTerm(IrBook.pages, "up")


@pytest.mark.parametrize(
    ("method", "metric"),
    [("cosine_distance", "cosine"), ("l2_distance", "euclidean"), ("dot_product", "dot")],
)
def test_distance_expressions(method: str, metric: str) -> None:
    expr = getattr(IrBook.embedding, method)(Vector([1, 0, 0]))
    assert isinstance(expr, DistanceExpr) and not isinstance(expr, Predicate)
    assert expr.to_ir() == {
        "kind": "distance",
        "field": "embedding",
        "metric": metric,
        "query": [1.0, 0.0, 0.0],
    }


def test_distance_checks_the_vector_dimension() -> None:
    with pytest.raises(AuraValidationError, match="expects dimension 3, got 2"):
        IrBook.embedding.cosine_distance([1, 0])
    with pytest.raises(AuraValidationError, match="must be numeric"):
        IrBook.embedding.dot_product(["a", 1, 2])
    with pytest.raises(AuraValidationError, match="finite"):
        IrBook.embedding.dot_product([float("nan"), 1, 2])


def test_param_ir() -> None:
    assert Param("p").to_ir() == {"kind": "param", "name": "p"}
    assert (IrBook.pages == Param("p")).to_ir()["right"] == {"kind": "param", "name": "p"}
    with pytest.raises(AuraQueryError):
        Param("")


# -- AST nodes -----------------------------------------------------------------------------


def test_check_17_explain_example_byte_for_byte() -> None:
    class Executor:
        async def _execute(self, ir: dict[str, Any], model: Any) -> Any:
            raise AssertionError("explain() must not execute")

    ir = (
        QueryBuilder(Doc, Executor())
        .where(Doc.title.contains("R"))
        .order_by(Doc.id.desc())
        .limit(2)
        .offset(1)
        .select(Doc.title)
        .timeout(50)
        .explain()
    )
    expected = (
        '{"operation":"select","model":"Doc","filters":[{"kind":"compare","op":"contains",'
        '"left":{"kind":"field","model":"Doc","field":"title"},"right":{"kind":"literal",'
        '"value":"R"}}],"projection":["title"],"sort":[{"field":"id","direction":"desc"}],'
        '"limit":2,"offset":1,"consistency":"strong","timeout_ms":50}'
    )
    assert json.dumps(ir, separators=(",", ":")) == expected


def test_minimal_select_ir() -> None:
    assert SelectQuery("IrBook").to_ir() == {
        "operation": "select",
        "model": "IrBook",
        "consistency": "strong",
    }


def test_full_select_key_order() -> None:
    node = SelectQuery(
        "IrBook",
        filters=(IrBook.pages > 1,),
        projection=("TITLE",),
        includes=(Include("author"),),
        order_by=(IrBook.id.asc(),),
        limit=5,
        offset=0,
        vector=VectorSearch("embedding", (1.0, 0.0, 0.0), "dot"),
        vector_ann=(("m", 8),),
        text=TextSearch(("TITLE",), "q"),
        text_search=TextRankedSearch("TITLE", "q"),
        hybrid=HybridSearch("TITLE", "q", "embedding", (1.0, 0.0, 0.0)),
        fusion_alpha=0.25,
        consistency="eventual",
        timeout_ms=9,
    )
    ir = node.to_ir()
    assert list(ir) == [
        "operation",
        "model",
        "filters",
        "projection",
        "include",
        "sort",
        "limit",
        "offset",
        "vector",
        "vector_ann",
        "text",
        "text_search",
        "hybrid",
        "fusion",
        "consistency",
        "timeout_ms",
    ]
    assert ir["offset"] == 0 and ir["vector_ann"] == {"m": 8} and ir["fusion"] == {"alpha": 0.25}
    assert ir["vector"] == {"field": "embedding", "metric": "dot", "query": [1.0, 0.0, 0.0]}
    assert ir["text"] == {"fields": ["TITLE"], "query": "q"}


def test_search_clause_irs() -> None:
    assert TextRankedSearch("body", "q").to_ir() == {
        "field": "body",
        "query": "q",
        "operator": "or",
        "rank": "bm25",
    }
    zeros = TextRankedSearch("body", "q", "and", "term_frequency", 0.0, 0.0).to_ir()
    assert zeros == {
        "field": "body",
        "query": "q",
        "operator": "and",
        "rank": "term_frequency",
        "k1": 0.0,
        "b": 0.0,
    }
    hybrid = HybridSearch("body", "q", "emb", (1.0,), k1=0, b=0).to_ir()
    assert list(hybrid) == [
        "text_field",
        "text_query",
        "vector_field",
        "vector",
        "top_k",
        "metric",
        "weights",
        "fusion",
        "operator",
        "k1",
        "b",
    ]
    assert hybrid["weights"] == {"text": 0.5, "vector": 0.5} and hybrid["k1"] == 0


def test_include_ir() -> None:
    assert Include("books").to_ir() == {"link": "books"}
    sorted_include = Include("books", 3, (IrBook.pages.desc(),))
    assert sorted_include.to_ir() == {
        "link": "books",
        "limit": 3,
        "sort": [{"field": "pages", "direction": "desc"}],
    }


def test_derived_requests() -> None:
    from aura.query.ast import Facet, Metric

    node = SelectQuery(
        "IrBook",
        filters=(IrBook.pages > 1,),
        limit=4,
        facets=(Facet("color"), Facet("pages", 3)),
        metrics=(Metric("count"), Metric("min", "pages")),
    )
    assert "facets" not in node.to_ir() and "metrics" not in node.to_ir()
    aggregate = node.aggregate_ir()
    assert aggregate["operation"] == "aggregate"
    assert aggregate["facets"] == [{"field": "color"}, {"field": "pages", "limit": 3}]
    assert aggregate["metrics"] == [{"op": "count"}, {"op": "min", "field": "pages"}]
    assert list(aggregate)[-2:] == ["facets", "metrics"]
    page = node.search_page_ir(2)
    assert page["operation"] == "search_page" and page["page_size"] == 2 and "cursor" not in page
    assert node.search_page_ir(2, "abc")["cursor"] == "abc"
    stream = node.stream_ir(10)
    assert stream["operation"] == "select" and stream["cursor"] == {"batch_size": 10}
    assert node.capped_ir(2)["limit"] == 2 and node.capped_ir(9)["limit"] == 4


def test_filter_only_nodes_always_have_filters() -> None:
    assert CountQuery("IrBook").to_ir() == {"operation": "count", "model": "IrBook", "filters": []}
    exists = ExistsQuery("IrBook", (IrBook.pages > 1,), timeout_ms=5).to_ir()
    assert list(exists) == ["operation", "model", "filters", "timeout_ms"]
    assert exists["operation"] == "exists"


def test_mutation_node_irs() -> None:
    predicate = IrBook.id == 1
    assert UpdateQuery("IrBook", (predicate,), {"pages": 3}).to_ir() == {
        "operation": "update",
        "model": "IrBook",
        "filters": [predicate.to_ir()],
        "set": {"pages": 3},
    }
    assert DeleteQuery("IrBook").to_ir() == {
        "operation": "delete",
        "model": "IrBook",
        "filters": [],
    }
    assert UpsertQuery("IrBook", {"id": 1}, {"pages": 2}).to_ir() == {
        "operation": "upsert",
        "model": "IrBook",
        "key": {"id": 1},
        "values": {"pages": 2},
    }
    assert RawQuery("SELECT 1", {"a": 1}).to_ir() == {
        "operation": "raw",
        "statement": "SELECT 1",
        "params": {"a": 1},
    }
    assert InsertQuery("IrBook", ({"id": 1},), "ignore").to_ir() == {
        "operation": "insert",
        "model": "IrBook",
        "rows": [{"id": 1}],
        "on_conflict": "ignore",
    }
    assert "on_conflict" not in InsertQuery("IrBook").to_ir()


def test_traverse_node_ir() -> None:
    start = IrBook.id == 1
    node = TraverseQuery("IrBook", (start,), ("author",))
    assert node.to_ir() == {
        "operation": "traverse",
        "model": "IrBook",
        "start": [start.to_ir()],
        "steps": ["author"],
        "max_depth": 5,
    }
    full = evolve(node, filters=(IrAuthor.name == "J",), limit=3).to_ir()
    assert list(full) == ["operation", "model", "start", "steps", "max_depth", "filters", "limit"]


def test_nodes_are_frozen_and_irs_are_fresh() -> None:
    node = SelectQuery("IrBook", projection=("TITLE",))
    with pytest.raises(AttributeError):
        node.limit = 3
    ir = node.to_ir()
    ir["projection"].append("x")
    assert node.to_ir()["projection"] == ["TITLE"]
    changed = evolve(node, limit=3)
    assert changed.limit == 3 and node.limit is None and changed.projection == ("TITLE",)


def test_one_dict_constructor_keeps_the_dataclass_contract() -> None:
    """Nodes built on every query store their fields as one dict; positions,
    keywords, defaults, equality, hashing, replace() and frozenness are the
    dataclass's own."""
    by_position = TextRankedSearch("body", "q", "and", "term_frequency", 0.0, None)
    by_keyword = TextRankedSearch(
        query="q", field="body", rank="term_frequency", operator="and", k1=0.0
    )
    assert by_position == by_keyword and hash(by_position) == hash(by_keyword)
    assert vars(TextRankedSearch("f", "q")) == {
        "field": "f",
        "query": "q",
        "operator": "or",
        "rank": "bm25",
        "k1": None,
        "b": None,
    }
    assert dataclasses.replace(by_position, b=0.5).b == 0.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        by_position.query = "other"  # type: ignore[misc]
    with pytest.raises(TypeError, match="query"):
        TextRankedSearch("body")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword"):
        TextRankedSearch("body", "q", colour="red")  # type: ignore[call-arg]
    assert SelectQuery("IrBook", limit=2) == evolve(SelectQuery("IrBook"), limit=2)


def test_one_dict_constructor_refuses_fields_it_cannot_build() -> None:
    @dataclasses.dataclass(frozen=True)
    class WithFactory:
        items: list[int] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="only plain fields"):
        _one_dict_init(WithFactory)

    @dataclasses.dataclass(frozen=True)
    class WithPostInit:
        value: int

        def __post_init__(self) -> None:
            pass

    with pytest.raises(TypeError, match="__post_init__"):
        _one_dict_init(WithPostInit)


def test_one_dict_constructor_takes_any_field_name() -> None:
    @_one_dict_init
    @dataclasses.dataclass(frozen=True)
    class Odd:
        self: int
        _set: int = 2

    assert vars(Odd(1)) == {"self": 1, "_set": 2}
    assert Odd(self=3, _set=4) == Odd(3, 4)


# -- insert / upsert helpers -------------------------------------------------------------


def test_build_upsert_uses_storage_names_and_values() -> None:
    ir = build_upsert(
        IrBook,
        key={IrBook.title: "T"},
        values={"pages": 3, "color": Color.BLUE, "author": IrAuthor(id=4, name="A")},
    )
    assert ir == {
        "operation": "upsert",
        "model": "IrBook",
        "key": {"TITLE": "T"},
        "values": {"pages": 3, "color": "blue", "author": 4},
    }
    assert list(ir) == ["operation", "model", "key", "values"]
    assert build_upsert(IrBook, {"TITLE": "T"}, {})["key"] == {"TITLE": "T"}


def test_build_upsert_rejects_unknown_fields_and_bad_values() -> None:
    with pytest.raises(AuraQueryError, match="IrBook has no field 'nope'"):
        build_upsert(IrBook, {"nope": 1}, {})
    with pytest.raises(AuraQueryError, match="IrBook has no field 'zz'"):
        build_upsert(IrBook, {"id": 1}, {"zz": 1})
    with pytest.raises(AuraQueryError):
        build_upsert(IrBook, {}, {"pages": 1})
    with pytest.raises(AuraValidationError):
        build_upsert(IrBook, {"id": 1}, {"pages": "many"})


def test_build_insert_rows_are_storage_dicts() -> None:
    author = IrAuthor(id=4, name="A")
    one = build_insert(IrBook(id=1, title="t", author=author, color=Color.RED))
    assert one["operation"] == "insert" and one["model"] == "IrBook"
    assert one["rows"][0]["TITLE"] == "t"
    assert one["rows"][0]["author"] == 4 and one["rows"][0]["color"] == "red"
    assert "on_conflict" not in one
    many = build_insert([{"id": 2, "title": "u"}], "replace", model=IrBook)
    assert many["rows"][0]["TITLE"] == "u" and many["on_conflict"] == "replace"
    with pytest.raises(AuraQueryError, match="on_conflict"):
        build_insert(IrBook(id=1, title="t"), "merge")
    with pytest.raises(AuraQueryError):
        build_insert([{"id": 2, "title": "u"}])  # no model to build the row with
    with pytest.raises(AuraQueryError):
        build_insert([author], model=IrBook)
