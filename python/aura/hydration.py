"""Pure-Python hydration of storage-form rows into model instances.

The production path hydrates in Rust (``aura._core``); this module is the
reference it must agree with, and the fallback where no native plan exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypeVar

from aura.errors import AuraSchemaError, AuraValidationError
from aura.models import AuraModel, AuraModelMeta

__all__ = ["Hydrator", "hydrate_rows"]

M = TypeVar("M", bound=AuraModel)


class Hydrator(Generic[M]):
    """Turns rows keyed by storage name into ``model`` instances.

    ``partial=True`` is for projected rows: absent fields stay absent instead
    of failing as missing. ``included`` names the relationships the query
    loaded, so a null link among them counts as loaded (value ``None``).
    """

    __slots__ = ("included", "model", "partial")

    def __init__(
        self, model: type[M], *, partial: bool = False, included: Iterable[str] = ()
    ) -> None:
        if not (isinstance(model, AuraModelMeta) and model is not AuraModel):
            raise AuraSchemaError(f"Expected an AuraModel subclass, got {model!r}")
        self.model = model
        self.partial = partial
        self.included = frozenset(included)

    def hydrate(self, row: Mapping[str, Any]) -> M:
        if not isinstance(row, Mapping):
            raise AuraValidationError(
                f"Expected a mapping row for {self.model.__name__}, got {type(row).__name__}"
            )
        return self.model._aura_hydrate_dict(row, partial=self.partial, included=self.included)

    __call__ = hydrate

    def hydrate_many(self, rows: Iterable[Mapping[str, Any]]) -> list[M]:
        return [self.hydrate(row) for row in rows]


def hydrate_rows(
    model: type[M], rows: Iterable[Mapping[str, Any]], *, partial: bool = False
) -> list[M]:
    """Hydrate every row; a non-partial row lacking a required field raises
    ``AuraValidationError`` "Missing required field <Model>.<f> in result row"."""
    return Hydrator(model, partial=partial).hydrate_many(rows)
