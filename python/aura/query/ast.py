"""Frozen query nodes and their Query IR (API.md §10).

Every node is a frozen dataclass whose ``to_ir()`` emits the §10 dict with
keys in the documented order; optional keys are omitted when empty or unset,
except ``operation``, ``model`` and ``consistency``. ``to_ir()`` always builds
fresh lists and dicts, so callers may mutate the result freely.

Builders derive new nodes with :func:`evolve`, which copies the instance dict
instead of going through ``dataclasses.replace``, and the nodes built on every
query construct through :func:`_one_dict_init` (builders must stay cheap).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from operator import methodcaller
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from aura._convert import to_storage
from aura._fieldtypes import make_check
from aura.errors import AuraQueryError, AuraValidationError
from aura.query.expressions import (
    FieldReference,
    OrderTerm,
    Predicate,
    model_name,
    resolve_field,
)

if TYPE_CHECKING:
    from aura.fields import FieldInfo

__all__ = [
    "CountQuery",
    "DeleteQuery",
    "ExistsQuery",
    "Facet",
    "HybridSearch",
    "Include",
    "InsertQuery",
    "Metric",
    "QueryNode",
    "RawQuery",
    "SelectQuery",
    "TextRankedSearch",
    "TextSearch",
    "TraverseQuery",
    "UpdateQuery",
    "UpsertQuery",
    "VectorSearch",
    "assignments",
    "build_insert",
    "build_upsert",
    "check_on_conflict",
    "evolve",
    "field_value",
    "new_select",
]

_N = TypeVar("_N")


_new = object.__new__
_set = object.__setattr__


def evolve(node: _N, **changes: Any) -> _N:
    """A copy of the frozen dataclass ``node`` with ``changes`` applied.

    Internal and unchecked: ``changes`` must name existing fields.
    """
    new = _new(node.__class__)
    # A display, not .copy(): a copy keeps the shared-key ("split") layout
    # of instance dicts, on which CPython 3.11 cannot specialise attribute
    # reads, so every `node.field` would take the slow generic path.
    _set(new, "__dict__", {**node.__dict__, **changes})
    return new


def _one_dict_init(cls: type[_N]) -> type[_N]:
    """Give a frozen dataclass an ``__init__`` that stores its fields as one dict.

    The generated frozen ``__init__`` calls ``object.__setattr__`` once per
    field; building the instance dict in one display is several times
    faster, with the same signature. Only plain fields (no factory, no
    ``__post_init__``) are supported, checked when the class is defined.
    The generated code's own names are reserved dunders, as dataclasses
    does, so no field name can shadow them.
    """
    namespace: dict[str, Any] = {"__aura_set__": _set}
    params, items = ["__aura_self__"], []
    for f in fields(cls):  # type: ignore[arg-type]
        if not f.init or f.kw_only or f.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: only plain fields are supported")
        if f.default is MISSING:
            params.append(f.name)
        else:
            namespace[f"__aura_default_{f.name}__"] = f.default
            params.append(f"{f.name}=__aura_default_{f.name}__")
        items.append(f"{f.name!r}: {f.name}")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} defines __post_init__")
    source = f"def __init__({', '.join(params)}):\n"
    source += f"    __aura_set__(__aura_self__, '__dict__', {{{', '.join(items)}}})\n"
    exec(source, namespace)  # as dataclasses itself builds __init__
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


_to_ir = methodcaller("to_ir")


def _predicates_ir(predicates: tuple[Predicate, ...]) -> list[dict[str, Any]]:
    return list(map(_to_ir, predicates))


def _optional(ir: dict[str, Any], **values: Any) -> dict[str, Any]:
    """Add each value that is not ``None`` (keyword order is kept)."""
    for key, value in values.items():
        if value is not None:
            ir[key] = value
    return ir


@_one_dict_init
@dataclass(frozen=True)
class Include:
    """A relationship to load: IR ``{link, limit?, sort?}``."""

    link: str
    limit: int | None = None
    order_by: tuple[OrderTerm, ...] = ()

    def to_ir(self) -> dict[str, Any]:
        ir: dict[str, Any] = _optional({"link": self.link}, limit=self.limit)
        if self.order_by:
            ir["sort"] = [term.to_ir() for term in self.order_by]
        return ir


@_one_dict_init
@dataclass(frozen=True)
class VectorSearch:
    """The ``vector`` clause: IR ``{field, metric, query}``."""

    field: str
    query: tuple[float, ...]
    metric: str = "cosine"

    def to_ir(self) -> dict[str, Any]:
        return {"field": self.field, "metric": self.metric, "query": list(self.query)}


@_one_dict_init
@dataclass(frozen=True)
class TextSearch:
    """The legacy unranked ``text`` clause: IR ``{fields, query}``."""

    fields: tuple[str, ...]
    query: str

    def to_ir(self) -> dict[str, Any]:
        return {"fields": list(self.fields), "query": self.query}


@_one_dict_init
@dataclass(frozen=True)
class TextRankedSearch:
    """The ``text_search`` clause: IR ``{field, query, operator, rank, k1?, b?}``."""

    field: str
    query: str
    operator: str = "or"
    rank: str = "bm25"
    k1: float | None = None
    b: float | None = None

    def to_ir(self) -> dict[str, Any]:
        ir: dict[str, Any] = {
            "field": self.field,
            "query": self.query,
            "operator": self.operator,
            "rank": self.rank,
        }
        # Plain ifs rather than _optional(): this runs once per search.
        if self.k1 is not None:
            ir["k1"] = self.k1
        if self.b is not None:
            ir["b"] = self.b
        return ir


@_one_dict_init
@dataclass(frozen=True)
class HybridSearch:
    """The ``hybrid`` clause (§10 key order)."""

    text_field: str
    text_query: str
    vector_field: str
    vector: tuple[float, ...]
    top_k: int = 10
    metric: str = "cosine"
    weight_text: float = 0.5
    weight_vector: float = 0.5
    fusion: str = "weighted_sum"
    operator: str = "or"
    k1: float | None = None
    b: float | None = None

    def to_ir(self) -> dict[str, Any]:
        ir: dict[str, Any] = {
            "text_field": self.text_field,
            "text_query": self.text_query,
            "vector_field": self.vector_field,
            "vector": list(self.vector),
            "top_k": self.top_k,
            "metric": self.metric,
            "weights": {"text": self.weight_text, "vector": self.weight_vector},
            "fusion": self.fusion,
            "operator": self.operator,
        }
        return _optional(ir, k1=self.k1, b=self.b)


@_one_dict_init
@dataclass(frozen=True)
class Facet:
    """A terms facet of an aggregate request: IR ``{field, limit?}``."""

    field: str
    limit: int | None = None

    def to_ir(self) -> dict[str, Any]:
        return _optional({"field": self.field}, limit=self.limit)


@_one_dict_init
@dataclass(frozen=True)
class Metric:
    """An aggregate metric: IR ``{op: "count"}`` or ``{op: "min"|"max"|"sum"|"avg", field}``."""

    op: str
    field: str | None = None

    def to_ir(self) -> dict[str, Any]:
        return _optional({"op": self.op}, field=self.field)


class QueryNode:
    """Base of the top-level nodes; ``operation`` is the IR operation name."""

    __slots__ = ()
    operation: ClassVar[str] = ""

    def to_ir(self) -> dict[str, Any]:
        raise NotImplementedError


@_one_dict_init
@dataclass(frozen=True)
class SelectQuery(QueryNode):
    """A read: filters, projection, includes, sort, paging and search clauses.

    ``facets`` and ``metrics`` only feed :meth:`aggregate_ir`; ``to_ir`` omits them.
    """

    operation: ClassVar[str] = "select"
    model: str
    filters: tuple[Predicate, ...] = ()
    projection: tuple[str, ...] = ()
    includes: tuple[Include, ...] = ()
    order_by: tuple[OrderTerm, ...] = ()
    limit: int | None = None
    offset: int | None = None
    vector: VectorSearch | None = None
    vector_ann: tuple[tuple[str, int], ...] | None = None
    text: TextSearch | None = None
    text_search: TextRankedSearch | None = None
    hybrid: HybridSearch | None = None
    fusion_alpha: float | None = None
    consistency: str = "strong"
    timeout_ms: int | None = None
    facets: tuple[Facet, ...] = ()
    metrics: tuple[Metric, ...] = ()
    group_by: Facet | None = None  # addition beyond §10: metrics per term

    @property
    def is_ranked(self) -> bool:
        """Whether a ranked clause (vector, text_search or hybrid) is present."""
        return self.vector is not None or self.text_search is not None or self.hybrid is not None

    def to_ir(self) -> dict[str, Any]:
        return self._ir(self.limit)

    def capped_ir(self, cap: int) -> dict[str, Any]:
        """The select IR with ``limit`` lowered to at most ``cap`` (``first``/``one``)."""
        limit = self.limit
        return self._ir(cap if limit is None or limit > cap else limit)

    def _ir(self, limit: int | None) -> dict[str, Any]:
        # Plain ifs rather than _optional(): this runs once per query.
        ir: dict[str, Any] = {"operation": "select", "model": self.model}
        if self.filters:
            ir["filters"] = list(map(_to_ir, self.filters))
        if self.projection:
            ir["projection"] = list(self.projection)
        if self.includes:
            ir["include"] = [inc.to_ir() for inc in self.includes]
        if self.order_by:
            ir["sort"] = [term.to_ir() for term in self.order_by]
        if limit is not None:
            ir["limit"] = limit
        if self.offset is not None:
            ir["offset"] = self.offset
        self._search_ir(ir)
        ir["consistency"] = self.consistency
        if self.timeout_ms is not None:
            ir["timeout_ms"] = self.timeout_ms
        return ir

    def _search_ir(self, ir: dict[str, Any]) -> None:
        if self.vector is not None:
            ir["vector"] = self.vector.to_ir()
        if self.vector_ann is not None:
            ir["vector_ann"] = dict(self.vector_ann)
        if self.text is not None:
            ir["text"] = self.text.to_ir()
        if self.text_search is not None:
            ir["text_search"] = self.text_search.to_ir()
        if self.hybrid is not None:
            ir["hybrid"] = self.hybrid.to_ir()
        if self.fusion_alpha is not None:
            ir["fusion"] = {"alpha": self.fusion_alpha}

    def aggregate_ir(self) -> dict[str, Any]:
        """The derived ``aggregate`` request: select IR + ``facets`` + ``metrics``."""
        ir = self.to_ir()
        ir["operation"] = "aggregate"
        ir["facets"] = [facet.to_ir() for facet in self.facets]
        ir["metrics"] = [metric.to_ir() for metric in self.metrics]
        if self.group_by is not None:
            ir["group_by"] = self.group_by.to_ir()
        return ir

    def search_page_ir(self, page_size: int, cursor: str | None = None) -> dict[str, Any]:
        """The derived ``search_page`` request: select IR + ``page_size`` (+ ``cursor``)."""
        ir = self.to_ir()
        ir["operation"] = "search_page"
        ir["page_size"] = page_size
        return _optional(ir, cursor=cursor)

    def stream_ir(self, batch_size: int) -> dict[str, Any]:
        """The streaming request: select IR + ``cursor: {batch_size}``."""
        ir = self.to_ir()
        ir["cursor"] = {"batch_size": batch_size}
        return ir


_EMPTY_SELECTS: dict[str, SelectQuery] = {}


def new_select(model: str) -> SelectQuery:
    """The empty select of ``model`` (shared: nodes are immutable)."""
    node = _EMPTY_SELECTS.get(model)
    if node is None:
        # Through evolve(), so every select node has the same dict layout.
        node = _EMPTY_SELECTS[model] = evolve(SelectQuery(model))
    return node


@dataclass(frozen=True)
class _FilterOnlyQuery(QueryNode):
    model: str
    filters: tuple[Predicate, ...] = ()
    timeout_ms: int | None = None

    def to_ir(self) -> dict[str, Any]:
        ir: dict[str, Any] = {"operation": self.operation, "model": self.model}
        ir["filters"] = _predicates_ir(self.filters)
        return _optional(ir, timeout_ms=self.timeout_ms)


@_one_dict_init
@dataclass(frozen=True)
class CountQuery(_FilterOnlyQuery):
    """IR ``{operation: "count", model, filters, timeout_ms?}`` (filters always present)."""

    operation: ClassVar[str] = "count"


@_one_dict_init
@dataclass(frozen=True)
class ExistsQuery(_FilterOnlyQuery):
    """IR ``{operation: "exists", model, filters, timeout_ms?}`` (filters always present)."""

    operation: ClassVar[str] = "exists"


@dataclass(frozen=True)
class InsertQuery(QueryNode):
    """IR ``{operation: "insert", model, rows, on_conflict?}``; rows are storage dicts."""

    operation: ClassVar[str] = "insert"
    model: str
    rows: tuple[dict[str, Any], ...] = ()
    on_conflict: str | None = None

    def to_ir(self) -> dict[str, Any]:
        ir = {"operation": "insert", "model": self.model, "rows": [dict(r) for r in self.rows]}
        return _optional(ir, on_conflict=self.on_conflict)


@dataclass(frozen=True)
class UpdateQuery(QueryNode):
    """IR ``{operation: "update", model, filters, set}``; ``set`` keyed by storage name."""

    operation: ClassVar[str] = "update"
    model: str
    filters: tuple[Predicate, ...] = ()
    assignments: dict[str, Any] = field(default_factory=dict)

    def to_ir(self) -> dict[str, Any]:
        return {
            "operation": "update",
            "model": self.model,
            "filters": _predicates_ir(self.filters),
            "set": dict(self.assignments),
        }


@dataclass(frozen=True)
class DeleteQuery(QueryNode):
    """IR ``{operation: "delete", model, filters}``."""

    operation: ClassVar[str] = "delete"
    model: str
    filters: tuple[Predicate, ...] = ()

    def to_ir(self) -> dict[str, Any]:
        return {"operation": "delete", "model": self.model, "filters": _predicates_ir(self.filters)}


@dataclass(frozen=True)
class UpsertQuery(QueryNode):
    """IR ``{operation: "upsert", model, key, values}``; storage names and values."""

    operation: ClassVar[str] = "upsert"
    model: str
    key: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def to_ir(self) -> dict[str, Any]:
        return {
            "operation": "upsert",
            "model": self.model,
            "key": dict(self.key),
            "values": dict(self.values),
        }


@dataclass(frozen=True)
class RawQuery(QueryNode):
    """IR ``{operation: "raw", statement, params}``; params are always bound."""

    operation: ClassVar[str] = "raw"
    statement: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_ir(self) -> dict[str, Any]:
        return {"operation": "raw", "statement": self.statement, "params": dict(self.params)}


@dataclass(frozen=True)
class TraverseQuery(QueryNode):
    """IR ``{operation: "traverse", model, start, steps, max_depth, filters?, limit?}``."""

    operation: ClassVar[str] = "traverse"
    model: str
    start: tuple[Predicate, ...] = ()
    steps: tuple[str, ...] = ()
    max_depth: int = 5
    filters: tuple[Predicate, ...] = ()
    limit: int | None = None

    def to_ir(self) -> dict[str, Any]:
        ir: dict[str, Any] = {
            "operation": "traverse",
            "model": self.model,
            "start": _predicates_ir(self.start),
            "steps": list(self.steps),
            "max_depth": self.max_depth,
        }
        if self.filters:
            ir["filters"] = _predicates_ir(self.filters)
        return _optional(ir, limit=self.limit)


# -- schema-aware value checks (set(), upsert, insert) --------------------------

_ON_CONFLICT = (None, "ignore", "replace")
# Per model class, so checks go away with the class (test models, reloads).
_CHECKS: weakref.WeakKeyDictionary[type, dict[str, Callable[[Any], Any]]] = (
    weakref.WeakKeyDictionary()
)


def _field_check(model: Any, info: FieldInfo) -> Callable[[Any], Any] | None:
    """The model layer's construction-time check for ``info`` (built once per field)."""
    spec = getattr(info, "spec", None)
    if spec is None or not isinstance(model, type):
        return None
    checks = _CHECKS.setdefault(model, {})
    check = checks.get(info.name)
    if check is None:
        check = checks[info.name] = make_check(spec, model_name(model), info.name, info.nullable)
    return check


