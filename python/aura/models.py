"""Model classes, the global model registry and the Python half of hydration.

Layout contract with Rust (docs/ARCHITECTURE.md, "Model layout seen by
Rust"): instance state lives in ``instance.__dict__`` keyed by attribute
name; fields are non-data descriptors, so reads of present values never run
Python code, and a missing entry falls through to the descriptor, which
explains why it is missing. Link foreign keys live in
``__dict__["__aura_links__"]``.

Everything per-field (checks, defaults, converters) is precomputed once per
class by the metaclass, when every annotation has been resolved; forward
references to models defined later stay pending until then (§16 row 32).
"""

from __future__ import annotations

import copy
import gc
import importlib
import re
import reprlib
import sys
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar, dataclass_transform, get_origin

from aura._convert import to_storage
from aura._fieldtypes import (
    Unresolved,
    analyze,
    fast_type,
    make_check,
    plan_dump,
    plan_load,
    py_load,
    type_error,
)
from aura.errors import AuraSchemaError, AuraValidationError, RelationshipNotLoadedError
from aura.fields import MISSING, Field, FieldInfo, copy_default

__all__ = ["AuraModel", "AuraModelMeta", "Model", "get_model", "registered_models"]

M = TypeVar("M", bound="AuraModel")

LINKS_KEY = "__aura_links__"
SCORE_KEYS = ("__score__", "__text_score__", "__vector_score__", "__rank__")
_SCALAR_KINDS = frozenset({"int", "float", "str", "bool"})
_CLASSVAR = re.compile(r"^\s*(typing\.|t\.)?ClassVar\b")

# Weak values: a model class nobody references any more (e.g. one defined in a
# finished test) no longer blocks its name (§16 row 33).
_REGISTRY: weakref.WeakValueDictionary[str, AuraModelMeta] = weakref.WeakValueDictionary()
_PENDING: weakref.WeakSet[AuraModelMeta] = weakref.WeakSet()
_LOCK = threading.RLock()

# Default modes of the construction plan.
_REQUIRED, _STATIC, _COPY, _FACTORY = 0, 1, 2, 3

Source = tuple[Any, type, "dict[str, Any] | None"]  # annotation, declaring class, frame locals


# --------------------------------------------------------------------------- descriptors


class _FieldDescriptor:
    """Class access → FieldReference; instance access only runs when the value is absent."""

    __slots__ = ("_ref", "info", "name", "owner")

    def __init__(self, owner: type, info: FieldInfo) -> None:
        self.owner = owner
        self.name = info.name
        self.info = info
        self._ref: Any = None

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            if self._ref is not None:
                return self._ref
            ref = _field_reference(self.owner, self.name, self.info)
            if self.owner._aura_is_ready:  # type: ignore[attr-defined]
                self._ref = ref  # cached: User.email is User.email (usable as a dict key)
            return ref
        model = type(instance).__name__
        if self.info.is_relationship:
            raise RelationshipNotLoadedError(
                f"{model}.{self.name} was not loaded; use .include('{self.name}')",
                context={"relationship": self.name},
            )
        raise AttributeError(
            f"{model}.{self.name} is not available; it was not selected in this query's projection"
        )


def _field_reference(model: type, name: str, info: FieldInfo) -> Any:
    # Imported lazily: the query package imports this module.
    from aura.query.expressions import FieldReference

    return FieldReference(model, name, info=info)


# --------------------------------------------------------------------------- annotations


class _Names(Mapping[str, Any]):
    """Name lookup for string annotations: the class itself, the defining
    function's locals, the module, then registered models (forward references)."""

    def __init__(self, owner: type, localns: dict[str, Any] | None, globalns: dict[str, Any]):
        self._owner = owner
        self._localns = localns or {}
        self._globalns = globalns

    def __getitem__(self, key: str) -> Any:
        if key == self._owner.__name__:
            return self._owner
        for namespace in (self._localns, self._globalns):
            if key in namespace:
                return namespace[key]
        model = _REGISTRY.get(key)
        if model is None:
            raise KeyError(key)
        return model

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _resolver(source: Source) -> Callable[[str], Any]:
    _annotation, declaring, localns = source
    module = sys.modules.get(declaring.__module__)
    globalns = module.__dict__ if module is not None else {"__builtins__": __builtins__}
    names = _Names(declaring, localns, globalns)

    def resolve(expr: str) -> Any:
        try:
            return eval(expr, globalns, names)
        except NameError as exc:
            raise Unresolved(exc.name or expr) from None

    return resolve


