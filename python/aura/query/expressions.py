"""The expression tree behind ``where()``, ``order_by()`` and the IR (API.md §4.1, §10).

Operators on a :class:`FieldReference` build immutable nodes; nothing here ever
turns a value into query text. Literal values pass through
:func:`aura._convert.to_storage` once, when the node is built, so filters carry
the same storage form as rows (§16 row 8).

``bool()`` of a predicate raises ``TypeError`` so ``where(a == 1 and b == 2)``
cannot silently drop a condition. The exception is ``==``/``!=`` between two
field references: those evaluate by field identity, which keeps references
usable as dict keys (``upsert(key={User.email: ...})``, §16 row 42).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn

from aura._convert import to_storage
from aura._native import finite_floats, validate_vector
from aura.errors import AuraQueryError, AuraValidationError

if TYPE_CHECKING:
    from aura.fields import FieldInfo

__all__ = [
    "BooleanOp",
    "Comparison",
    "DistanceExpr",
    "Expression",
    "FieldReference",
    "Literal",
    "Not",
    "OrderTerm",
    "Param",
    "Predicate",
    "and_",
    "not_",
    "or_",
]

VECTOR_METRICS = ("cosine", "euclidean", "dot")
_set = object.__setattr__
_new = object.__new__


class _Frozen:
    """Slots-based immutable base: attributes are written once in ``__init__``."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self


class Expression(_Frozen):
    """Base of every IR expression node."""

    __slots__ = ()

    def to_ir(self) -> dict[str, Any]:
        raise NotImplementedError


class Predicate(Expression):
    """A boolean-valued expression usable as a filter."""

    __slots__ = ()

    def __and__(self, other: Predicate) -> BooleanOp:
        return BooleanOp("and", (self, other))

    def __or__(self, other: Predicate) -> BooleanOp:
        return BooleanOp("or", (self, other))

    def __invert__(self) -> Not:
        return Not(self)

    def __bool__(self) -> bool:
        raise TypeError(
            "A query predicate has no truth value; combine predicates with "
            "&, |, ~ or and_()/or_()/not_() instead of and/or/not"
        )


class Literal(Expression):
    """A value fixed at build time, held in storage form."""

    __slots__ = ("value",)
    value: Any

    def __init__(self, value: Any) -> None:
        _set(self, "value", to_storage(value))

    def to_ir(self) -> dict[str, Any]:
        return {"kind": "literal", "value": self.value}

    def __reduce__(self) -> tuple[Any, ...]:
        return (Literal, (self.value,))

    def __repr__(self) -> str:
        return f"Literal({self.value!r})"


class Param(Expression):
    """A named parameter placeholder (no public binding API; backends reject it)."""

    __slots__ = ("name",)
    name: str

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise AuraQueryError("Param name must be a non-empty string")
        _set(self, "name", name)

    def to_ir(self) -> dict[str, Any]:
        return {"kind": "param", "name": self.name}

    def __reduce__(self) -> tuple[Any, ...]:
        return (Param, (self.name,))

    def __repr__(self) -> str:
        return f"Param({self.name!r})"


_PLAIN = frozenset({int, str, float, bool, type(None)})
# The slot's own setter: like object.__setattr__ (it bypasses _Frozen's
# __setattr__) without looking the attribute up on every write.
_set_literal_value = Literal.__dict__["value"].__set__


def _plain_literal(value: Any) -> Literal:
    """A Literal of a value already in storage form (no conversion)."""
    literal = _new(Literal)
    _set_literal_value(literal, value)
    return literal


def _operand(value: Any) -> Expression:
    """The right-hand side of a comparison: a field, param or literal."""
    if value.__class__ in _PLAIN:  # already in storage form
        return _plain_literal(value)
    if isinstance(value, (Literal, FieldReference, Param)):
        return value
    if isinstance(value, Expression):
        raise AuraQueryError(f"Cannot compare a field with a {type(value).__name__}")
    return Literal(value)


