"""The one Python-side conversion of values into storage form.

Rows, filter literals, ``set()`` assignments and upsert keys all pass through
``to_storage`` so a value means the same thing wherever it is used (the Rust
row conversion in ``crates/aura-py/src/convert.rs`` mirrors this table).
"""

from __future__ import annotations

import base64
import datetime as _dt
import enum
import uuid
from decimal import Decimal
from typing import Any


def to_storage(value: Any) -> Any:
    """Convert a Python value into its JSON-able storage form."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return to_storage(value.value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    cls = type(value)
    if getattr(cls, "__aura_vector__", False):
        return value.to_list()
    if getattr(cls, "__aura_fields__", None) is not None:
        return to_storage(value.primary_key_value())
    if isinstance(value, dict):
        return {str(k): to_storage(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_storage(v) for v in value]
    from aura.errors import AuraSerializationError

    raise AuraSerializationError(
        f"Cannot encode a value of type {type(value).__name__}",
        context={"type": type(value).__name__},
    )
