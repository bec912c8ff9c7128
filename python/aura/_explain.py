"""Static text plan of a Query IR dict (``aura explain file``, API.md §11).

It names the shape of a query only: field names and counts, never literal
values, query text or vectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["explain_lines", "retrieval_mode"]


def _names(items: Any, key: str | None = None) -> str:
    values = [item.get(key) if key and isinstance(item, Mapping) else item for item in items]
    return ", ".join(str(value) for value in values)


def _hybrid_mode(clause: Mapping[str, Any]) -> str:
    return (
        f"hybrid ({clause.get('fusion', 'weighted_sum')}: "
        f"text field {clause.get('text_field')} + vector field {clause.get('vector_field')}, "
        f"metric {clause.get('metric', 'cosine')}, top_k {clause.get('top_k')})"
    )


def _text_search_mode(clause: Mapping[str, Any]) -> str:
    return (
        f"ranked full-text ({clause.get('rank', 'bm25')} on {clause.get('field')}, "
        f"operator {clause.get('operator', 'or')})"
    )


def _vector_mode(ir: Mapping[str, Any]) -> str:
    clause = ir["vector"]
    mode = "approximate vector" if "vector_ann" in ir else "exact vector"
    text = f"{mode} ({clause.get('metric', 'cosine')} on {clause.get('field')})"
    if "text" in ir:
        text += f" blended with legacy text on {_names(ir['text'].get('fields', ()))}"
    return text


def retrieval_mode(ir: Mapping[str, Any]) -> str:
    """How rows are found: hybrid, ranked text, vector, legacy text or filters."""
    if isinstance(ir.get("hybrid"), Mapping):
        return _hybrid_mode(ir["hybrid"])
    if isinstance(ir.get("text_search"), Mapping):
        return _text_search_mode(ir["text_search"])
    if isinstance(ir.get("vector"), Mapping):
        return _vector_mode(ir)
    if isinstance(ir.get("text"), Mapping):
        return f"legacy text match on {_names(ir['text'].get('fields', ()))}"
    return "filter scan (unranked)"


def _count(ir: Mapping[str, Any], key: str) -> int:
    value = ir.get(key)
    return len(value) if isinstance(value, (list, Mapping)) else 0


def _shape_lines(ir: Mapping[str, Any]) -> list[str]:
    lines = [f"filters: {_count(ir, 'filters')} (combined with AND)"]
    lines.append(f"sort terms: {_count(ir, 'sort')}")
    if ir.get("sort"):
        terms = [f"{t.get('field')} {t.get('direction', 'asc')}" for t in ir["sort"]]
        lines[-1] += f" ({', '.join(terms)})"
    if ir.get("projection"):
        lines.append(f"projection: {_names(ir['projection'])}")
    if ir.get("include"):
        lines.append(f"include: {_names(ir['include'], 'link')}")
    for key in ("limit", "offset", "page_size"):
        if key in ir:
            lines.append(f"{key}: {ir[key]}")
    return lines


def _mutation_lines(ir: Mapping[str, Any]) -> list[str]:
    operation = ir["operation"]
    if operation == "insert":
        return [f"rows: {_count(ir, 'rows')}", f"on_conflict: {ir.get('on_conflict') or 'error'}"]
    if operation == "update":
        return [f"filters: {_count(ir, 'filters')}", f"set fields: {_names(ir.get('set', {}))}"]
    if operation == "upsert":
        return [f"key fields: {_names(ir.get('key', {}))}"]
    if operation == "raw":
        return [f"parameters: {_count(ir, 'params')} (statement not shown)"]
    if operation == "traverse":
        return [f"steps: {_count(ir, 'steps')}", f"max_depth: {ir.get('max_depth')}"]
    return [f"filters: {_count(ir, 'filters')}"]


_READS = frozenset({"select", "search_page", "aggregate"})


def explain_lines(ir: Mapping[str, Any]) -> list[str]:
    """The plan, one fact per line; no cost estimate."""
    operation = ir["operation"]
    lines = [f"operation: {operation}", f"model: {ir.get('model', '-')}"]
    if operation in _READS:
        lines.append(f"retrieval: {retrieval_mode(ir)}")
        lines += _shape_lines(ir)
        if ir.get("facets") or ir.get("metrics"):
            lines.append(f"facets: {_count(ir, 'facets')}, metrics: {_count(ir, 'metrics')}")
    else:
        lines += _mutation_lines(ir)
    if operation in _READS or "consistency" in ir:
        lines.append(f"consistency: {ir.get('consistency', 'strong')}")
    if "timeout_ms" in ir:
        lines.append(f"timeout_ms: {ir['timeout_ms']}")
    lines.append("cost: not estimated (static plan)")
    return lines