class FieldReference(Expression):
    """``Model.field`` at class level, optionally with a document path."""

    __slots__ = ("_hash", "info", "model", "model_name", "name", "path", "storage", "vector_dim")
    model: Any
    model_name: str
    name: str
    info: FieldInfo | None
    path: tuple[str, ...]
    storage: str
    vector_dim: int | None
    _hash: int

    def __init__(
        self,
        model: type,
        name: str,
        *,
        info: FieldInfo | None = None,
        path: tuple[str, ...] = (),
    ) -> None:
        if info is None:
            info = (getattr(model, "__aura_fields__", None) or {}).get(name)
        model_name = model if isinstance(model, str) else model.__name__
        _set(self, "model", model)
        _set(self, "model_name", model_name)
        _set(self, "name", name)
        _set(self, "info", info)
        _set(self, "path", tuple(path))
        _set(self, "storage", (info.storage_name if info is not None else None) or name)
        _set(self, "vector_dim", info.vector_dim if info is not None else None)
        _set(self, "_hash", hash((model_name, name, self.path)))

    @property
    def field_path(self) -> str:
        """The storage name plus document path, dotted (``meta.a.b``)."""
        return ".".join((self.storage, *self.path)) if self.path else self.storage

    def to_ir(self) -> dict[str, Any]:
        ir: dict[str, Any] = {"kind": "field", "model": self.model_name, "field": self.storage}
        if self.path:
            ir["path"] = list(self.path)
        return ir

    def __getitem__(self, key: str) -> FieldReference:
        if not isinstance(key, str):
            raise AuraQueryError(f"Document path keys must be strings, got {type(key).__name__}")
        return FieldReference(self.model, self.name, info=self.info, path=(*self.path, key))

    def __iter__(self) -> NoReturn:
        raise TypeError("FieldReference is not iterable")

    def _same_field(self, other: FieldReference) -> bool:
        return self.model == other.model and self.name == other.name and self.path == other.path

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> Comparison:  # type: ignore[override]
        return _compare("eq", self, other)

    def __ne__(self, other: object) -> Comparison:  # type: ignore[override]
        return _compare("ne", self, other)

    def __lt__(self, other: Any) -> Comparison:
        return _compare("lt", self, other)

    def __le__(self, other: Any) -> Comparison:
        return _compare("le", self, other)

    def __gt__(self, other: Any) -> Comparison:
        return _compare("gt", self, other)

    def __ge__(self, other: Any) -> Comparison:
        return _compare("ge", self, other)

    def in_(self, values: Iterable[Any]) -> Comparison:
        return Comparison("in", self, Literal(_value_list("in_", values)))

    def not_in(self, values: Iterable[Any]) -> Comparison:
        return Comparison("not_in", self, Literal(_value_list("not_in", values)))

    def contains(self, value: Any) -> Comparison:
        return _compare("contains", self, value)

    def startswith(self, prefix: str) -> Comparison:
        return Comparison("startswith", self, Literal(_text_arg("startswith", prefix)))

    def endswith(self, suffix: str) -> Comparison:
        return Comparison("endswith", self, Literal(_text_arg("endswith", suffix)))

    def like(self, pattern: str) -> Comparison:
        return Comparison("like", self, Literal(_text_arg("like", pattern)))

    def is_null(self) -> Comparison:
        return Comparison("is_null", self, Literal(None))

    def is_not_null(self) -> Comparison:
        return Comparison("is_not_null", self, Literal(None))

    def exists(self) -> Comparison:
        return Comparison("exists", self, Literal(None))

    def asc(self) -> OrderTerm:
        return OrderTerm(self, "asc")

    def desc(self) -> OrderTerm:
        return OrderTerm(self, "desc")

    def cosine_distance(self, query: Any) -> DistanceExpr:
        return DistanceExpr(self, "cosine", query)

    def l2_distance(self, query: Any) -> DistanceExpr:
        return DistanceExpr(self, "euclidean", query)

    def dot_product(self, query: Any) -> DistanceExpr:
        return DistanceExpr(self, "dot", query)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_field, (self.model, self.name, self.info, self.path))

    def __repr__(self) -> str:
        keys = "".join(f"[{key!r}]" for key in self.path)
        return f"FieldReference({self.model_name}.{self.name}{keys})"


def _rebuild_field(
    model: type, name: str, info: FieldInfo | None, path: tuple[str, ...]
) -> FieldReference:
    return FieldReference(model, name, info=info, path=path)


