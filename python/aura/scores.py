"""Typed access to the ranking scores of a result row (API.md §5.1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SearchScores", "search_scores"]


@dataclass(frozen=True)
class SearchScores:
    """Scores of a ranked row; every field is ``None`` for a non-ranked row.

    ``rank`` is 1-based and global across pages; ``text_score`` and
    ``vector_score`` are the raw hybrid components.
    """

    score: float | None = None
    text_score: float | None = None
    vector_score: float | None = None
    rank: int | None = None


def search_scores(row: Any) -> SearchScores:
    """Read ``__score__``, ``__text_score__``, ``__vector_score__`` and ``__rank__``."""
    state = row if isinstance(row, Mapping) else getattr(row, "__dict__", None)
    if not state:
        return SearchScores()
    return SearchScores(
        state.get("__score__"),
        state.get("__text_score__"),
        state.get("__vector_score__"),
        state.get("__rank__"),
    )
