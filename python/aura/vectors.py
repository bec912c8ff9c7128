"""Fixed-dimension float vectors (API.md §2.4).

A ``Vector`` keeps its components as a plain ``list[float]`` (``_values``), so
a trusted list is wrapped without copying (``Vector._from_trusted``). Rust
hydration hands over the components as native f64 bytes in ``_store``
instead (as ``Vector._from_native_f64`` does; the core writes the slot
itself), decoded into the list on first use: a search result's vector that
is never read costs no float objects.
``Vector[N]`` is a cached subclass carrying ``dim = N``; model fields always
hold plain ``Vector`` instances.
"""

from __future__ import annotations

import math
import numbers
import struct
import threading
import types
import typing
from array import array
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any, ClassVar, overload

from aura.errors import AuraValidationError

__all__ = ["Vector", "is_vector_type", "vector_dimension"]

_REPR_LIMIT = 6
_SIZED_LOCK = threading.Lock()


def check_dimension(dim: Any) -> int:
    """``dim`` if it is a positive non-bool int, else ``AuraValidationError``."""
    if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
        raise AuraValidationError(
            f"Vector dimension must be a positive int, got {dim!r}",
            context={"dimension": repr(dim)},
        )
    return dim


def coerce_components(values: Any, expected: int | None = None) -> list[float]:
    """Validate ``values`` into a new list of finite floats of length ``expected``."""
    items = _as_list(values)
    if not _all_real(items):
        _check_types(items)
    floats = [float(x) for x in items]
    if not math.isfinite(sum(floats)) and not all(map(math.isfinite, floats)):
        raise AuraValidationError("Vector components must be finite numbers")
    if expected is not None and len(floats) != expected:
        raise AuraValidationError(
            f"Vector expected dimension {expected}, got {len(floats)}",
            context={"expected": expected, "actual": len(floats)},
        )
    return floats


def _as_list(values: Any) -> list[Any]:
    if isinstance(values, Vector):
        return values._values
    if isinstance(values, (str, bytes, bytearray)) or not isinstance(values, Iterable):
        if hasattr(values, "tolist"):  # numpy arrays are iterable, but tolist() is faster
            return _as_list(values.tolist())
        raise AuraValidationError(
            f"Vector components must be numeric, got {type(values).__name__}",
            context={"type": type(values).__name__},
        )
    if hasattr(values, "tolist") and not isinstance(values, list):
        values = values.tolist()
    return values if isinstance(values, list) else list(values)


_FAST_TYPES = frozenset({float, int, bool})


def _all_real(items: list[Any]) -> bool:
    # float("1.5") succeeds, so strings must be rejected by type, not by conversion.
    return set(map(type, items)) <= _FAST_TYPES or all(map(_is_numeric, items))


def _is_numeric(x: Any) -> bool:
    return isinstance(x, (numbers.Real, Decimal))


def _check_types(items: list[Any]) -> None:
    for x in items:
        if not _is_numeric(x):
            raise AuraValidationError(
                f"Vector components must be numeric, got {type(x).__name__}",
                context={"type": type(x).__name__},
            )


def pack_f32(values: list[float]) -> bytes:
    """``4*len`` bytes little-endian f32; a finite value outside f32 range is an error."""
    try:
        return struct.pack(f"<{len(values)}f", *values)
    except OverflowError:
        raise AuraValidationError("Vector components must be within float32 range") from None


def unpack_f32(data: Any, dimension: int) -> list[float]:
    """Inverse of :func:`pack_f32`; the byte length must be ``4*dimension``."""
    check_dimension(dimension)
    raw = bytes(data)
    if len(raw) != 4 * dimension:
        raise AuraValidationError(
            f"Packed vector expected {4 * dimension} bytes, got {len(raw)}",
            context={"expected": 4 * dimension, "actual": len(raw)},
        )
    return list(struct.unpack(f"<{dimension}f", raw))