def _is_model(value: Any) -> bool:
    return isinstance(value, AuraModelMeta) and value is not AuraModel


def _is_classvar(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return _CLASSVAR.match(annotation) is not None
    return annotation is ClassVar or get_origin(annotation) is ClassVar


def _own_annotations(cls: type, namespace: Mapping[str, Any]) -> dict[str, Any]:
    annotations = namespace.get("__annotations__")
    if annotations is not None:
        return dict(annotations)
    if sys.version_info >= (3, 14):  # PEP 649: annotations are evaluated lazily
        annotationlib = importlib.import_module("annotationlib")
        forward = annotationlib.Format.FORWARDREF
        return dict(annotationlib.get_annotations(cls, format=forward))
    return {}


def _caller_locals(depth: int) -> dict[str, Any] | None:
    """Locals of the function defining the class, for its string annotations."""
    try:
        frame = sys._getframe(depth)
    except ValueError:
        return None
    if frame.f_locals is frame.f_globals:
        return None  # module level: resolved through the module itself
    return dict(frame.f_locals)


def _resolve_field(cls: type, info: FieldInfo, source: Source, strict: bool) -> bool:
    """Fill ``info`` from its annotation; False while a forward reference is undefined."""
    where = f"{cls.__name__}.{info.name}"
    try:
        spec = analyze(source[0], _resolver(source), _is_model)
    except Unresolved as exc:
        if strict:
            raise AuraSchemaError(
                f"Cannot resolve annotation {_show(source[0])} of {where}: "
                f"name '{exc.name}' is not defined",
                context={"model": cls.__name__, "field": info.name},
            ) from None
        return False
    except AuraSchemaError as exc:
        raise AuraSchemaError(f"{where}: {exc.message}", context=exc.context) from None
    except (AuraValidationError, SyntaxError, TypeError, AttributeError) as exc:
        raise AuraSchemaError(
            f"Cannot evaluate annotation {_show(source[0])} of {where}: {exc}",
            context={"model": cls.__name__, "field": info.name},
        ) from None
    info._apply(spec)
    info._validate(cls.__name__)
    return True


def _show(annotation: Any) -> str:
    return repr(annotation) if isinstance(annotation, str) else str(annotation)


# --------------------------------------------------------------------------- class creation


def _collect_fields(
    cls: type, bases: tuple[type, ...], namespace: Mapping[str, Any], localns: Any
) -> tuple[dict[str, FieldInfo], dict[str, Source]]:
    fields: dict[str, FieldInfo] = {}
    sources: dict[str, Source] = {}
    for base in bases:  # parents first, in declaration order
        if isinstance(base, AuraModelMeta):
            for name, info in base.__aura_fields__.items():
                if name not in fields:
                    fields[name] = _inherit(cls, info)
                    sources[name] = base._aura_sources[name]
    for name, annotation in _own_annotations(cls, namespace).items():
        if name.startswith("__") or _is_classvar(annotation):
            continue
        _check_name(cls, name)
        fields[name] = _declare(cls, name, namespace.get(name, MISSING), annotation)
        sources[name] = (annotation, cls, localns)
    for name, value in namespace.items():
        if isinstance(value, FieldInfo) and name not in fields:
            raise AuraSchemaError(
                f"{cls.__name__}.{name}: Field() needs a type annotation",
                context={"model": cls.__name__, "field": name},
            )
    return fields, sources


def _inherit(cls: type, parent: FieldInfo) -> FieldInfo:
    info = copy.copy(parent)
    info.owner = cls
    return info


def _declare(cls: type, name: str, value: Any, annotation: Any) -> FieldInfo:
    info = copy.copy(value) if isinstance(value, FieldInfo) else FieldInfo(default=value)
    info._unresolved(name, cls, annotation)
    return info


def _check_name(cls: type, name: str) -> None:
    if name in _reserved_names():
        raise AuraSchemaError(
            f"{cls.__name__}.{name}: the field name shadows AuraModel.{name}",
            context={"model": cls.__name__, "field": name},
        )


_RESERVED: frozenset[str] = frozenset()


def _reserved_names() -> frozenset[str]:
    global _RESERVED
    if not _RESERVED:
        _RESERVED = frozenset(dir(AuraModel))
    return _RESERVED


def _declared_primary_key(cls: type, fields: dict[str, FieldInfo]) -> str | None:
    declared = [name for name, info in fields.items() if info.primary_key]
    if len(declared) > 1:
        raise AuraSchemaError(
            f"{cls.__name__} declares multiple primary keys ({', '.join(declared)})",
            context={"model": cls.__name__, "fields": declared},
        )
    if declared:
        return declared[0]
    return "id" if "id" in fields else None


def _register(cls: AuraModelMeta) -> None:
    name = cls.__name__
    with _LOCK:
        old = _REGISTRY.get(name)
        if old is not None and old.__module__ != cls.__module__:
            del old
            gc.collect()  # the earlier class may only be kept alive by reference cycles
            old = _REGISTRY.get(name)
        if old is not None and old.__module__ != cls.__module__:
            raise AuraSchemaError(
                f"Model name '{name}' is already registered by module '{old.__module__}'; "
                "model names must be unique across modules",
                context={"model": name, "module": old.__module__},
            )
        _REGISTRY[name] = cls


def _retry_pending() -> None:
    """A new model may complete the forward references of earlier ones."""
    progress = True
    while progress:
        progress = False
        for cls in list(_PENDING):
            try:
                progress |= _try_finalize(cls, strict=False)
            except AuraSchemaError:
                _PENDING.discard(cls)  # reported again at its first use (strict)


# --------------------------------------------------------------------------- finalization


def _try_finalize(cls: AuraModelMeta, strict: bool) -> bool:
    """Resolve pending annotations and build the per-class plans; idempotent."""
    with _LOCK:
        if cls._aura_is_ready:
            return False
        if not (_resolve_pending(cls, strict) and _link_collections(cls, strict)):
            _PENDING.add(cls)
            return False
        _finalize_primary_key(cls)
        _build_plans(cls)
        cls._aura_is_ready = True
        cls._aura_sources = {k: (a, d, None) for k, (a, d, _l) in cls._aura_sources.items()}
        _PENDING.discard(cls)
        return True


def _ready(cls: type[M]) -> type[M]:
    if not cls._aura_is_ready:
        _try_finalize(cls, strict=True)
    return cls


def _resolve_pending(cls: AuraModelMeta, strict: bool) -> bool:
    done = True
    for name, info in cls.__aura_fields__.items():
        if not info.resolved:
            done &= _resolve_field(cls, info, cls._aura_sources[name], strict)
    return done


def _link_collections(cls: AuraModelMeta, strict: bool) -> bool:
    """Each to-many relationship goes through the first link on its target pointing back."""
    for info in cls.__aura_fields__.values():
        if info.relation != "collection" or info.via is not None:
            continue
        target = info.model_type
        assert isinstance(target, AuraModelMeta)
        if target is not cls and not _resolve_pending(target, strict):
            return False
        info.via = _back_link(cls, info, target)
    return True


def _back_link(cls: type, info: FieldInfo, target: AuraModelMeta) -> str:
    for candidate in target.__aura_fields__.values():
        link_target = candidate.model_type
        if candidate.relation == "link" and link_target is not None:
            if issubclass(cls, link_target):
                return candidate.name
    raise AuraSchemaError(
        f"{cls.__name__}.{info.name}: {target.__name__} has no link pointing back to "
        f"{cls.__name__}",
        context={"model": cls.__name__, "field": info.name, "target": target.__name__},
    )


def _finalize_primary_key(cls: AuraModelMeta) -> None:
    pk = cls._aura_pk
    if pk is not None and cls.__aura_fields__[pk].is_relationship:
        cls._aura_pk = None  # a relationship named "id" is not an implicit key


def _build_plans(cls: AuraModelMeta) -> None:
    name = cls.__name__
    init: list[tuple[Any, ...]] = []
    rels: list[tuple[Any, ...]] = []
    stored: list[tuple[Any, ...]] = []
    hydrate: list[tuple[Any, ...]] = []
    for info in cls.__aura_fields__.values():
        if info.relation is not None:
            rels.append((info.name, info.alias, info.relation, info))
            if info.relation == "link":
                stored.append((info.name, info.storage_name, True, None))
            continue
        check = make_check(_spec(info), name, info.name, info.nullable)
        mode, default = _default_plan(cls, info, check)
        init.append((info.name, info.alias, fast_type(_spec(info)), check, mode, default))
        conv = None if info.kind in _SCALAR_KINDS else to_storage
        stored.append((info.name, info.storage_name, False, conv))
        hydrate.append((info.name, info.storage_name, py_load(_spec(info)), check, mode, default))
    cls._aura_init = tuple(init)
    cls._aura_rels = tuple(rels)
    cls._aura_stored = tuple(stored)
    cls._aura_hydrate = tuple(hydrate)
    cls._aura_link_attrs = frozenset(r[0] for r in rels if r[2] == "link")


def _spec(info: FieldInfo) -> Any:
    assert info.spec is not None
    return info.spec


def _default_plan(cls: type, info: FieldInfo, check: Callable[[Any], Any]) -> tuple[int, Any]:
    if info.default_factory is not None:
        return _FACTORY, info.default_factory
    if info.default is MISSING:
        return _REQUIRED, None
    try:  # defaults are checked once, here, instead of on every construction
        default = check(info.default)
    except AuraValidationError as exc:
        raise AuraSchemaError(
            f"Default for {cls.__name__}.{info.name} is invalid: {exc.message}",
            context={"model": cls.__name__, "field": info.name},
        ) from None
    if copy_default(default) is default:
        return _STATIC, default
    if type(default) in (list, dict, set) and not default:
        return _COPY, type(default)
    return _COPY, lambda: copy.deepcopy(default)


def _fill(cls: type, attr: str, check: Callable[[Any], Any], mode: int, default: Any) -> Any:
    """The value of an omitted field."""
    if mode == _STATIC:
        return default
    if mode == _COPY:
        return default()
    if mode == _FACTORY:
        return check(default())
    raise AuraValidationError(
        f"Missing required field {cls.__name__}.{attr}",
        context={"model": cls.__name__, "field": attr},
    )


# --------------------------------------------------------------------------- the metaclass


@dataclass_transform(kw_only_default=True, field_specifiers=(Field, FieldInfo))
class AuraModelMeta(type):
    """Collects fields, installs descriptors, registers the class by name."""

    __aura_fields__: dict[str, FieldInfo]
    _aura_sources: dict[str, Source]
    _aura_pk: str | None
    _aura_is_ready: bool
    _aura_init: tuple[Any, ...] | None
    _aura_rels: tuple[Any, ...]
    _aura_stored: tuple[Any, ...] | None
    _aura_hydrate: tuple[Any, ...] | None
    _aura_link_attrs: frozenset[str]
    _aura_schema_cache: Any
    _aura_plan_cache: Any
    _aura_field_refs: dict[str, Any]

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> AuraModelMeta:
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        if not any(isinstance(base, AuraModelMeta) for base in bases):
            _init_state(cls, {}, {}, None)  # AuraModel itself: no fields, not registered
            _build_plans(cls)
            cls._aura_is_ready = True
            return cls
        fields, sources = _collect_fields(cls, bases, namespace, _caller_locals(2))
        _init_state(cls, fields, sources, _declared_primary_key(cls, fields))
        for info in fields.values():
            setattr(cls, info.name, _FieldDescriptor(cls, info))
        _share_instance_keys(cls)
        _try_finalize(cls, strict=False)
        _register(cls)
        _retry_pending()
        return cls

    @property
    def __aura_schema__(cls) -> Any:
        """The compiled ``ModelSchema`` (built on first access, then cached)."""
        schema = cls.__dict__.get("_aura_schema_cache")
        if schema is None:
            from aura.schema import ModelSchema

            schema = ModelSchema._compile(_ready(cls))  # type: ignore[arg-type]
            cls._aura_schema_cache = schema
        return schema


# What an instance may hold besides its fields: link keys and a ranked row's scores.
_ROW_ATTRS = (LINKS_KEY, *SCORE_KEYS)


def _share_instance_keys(cls: AuraModelMeta) -> None:
    """Seed the class's shared attribute keys with every attribute an instance holds.

    CPython's instances of one class share a key table (PEP 412) that their
    first attribute stores fill and that freezes as instances are made; a
    key missing from it gives each instance a private, resized dict. One
    throwaway instance stores every name once in its ``__dict__`` (as
    hydration does, past any descriptor) before any real instance exists,
    so hydrated and constructed instances keep their values in the shared
    layout. The cost: every instance reserves a slot per seeded name, 40
    bytes for the link and score names on a row that holds neither; a
    ranked row's dict is less than half the size it had when resized.
    An optimisation only, skipped where the throwaway instance could be
    seen or cannot be made: a ``__del__``, an abstract class, a class
    built by another ``__new__`` (a built-in base).
    """
    if (
        cls.__new__ is not object.__new__
        or getattr(cls, "__abstractmethods__", None)
        or hasattr(cls, "__del__")
    ):
        return
    seed: Any = object.__new__(cls)  # type: ignore[arg-type]
    # The instance dict itself, past any __getattribute__ or `__dict__`
    # property a model may define.
    state = _INSTANCE_DICT.__get__(seed, cls)
    for attr in (*cls.__aura_fields__, *_ROW_ATTRS):
        state[attr] = None


def _init_state(
    cls: AuraModelMeta,
    fields: dict[str, FieldInfo],
    sources: dict[str, Source],
    pk: str | None,
) -> None:
    # Set on every class, so nothing per-class is inherited from a parent.
    cls.__aura_fields__ = fields
    cls._aura_sources = sources
    cls._aura_pk = pk
    cls._aura_is_ready = False
    cls._aura_init = None
    cls._aura_rels = ()
    cls._aura_stored = None
    cls._aura_hydrate = None
    cls._aura_link_attrs = frozenset()
    cls._aura_schema_cache = None
    cls._aura_plan_cache = None
    cls._aura_field_refs = {}


# --------------------------------------------------------------------------- the model


class AuraModel(metaclass=AuraModelMeta):
    """Base class of every model; see API.md §2."""

    __aura_fields__: ClassVar[dict[str, FieldInfo]]

    def __init__(self, /, **values: Any) -> None:
        cls = type(self)
        plan = cls._aura_init
        if plan is None:
            plan = _ready(cls)._aura_init
            assert plan is not None
        d = self.__dict__
        pop = values.pop
        for attr, alias, fast, check, mode, default in plan:
            value = pop(attr, MISSING)
            if value is MISSING:
                if alias is not None:
                    value = pop(alias, MISSING)
                if value is MISSING:
                    d[attr] = _fill(cls, attr, check, mode, default)
                    continue
            d[attr] = value if type(value) is fast else check(value)
        if cls._aura_rels:
            _init_relationships(self, d, values)
        if values:
            raise _unknown_field(cls, values)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self)._aura_link_attrs:
            _set_link(self, name, value)
        else:
            object.__setattr__(self, name, value)

    # -- serialization -----------------------------------------------------

    def to_dict(self, *, include_unloaded: bool = False) -> dict[str, Any]:
        """JSON-able dict keyed by storage name.

        Links give their foreign key, from the loaded instance or, when not
        loaded, from the row they were read from (§16 row 37). A link with no
        known key is omitted, or ``None`` with ``include_unloaded=True``.
        Fields left out by a projection and to-many relationships are omitted.
        """
        cls = type(self)
        stored = cls._aura_stored
        if stored is None:
            stored = _ready(cls)._aura_stored
            assert stored is not None
        d = self.__dict__
        links = d.get(LINKS_KEY) or {}
        out: dict[str, Any] = {}
        for attr, storage, is_link, conv in stored:
            if attr in d:
                value = d[attr]
                out[storage] = to_storage(value) if is_link or conv else value
            elif is_link and attr in links:
                out[storage] = to_storage(links[attr])
            elif is_link and include_unloaded:
                out[storage] = None
        return out

    def primary_key_value(self) -> Any:
        pk = type(self)._aura_pk
        return None if pk is None else self.__dict__.get(pk)

    @classmethod
    def model_schema(cls) -> Any:
        """The compiled :class:`aura.schema.ModelSchema` of this model."""
        return cls.__aura_schema__

    @property
    def __aura_schema__(self) -> Any:
        return type(self).__aura_schema__

    # -- the Rust contract -------------------------------------------------

    @classmethod
    def _aura_plan(cls) -> tuple[Any, ...]:
        """Registration payload compiled once by ``aura._core.ModelPlan``.

        ``(cls, name, primary_key_storage_or_None, fields, relationships)``;
        see docs/ARCHITECTURE.md for the shape of each entry.
        """
        plan = cls.__dict__.get("_aura_plan_cache")
        if plan is None:
            plan = _model_plan(_ready(cls))
            cls._aura_plan_cache = plan
        return plan

    @classmethod
    def _aura_hydrate_dict(
        cls: type[M],
        row: Mapping[str, Any],
        *,
        partial: bool = False,
        included: frozenset[str] | set[str] | tuple[str, ...] = (),
    ) -> M:
        """Pure-Python hydration of one storage-form row (reference for Rust)."""
        return _hydrate(_ready(cls), row, partial, included)

    def __aura_post_load__(self) -> None:
        """Hook called after hydration (not on manual construction)."""

    # -- value semantics ---------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return _state(self) == _state(other)

    def __hash__(self) -> int:
        pk = self.primary_key_value()
        if pk is None:
            return object.__hash__(self)
        try:
            return hash((type(self).__name__, pk))
        except TypeError:
            return object.__hash__(self)

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        d = self.__dict__
        stored = type(self)._aura_stored or ()
        parts = [f"{attr}={d[attr]!r}" for attr, *_ in stored if attr in d]
        return f"{type(self).__name__}({', '.join(parts)})"

    def __copy__(self) -> AuraModel:
        new = object.__new__(type(self))
        state = dict(self.__dict__)
        if LINKS_KEY in state:
            state[LINKS_KEY] = dict(state[LINKS_KEY])
        new.__dict__.update(state)
        return new


