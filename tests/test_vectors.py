"""Vector (API.md §2.4; §15 checks 8-11; §16 row 45)."""

from __future__ import annotations

import math
import pickle
import struct
from array import array
from decimal import Decimal
from typing import Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aura._convert import to_storage
from aura.errors import AuraValidationError
from aura.vectors import Vector, is_vector_type, vector_dimension

F32_MAX = struct.unpack("<f", struct.pack("<f", 3.4028234663852886e38))[0]
f32s = st.floats(width=32, allow_nan=False, allow_infinity=False)


def raises_validation(match: str) -> pytest.RaisesContext[AuraValidationError]:
    return pytest.raises(AuraValidationError, match=match)


# -- Vector[N] ---------------------------------------------------------------


def test_sized_class_is_cached_and_named() -> None:  # check 11
    assert Vector[8] is Vector[8]
    assert Vector[8].__name__ == "Vector8"
    assert Vector[8].dim == 8
    assert issubclass(Vector[8], Vector)
    assert Vector.dim is None


@pytest.mark.parametrize("bad", [0, -1, True, False, 2.0, "3", None])
def test_sized_class_rejects_bad_dimension(bad: object) -> None:  # check 9
    with raises_validation(r"Vector dimension must be a positive int, got "):
        Vector[bad]  # type: ignore[misc]


def test_bad_dimension_message_names_the_value() -> None:
    with pytest.raises(AuraValidationError) as info:
        Vector[0]  # type: ignore[misc]
    assert info.value.message == "Vector dimension must be a positive int, got 0"
    assert info.value.code == "validation_error"


def test_sized_instances_have_no_dict() -> None:
    vec = Vector[3]([1, 2, 3])
    assert not hasattr(vec, "__dict__")
    assert type(vec) is Vector[3]


# -- construction ------------------------------------------------------------


def test_components_become_floats_in_a_plain_list() -> None:
    vec = Vector([1, 2.5, True, False, Decimal("0.5")])
    assert type(vec._values) is list
    assert vec._values == [1.0, 2.5, 1.0, 0.0, 0.5]
    assert all(type(x) is float for x in vec._values)
    assert Vector.__aura_vector__ is True


def test_input_is_copied() -> None:
    source = [1.0, 2.0]
    vec = Vector(source)
    source[0] = 9.0
    assert vec.to_list() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("values", "got"),
    [(["1.5"], "str"), ([None], "NoneType"), ([1j], "complex"), ([[1.0]], "list")],
)
def test_non_numeric_components(values: list[object], got: str) -> None:
    with pytest.raises(AuraValidationError) as info:
        Vector(values)
    assert info.value.message == f"Vector components must be numeric, got {got}"


def test_non_iterable_values() -> None:
    with raises_validation("Vector components must be numeric, got int"):
        Vector(5)  # type: ignore[arg-type]
    with raises_validation("Vector components must be numeric, got str"):
        Vector("123")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_components(bad: float) -> None:  # check 9
    with pytest.raises(AuraValidationError) as info:
        Vector([1.0, bad])
    assert info.value.message == "Vector components must be finite numbers"


def test_huge_finite_values_are_not_mistaken_for_infinity() -> None:
    assert Vector([1e308, 1e308]).to_list() == [1e308, 1e308]


def test_dimension_mismatch() -> None:  # check 8
    with pytest.raises(AuraValidationError) as info:
        Vector[3]([1, 2])
    assert info.value.message == "Vector expected dimension 3, got 2"
    assert info.value.context == {"expected": 3, "actual": 2}
    with raises_validation("Vector expected dimension 2, got 3$"):
        Vector([1, 2, 3], dim=2)


def test_dim_keyword_conflicting_with_sized_class() -> None:
    with raises_validation("Vector expected dimension 3, got 4"):
        Vector[3]([1, 2, 3, 4], dim=4)
    assert Vector[3]([1, 2, 3], dim=3) == [1, 2, 3]
    with raises_validation("positive int"):
        Vector([1.0], dim=0)


def test_from_trusted_wraps_without_copying() -> None:
    values = [1.0, 2.0]
    vec = Vector._from_trusted(values)
    assert vec._values is values
    assert type(vec) is Vector


def test_native_f64_components_decode_on_first_use() -> None:
    values = [1.0, -2.5, 1e-300, 3.0000001]
    vec = Vector._from_native_f64(array("d", values).tobytes())
    assert type(vec) is Vector
    assert type(vec._store) is bytes
    assert len(vec) == 4
    assert type(vec._store) is list
    assert vec._values == values
    assert vec._values is vec._values
    assert vec == Vector(values)
    assert hash(vec) == hash(Vector(values))
    assert pickle.loads(pickle.dumps(vec)) == values


