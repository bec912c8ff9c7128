"""Annotation → field type mapping (API.md §2.3) and the per-type converters.

``analyze`` turns one resolved annotation into a :class:`TypeSpec`. From a
spec, the model metaclass precomputes, once per class:

* ``make_check``: construction-time validation/coercion (§2.7, §16 row 10);
* ``fast_type``: the exact type accepted without calling the check at all;
* ``plan_load`` / ``plan_dump``: the storage↔Python converters handed to Rust
  (``None`` where Rust converts natively);
* ``py_load``: the complete read path used by pure-Python hydration.
"""

from __future__ import annotations

import base64
import binascii
import collections.abc as cabc
import datetime as dt
import enum
import json
import numbers
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, ForwardRef

from aura._convert import to_storage
from aura.errors import AuraSchemaError, AuraValidationError
from aura.vectors import Vector

Check = Callable[[Any], Any]
Load = Callable[[Any], Any]


class Unresolved(Exception):
    """An annotation names something not defined (yet): a forward reference."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(slots=True)
class TypeSpec:
    kind: str  # ModelPlan kind: int float str bool bytes datetime ... vector any link
    label: str  # schema "type" label
    python_type: Any  # the annotation with Optional stripped
    optional: bool = False
    container: str = "none"  # "none" | "list" | "dict"
    origin: type | None = None  # list/set/tuple/frozenset/dict for container kinds
    element: TypeSpec | None = None  # list element or dict value type
    vector_dim: int | None = None
    model: type | None = None  # relationship target
    relation: str | None = None  # "link" | "collection"
    cls: type | None = None  # enum class, or a plain class checked with isinstance


_SCALARS: dict[Any, tuple[str, str]] = {
    int: ("int", "int"),
    float: ("float", "float"),
    str: ("str", "str"),
    bool: ("bool", "bool"),
    bytes: ("bytes", "bytes"),
    dt.datetime: ("datetime", "datetime"),
    dt.date: ("date", "date"),
    dt.time: ("time", "time"),
    uuid.UUID: ("uuid", "UUID"),
    Decimal: ("decimal", "Decimal"),
}
_LIST_ORIGINS: dict[Any, type] = {
    list: list,
    set: set,
    frozenset: frozenset,
    tuple: tuple,
    cabc.Sequence: list,
    cabc.MutableSequence: list,
    cabc.Set: set,
    cabc.MutableSet: set,
}
_DICT_ORIGINS = (dict, cabc.Mapping, cabc.MutableMapping)
_NONE = type(None)


# --------------------------------------------------------------------------- analysis


def analyze(ann: Any, resolve: Callable[[str], Any], is_model: Callable[[Any], bool]) -> TypeSpec:
    """Map one annotation to a TypeSpec; raises ``Unresolved`` for forward references."""
    ann = _evaluate(ann, resolve)
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return analyze(typing.get_args(ann)[0], resolve, is_model)
    if isinstance(ann, typing.NewType):
        return analyze(ann.__supertype__, resolve, is_model)
    if origin is typing.Union or origin is types.UnionType:
        return _union(typing.get_args(ann), resolve, is_model)
    if origin in _LIST_ORIGINS:
        return _sequence(ann, _LIST_ORIGINS[origin], resolve, is_model)
    if origin in _DICT_ORIGINS:
        return _mapping(ann, resolve, is_model)
    if isinstance(ann, type):
        return _class(ann, is_model)
    return TypeSpec("any", "any", ann)  # Literal, TypeVar and other typing forms


def _evaluate(ann: Any, resolve: Callable[[str], Any]) -> Any:
    if isinstance(ann, str):
        return resolve(ann)
    if isinstance(ann, ForwardRef):
        return resolve(ann.__forward_arg__)
    return ann


def _union(args: tuple[Any, ...], resolve: Callable[[str], Any], is_model: Any) -> TypeSpec:
    members = [a for a in args if _evaluate(a, resolve) not in (None, _NONE)]
    if len(members) == 1:
        spec = analyze(members[0], resolve, is_model)
    else:
        specs = [analyze(a, resolve, is_model) for a in members]
        if any(s.relation for s in specs):
            raise AuraSchemaError("a union of a model with other types is not supported")
        spec = TypeSpec("any", "any", typing.Union[tuple(members)])  # noqa: UP007
    spec.optional = spec.optional or len(members) < len(args)
    return spec


def _sequence(ann: Any, origin: type, resolve: Any, is_model: Any) -> TypeSpec:
    args = typing.get_args(ann)
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        args = args[:1] if len(set(args)) == 1 else ()  # heterogeneous tuples are untyped
    element = analyze(args[0], resolve, is_model) if args else None
    if element is not None and element.relation == "link" and not element.optional:
        if origin is not list:
            raise AuraSchemaError("a to-many relationship must be annotated list[Model]")
        return TypeSpec(
            "collection",
            "collection",
            ann,
            container="list",
            origin=list,
            model=element.model,
            relation="collection",
        )
    _reject_nested_model(element)
    return TypeSpec("list", "list", ann, container="list", origin=origin, element=element)


def _mapping(ann: Any, resolve: Any, is_model: Any) -> TypeSpec:
    args = typing.get_args(ann)
    element = analyze(args[1], resolve, is_model) if len(args) == 2 else None
    _reject_nested_model(element)
    return TypeSpec("dict", "document", ann, container="dict", origin=dict, element=element)


def _reject_nested_model(element: TypeSpec | None) -> None:
    # There is no embedded-model document field: a model is a link or list[Model].
    if element is not None and element.relation is not None:
        raise AuraSchemaError("models can only be referenced as Model (link) or list[Model]")


def _class(ann: type, is_model: Callable[[Any], bool]) -> TypeSpec:
    scalar = _SCALARS.get(ann)
    if scalar is not None:
        return TypeSpec(scalar[0], scalar[1], ann)
    if issubclass(ann, enum.Enum):
        return TypeSpec("enum", ann.__name__, ann, cls=ann)
    if issubclass(ann, Vector):
        return TypeSpec("vector", "vector", ann, vector_dim=ann.dim)
    if is_model(ann):
        return TypeSpec("link", "link", ann, model=ann, relation="link")
    if ann in _LIST_ORIGINS:
        return TypeSpec("list", "list", ann, origin=_LIST_ORIGINS[ann])
    if ann in _DICT_ORIGINS:
        return TypeSpec("dict", "dict", ann, origin=dict)
    if ann is object or ann is Any:  # typing.Any is a class since Python 3.11
        return TypeSpec("any", "any", ann, optional=True)  # Any includes None
    return TypeSpec("any", ann.__name__, ann, cls=ann)


# --------------------------------------------------------------------------- construction


def type_error(model: str, field: str, label: str, value: Any) -> AuraValidationError:
    got = type(value).__name__
    return AuraValidationError(
        f"{model}.{field} expects {label}, got {got}",
        context={"model": model, "field": field, "expected": label, "actual": got},
    )


def make_check(spec: TypeSpec, model: str, field: str, nullable: bool) -> Check:
    """The construction-time check for one field: returns the (coerced) value or raises."""
    inner = _BUILDERS[spec.kind](spec, model, field)
    label = spec.label

    def check(value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise type_error(model, field, label, value)
        return inner(value)

    return check


class _Never:
    """A type no value has: forces the full check (typed containers, vectors)."""


def fast_type(spec: TypeSpec) -> type:
    """Values of exactly this type are accepted without calling the check."""
    if spec.kind in _FAST_KINDS:
        return _FAST_KINDS[spec.kind]
    if spec.kind == "enum" and spec.cls is not None:
        return spec.cls
    if spec.kind in ("list", "dict") and _element_check_free(spec.element):
        return spec.origin or _Never
    return _Never


_FAST_KINDS: dict[str, type] = {kind: cls for cls, (kind, _label) in _SCALARS.items()}


def _element_check_free(element: TypeSpec | None) -> bool:
    return element is None or (element.kind == "any" and element.cls is None)


def _scalar_builder(accept: Callable[[Any], Any], label: str) -> Callable[..., Check]:
    """A check from ``accept(value) -> coerced | _REJECT``."""

    def build(spec: TypeSpec, model: str, field: str) -> Check:
        def check(value: Any) -> Any:
            out = accept(value)
            if out is _REJECT:
                raise type_error(model, field, label, value)
            return out

        return check

    return build


_REJECT: Any = object()


def _accept_int(v: Any) -> Any:
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return int(v)
    return _REJECT


def _accept_float(v: Any) -> Any:
    return float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool) else _REJECT


def _accept_str(v: Any) -> Any:
    return v if isinstance(v, str) else _REJECT


def _accept_bool(v: Any) -> Any:
    return v if isinstance(v, bool) else _REJECT


def _accept_bytes(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, dict) and len(v) == 1 and isinstance(v.get("__bytes__"), str):
        try:  # the storage form, so Model(**row.to_dict()) round-trips
            return base64.b64decode(v["__bytes__"], validate=True)
        except binascii.Error:
            return _REJECT
    return _REJECT


def _parsing(cls: type, parse: Callable[[str], Any], exclude: type | None = None) -> Any:
    def accept(v: Any) -> Any:
        if isinstance(v, cls) and not (exclude is not None and isinstance(v, exclude)):
            return v
        if isinstance(v, str):
            try:
                return parse(v)
            except (ValueError, ArithmeticError):
                return _REJECT
        return _REJECT

    return accept


def _accept_decimal_number(parse_str: Any) -> Any:
    def accept(v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return Decimal(v)
        return parse_str(v)

    return accept


def _build_enum(spec: TypeSpec, model: str, field: str) -> Check:
    cls = spec.cls
    assert cls is not None and issubclass(cls, enum.Enum)
    by_value = _enum_loader(cls)  # a member value, or its storage form

    def check(value: Any) -> Any:
        if isinstance(value, cls):
            return value
        try:
            return by_value(value)
        except ValueError:
            raise type_error(model, field, spec.label, value) from None

    return check


def _build_vector(spec: TypeSpec, model: str, field: str) -> Check:
    dim = spec.vector_dim

    def check(value: Any) -> Any:
        if isinstance(value, Vector):
            if dim is not None and len(value._values) != dim:
                raise AuraValidationError(
                    f"Vector field '{field}' expects dimension {dim}, got {len(value._values)}",
                    context={"field": field, "expected": dim, "actual": len(value._values)},
                )
            return value if type(value) is Vector else Vector._from_trusted(value._values)
        if isinstance(value, (str, bytes, cabc.Mapping)):
            raise type_error(model, field, "vector", value)
        return Vector(value, dim=dim)

    return check


def _element(spec: TypeSpec, model: str, field: str) -> Check | None:
    element = spec.element
    if _element_check_free(element):
        return None
    assert element is not None
    return make_check(element, model, f"{field} item", element.optional)


def _build_list(spec: TypeSpec, model: str, field: str) -> Check:
    origin = spec.origin or list
    item = _element(spec, model, field)

    def check(value: Any) -> Any:
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise type_error(model, field, spec.label, value)
        if item is None:
            return value if type(value) is origin else origin(value)
        return origin([item(x) for x in value])

    return check


def _build_dict(spec: TypeSpec, model: str, field: str) -> Check:
    item = _element(spec, model, field)

    def check(value: Any) -> Any:
        if not isinstance(value, cabc.Mapping):
            raise type_error(model, field, spec.label, value)
        if item is None:
            return value if type(value) is dict else dict(value)
        return {k: item(x) for k, x in value.items()}

    return check


def _build_any(spec: TypeSpec, model: str, field: str) -> Check:
    cls = spec.cls
    if cls is None:
        return _identity

    def check(value: Any) -> Any:
        if isinstance(value, cls):
            return value
        raise type_error(model, field, spec.label, value)

    return check


def _identity(value: Any) -> Any:
    return value


_parse_decimal = _parsing(Decimal, Decimal)
_BUILDERS: dict[str, Callable[[TypeSpec, str, str], Check]] = {
    "int": _scalar_builder(_accept_int, "int"),
    "float": _scalar_builder(_accept_float, "float"),
    "str": _scalar_builder(_accept_str, "str"),
    "bool": _scalar_builder(_accept_bool, "bool"),
    "bytes": _scalar_builder(_accept_bytes, "bytes"),
    "datetime": _scalar_builder(_parsing(dt.datetime, dt.datetime.fromisoformat), "datetime"),
    "date": _scalar_builder(_parsing(dt.date, dt.date.fromisoformat, dt.datetime), "date"),
    "time": _scalar_builder(_parsing(dt.time, dt.time.fromisoformat), "time"),
    "uuid": _scalar_builder(_parsing(uuid.UUID, uuid.UUID), "UUID"),
    "decimal": _scalar_builder(_accept_decimal_number(_parse_decimal), "Decimal"),
    "enum": _build_enum,
    "vector": _build_vector,
    "list": _build_list,
    "dict": _build_dict,
    "any": _build_any,
}

# --------------------------------------------------------------------------- storage


def _load_error(label: str, value: Any) -> AuraValidationError:
    got = type(value).__name__
    return AuraValidationError(
        f"Cannot read a {label} from a stored {got}", context={"expected": label, "actual": got}
    )


def _guarded(label: str, convert: Load) -> Load:
    def load(value: Any) -> Any:
        try:
            return convert(value)
        except (ValueError, TypeError, ArithmeticError):
            raise _load_error(label, value) from None

    return load


def _load_datetime(v: Any) -> Any:
    return v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(v)


def _load_date(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    try:
        return dt.date.fromisoformat(v)
    except ValueError:  # a full timestamp stored for a date field
        return dt.datetime.fromisoformat(v).date()


def _load_uuid(v: Any) -> Any:
    return v if isinstance(v, uuid.UUID) else uuid.UUID(str(v))


def _load_decimal(v: Any) -> Any:
    if isinstance(v, Decimal):
        return v
    if isinstance(v, bool):
        raise TypeError("bool is not a decimal")
    try:
        return Decimal(str(v))
    except InvalidOperation:
        raise ValueError("invalid decimal") from None


def _enum_loader(cls: type[enum.Enum]) -> Load:
    # Members whose value is not JSON-native are stored converted (e.g. a Decimal
    # value as a string), so fall back to matching the storage form.
    stored = {}
    for member in cls:
        key = to_storage(member.value)
        if isinstance(key, (str, int, float, bool)):
            stored[key] = member

    def load(v: Any) -> Any:
        try:
            return cls(v)
        except (ValueError, TypeError):
            if isinstance(v, (str, int, float, bool)) and v in stored:
                return stored[v]
            raise ValueError("not a member") from None

    return load


def json_native(spec: TypeSpec | None) -> bool:
    """Values of this type are already their own storage form (and JSON)."""
    if spec is None:
        return False
    if spec.kind in ("int", "float", "str", "bool"):
        return True
    return (
        spec.kind in ("list", "dict") and spec.origin in (list, dict) and json_native(spec.element)
    )


_AS_IS_KINDS = frozenset({"int", "float", "str", "bool", "bytes", "vector", "link", "any", "time"})


def plan_load(spec: TypeSpec) -> Load | None:
    """Storage form → Python value for Rust to call; ``None`` when used as-is."""
    kind = spec.kind
    if kind in _AS_IS_KINDS:
        return None
    if kind in ("list", "dict"):
        if _element_check_free(spec.element) or json_native(spec.element):
            return None
        return _container_loader(spec)
    if kind == "enum" and spec.cls is not None:
        return _guarded(spec.label, _enum_loader(spec.cls))
    simple = {
        "datetime": _load_datetime,
        "date": _load_date,
        "uuid": _load_uuid,
        "decimal": _load_decimal,
    }
    return _guarded(spec.label, simple[kind])


def _container_loader(spec: TypeSpec) -> Load:
    assert spec.element is not None
    item = py_load(spec.element) or _identity
    if spec.kind == "dict":
        return lambda v: {k: None if x is None else item(x) for k, x in v.items()}
    return lambda v: [None if x is None else item(x) for x in v]


_NATIVE_DUMP_KINDS = frozenset({"int", "float", "str", "bool", "bytes", "vector", "link"})


def plan_dump(spec: TypeSpec) -> Load | None:
    """Python value → storage form for Rust to call; ``None`` when Rust converts natively."""
    if spec.kind in _NATIVE_DUMP_KINDS or json_native(spec):
        return None
    return to_storage


def py_load(spec: TypeSpec) -> Load | None:
    """The complete read path (pure-Python hydration): ``plan_load`` plus the
    coercions Rust performs natively (scalar constructors, bytes, vectors,
    JSON text for containers)."""
    kind = spec.kind
    native = _NATIVE_LOADS.get(kind)
    if native is not None:
        return _guarded(spec.label, native)
    if kind in ("list", "dict"):
        inner = plan_load(spec)
        return _guarded(spec.label, _json_text(inner))
    return plan_load(spec)


def _json_text(inner: Load | None) -> Load:
    # SQL backends store containers as JSON text (§16 row 31).
    def load(v: Any) -> Any:
        if isinstance(v, (str, bytes)):
            v = json.loads(v)
        return v if inner is None else inner(v)

    return load


def _load_bytes(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        v = json.loads(v)
    if isinstance(v, dict) and isinstance(v.get("__bytes__"), str):
        return base64.b64decode(v["__bytes__"], validate=True)
    raise TypeError("not a bytes storage form")


def _load_vector(v: Any) -> Any:
    if isinstance(v, Vector):
        return v if type(v) is Vector else Vector._from_trusted(v._values)
    if isinstance(v, (str, bytes)):
        v = json.loads(v)
    return Vector._from_trusted([float(x) for x in v])


_NATIVE_LOADS: dict[str, Load] = {
    "int": lambda v: v if type(v) is int else int(v),
    "float": lambda v: v if type(v) is float else float(v),
    "str": lambda v: v if type(v) is str else str(v),
    "bool": bool,  # truthiness (§2.3): SQL integers read back as bools
    "bytes": _load_bytes,
    "vector": _load_vector,
}