Model = AuraModel


# --------------------------------------------------------------------------- instance helpers


def _unknown_field(cls: type, values: dict[str, Any]) -> AuraValidationError:
    key = next(iter(values))
    for info in cls.__aura_fields__.values():  # type: ignore[attr-defined]
        if key in (info.name, info.alias):
            return AuraValidationError(
                f"{cls.__name__}.{info.name} was given twice (by name and by alias)",
                context={"model": cls.__name__, "field": info.name},
            )
    return AuraValidationError(
        f"{cls.__name__} has no field '{key}'", context={"model": cls.__name__, "field": key}
    )


def _init_relationships(self: AuraModel, d: dict[str, Any], values: dict[str, Any]) -> None:
    pop = values.pop
    for attr, alias, relation, info in type(self)._aura_rels:
        value = pop(attr, MISSING)
        if value is MISSING and alias is not None:
            value = pop(alias, MISSING)
        if value is MISSING:
            continue  # an omitted relationship stays unloaded
        if relation == "link":
            target = _link_instance(type(self), info, value, info.nullable)
            d[attr] = target
            d.setdefault(LINKS_KEY, {})[attr] = _key_of(target)
        else:
            d[attr] = _collection(type(self), info, value)


def _key_of(target: AuraModel | None) -> Any:
    return None if target is None else target.primary_key_value()


