"""Native acceleration with a byte-identical pure-Python fallback (API.md §13).

The compiled ``aura._core`` is used when it imports and exposes every native
function, unless ``AURA_DISABLE_NATIVE`` is set to a truthy value. The
decision is taken once, at import.
"""

from __future__ import annotations

import importlib
import os
import zlib
from types import ModuleType
from typing import Any

from aura.errors import AuraError
from aura.vectors import check_dimension, coerce_components, pack_f32, unpack_f32

__all__ = [
    "NATIVE_AVAILABLE",
    "crc32",
    "finite_floats",
    "native_backend_name",
    "native_status",
    "pack_f32_vector",
    "unpack_f32_vector",
    "validate_vector",
]

PURE_PYTHON = "pure-python"
_FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})
_NATIVE_FUNCTIONS = (
    "native_crc32",
    "native_validate_vector",
    "native_pack_f32_vector",
    "native_unpack_f32_vector",
    "backend_name",
)


def _disabled_by_env() -> bool:
    value = os.environ.get("AURA_DISABLE_NATIVE")
    return value is not None and value.strip().lower() not in _FALSE_WORDS


def _load_core() -> tuple[ModuleType | None, str]:
    """The compiled module and its backend name, or ``(None, "pure-python")``."""
    if _DISABLED_BY_ENV:
        return None, PURE_PYTHON
    try:
        core = importlib.import_module("aura._core")
        if not all(hasattr(core, name) for name in _NATIVE_FUNCTIONS):
            return None, PURE_PYTHON  # an older or partial build: keep the fallback
        return core, str(core.backend_name())
    except Exception:  # a broken build must never break import
        return None, PURE_PYTHON


_DISABLED_BY_ENV = _disabled_by_env()
_core, _BACKEND = _load_core()
NATIVE_AVAILABLE: bool = _core is not None


def _core_version() -> str | None:
    version = getattr(_core, "__version__", None)
    return str(version) if version else None


_VERSION = _core_version()

# Native errors other than AuraError are re-checked by the Python path, which
# raises the documented AuraValidationError (or agrees with the input).
_RECHECK = (TypeError, ValueError, OverflowError)


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC, equal to ``zlib.crc32(data) & 0xFFFFFFFF``."""
    if _core is not None:
        return int(_core.native_crc32(data if isinstance(data, bytes) else bytes(data)))
    return zlib.crc32(data) & 0xFFFFFFFF


def _py_validate(values: Any, dimension: int) -> list[float]:
    return coerce_components(values, check_dimension(dimension))


def validate_vector(values: Any, dimension: int) -> list[float]:
    """Finite floats of exactly ``dimension`` components, else ``AuraValidationError``."""
    if _core is not None:
        try:
            return list(_core.native_validate_vector(values, dimension))
        except AuraError:
            raise
        except _RECHECK:
            pass
    return _py_validate(values, dimension)


# A shortcut, not one of the §13 helpers: absent from an older build.
_finite_floats = getattr(_core, "native_finite_floats", None)

# The query builders' per-query steps (``builder_fast.rs``); ``None``
# without the native module, when the builders run their Python steps.
builder_step: Any = getattr(_core, "builder_step", None)
builder_search_text: Any = getattr(_core, "builder_search_text", None)


def finite_floats(values: Any) -> tuple[float, ...] | None:
    """``values`` as a tuple when it is a list or tuple of finite floats
    (the same float objects), else ``None``."""
    if _finite_floats is not None:
        try:
            return _finite_floats(values)
        except _RECHECK:
            return None
    return None


def pack_f32_vector(values: Any, dimension: int) -> bytes:
    """Validate, then ``4*dimension`` bytes of little-endian IEEE-754 f32."""
    if _core is not None:
        try:
            return bytes(_core.native_pack_f32_vector(values, dimension))
        except AuraError:
            raise
        except _RECHECK:
            pass
    return pack_f32(_py_validate(values, dimension))


def unpack_f32_vector(data: bytes, dimension: int) -> list[float]:
    """Inverse of :func:`pack_f32_vector`; wrong byte length → ``AuraValidationError``."""
    if _core is not None:
        try:
            return list(_core.native_unpack_f32_vector(data, dimension))
        except AuraError:
            raise
        except _RECHECK:
            pass
    return unpack_f32(data, dimension)


def native_backend_name() -> str:
    """``"aura_native"`` when the compiled module is in use, else ``"pure-python"``."""
    return _BACKEND


def native_status() -> dict[str, Any]:
    """Describe the active path; never raises, does no IO."""
    return {
        "available": NATIVE_AVAILABLE,
        "backend": _BACKEND,
        "disabled_by_env": _DISABLED_BY_ENV,
        "version": _VERSION,
    }