def _value_list(method: str, values: Iterable[Any]) -> list[Any]:
    if isinstance(values, (str, bytes, bytearray)) or not isinstance(values, Iterable):
        raise AuraQueryError(f"{method}() expects an iterable of values")
    return list(values)


def _text_arg(method: str, value: Any) -> str:
    if not isinstance(value, str):
        raise AuraQueryError(f"{method}() expects a string, got {type(value).__name__}")
    return value


class Comparison(Predicate):
    """``left <op> right``; IR ``{kind: "compare", op, left, right}``."""

    __slots__ = ("left", "op", "right")
    op: str
    left: Expression
    right: Expression

    def __init__(self, op: str, left: Expression, right: Expression) -> None:
        _set(self, "op", op)
        _set(self, "left", left)
        _set(self, "right", right)

    def to_ir(self) -> dict[str, Any]:
        return {
            "kind": "compare",
            "op": self.op,
            "left": self.left.to_ir(),
            "right": self.right.to_ir(),
        }

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.op, self.left, self.right))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.left!r} {self.op} {self.right!r})"


class _FieldComparison(Comparison):
    """``==``/``!=`` between two references: a predicate that also has a truth value.

    The truth value is field identity, so references work as dict keys (§16 row 42).
    """

    __slots__ = ()

    def __bool__(self) -> bool:
        left, right = self.left, self.right
        assert isinstance(left, FieldReference) and isinstance(right, FieldReference)
        return left._same_field(right) == (self.op == "eq")


_set_op = Comparison.__dict__["op"].__set__
_set_left = Comparison.__dict__["left"].__set__
_set_right = Comparison.__dict__["right"].__set__


def _compare(op: str, left: FieldReference, right: Any) -> Comparison:
    if right.__class__ in _PLAIN:  # the common case: _operand's fast path, inlined
        node = _new(Comparison)
        operand: Expression = _new(Literal)
        _set_literal_value(operand, right)
    else:
        node = _new(_FieldComparison if isinstance(right, FieldReference) else Comparison)
        operand = _operand(right)
    _set_op(node, op)
    _set_left(node, left)
    _set_right(node, operand)
    return node


def _check_predicates(where: str, predicates: Iterable[Any]) -> tuple[Predicate, ...]:
    out = tuple(predicates)
    for item in out:
        if not isinstance(item, Predicate):
            raise AuraQueryError(f"{where} expects predicates, got {type(item).__name__}")
    return out


class BooleanOp(Predicate):
    """``and``/``or`` over operands; IR ``{kind: "bool", op, operands}``."""

    __slots__ = ("op", "operands")
    op: str
    operands: tuple[Predicate, ...]

    def __init__(self, op: str, operands: Iterable[Predicate]) -> None:
        if op not in ("and", "or"):
            raise AuraQueryError(f"Unsupported boolean operator '{op}'")
        _set(self, "op", op)
        _set(self, "operands", _check_predicates(f"{op}_()", operands))

    def to_ir(self) -> dict[str, Any]:
        return {"kind": "bool", "op": self.op, "operands": [o.to_ir() for o in self.operands]}

    def __reduce__(self) -> tuple[Any, ...]:
        return (BooleanOp, (self.op, self.operands))

    def __repr__(self) -> str:
        return f"BooleanOp({self.op}, {list(self.operands)!r})"


