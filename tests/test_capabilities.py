"""aura.backends.capabilities (API.md §8; §16 rows 6, 21, 22)."""

from __future__ import annotations

import dataclasses

import pytest

from aura.backends import CAPABILITY_FLAGS, SCHEME_FAMILY, BackendCapabilities
from aura.backends.capabilities import (
    BASE_CAPABILITY_FLAGS,
    EXTRA_CAPABILITY_FLAGS,
    MATRIX,
    auradb_capabilities,
    for_backend,
)

SECTION_8_FLAGS = (
    "transactions",
    "schema_create",
    "schema_migrations",
    "json_fields",
    "relationships",
    "graph_traversal",
    "vector_search",
    "hybrid_search",
    "full_text_search",
    "raw_queries",
    "explain",
    "server_side_cursors",
    "native_protocol",
    "document_queries",
    "key_value",
)
ADDITIVE_FLAGS = (
    "aggregations_and_facets",
    "ranked_pagination",
    "query_timeouts",
    "approximate_vector_search",
)

# The §8 table, column by column (auradb = before the handshake).
COLUMNS = ("auradb", "aura", "memory", "sqlite", "postgres", "mysql", "mongodb", "redis")
TABLE = {
    "transactions": "yyyyyynn",
    "schema_create": "yyyyyyyy",
    "schema_migrations": "nyyyyynn",
    "json_fields": "yyyyyyyy",
    "relationships": "yyyyyyyn",
    "graph_traversal": "nyynnnnn",
    "vector_search": "yyynnnnn",
    "hybrid_search": "yyynnnnn",
    "full_text_search": "yyynnnnn",
    "raw_queries": "nyyyyynn",
    "explain": "yyyyyyyn",
    "server_side_cursors": "yyynyyyn",
    "native_protocol": "yyynnnnn",
    "document_queries": "yyynnnyn",
    "key_value": "nnnnnnny",
}


def test_flag_order_is_the_table_order_plus_additive_flags() -> None:
    assert CAPABILITY_FLAGS == SECTION_8_FLAGS + ADDITIVE_FLAGS
    assert BASE_CAPABILITY_FLAGS == SECTION_8_FLAGS
    assert EXTRA_CAPABILITY_FLAGS == ADDITIVE_FLAGS
    assert [f.name for f in dataclasses.fields(BackendCapabilities)] == [
        "name",
        *CAPABILITY_FLAGS,
    ]


def test_defaults_are_false_and_record_is_frozen() -> None:
    caps = BackendCapabilities("x")
    assert not any(caps.supports(flag) for flag in CAPABILITY_FLAGS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        caps.transactions = True  # type: ignore[misc]


def test_supports_and_attribute_access() -> None:
    caps = BackendCapabilities("x", vector_search=True)
    assert caps.vector_search is True
    assert caps.supports("vector_search") is True
    assert caps.supports("ranked_pagination") is False  # §16 row 21: no ValueError


def test_supports_unknown_flag_raises_value_error() -> None:
    with pytest.raises(ValueError, match=r"Unknown capability flag 'teleport'; known flags: "):
        BackendCapabilities("x").supports("teleport")
    with pytest.raises(ValueError):
        BackendCapabilities("x").supports("name")


def test_to_dict() -> None:
    caps = BackendCapabilities("sqlite", transactions=True)
    data = caps.to_dict()
    assert list(data) == ["name", *CAPABILITY_FLAGS]
    assert data["name"] == "sqlite"
    assert data["transactions"] is True
    assert sum(v is True for v in data.values()) == 1


def test_with_flags() -> None:
    caps = BackendCapabilities("x").with_flags(explain=True)
    assert caps.explain and caps.name == "x"
    assert caps.enabled_flags() == ("explain",)
    with pytest.raises(ValueError):
        caps.with_flags(bogus=True)


@pytest.mark.parametrize("column", range(len(COLUMNS)))
def test_matrix_matches_section_8(column: int) -> None:
    caps = for_backend(COLUMNS[column])
    for flag, row in TABLE.items():
        assert caps.supports(flag) is (row[column] == "y"), (COLUMNS[column], flag)


def test_matrix_backend_names() -> None:
    names = {family: caps.name for family, caps in MATRIX.items()}
    # The bundled protocol reports backend name "auradb" (§7).
    assert names == {
        "auradb": "auradb",
        "aura": "auradb",
        "memory": "memory",
        "sqlite": "sqlite",
        "postgres": "postgres",
        "mysql": "mysql",
        "mongodb": "mongodb",
        "redis": "redis",
    }
    assert set(MATRIX) == set(SCHEME_FAMILY.values())


def test_additive_flags_per_backend() -> None:
    for family in ("aura", "memory"):
        caps = for_backend(family)
        assert caps.aggregations_and_facets and caps.ranked_pagination and caps.query_timeouts
    # HNSW graphs live in the in-process engine only; the bundled protocol
    # (a remote server of unknown build) does not promise them.
    assert for_backend("memory").approximate_vector_search
    assert not for_backend("aura").approximate_vector_search
    mongodb = for_backend("mongodb")
    assert mongodb.aggregations_and_facets and mongodb.query_timeouts  # pipelines, maxTimeMS
    assert not mongodb.ranked_pagination and not mongodb.approximate_vector_search
    for family in ("auradb", "sqlite", "postgres", "mysql", "redis"):
        assert not any(for_backend(family).supports(f) for f in ADDITIVE_FLAGS), family


def test_postgres_and_mysql_do_not_claim_ranked_text() -> None:
    assert not for_backend("postgres").full_text_search
    assert not for_backend("mysql").full_text_search


def test_for_backend_is_case_insensitive_and_rejects_unknown() -> None:
    assert for_backend("SQLite") is MATRIX["sqlite"]
    with pytest.raises(ValueError, match="Unknown backend 'oracle'"):
        for_backend("oracle")


def test_matrix_is_read_only() -> None:
    with pytest.raises(TypeError):
        MATRIX["x"] = BackendCapabilities("x")  # type: ignore[index]


def test_auradb_after_handshake_follows_server_capabilities() -> None:
    caps = auradb_capabilities(["vector_exact_search", "ranked_search_cursor", "future_thing"])
    assert caps.vector_search and caps.ranked_pagination
    assert not caps.hybrid_search and not caps.full_text_search
    assert not caps.query_timeouts and not caps.aggregations_and_facets
    # Ungated flags keep the documented values.
    assert caps.transactions and caps.native_protocol and not caps.graph_traversal
    assert caps.name == "auradb"


def test_auradb_capability_renames_and_full_list() -> None:
    full = auradb_capabilities(
        [
            "vector_exact_search",
            "hybrid_search",
            "full_text_bm25_ranking",
            "aggregations_and_facets",
            "query_timeouts",
            "ranked_pagination",
            "approximate_vector_search_preview",
        ]
    )
    assert all(full.supports(flag) for flag in ADDITIVE_FLAGS)
    assert full.vector_search and full.hybrid_search and full.full_text_search
    assert auradb_capabilities(["approximate_vector_search"]).approximate_vector_search


@pytest.mark.parametrize("server", [None, [], ()])
def test_auradb_without_capability_list_is_not_everything(server: object) -> None:
    caps = auradb_capabilities(server)  # type: ignore[arg-type]
    assert not caps.vector_search and not caps.hybrid_search and not caps.full_text_search
    assert not any(caps.supports(flag) for flag in ADDITIVE_FLAGS)


def test_before_handshake_search_flags_read_true() -> None:
    caps = for_backend("auradb")
    assert caps.vector_search and caps.hybrid_search and caps.full_text_search
