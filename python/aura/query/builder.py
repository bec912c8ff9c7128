"""Immutable query builders and their results (API.md §4.2-§4.5, §5.1).

A builder holds a model class, the executor it came from (a ``Client`` or a
``Transaction``) and a frozen AST node. Every method validates its arguments
synchronously and returns a new builder; terminals hand the §10 IR to the
executor (docs/ARCHITECTURE.md "Executor protocol") and never run anything
themselves.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from aura._native import builder_search_text, builder_step
from aura.errors import AuraNotFoundError, AuraQueryError
from aura.query.ast import (
    CountQuery,
    DeleteQuery,
    ExistsQuery,
    Facet,
    HybridSearch,
    Include,
    Metric,
    SelectQuery,
    TextRankedSearch,
    TextSearch,
    TraverseQuery,
    UpdateQuery,
    VectorSearch,
    assignments,
    evolve,
    new_select,
)
from aura.query.expressions import (
    FieldReference,
    OrderTerm,
    Predicate,
    check_metric,
    ensure_ready,
    model_name,
    resolve_field,
)
from aura.query.expressions import query_vector as _query_vector

__all__ = [
    "AggregateResult",
    "DeleteBuilder",
    "Executor",
    "FacetBucket",
    "FacetResult",
    "MetricResult",
    "QueryBuilder",
    "QueryResult",
    "SearchResultPage",
    "TraverseBuilder",
    "UpdateBuilder",
]

M = TypeVar("M")

_new = object.__new__
_set = object.__setattr__

_CONSISTENCY = ("strong", "eventual")
_RANKS = ("bm25", "term_frequency")
_OPERATORS = ("or", "and")
_FUSIONS = ("weighted_sum", "reciprocal_rank_fusion")
_ANN_KEYS = ("m", "ef_construction", "ef_search")
_RANKED_REQUIRED = (
    "search_pages requires a ranked clause (search_text, search_vector, or search_hybrid)"
)


# -- executor contract and results ----------------------------------------------


# What `Executor._select_now` returns when the read must be awaited.
LATER: Any = object()


class Executor(Protocol):
    """What builders call: a ``Client`` or a ``Transaction``."""

    async def _execute(self, ir: dict[str, Any], model: type[Any] | None) -> Any: ...

    def _select_now(self, query: SelectQuery, model: type[Any], cap: int | None) -> Any:
        """The rows of ``query`` (its limit lowered to ``cap`` when given)
        computed in the call when the backend answers in process and
        nothing must be awaited first, else ``LATER``. Reads call it before
        building their IR and awaiting ``_execute``: the in-process engine
        reads the node itself, and an await costs more than its answer. An
        executor without such a backend keeps this default."""
        return LATER

    def _stream(
        self, ir: dict[str, Any], model: type[Any], batch_size: int
    ) -> AsyncIterator[Any]: ...

    def _capabilities(self) -> Any: ...


@dataclass
class QueryResult:
    """A raw execution result (rows, count or affected rows, plus metadata)."""

    rows: list[Any] = dc_field(default_factory=list)
    count: int | None = None
    affected: int | None = None
    request_id: int | None = None
    metadata: dict[str, Any] = dc_field(default_factory=dict)


@dataclass
class SearchResultPage:
    """One page of :meth:`QueryBuilder.search_pages`; ``cursor`` is opaque."""

    rows: list[Any] = dc_field(default_factory=list)
    cursor: str | None = None

    @property
    def has_more(self) -> bool:
        return self.cursor is not None


class FacetBucket(NamedTuple):
    """One terms bucket; compares equal to ``(value, count)``."""

    value: Any
    count: int  # type: ignore[assignment]


@dataclass(frozen=True)
class FacetResult:
    field: str
    buckets: list[FacetBucket] = dc_field(default_factory=list)
    used_index: bool = False


@dataclass(frozen=True)
class MetricResult:
    op: str
    value: Any
    field: str | None = None


def _bucket(raw: Any) -> FacetBucket:
    if isinstance(raw, Mapping):
        return FacetBucket(raw.get("value"), int(raw.get("count", 0)))
    value, count = raw
    return FacetBucket(value, int(count))


@dataclass(frozen=True)
class GroupResult:
    """One term of ``group_by`` (an addition beyond §4.3) with its metrics."""

    value: Any
    count: int
    metrics: list[MetricResult] = dc_field(default_factory=list)


def _metrics(raw: Any) -> list[MetricResult]:
    return [MetricResult(m["op"], m.get("value"), m.get("field")) for m in raw or ()]


@dataclass
class AggregateResult:
    """The result of :meth:`QueryBuilder.aggregate` (§4.3)."""

    collection: str = ""
    matched: int = 0
    scanned: int = 0
    filter_present: bool = False
    search_scoped: bool = False
    metrics: list[MetricResult] = dc_field(default_factory=list)
    facets: list[FacetResult] = dc_field(default_factory=list)
    groups: list[GroupResult] = dc_field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AggregateResult:
        metrics = _metrics(data.get("metrics"))
        groups = [
            GroupResult(g.get("value"), int(g.get("count", 0)), _metrics(g.get("metrics")))
            for g in data.get("groups", ())
        ]
        facets = [
            FacetResult(
                f["field"],
                [_bucket(b) for b in f.get("buckets", ())],
                bool(f.get("used_index", False)),
            )
            for f in data.get("facets", ())
        ]
        return cls(
            collection=str(data.get("collection", "")),
            matched=int(data.get("matched", 0)),
            scanned=int(data.get("scanned", 0)),
            filter_present=bool(data.get("filter_present", False)),
            search_scoped=bool(data.get("search_scoped", False)),
            metrics=metrics,
            facets=facets,
            groups=groups,
        )

    def metric(self, op: str, field: str | FieldReference | None = None) -> Any:
        """The value of the ``op`` metric (over ``field``), or ``None``."""
        name = field.field_path if isinstance(field, FieldReference) else field
        for m in self.metrics:
            if m.op == op and (name is None or m.field == name):
                return m.value
        return None

    def facet(self, field: str | FieldReference) -> FacetResult | None:
        """The facet over ``field``, or ``None`` when it was not requested."""
        name = field.field_path if isinstance(field, FieldReference) else field
        return next((f for f in self.facets if f.field == name), None)


# -- argument checks --------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _non_negative(what: str, value: Any) -> int:
    if value.__class__ is int and value >= 0:  # the common case, checked first
        return value
    if not _is_int(value):
        raise AuraQueryError(f"{what} must be an int, got {type(value).__name__}")
    if value < 0:
        raise AuraQueryError(f"{what} must be non-negative")
    return int(value)


def _positive(value: Any, message: str) -> int:
    if type(value) is int and value > 0:  # the common case, checked first
        return value
    if not _is_int(value) or value <= 0:
        raise AuraQueryError(message)
    return int(value)


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` when it is not a real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _bm25_params(k1: Any, b: Any) -> tuple[float | None, float | None]:
    """Validate BM25 ``k1 >= 0`` and ``0 <= b <= 1``; zero is a real value (§16 row 14)."""
    if k1 is not None:
        number = _number(k1)
        if number is None or number < 0:
            raise AuraQueryError("k1 must be a non-negative number", context={"k1": k1})
    if b is not None:
        number = _number(b)
        if number is None or not 0.0 <= number <= 1.0:
            raise AuraQueryError("b must be a number between 0 and 1", context={"b": b})
    return k1, b


def _choice(what: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        expected = " or ".join(f"'{a}'" for a in allowed)
        raise AuraQueryError(f"Unsupported {what} '{value}' (expected {expected})")
    return value


def _query_text(method: str, query: Any) -> str:
    if not isinstance(query, str) or not query.strip():
        raise AuraQueryError(f"{method} query must be a non-blank string")
    return query


def _ann_options(approximate: Any) -> tuple[tuple[str, int], ...] | None:
    """``approximate`` as ``vector_ann`` pairs: ``True`` → ``{}``, ``None``/``False`` → exact."""
    if approximate is None or approximate is False:
        return None
    if approximate is True:
        return ()
    if type(approximate) is not dict and not isinstance(approximate, Mapping):
        raise AuraQueryError("approximate must be True, False, None or a dict of HNSW options")
    for key, value in approximate.items():
        if key not in _ANN_KEYS:
            raise AuraQueryError(
                f"Unknown approximate option {key!r} (allowed: m, ef_construction, ef_search)"
            )
        if type(value) is not int or value <= 0:
            _positive(value, f"approximate option '{key}' must be a positive int")
    return tuple((key, approximate[key]) for key in _ANN_KEYS if key in approximate)


def _weights(weights: Any) -> tuple[float, float]:
    try:
        text, vector = weights
    except (TypeError, ValueError):
        raise AuraQueryError("weights must be a (text, vector) pair of numbers") from None
    wt, wv = _number(text), _number(vector)
    if wt is None or wv is None:
        raise AuraQueryError("weights must be a (text, vector) pair of numbers")
    if wt < 0 or wv < 0 or (wt == 0 and wv == 0):
        raise AuraQueryError("hybrid weights must be non-negative and not both zero")
    return text, vector


def _predicates(method: str, predicates: tuple[Any, ...]) -> tuple[Predicate, ...]:
    if not predicates:
        raise AuraQueryError(f"{method}() requires a predicate")
    for predicate in predicates:
        if not isinstance(predicate, Predicate):
            raise AuraQueryError(f"{method}() expects a predicate, got {type(predicate).__name__}")
    return predicates


def _order_term(model: Any, term: Any) -> OrderTerm:
    if isinstance(term, OrderTerm):
        return OrderTerm(resolve_field(model, term.field), term.direction)
    return OrderTerm(resolve_field(model, term), "asc")


def _relationship(model: Any, spec: Any, suffix: str) -> tuple[str, Any]:
    """``(attr name, FieldInfo)`` of relationship ``spec`` on ``model``.

    The info is ``None`` for classes without a schema (nothing to check).
    """
    name = spec.name if isinstance(spec, FieldReference) else spec
    if not isinstance(name, str) or not name:
        raise AuraQueryError(f"Expected a relationship name or reference, got {spec!r}")
    fields = getattr(model, "__aura_fields__", None)
    if fields is None:
        return name, None
    info = fields.get(name)
    if info is not None and not info.is_relationship:
        ensure_ready(model)  # a forward-referenced relationship resolves here
    if info is None or not info.is_relationship:
        raise AuraQueryError(
            f"{model_name(model)} has no relationship '{name}'{suffix}",
            context={"model": model_name(model), "relationship": name},
        )
    return info.name, info


def _include_order(target: Any, order_by: Any) -> tuple[OrderTerm, ...]:
    if order_by is None:
        return ()
    if isinstance(order_by, (OrderTerm, FieldReference, str)):
        order_by = (order_by,)
    return tuple(_order_term(target, term) for term in order_by)


def _py_step(builder: Any, field: str, value: Any) -> Any:
    """``builder._with(field=value)``, cheaper: the per-query methods use it.

    Written out rather than through ``evolve`` and ``_with_query``
    (two calls fewer per builder step). Select nodes come from
    ``evolve`` or a one-dict ``__init__``, so their dict is combined
    (not split), and so is a copy of it. The native module's
    ``builder_step`` does the same in one call.
    """
    query = builder._query
    state = query.__dict__.copy()
    state[field] = value
    node = _new(query.__class__)
    _set(node, "__dict__", state)
    new = _new(builder.__class__)
    new._model = builder._model
    new._executor = builder._executor
    new._query = node
    return new


def _no_text_step(*_: Any) -> None:
    return None


_step: Callable[[Any, str, Any], Any] = builder_step or _py_step
# ``search_text`` on its common path, natively; ``None`` runs the method.
_search_text_step: Callable[..., Any] = builder_search_text or _no_text_step


# -- QueryBuilder ------------------------------------------------------------------


class QueryBuilder(Generic[M]):
    """Immutable read/search builder; each method returns a new builder."""

    __slots__ = ("_executor", "_model", "_query")
    _model: type[M]
    _executor: Executor
    _query: SelectQuery

    def __init__(
        self, model: type[M], executor: Executor, query: SelectQuery | None = None
    ) -> None:
        self._model = model
        self._executor = executor
        self._query = query if query is not None else new_select(model_name(model))

    def _with(self, **changes: Any) -> QueryBuilder[M]:
        return self._with_query(evolve(self._query, **changes))

    def _with_query(self, query: SelectQuery) -> QueryBuilder[M]:
        new = object.__new__(type(self))
        new._model = self._model
        new._executor = self._executor
        new._query = query
        return new

    @property
    def model(self) -> type[M]:
        return self._model

    @property
    def query(self) -> SelectQuery:
        """The frozen :class:`SelectQuery` behind this builder."""
        return self._query

    def explain(self) -> dict[str, Any]:
        """The client-side Query IR (§10)."""
        return self._query.to_ir()

    def __repr__(self) -> str:
        return f"QueryBuilder({model_name(self._model)}, {self._query.to_ir()!r})"

    # filters, projection, includes, order, paging ------------------------------

    def where(self, predicate: Predicate, *more: Predicate) -> QueryBuilder[M]:
        """Add filters; top-level filters are AND-ed."""
        query = self._query
        if more or not isinstance(predicate, Predicate):
            filters = query.filters + _predicates("where", (predicate, *more))
        else:  # the common single predicate, already checked
            filters = (*query.filters, predicate)
        return _step(self, "filters", filters)

    def filter(self, predicate: Predicate, *more: Predicate) -> QueryBuilder[M]:
        """Alias of :meth:`where`."""
        return self.where(predicate, *more)

    def find(self, **conditions: Any) -> QueryBuilder[M]:
        """One ``==`` filter per keyword (field name or alias)."""
        model = self._model
        added = [resolve_field(model, name) == value for name, value in conditions.items()]
        return self._with(filters=(*self._query.filters, *added))

    def select(self, *fields: str | FieldReference) -> QueryBuilder[M]:
        """Project onto ``fields`` (the primary key is always returned)."""
        projection = list(self._query.projection)
        for spec in fields:
            path = resolve_field(self._model, spec).field_path
            if path not in projection:
                projection.append(path)
        return self._with(projection=tuple(projection))

    def include(
        self,
        relationship: str | FieldReference,
        *,
        limit: int | None = None,
        order_by: Iterable[OrderTerm | FieldReference | str] | None = None,
    ) -> QueryBuilder[M]:
        """Load a relationship; ``limit``/``order_by`` apply to to-many includes."""
        name, info = _relationship(self._model, relationship, " to include")
        if limit is not None:
            _non_negative("include limit", limit)
        target = getattr(info, "model_type", None) or self._model
        include = Include(name, limit, _include_order(target, order_by))
        return self._with(includes=(*self._query.includes, include))

    def order_by(self, *terms: OrderTerm | FieldReference | str) -> QueryBuilder[M]:
        """Append sort terms; bare references and names sort ascending."""
        added = tuple(_order_term(self._model, term) for term in terms)
        return self._with(order_by=self._query.order_by + added)

    def limit(self, n: int) -> QueryBuilder[M]:
        if n.__class__ is not int or n < 0:  # the common case skips the call
            n = _non_negative("limit", n)
        return _step(self, "limit", n)

    def offset(self, n: int) -> QueryBuilder[M]:
        return _step(self, "offset", _non_negative("offset", n))

    def timeout(self, milliseconds: int) -> QueryBuilder[M]:
        """Per-query deadline, carried as ``timeout_ms`` by every terminal."""
        message = "timeout must be a positive int (milliseconds)"
        return _step(self, "timeout_ms", _positive(milliseconds, message))

    def consistency(self, level: str) -> QueryBuilder[M]:
        return _step(self, "consistency", _choice("consistency level", level, _CONSISTENCY))

    # vector and text search ------------------------------------------------------

    def nearest(
        self,
        field: str | FieldReference,
        query_vector: Any,
        *,
        metric: str = "cosine",
        limit: int | None = None,
    ) -> QueryBuilder[M]:
        """Set the ``vector`` clause (replacing any previous one)."""
        check_metric(metric)
        changes = self._vector_clause(field, query_vector, metric)
        if limit is not None:
            changes["limit"] = _non_negative("limit", limit)
        return self._with(**changes)

    def _vector_clause(self, field: Any, values: Any, metric: str) -> dict[str, Any]:
        ref = resolve_field(self._model, field)
        clause = VectorSearch(ref.field_path, _query_vector(ref, values), metric)
        return {"vector": clause, "vector_ann": None}

    def similar_to(
        self, field: str | FieldReference, query_vector: Any, *, metric: str = "cosine"
    ) -> QueryBuilder[M]:
        """Alias of :meth:`nearest`."""
        return self.nearest(field, query_vector, metric=metric)

    def metric(self, name: str) -> QueryBuilder[M]:
        """Change the metric of the existing vector clause."""
        vector = self._query.vector
        if vector is None:
            raise AuraQueryError("metric() requires a prior similar_to()/nearest() call")
        return self._with(vector=evolve(vector, metric=check_metric(name)))

    def text(self, *fields: str | FieldReference, query: str) -> QueryBuilder[M]:
        """Legacy unranked text clause over ``fields``."""
        if not fields:
            raise AuraQueryError("text() requires at least one field")
        names = tuple(resolve_field(self._model, f).field_path for f in fields)
        return self._with(text=TextSearch(names, _query_text("text()", query)))

    def fusion(self, *, alpha: float) -> QueryBuilder[M]:
        """Legacy vector/text blend weight, ``0 <= alpha <= 1``."""
        number = _number(alpha)
        if number is None or not 0.0 <= number <= 1.0:
            raise AuraQueryError("fusion alpha must be between 0 and 1", context={"alpha": alpha})
        return self._with(fusion_alpha=alpha)

    def search_text(
        self,
        field: str | FieldReference,
        query: str,
        *,
        rank: str = "bm25",
        operator: str = "or",
        k1: float | None = None,
        b: float | None = None,
        limit: int | None = None,
    ) -> QueryBuilder[M]:
        """Ranked full-text (BM25 or term-frequency) search on one field."""
        # The common, valid call natively; anything else (errors included)
        # runs the method below.
        new = _search_text_step(self, field, query, operator, rank, k1, b, limit)
        if new is not None:
            return new
        # The field first, then the checks (in the documented order), each
        # a call only off the common path (a plain str query, the default
        # options): this method runs once per search.
        path = resolve_field(self._model, field).field_path
        if query.__class__ is not str or not query.strip():
            query = _query_text("search_text", query)
        if operator.__class__ is not str or operator not in _OPERATORS:
            operator = _choice("operator", operator, _OPERATORS)
        if rank.__class__ is not str or rank not in _RANKS:
            rank = _choice("rank", rank, _RANKS)
        if k1 is not None or b is not None:
            k1, b = _bm25_params(k1, b)
        clause = TextRankedSearch(path, query, operator, rank, k1, b)
        if limit is None:
            return _step(self, "text_search", clause)
        return self._with(text_search=clause, limit=_non_negative("limit", limit))

    def search_vector(
        self,
        field: str | FieldReference,
        query_vector: Any,
        *,
        metric: str = "cosine",
        top_k: int = 10,
        approximate: bool | Mapping[str, int] | None = None,
    ) -> QueryBuilder[M]:
        """Exact (or opt-in approximate) top-k vector search; sets ``limit = top_k``."""
        top_k = _positive(top_k, "top_k must be a positive int")
        check_metric(metric)
        ann = _ann_options(approximate)
        changes = self._vector_clause(field, query_vector, metric)
        changes["vector_ann"] = ann
        return self._with(**changes, limit=top_k)

    def search_hybrid(
        self,
        text_field: str | FieldReference,
        query: str,
        vector_field: str | FieldReference,
        vector: Any,
        *,
        weights: tuple[float, float] = (0.5, 0.5),
        fusion: str = "weighted_sum",
        top_k: int = 10,
        metric: str = "cosine",
        operator: str = "or",
        k1: float | None = None,
        b: float | None = None,
    ) -> QueryBuilder[M]:
        """BM25 + vector search fused by weighted sum or RRF; sets ``limit = top_k``."""
        query = _query_text("search_hybrid", query)
        fusion = _choice("fusion", fusion, _FUSIONS)
        operator = _choice("operator", operator, _OPERATORS)
        weight_text, weight_vector = _weights(weights)
        top_k = _positive(top_k, "top_k must be a positive int")
        check_metric(metric)
        k1, b = _bm25_params(k1, b)
        vector_ref = resolve_field(self._model, vector_field)
        clause = HybridSearch(
            resolve_field(self._model, text_field).field_path,
            query,
            vector_ref.field_path,
            _query_vector(vector_ref, vector),
            top_k,
            metric,
            weight_text,
            weight_vector,
            fusion,
            operator,
            k1,
            b,
        )
        return self._with(hybrid=clause, limit=top_k)

    # aggregations -----------------------------------------------------------------

    def facet(self, field: str | FieldReference, *, limit: int | None = None) -> QueryBuilder[M]:
        """Terms facet over ``field`` (default 10 buckets)."""
        if field is None or (isinstance(field, str) and not field.strip()):
            raise AuraQueryError("facet() requires a field name")
        if limit is not None:
            _positive(limit, "facet limit must be a positive int")
        spec = Facet(resolve_field(self._model, field).field_path, limit)
        return self._with(facets=(*self._query.facets, spec))

    def aggregate_count(self) -> QueryBuilder[M]:
        """Metric ``{"op": "count"}``: the number of matched rows."""
        return self._with(metrics=(*self._query.metrics, Metric("count")))

    def min(self, field: str | FieldReference) -> QueryBuilder[M]:
        return self._metric("min", field)

    def max(self, field: str | FieldReference) -> QueryBuilder[M]:
        return self._metric("max", field)

    def group_by(self, field: str | FieldReference, *, limit: int | None = None) -> QueryBuilder[M]:
        """Addition beyond §4.3: the metrics per term of ``field`` (default 10
        groups, ordered like facet buckets); see ``AggregateResult.groups``."""
        if field is None or (isinstance(field, str) and not field.strip()):
            raise AuraQueryError("group_by() requires a field name")
        if limit is not None:
            _positive(limit, "group_by limit must be a positive int")
        return self._with(group_by=Facet(resolve_field(self._model, field).field_path, limit))

    # sum/avg are additions beyond API.md §4.3 (numbers only, like min/max).
    def sum(self, field: str | FieldReference) -> QueryBuilder[M]:
        return self._metric("sum", field)

    def avg(self, field: str | FieldReference) -> QueryBuilder[M]:
        return self._metric("avg", field)

    def _metric(self, op: str, field: Any) -> QueryBuilder[M]:
        if field is None or (isinstance(field, str) and not field.strip()):
            raise AuraQueryError(f"{op}() requires a field name")
        metric = Metric(op, resolve_field(self._model, field).field_path)
        return self._with(metrics=(*self._query.metrics, metric))

    # terminals --------------------------------------------------------------------

    async def all(self) -> list[M]:
        query = self._query
        rows: list[M] = self._executor._select_now(query, self._model, None)
        if rows is LATER:
            rows = await self._executor._execute(query.to_ir(), self._model)
        return rows

    async def first(self) -> M | None:
        query = self._query
        rows = self._executor._select_now(query, self._model, 1)
        if rows is LATER:
            rows = await self._executor._execute(query.capped_ir(1), self._model)
        return rows[0] if rows else None

    async def one(self) -> M:
        query = self._query
        rows = self._executor._select_now(query, self._model, 2)
        if rows is LATER:
            rows = await self._executor._execute(query.capped_ir(2), self._model)
        if len(rows) == 1:
            return rows[0]
        name = model_name(self._model)
        if not rows:
            raise AuraNotFoundError(f"No {name} matched the query", context={"model": name})
        raise AuraQueryError(
            f"Expected exactly one {name}, found multiple", context={"model": name}
        )

    def __await__(self) -> Any:
        return self.one().__await__()

    async def count(self) -> int:
        node = CountQuery(self._query.model, self._query.filters, self._query.timeout_ms)
        return int(await self._executor._execute(node.to_ir(), self._model))

    async def exists(self) -> bool:
        node = ExistsQuery(self._query.model, self._query.filters, self._query.timeout_ms)
        return bool(await self._executor._execute(node.to_ir(), self._model))

    def stream(self, *, batch_size: int = 1000) -> AsyncIterator[M]:
        """Rows in batches of ``batch_size``; the executor releases the cursor on exit."""
        batch_size = _positive(batch_size, "batch_size must be a positive int")
        ir = self._query.stream_ir(batch_size)
        return self._executor._stream(ir, self._model, batch_size)

    def search_pages(self, *, page_size: int = 50) -> AsyncIterator[SearchResultPage]:
        """Ranked results page by page, bounded by ``limit``/``top_k`` (§16 row 20)."""
        page_size = _positive(page_size, "page_size must be a positive int")
        if not self._query.is_ranked:
            raise AuraQueryError(_RANKED_REQUIRED)
        return self._pages(page_size)

    async def _pages(self, page_size: int) -> AsyncIterator[SearchResultPage]:
        remaining = self._query.limit
        cursor: str | None = None
        while True:
            size = page_size if remaining is None else min(page_size, remaining)
            if size == 0:
                yield SearchResultPage([], None)
                return
            ir = self._query.search_page_ir(size, cursor)
            rows, cursor = await self._executor._execute(ir, self._model)
            rows = list(rows)
            if remaining is not None:
                rows = rows[:remaining]
                remaining -= len(rows)
                cursor = cursor if remaining > 0 else None
            cursor = cursor if rows else None
            yield SearchResultPage(rows, cursor)
            if cursor is None:
                return

    def aggregate(self) -> Coroutine[Any, Any, AggregateResult]:
        """Facets and metrics over the matched set (raises at once when none are set)."""
        query = self._query
        if not query.facets and not query.metrics and query.group_by is None:
            raise AuraQueryError(
                "aggregate() requires at least one facet or metric "
                "(facet(), aggregate_count(), min(), max())"
            )
        return self._aggregate()

    async def _aggregate(self) -> AggregateResult:
        data = await self._executor._execute(self._query.aggregate_ir(), self._model)
        return AggregateResult.from_dict(data)


# -- mutation builders ---------------------------------------------------------------


class UpdateBuilder(Generic[M]):
    """``client.update(M).where(...).set(...).execute()`` → matched rows."""

    __slots__ = ("_assignments", "_executor", "_filters", "_model")
    _model: type[M]
    _executor: Executor
    _filters: tuple[Predicate, ...]
    _assignments: dict[str, Any]

    def __init__(self, model: type[M], executor: Executor) -> None:
        self._model = model
        self._executor = executor
        self._filters = ()
        self._assignments = {}

    def _clone(self, filters: tuple[Predicate, ...], values: dict[str, Any]) -> UpdateBuilder[M]:
        new = object.__new__(type(self))
        new._model, new._executor = self._model, self._executor
        new._filters, new._assignments = filters, values
        return new

    def where(self, predicate: Predicate, *more: Predicate) -> UpdateBuilder[M]:
        added = _predicates("where", (predicate, *more))
        return self._clone(self._filters + added, self._assignments)

    def set(self, **values: Any) -> UpdateBuilder[M]:
        """Assign fields (names or aliases); values are type-checked (§16 row 10)."""
        if not values:
            raise AuraQueryError("set() requires at least one assignment")
        checked = assignments(self._model, values, "set()")
        return self._clone(self._filters, {**self._assignments, **checked})

    @property
    def node(self) -> UpdateQuery:
        return UpdateQuery(model_name(self._model), self._filters, dict(self._assignments))

    def explain(self) -> dict[str, Any]:
        return self.node.to_ir()

    def execute(self) -> Coroutine[Any, Any, int]:
        if not self._assignments:
            raise AuraQueryError("update requires at least one set() assignment")
        return self._run()

    async def _run(self) -> int:
        return int(await self._executor._execute(self.node.to_ir(), self._model))


class DeleteBuilder(Generic[M]):
    """``client.delete(M).where(...).execute()``; no ``where`` deletes every row."""

    __slots__ = ("_executor", "_filters", "_model")
    _model: type[M]
    _executor: Executor
    _filters: tuple[Predicate, ...]

    def __init__(self, model: type[M], executor: Executor) -> None:
        self._model = model
        self._executor = executor
        self._filters = ()

    def where(self, predicate: Predicate, *more: Predicate) -> DeleteBuilder[M]:
        new = object.__new__(type(self))
        new._model, new._executor = self._model, self._executor
        new._filters = self._filters + _predicates("where", (predicate, *more))
        return new

    @property
    def node(self) -> DeleteQuery:
        return DeleteQuery(model_name(self._model), self._filters)

    def explain(self) -> dict[str, Any]:
        return self.node.to_ir()

    async def execute(self) -> int:
        return int(await self._executor._execute(self.node.to_ir(), self._model))


class TraverseBuilder(Generic[M]):
    """Graph traversal: ``start`` set, ``out`` steps, ``where`` on the final set.

    Rows are hydrated as the final step's target model, which is what
    ``all()`` passes to the executor as ``model``.
    """

    __slots__ = ("_executor", "_model", "_query", "_target")
    _model: type[M]
    _executor: Executor
    _query: TraverseQuery
    _target: type[Any]

    def __init__(self, model: type[M], executor: Executor) -> None:
        self._model = model
        self._executor = executor
        self._query = TraverseQuery(model_name(model))
        self._target = model

    def _with(self, target: type[Any] | None = None, **changes: Any) -> TraverseBuilder[M]:
        new = object.__new__(type(self))
        new._model, new._executor = self._model, self._executor
        new._query = evolve(self._query, **changes)
        new._target = self._target if target is None else target
        return new

    @property
    def node(self) -> TraverseQuery:
        return self._query

    @property
    def target(self) -> type[Any]:
        """The model reached after the last ``out`` step."""
        return self._target

    def start(self, predicate: Predicate, *more: Predicate) -> TraverseBuilder[M]:
        return self._with(start=self._query.start + _predicates("start", (predicate, *more)))

    def out(self, relationship: str | FieldReference) -> TraverseBuilder[M]:
        """Follow a to-one link or a to-many reverse link of the current model."""
        name, info = _relationship(self._target, relationship, "")
        target = getattr(info, "model_type", None) or self._target
        return self._with(target=target, steps=(*self._query.steps, name))

    def where(self, predicate: Predicate, *more: Predicate) -> TraverseBuilder[M]:
        return self._with(filters=self._query.filters + _predicates("where", (predicate, *more)))

    def max_depth(self, n: int) -> TraverseBuilder[M]:
        if not _is_int(n) or n < 1:
            raise AuraQueryError("max_depth must be >= 1", context={"max_depth": n})
        return self._with(max_depth=n)

    def limit(self, n: int) -> TraverseBuilder[M]:
        return self._with(limit=_non_negative("limit", n))

    def explain(self) -> dict[str, Any]:
        self._check_depth()
        return self._query.to_ir()

    def _check_depth(self) -> None:
        query = self._query
        if len(query.steps) > query.max_depth:
            raise AuraQueryError(
                "traversal exceeds max_depth",
                context={"steps": len(query.steps), "max_depth": query.max_depth},
            )

    def all(self) -> Coroutine[Any, Any, list[Any]]:
        self._check_depth()
        return self._run()

    async def _run(self) -> list[Any]:
        rows: list[Any] = await self._executor._execute(self._query.to_ir(), self._target)
        return rows