def _link(model: Any, info: FieldInfo, value: Any) -> Any:
    """A to-one link takes a target instance (sent as its pk) or a bare key."""
    target = info.model_type
    if isinstance(target, type) and isinstance(value, target):
        return to_storage(value)
    is_model = getattr(type(value), "__aura_fields__", None) is not None
    if is_model or isinstance(value, (Mapping, list, tuple, set, frozenset)):
        label = getattr(target, "__name__", "a model")
        actual = type(value).__name__
        raise AuraValidationError(
            f"{model_name(model)}.{info.name} expects {label} or its primary key, got {actual}",
            context={"model": model_name(model), "field": info.name, "actual": actual},
        )
    return to_storage(value)


def field_value(model: Any, info: FieldInfo, value: Any) -> Any:
    """Check ``value`` as construction would, then return its storage form.

    Used by ``set()`` and upserts (§16 rows 8 and 10): ill-typed values and
    ``None`` for a non-nullable field raise ``AuraValidationError``.
    """
    if info.is_relationship:
        if info.container == "list":
            raise AuraQueryError(
                f"{model_name(model)}.{info.name} is a to-many relationship and cannot be assigned"
            )
        if value is None and info.nullable:
            return None
        if value is None:
            raise AuraValidationError(f"{model_name(model)}.{info.name} is not nullable")
        return _link(model, info, value)
    check = _field_check(model, info)
    if check is not None:
        value = check(value)
    elif value is None and not info.nullable:
        raise AuraValidationError(f"{model_name(model)}.{info.name} is not nullable")
    return to_storage(value)