def test_numpy_input() -> None:
    np = pytest.importorskip("numpy")
    vec = Vector(np.array([1, 2, 3], dtype=np.float32))
    assert vec == [1.0, 2.0, 3.0]
    assert all(type(x) is float for x in vec._values)
    assert Vector([np.float32(0.5), np.int64(2)]) == [0.5, 2.0]


# -- sequence API ------------------------------------------------------------


def test_sequence_api() -> None:
    vec = Vector([1.0, 2.0, 3.0])
    assert len(vec) == 3
    assert vec[0] == 1.0 and vec[-1] == 3.0
    assert vec[1:] == [2.0, 3.0] and type(vec[1:]) is list
    assert list(vec) == [1.0, 2.0, 3.0]
    assert vec.dimension == 3


def test_equality_and_hash() -> None:
    vec = Vector([1, 2])
    assert vec == Vector([1.0, 2.0])
    assert vec == Vector[2]([1, 2])
    assert vec == [1.0, 2.0] and vec == [1, 2] and vec == (1.0, 2.0)
    assert vec != Vector([2, 1])
    assert vec != "12" and vec != {1.0, 2.0}
    assert hash(vec) == hash(Vector[2]([1, 2]))
    assert len({vec, Vector([1, 2]), Vector([3, 4])}) == 2


def test_to_list_returns_a_new_list() -> None:
    vec = Vector([1, 2])
    out = vec.to_list()
    out.append(3.0)
    assert vec.to_list() == [1.0, 2.0]
    assert vec.tolist() == [1.0, 2.0]
    assert vec.to_list() is not vec._values


def test_magnitude() -> None:
    assert Vector([3, 4]).magnitude() == 5.0
    assert Vector([0, 0]).magnitude() == 0.0


# -- packing -----------------------------------------------------------------


def test_pack_golden_and_round_trip() -> None:  # check 10
    vec = Vector([1.0, -2.5])
    assert vec.pack().hex() == "0000803f000020c0"
    back = Vector.from_bytes(vec.pack(), 2)
    assert back == vec and type(back) is Vector
    assert type(Vector[2].from_bytes(vec.pack(), 2)) is Vector[2]


def test_from_bytes_wrong_length() -> None:
    with pytest.raises(AuraValidationError) as info:
        Vector.from_bytes(b"\x00" * 7, 2)
    assert info.value.message == "Packed vector expected 8 bytes, got 7"
    with raises_validation("positive int"):
        Vector.from_bytes(b"", 0)


@pytest.mark.parametrize("big", [1e39, -1e39, 3.5e38])
def test_pack_rejects_finite_values_outside_f32(big: float) -> None:  # §16 row 45
    with pytest.raises(AuraValidationError) as info:
        Vector([0.0, big]).pack()
    assert info.value.message == "Vector components must be within float32 range"
    assert not isinstance(info.value, OverflowError)


def test_pack_accepts_the_f32_maximum() -> None:
    assert Vector.from_bytes(Vector([F32_MAX, -F32_MAX]).pack(), 2) == [F32_MAX, -F32_MAX]


@given(st.lists(f32s, min_size=1, max_size=64))
def test_pack_round_trip_property(values: list[float]) -> None:
    vec = Vector(values)
    packed = vec.pack()
    assert len(packed) == 4 * len(values)
    assert packed == struct.pack(f"<{len(values)}f", *values)
    assert Vector.from_bytes(packed, len(values)) == vec


# -- repr, pickling, storage ---------------------------------------------------


def test_repr() -> None:  # check 11
    assert repr(Vector[3]([1.0, 0.0, 0.5])) == "Vector[3]([1.0, 0.0, 0.5])"
    assert repr(Vector([1.0, 0.0, 0.5])) == "Vector([1.0, 0.0, 0.5])"
    assert repr(Vector[8](range(8))) == "Vector[8]([0, 1, 2, ... (8 dims)])"
    assert repr(Vector([0.5] * 7)) == "Vector([0.5, 0.5, 0.5, ... (7 dims)])"
    assert repr(Vector(range(6))) == "Vector([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])"


def test_pickle_round_trip_keeps_the_class() -> None:
    for vec in (Vector([1, 2]), Vector[2]([1, 2])):
        back = pickle.loads(pickle.dumps(vec))
        assert back == vec and type(back) is type(vec)


def test_storage_form_is_a_list_of_floats() -> None:
    assert to_storage(Vector[2]([1, 2])) == [1.0, 2.0]


# -- helpers -----------------------------------------------------------------


def test_is_vector_type_and_dimension() -> None:
    assert is_vector_type(Vector) and is_vector_type(Vector[3])
    assert is_vector_type(Optional[Vector[3]]) and is_vector_type(Vector[3] | None)  # noqa: UP045
    assert not is_vector_type(list) and not is_vector_type(list[float]) and not is_vector_type(3)
    assert vector_dimension(Vector[3]) == 3
    assert vector_dimension(Vector[4] | None) == 4
    assert vector_dimension(Vector) is None and vector_dimension(int) is None