def _link_instance(cls: type, info: FieldInfo, value: Any, nullable: bool) -> Any:
    target = info.model_type
    assert target is not None
    if isinstance(value, target):
        return value
    if value is None:
        if nullable:
            return None
        raise type_error(cls.__name__, info.name, target.__name__, value)
    if isinstance(value, Mapping):
        return target(**value)
    raise AuraValidationError(
        f"Expected {target.__name__} instance or mapping, got {type(value).__name__}",
        context={"model": cls.__name__, "field": info.name},
    )


def _collection(cls: type, info: FieldInfo, value: Any) -> Any:
    if value is None and info.nullable:
        return None
    if not isinstance(value, (list, tuple)):
        label = f"list[{getattr(info.model_type, '__name__', '?')}]"
        raise type_error(cls.__name__, info.name, label, value)
    return [_link_instance(cls, info, item, False) for item in value]


def _set_link(self: AuraModel, name: str, value: Any) -> None:
    """Assigning a link: an instance or None loads it; a bare key unloads it."""
    d = self.__dict__
    links = d.setdefault(LINKS_KEY, {})
    info = type(self).__aura_fields__[name]
    target = info.model_type
    if isinstance(value, Mapping) and target is not None:
        value = target(**value)
    if value is None or isinstance(value, AuraModel):
        d[name] = value
        links[name] = _key_of(value)
    else:
        d.pop(name, None)  # a bare key: the relationship is not loaded (§2.6)
        links[name] = value