def assignments(model: Any, values: Mapping[Any, Any], what: str) -> dict[str, Any]:
    """``{storage_name: storage_value}`` from a mapping keyed by names or references."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        ref = resolve_field(model, key)
        if ref.path:
            raise AuraQueryError(f"{what} cannot target a document path ({ref.field_path})")
        info = ref.info
        out[ref.storage] = to_storage(value) if info is None else field_value(model, info, value)
    return out


def build_upsert(
    model: type, key: Mapping[Any, Any], values: Mapping[Any, Any] | None = None
) -> dict[str, Any]:
    """The upsert IR ``{operation, model, key, values}`` (storage names and values).

    The backend matches on every ``key`` field and updates with ``values``, else
    inserts ``key`` plus ``values``. Keys may be names, aliases or references.
    """
    if not isinstance(key, Mapping) or not key:
        raise AuraQueryError("upsert requires a non-empty key mapping")
    if values is not None and not isinstance(values, Mapping):
        raise AuraQueryError("upsert values must be a mapping")
    node = UpsertQuery(
        model_name(model),
        assignments(model, key, "upsert key"),
        assignments(model, values or {}, "upsert"),
    )
    return node.to_ir()


def check_on_conflict(on_conflict: Any) -> str | None:
    """``on_conflict`` must be ``None``, ``"ignore"`` or ``"replace"`` (§16 row 17)."""
    if on_conflict not in _ON_CONFLICT or not isinstance(on_conflict, (str, type(None))):
        raise AuraQueryError(
            f"Unsupported on_conflict {on_conflict!r} (expected None, 'ignore' or 'replace')"
        )
    return on_conflict


def _is_instance(value: Any) -> bool:
    return getattr(type(value), "__aura_fields__", None) is not None


def _insert_row(model: Any, row: Any) -> dict[str, Any]:
    if _is_instance(row):
        if not isinstance(row, model):
            raise AuraQueryError(
                f"Cannot insert a {type(row).__name__} row into {model_name(model)}"
            )
        return row.to_dict()
    if isinstance(row, Mapping):
        kwargs = {k.name if isinstance(k, FieldReference) else k: v for k, v in row.items()}
        return model(**kwargs).to_dict()
    raise AuraQueryError(
        f"Insert rows must be model instances or mappings, got {type(row).__name__}"
    )


def build_insert(
    instance_or_rows: Any, on_conflict: str | None = None, *, model: type | None = None
) -> dict[str, Any]:
    """The insert IR ``{operation, model, rows, on_conflict?}``.

    Takes one instance or an iterable of instances/mappings.

    Mappings are validated through the model constructor; every row is sent in
    its ``to_dict()`` storage form. ``model`` is needed only when no row is an
    instance.
    """
    check_on_conflict(on_conflict)
    if _is_instance(instance_or_rows) or isinstance(instance_or_rows, Mapping):
        items = [instance_or_rows]
    else:
        items = list(instance_or_rows)
    if model is None:
        model = next((type(item) for item in items if _is_instance(item)), None)
        if model is None:
            raise AuraQueryError("build_insert needs model= when no row is a model instance")
    rows = tuple(_insert_row(model, item) for item in items)
    return InsertQuery(model_name(model), rows, on_conflict).to_ir()