class Vector:
    """An immutable sequence of finite floats; ``Vector[N]`` fixes the dimension."""

    __slots__ = ("_store",)
    __aura_vector__: ClassVar[bool] = True
    dim: ClassVar[int | None] = None
    _sized: ClassVar[dict[int, type[Vector]]] = {}

    # The components, or until first read their native f64 bytes (a bytes
    # object, or a buffer shared with the engine's row).
    _store: list[float] | bytes | Any

    def __init__(self, values: Iterable[Any], *, dim: int | None = None) -> None:
        expected = type(self).dim
        if dim is not None:
            check_dimension(dim)
            if expected is not None and dim != expected:
                raise AuraValidationError(
                    f"Vector expected dimension {expected}, got {dim}",
                    context={"expected": expected, "actual": dim},
                )
            expected = dim
        self._store = coerce_components(values, expected)

    @property
    def _values(self) -> list[float]:
        store = self._store
        if store.__class__ is not list:  # native f64 bytes, from hydration
            decoded = array("d")
            decoded.frombytes(store)  # type: ignore[arg-type]
            store = self._store = decoded.tolist()
        return store

    def __class_getitem__(cls, dim: Any) -> type[Vector]:
        check_dimension(dim)
        sized = Vector._sized.get(dim)
        if sized is None:
            with _SIZED_LOCK:
                sized = Vector._sized.get(dim)
                if sized is None:
                    namespace = {"__slots__": (), "dim": dim, "__module__": __name__}
                    sized = type(f"Vector{dim}", (Vector,), namespace)
                    Vector._sized[dim] = sized
        return sized

    @classmethod
    def _from_trusted(cls, values: list[float]) -> Vector:
        """Wrap an already validated list without copying (Rust hydration)."""
        vec = object.__new__(cls)
        vec._store = values
        return vec

    @classmethod
    def _from_native_f64(cls, data: Any) -> Vector:
        """Wrap validated components as native-endian f64 bytes (Rust
        hydration: ``bytes`` or a buffer shared with the engine's row);
        they are decoded on first use."""
        vec = object.__new__(cls)
        vec._store = data
        return vec

    @classmethod
    def from_bytes(cls, data: bytes, dimension: int) -> Vector:
        """Decode ``pack()`` output (``4*dimension`` bytes, little-endian f32)."""
        return cls(unpack_f32(data, dimension), dim=dimension)

    def pack(self) -> bytes:
        return pack_f32(self._values)

    def to_list(self) -> list[float]:
        return list(self._values)

    tolist = to_list

    @property
    def dimension(self) -> int:
        return len(self._values)

    def magnitude(self) -> float:
        """Euclidean norm."""
        return math.hypot(*self._values)

    def __len__(self) -> int:
        return len(self._values)

    @overload
    def __getitem__(self, index: int) -> float: ...
    @overload
    def __getitem__(self, index: slice) -> list[float]: ...
    def __getitem__(self, index: int | slice) -> float | list[float]:
        return self._values[index]

    def __iter__(self) -> Iterator[float]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Vector):
            return self._values == other._values
        if isinstance(other, list):
            return self._values == other
        if isinstance(other, tuple):
            return self._values == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._values))

    def __repr__(self) -> str:
        name = "Vector" if type(self).dim is None else f"Vector[{type(self).dim}]"
        values = self._values
        if len(values) <= _REPR_LIMIT:
            return f"{name}({values!r})"
        head = ", ".join(format(v, "g") for v in values[:3])
        return f"{name}([{head}, ... ({len(values)} dims)])"

    def __reduce__(self) -> tuple[Any, ...]:
        # Vector[N] classes are built at runtime, so pickle by dimension.
        return (_rebuild, (type(self).dim, self._values))


def _rebuild(dim: int | None, values: list[float]) -> Vector:
    cls = Vector if dim is None else Vector.__class_getitem__(dim)
    return cls._from_trusted(list(values))


def _unwrap(ann: Any) -> Any:
    """Strip ``Annotated`` and ``Optional`` around a single type."""
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(ann)[0])
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else ann
    return ann


def is_vector_type(ann: Any) -> bool:
    """True for ``Vector``, ``Vector[N]`` (optionally wrapped in Optional/Annotated)."""
    ann = _unwrap(ann)
    return isinstance(ann, type) and issubclass(ann, Vector)


def vector_dimension(ann: Any) -> int | None:
    """``N`` for ``Vector[N]``, ``None`` for bare ``Vector`` or non-vector types."""
    ann = _unwrap(ann)
    return ann.dim if isinstance(ann, type) and issubclass(ann, Vector) else None