def _state(instance: AuraModel) -> tuple[Any, ...]:
    d = instance.__dict__
    links = d.get(LINKS_KEY) or {}
    out = []
    for attr, _storage, is_link, _conv in _ready(type(instance))._aura_stored or ():
        if is_link:
            value = d[attr] if attr in d else links.get(attr, MISSING)
            out.append(to_storage(value) if value is not MISSING else MISSING)
        else:
            out.append(d.get(attr, MISSING))
    return tuple(out)


# --------------------------------------------------------------------------- hydration


# The `__dict__` descriptor every model instance's dict is read through.
_INSTANCE_DICT: Any = AuraModel.__dict__["__dict__"]


def _hydrate(cls: type[M], row: Mapping[str, Any], partial: bool, included: Any) -> M:
    instance = object.__new__(cls)
    d = instance.__dict__
    for attr, storage, load, check, mode, default in cls._aura_hydrate or ():
        if storage in row:
            value = row[storage]
            d[attr] = value if value is None or load is None else load(value)
        elif not partial:
            if mode == _REQUIRED:
                raise AuraValidationError(
                    f"Missing required field {cls.__name__}.{attr} in result row",
                    context={"model": cls.__name__, "field": attr},
                )
            d[attr] = _fill(cls, attr, check, mode, default)
    if cls._aura_rels:
        _hydrate_relationships(cls, d, row, partial, included)
    for key in SCORE_KEYS:
        if key in row:
            d[key] = row[key]
    instance.__aura_post_load__()
    return instance


