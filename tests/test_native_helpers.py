"""aura._native: native helpers with a byte-identical pure-Python fallback (API.md §13)."""

from __future__ import annotations

import importlib
import sys
import types
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import aura._native as native
from aura.errors import AuraValidationError
from aura.vectors import Vector

f32s = st.floats(width=32, allow_nan=False, allow_infinity=False)


@pytest.fixture
def reload_native(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Reload ``aura._native`` under a patched environment; restore it afterwards."""

    def reload() -> types.ModuleType:
        return importlib.reload(native)

    yield reload
    monkeypatch.undo()
    importlib.reload(native)


def fake_core(**overrides: Any) -> Any:
    """A stand-in for the compiled module that records which functions ran."""
    module: Any = types.ModuleType("aura._core")
    module.calls = []

    def recorded(name: str, function: Any) -> Any:
        def call(*args: Any) -> Any:
            module.calls.append(name)
            return function(*args)

        return call

    functions = {
        "native_crc32": recorded("crc32", lambda data: zlib.crc32(data) & 0xFFFFFFFF),
        "native_validate_vector": recorded("validate", lambda v, d: [float(x) for x in v]),
        "native_pack_f32_vector": recorded("pack", lambda v, d: Vector(v, dim=d).pack()),
        "native_unpack_f32_vector": recorded(
            "unpack", lambda b, d: Vector.from_bytes(b, d).to_list()
        ),
        "backend_name": lambda: "aura_native",
        "__version__": "9.9.9",
    }
    for name, value in {**functions, **overrides}.items():
        if value is not None:
            setattr(module, name, value)
    return module


# -- crc32 -------------------------------------------------------------------


def test_crc32_check_value() -> None:
    assert native.crc32(b"123456789") == 0xCBF43926
    assert native.crc32(b"") == 0


@given(st.binary(max_size=512))
def test_crc32_matches_zlib(data: bytes) -> None:
    assert native.crc32(data) == zlib.crc32(data) & 0xFFFFFFFF


def test_crc32_accepts_bytes_like() -> None:
    assert native.crc32(bytearray(b"123456789")) == 0xCBF43926
    assert native.crc32(memoryview(b"123456789")) == 0xCBF43926


# -- vectors -----------------------------------------------------------------


def test_validate_vector() -> None:
    out = native.validate_vector([1, 2.5, True], 3)
    assert out == [1.0, 2.5, 1.0] and all(type(x) is float for x in out)


@pytest.mark.parametrize(
    ("values", "dimension", "message"),
    [
        ([1.0], 0, "Vector dimension must be a positive int, got 0"),
        ([1.0], True, "Vector dimension must be a positive int, got True"),
        ([1.0], 1.0, "Vector dimension must be a positive int, got 1.0"),
        (["1"], 1, "Vector components must be numeric, got str"),
        ([float("nan")], 1, "Vector components must be finite numbers"),
        ([float("inf")], 1, "Vector components must be finite numbers"),
        ([1.0, 2.0], 3, "Vector expected dimension 3, got 2"),
    ],
)
def test_validate_vector_errors(values: list[Any], dimension: Any, message: str) -> None:
    for function in (native.validate_vector, native.pack_f32_vector):
        with pytest.raises(AuraValidationError) as info:
            function(values, dimension)
        assert info.value.message == message


def test_pack_golden_bytes() -> None:
    assert native.pack_f32_vector([1.0, -2.5], 2).hex() == "0000803f000020c0"


@pytest.mark.parametrize("big", [1e39, -1e39])
def test_pack_rejects_values_outside_f32(big: float) -> None:  # §16 row 45
    with pytest.raises(AuraValidationError, match="float32 range"):
        native.pack_f32_vector([big], 1)


def test_unpack_inverse_and_length_check() -> None:
    assert native.unpack_f32_vector(bytes.fromhex("0000803f000020c0"), 2) == [1.0, -2.5]
    with pytest.raises(AuraValidationError) as info:
        native.unpack_f32_vector(b"\x00" * 5, 2)
    assert info.value.message == "Packed vector expected 8 bytes, got 5"


@given(st.lists(f32s, min_size=1, max_size=32))
def test_pack_matches_vector_pack(values: list[float]) -> None:
    packed = native.pack_f32_vector(values, len(values))
    assert packed == Vector(values).pack()
    assert native.unpack_f32_vector(packed, len(values)) == values


# -- status and selection ----------------------------------------------------


def test_status_shape() -> None:
    status = native.native_status()
    assert set(status) == {"available", "backend", "disabled_by_env", "version"}
    assert status["available"] is native.NATIVE_AVAILABLE
    assert status["backend"] == native.native_backend_name()
    assert status["backend"] == ("aura_native" if native.NATIVE_AVAILABLE else "pure-python")
    assert isinstance(status["disabled_by_env"], bool)
    assert status["version"] is None or isinstance(status["version"], str)


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "on", "anything"])
def test_env_disables_native(
    monkeypatch: pytest.MonkeyPatch, reload_native: Any, value: str
) -> None:
    monkeypatch.setitem(sys.modules, "aura._core", fake_core())
    monkeypatch.setenv("AURA_DISABLE_NATIVE", value)
    module = reload_native()
    assert module.NATIVE_AVAILABLE is False
    assert module.native_status() == {
        "available": False,
        "backend": "pure-python",
        "disabled_by_env": True,
        "version": None,
    }
    assert module.crc32(b"123456789") == 0xCBF43926
    assert sys.modules["aura._core"].calls == []


@pytest.mark.parametrize("value", ["", "0", "false", "FALSE", "no", "Off", " off "])
def test_env_falsy_values_keep_native(
    monkeypatch: pytest.MonkeyPatch, reload_native: Any, value: str
) -> None:
    monkeypatch.setitem(sys.modules, "aura._core", fake_core())
    monkeypatch.setenv("AURA_DISABLE_NATIVE", value)
    module = reload_native()
    assert module.native_status() == {
        "available": True,
        "backend": "aura_native",
        "disabled_by_env": False,
        "version": "9.9.9",
    }


def test_native_functions_are_used_when_available(
    monkeypatch: pytest.MonkeyPatch, reload_native: Any
) -> None:
    core = fake_core()
    monkeypatch.setitem(sys.modules, "aura._core", core)
    monkeypatch.delenv("AURA_DISABLE_NATIVE", raising=False)
    module = reload_native()
    assert module.NATIVE_AVAILABLE and module.native_backend_name() == "aura_native"
    assert module.crc32(b"123456789") == 0xCBF43926
    assert module.validate_vector([1, 2], 2) == [1.0, 2.0]
    assert module.pack_f32_vector([1.0, -2.5], 2).hex() == "0000803f000020c0"
    assert module.unpack_f32_vector(bytes.fromhex("0000803f000020c0"), 2) == [1.0, -2.5]
    assert core.calls == ["crc32", "validate", "pack", "unpack"]


def test_native_raw_errors_become_documented_errors(
    monkeypatch: pytest.MonkeyPatch, reload_native: Any
) -> None:
    def overflow(values: Any, dimension: int) -> bytes:
        raise OverflowError("f32")

    monkeypatch.setitem(sys.modules, "aura._core", fake_core(native_pack_f32_vector=overflow))
    monkeypatch.delenv("AURA_DISABLE_NATIVE", raising=False)
    module = reload_native()
    with pytest.raises(AuraValidationError, match="float32 range"):
        module.pack_f32_vector([1e39], 1)


def test_partial_native_module_falls_back(
    monkeypatch: pytest.MonkeyPatch, reload_native: Any
) -> None:
    monkeypatch.setitem(sys.modules, "aura._core", fake_core(native_crc32=None))
    monkeypatch.delenv("AURA_DISABLE_NATIVE", raising=False)
    module = reload_native()
    assert module.NATIVE_AVAILABLE is False
    assert module.native_backend_name() == "pure-python"
    assert module.crc32(b"123456789") == 0xCBF43926


def test_broken_native_module_never_breaks_import(
    monkeypatch: pytest.MonkeyPatch, reload_native: Any
) -> None:
    def boom() -> str:
        raise RuntimeError("broken build")

    monkeypatch.setitem(sys.modules, "aura._core", fake_core(backend_name=boom))
    monkeypatch.delenv("AURA_DISABLE_NATIVE", raising=False)
    module = reload_native()
    assert module.native_status()["available"] is False


def test_real_native_module_agrees_with_fallback() -> None:
    """When the compiled module is built, its results are byte-identical."""
    core = pytest.importorskip("aura._core")
    if not hasattr(core, "native_pack_f32_vector"):
        pytest.skip("aura._core has no native vector helpers yet")
    cases = [[1.0, -2.5], [0.1, 0.2, 0.3], [1e-45, 3.4028234663852886e38], [0.0, -0.0]]
    for values in cases:
        assert bytes(core.native_pack_f32_vector(values, len(values))) == Vector(values).pack()
        packed = Vector(values).pack()
        assert (
            list(core.native_unpack_f32_vector(packed, len(values)))
            == Vector.from_bytes(packed, len(values)).to_list()
        )
    assert core.native_crc32(b"123456789") == 0xCBF43926
    with pytest.raises(AuraValidationError):
        core.native_pack_f32_vector([1e39], 1)