class Not(Predicate):
    """Negation; IR ``{kind: "not", operand}``."""

    __slots__ = ("operand",)
    operand: Predicate

    def __init__(self, operand: Predicate) -> None:
        _set(self, "operand", _check_predicates("not_()", (operand,))[0])

    def to_ir(self) -> dict[str, Any]:
        return {"kind": "not", "operand": self.operand.to_ir()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (Not, (self.operand,))

    def __repr__(self) -> str:
        return f"Not({self.operand!r})"


class OrderTerm(_Frozen):
    """A sort term; IR ``{field, direction}`` with the dotted storage path."""

    __slots__ = ("direction", "field")
    field: FieldReference
    direction: str

    def __init__(self, field: FieldReference, direction: str = "asc") -> None:
        if not isinstance(field, FieldReference):
            raise AuraQueryError(f"OrderTerm expects a field reference, got {type(field).__name__}")
        if direction not in ("asc", "desc"):
            raise AuraQueryError(f"Sort direction must be 'asc' or 'desc', got {direction!r}")
        _set(self, "field", field)
        _set(self, "direction", direction)

    def to_ir(self) -> dict[str, Any]:
        return {"field": self.field.field_path, "direction": self.direction}

    def __reduce__(self) -> tuple[Any, ...]:
        return (OrderTerm, (self.field, self.direction))

    def __repr__(self) -> str:
        return f"OrderTerm({self.field!r}, {self.direction!r})"


class DistanceExpr(Expression):
    """A vector distance; IR ``{kind: "distance", field, metric, query}`` (not a filter)."""

    __slots__ = ("field", "metric", "query")
    field: FieldReference
    metric: str
    query: tuple[float, ...]

    def __init__(self, field: FieldReference, metric: str, query: Any) -> None:
        _set(self, "field", field)
        _set(self, "metric", check_metric(metric))
        _set(self, "query", query_vector(field, query))

    def to_ir(self) -> dict[str, Any]:
        return {
            "kind": "distance",
            "field": self.field.field_path,
            "metric": self.metric,
            "query": list(self.query),
        }

    def __reduce__(self) -> tuple[Any, ...]:
        return (DistanceExpr, (self.field, self.metric, self.query))

    def __repr__(self) -> str:
        return f"DistanceExpr({self.field!r}, {self.metric!r}, dim={len(self.query)})"


def check_metric(metric: Any) -> str:
    """Validate a vector metric name (§5.1, §16 row 15); never falls back to cosine."""
    if not isinstance(metric, str) or metric not in VECTOR_METRICS:
        raise AuraQueryError(f"Unsupported vector metric '{metric}'", context={"metric": metric})
    return metric


def _component(value: Any) -> float:
    if not isinstance(value, (numbers.Real, Decimal)):
        raise AuraValidationError(f"Vector components must be numeric, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise AuraValidationError("Vector components must be finite numbers")
    return number


def _plain_floats(values: Any) -> tuple[float, ...] | None:
    """``values`` as a tuple when it is a non-empty list or tuple of finite
    floats (the common query vector, checked natively), else ``None``."""
    if (type(values) is list or type(values) is tuple) and values:
        return finite_floats(values)
    return None


def float_vector(values: Any, label: str) -> tuple[float, ...]:
    """``values`` (a ``Vector`` or a sequence of numbers) as a tuple of finite floats."""
    floats = _plain_floats(values)
    return floats if floats is not None else _other_float_vector(values, label)


def _other_float_vector(values: Any, label: str) -> tuple[float, ...]:
    """``float_vector`` for what ``_plain_floats`` did not take."""
    to_list = getattr(values, "to_list", None)
    if callable(to_list):
        values = to_list()
        floats = _plain_floats(values)
        if floats is not None:
            return floats
    if isinstance(values, (str, bytes, bytearray, Mapping)) or not isinstance(values, Iterable):
        raise AuraValidationError(f"{label} must be a sequence of numbers")
    if isinstance(values, (list, tuple)) and values:
        # Ints, Decimals and the like, converted natively; any rejection is
        # re-checked below so the error stays the documented one.
        try:
            return tuple(validate_vector(values, len(values)))
        except AuraValidationError:
            pass
    return tuple(_component(v) for v in values)


def query_vector(field: FieldReference, values: Any) -> tuple[float, ...]:
    """Convert a query vector to floats and check it against ``Vector[N]`` (§16 row 16)."""
    vector = _plain_floats(values)  # labels are only formatted for errors
    if vector is None:
        label = f"Query vector for {field.model_name}.{field.name}"
        vector = _other_float_vector(values, label)
    dim = field.vector_dim
    if dim is not None and len(vector) != dim:
        raise AuraValidationError(
            f"Query vector for {field.model_name}.{field.name} expects dimension {dim}, "
            f"got {len(vector)}",
            context={
                "model": field.model_name,
                "field": field.name,
                "expected": dim,
                "actual": len(vector),
            },
        )
    return vector


def model_name(model: Any) -> str:
    """The IR name of a model class (its ``__name__``)."""
    return model if isinstance(model, str) else str(model.__name__)


def ensure_ready(model: Any) -> None:
    """Finish a model whose annotations were pending (forward references).

    ``_aura_plan()`` is the model layer's documented "compile once" entry point;
    it resolves pending annotations (raising ``AuraSchemaError`` if it cannot).
    """
    if getattr(model, "_aura_is_ready", True) is False:
        plan = getattr(model, "_aura_plan", None)
        if callable(plan):
            plan()


def lookup_field(model: Any, name: str) -> FieldInfo | None:
    """The ``FieldInfo`` of ``name`` (attribute name or alias) on ``model``.

    Returns ``None`` for classes without ``__aura_fields__`` (no schema to check);
    raises ``AuraQueryError`` "<Model> has no field '<name>'" otherwise.
    """
    fields = getattr(model, "__aura_fields__", None)
    if fields is None:
        return None
    info = fields.get(name)
    if info is not None and getattr(info, "spec", True) is None:
        ensure_ready(model)
    if info is None:
        for candidate in fields.values():
            if candidate.storage_name == name:
                return candidate
        raise AuraQueryError(
            f"{model_name(model)} has no field '{name}'",
            context={"model": model_name(model), "field": name},
        )
    return info


def _belongs(ref: FieldReference, model: Any) -> bool:
    owner = ref.model
    if owner is model or owner == model_name(model):
        return True
    return isinstance(owner, type) and isinstance(model, type) and issubclass(model, owner)


def _split_name(model: Any, spec: str) -> tuple[str, tuple[str, ...]]:
    if "." not in spec or spec in (getattr(model, "__aura_fields__", None) or {}):
        return spec, ()
    head, *rest = spec.split(".")
    return head, tuple(rest)


def _cached_reference(model: Any, name: str) -> FieldReference | None:
    """Fast path: the model's own cached ``Model.name`` reference for a plain field,
    kept by name in the class's ``_aura_field_refs`` once the class is ready."""
    refs = getattr(model, "_aura_field_refs", None)
    if refs is not None and (ref := refs.get(name)) is not None:
        return ref
    info = (getattr(model, "__aura_fields__", None) or {}).get(name)
    if info is None or info.is_relationship or getattr(info, "spec", None) is None:
        return None
    ref = getattr(model, name, None)
    if not isinstance(ref, FieldReference) or ref.info is not info or ref.path:
        return None
    if refs is not None and model._aura_is_ready:
        refs[name] = ref  # the class caches this very reference from now on
    return ref


def _reject_collection(model: Any, info: FieldInfo) -> None:
    if info.is_relationship and info.container == "list":
        raise AuraQueryError(
            f"{model_name(model)}.{info.name} is a to-many relationship, not a stored field",
            context={"model": model_name(model), "field": info.name},
        )


def resolve_field(model: Any, spec: Any) -> FieldReference:
    """A field argument (name, alias, dotted path or reference) as a checked reference.

    Unknown names raise ``AuraQueryError``; the result carries the storage name
    (§16 row 9). To-many relationships are not stored and are rejected.
    """
    if spec.__class__ is str:
        ref = _cached_reference(model, spec)
        if ref is not None:
            return ref
    if isinstance(spec, FieldReference):
        if not _belongs(spec, model):
            raise AuraQueryError(
                f"{spec.model_name}.{spec.name} is not a field of {model_name(model)}",
                context={"model": model_name(model), "field": spec.name},
            )
        if spec.model is model and spec.info is not None:
            _reject_collection(model, spec.info)
            return spec
        name, path = spec.name, spec.path
    elif isinstance(spec, str) and spec:
        name, path = _split_name(model, spec)
    else:
        raise AuraQueryError(f"Expected a field name or reference, got {spec!r}")
    info = lookup_field(model, name)
    if info is None:
        return FieldReference(model, name, path=path)
    _reject_collection(model, info)
    return FieldReference(model, info.name, info=info, path=path)


def and_(*predicates: Predicate) -> BooleanOp:
    """All of ``predicates``."""
    return BooleanOp("and", predicates)


def or_(*predicates: Predicate) -> BooleanOp:
    """Any of ``predicates``."""
    return BooleanOp("or", predicates)


def not_(predicate: Predicate) -> Not:
    """The negation of ``predicate``."""
    return Not(predicate)