def _hydrate_relationships(
    cls: type, d: dict[str, Any], row: Mapping[str, Any], partial: bool, included: Any
) -> None:
    links: dict[str, Any] = {}
    for attr, _alias, relation, info in cls._aura_rels:  # type: ignore[attr-defined]
        storage = info.storage_name
        target = info.model_type
        if relation == "collection":
            if isinstance(row.get(storage), list):
                d[attr] = [_nested(target, item) for item in row[storage]]
            elif attr in included:
                d[attr] = []
            continue
        value = row.get(storage, MISSING)
        if isinstance(value, (Mapping, AuraModel)):
            d[attr] = _nested(target, value)
            links[attr] = d[attr].primary_key_value()
        elif value is not MISSING or not partial:
            links[attr] = None if value is MISSING else value
            if value is None and attr in included:
                d[attr] = None  # an included null link is loaded (§2.6)
    d[LINKS_KEY] = links


def _nested(target: Any, value: Any) -> Any:
    return value if isinstance(value, AuraModel) else target._aura_hydrate_dict(value)


# --------------------------------------------------------------------------- plan


def _model_plan(cls: AuraModelMeta) -> tuple[Any, ...]:
    fields = cls.__aura_fields__
    pk = cls._aura_pk
    pk_storage = fields[pk].storage_name if pk is not None else None
    stored = [_field_plan(info) for info in fields.values() if info.relation != "collection"]
    relationships = [
        {
            "attr": info.name,
            "target": _target_name(info),
            "kind": info.relation,
            "via": info.via,
        }
        for info in fields.values()
        if info.relation is not None
    ]
    return (cls, cls.__name__, pk_storage, stored, relationships)


def _target_name(info: FieldInfo) -> str | None:
    return info.model_type.__name__ if info.model_type is not None else None


def _field_plan(info: FieldInfo) -> dict[str, Any]:
    spec = _spec(info)
    is_link = info.relation == "link"
    return {
        "attr": info.name,
        "storage": info.storage_name,
        "kind": info.kind,
        "nullable": info.nullable,
        "unique": info.unique,
        "index": info.index,
        "has_default": info.has_default,
        "full_text": info.full_text,
        "vector_dim": info.vector_dim,
        "target": _target_name(info) if is_link else None,
        "on_delete": info.on_delete,
        "load": None if is_link else plan_load(spec),
        "dump": None if is_link else plan_dump(spec),
    }


# --------------------------------------------------------------------------- registry


def get_model(name: str) -> type[AuraModel] | None:
    """The registered model class called ``name``, or ``None``."""
    return _REGISTRY.get(name)  # type: ignore[return-value]


def registered_models() -> dict[str, type[AuraModel]]:
    """A copy of the global ``{name: class}`` registry."""
    with _LOCK:
        return dict(_REGISTRY.items())  # type: ignore[arg-type]
