"""Backend capability records and the documented matrix (API.md §8).

A backend never emulates or silently drops a feature: the client checks a
query's needs against these flags and raises ``AuraCapabilityError``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any

__all__ = [
    "AURADB_SERVER_GATED",
    "BASE_CAPABILITY_FLAGS",
    "CAPABILITY_FLAGS",
    "EXTRA_CAPABILITY_FLAGS",
    "MATRIX",
    "QUERY_FLAGS",
    "BackendCapabilities",
    "auradb_capabilities",
    "for_backend",
]


@dataclass(frozen=True)
class BackendCapabilities:
    """What one backend can do; every flag defaults to ``False``."""

    name: str
    transactions: bool = False
    schema_create: bool = False
    schema_migrations: bool = False
    json_fields: bool = False
    relationships: bool = False
    graph_traversal: bool = False
    vector_search: bool = False
    hybrid_search: bool = False
    full_text_search: bool = False
    raw_queries: bool = False
    explain: bool = False
    server_side_cursors: bool = False
    native_protocol: bool = False
    document_queries: bool = False
    key_value: bool = False
    # Additive flags (§8 "recommended", §16 row 21).
    aggregations_and_facets: bool = False
    ranked_pagination: bool = False
    query_timeouts: bool = False
    approximate_vector_search: bool = False

    def supports(self, flag: str) -> bool:
        """Whether ``flag`` is set; an unknown flag name is a bug → ``ValueError``."""
        if flag not in _FLAG_SET:
            raise ValueError(
                f"Unknown capability flag {flag!r}; known flags: {', '.join(CAPABILITY_FLAGS)}"
            )
        return bool(getattr(self, flag))

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., <flag>: bool, ...}`` in ``CAPABILITY_FLAGS`` order."""
        out: dict[str, Any] = {"name": self.name}
        out.update((flag, getattr(self, flag)) for flag in CAPABILITY_FLAGS)
        return out

    def with_flags(self, **flags: bool) -> BackendCapabilities:
        """A copy with some flags changed (unknown names → ``ValueError``)."""
        changes: dict[str, Any] = {}
        for flag, value in flags.items():
            self.supports(flag)
            changes[flag] = bool(value)
        return dataclasses.replace(self, **changes)

    def enabled_flags(self) -> tuple[str, ...]:
        return tuple(flag for flag in CAPABILITY_FLAGS if getattr(self, flag))

    @cached_property
    def refuses_queries(self) -> bool:
        """Whether some query could need a flag this backend lacks: when not,
        the per-query check has nothing to look at (computed once; a frozen
        record never changes)."""
        return not all(getattr(self, flag) for flag in QUERY_FLAGS)


CAPABILITY_FLAGS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(BackendCapabilities) if f.name != "name"
)
BASE_CAPABILITY_FLAGS: tuple[str, ...] = CAPABILITY_FLAGS[:15]
EXTRA_CAPABILITY_FLAGS: tuple[str, ...] = CAPABILITY_FLAGS[15:]
_FLAG_SET = frozenset(CAPABILITY_FLAGS)

# What a query needs (`check_capabilities`, API.md §8): per IR clause, in
# the order checked, and per derived operation, each flag with the words
# of its refusal ("Backend '<name>' does not support <what>").
CLAUSE_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("hybrid", "hybrid_search", "hybrid search"),
    ("text_search", "full_text_search", "ranked full-text search"),
    ("vector", "vector_search", "vector search"),
    ("timeout_ms", "query_timeouts", "query timeouts"),
)
OPERATION_FLAGS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "aggregate": ("aggregations_and_facets", "aggregations and facets"),
        "search_page": ("ranked_pagination", "ranked pagination"),
        "traverse": ("graph_traversal", "graph traversal"),
    }
)
# Every flag a query can need.
QUERY_FLAGS: tuple[str, ...] = (
    *(flag for _, flag, _ in CLAUSE_FLAGS),
    *(flag for flag, _ in OPERATION_FLAGS.values()),
)


def _caps(name: str, flags: str) -> BackendCapabilities:
    return BackendCapabilities(name, **dict.fromkeys(flags.split(), True))


_SQL = "transactions schema_create schema_migrations json_fields relationships raw_queries explain"
_PROTOCOL = (
    f"{_SQL} graph_traversal vector_search hybrid_search full_text_search "
    "server_side_cursors native_protocol document_queries "
    # The memory engine (also behind the bundled protocol) serves aggregate(),
    # search_pages() and per-query deadlines.
    "aggregations_and_facets ranked_pagination query_timeouts"
)

# Keyed by backend family (aura.backends.registry.SCHEME_FAMILY values). The
# bundled protocol's backend *name* is "auradb" (§7), hence the key/name split.
MATRIX: Mapping[str, BackendCapabilities] = MappingProxyType(
    {
        # Before the handshake the three server-gated search flags read True (§8 ¹);
        # the additive flags stay False until the server advertises them (§16 row 22).
        "auradb": _caps(
            "auradb",
            "transactions schema_create json_fields relationships vector_search "
            "hybrid_search full_text_search explain server_side_cursors native_protocol "
            "document_queries",
        ),
        "aura": _caps("auradb", _PROTOCOL),
        # The in-process engine also answers `approximate` through HNSW graphs.
        "memory": _caps("memory", f"{_PROTOCOL} approximate_vector_search"),
        "sqlite": _caps("sqlite", _SQL),
        # Ranked text search stays False on PostgreSQL/MySQL until it really ranks (§16 row 6).
        "postgres": _caps("postgres", f"{_SQL} server_side_cursors"),
        "mysql": _caps("mysql", f"{_SQL} server_side_cursors"),
        # Facets and min/max run as aggregation pipelines; .timeout(ms) is maxTimeMS.
        "mongodb": _caps(
            "mongodb",
            "schema_create json_fields relationships explain server_side_cursors document_queries "
            "aggregations_and_facets query_timeouts",
        ),
        "redis": _caps("redis", "schema_create json_fields key_value"),
    }
)


def for_backend(name: str) -> BackendCapabilities:
    """The documented capabilities of a backend family (case-insensitive)."""
    caps = MATRIX.get(name.lower()) if isinstance(name, str) else None
    if caps is None:
        raise ValueError(f"Unknown backend {name!r}; known backends: {', '.join(MATRIX)}")
    return caps


# AuraDB capability flags that follow the server's HELLO_ACK list (AWP1 §5.1);
# either spelling of a renamed capability counts.
AURADB_SERVER_GATED: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "vector_search": ("vector_exact_search",),
        "hybrid_search": ("hybrid_search",),
        "full_text_search": ("full_text_bm25_ranking",),
        "aggregations_and_facets": ("aggregations_and_facets",),
        "ranked_pagination": ("ranked_pagination", "ranked_search_cursor"),
        "query_timeouts": ("query_timeouts",),
        "approximate_vector_search": (
            "approximate_vector_search",
            "approximate_vector_search_preview",
        ),
    }
)


def auradb_capabilities(server_capabilities: Iterable[str] | None) -> BackendCapabilities:
    """AuraDB native capabilities after the handshake.

    A missing capability list means "nothing optional", never "everything"
    (§16 row 22); unknown capability strings are ignored (AWP1 §5).
    """
    advertised = frozenset(c for c in (server_capabilities or ()) if isinstance(c, str))
    gated = {
        flag: any(name in advertised for name in names)
        for flag, names in AURADB_SERVER_GATED.items()
    }
    return MATRIX["auradb"].with_flags(**gated)
