"""Local schema diffing (API.md §11, §16 row 46) and the memory backend's
``diff_schema``/``drop_schema`` (§3.3, §16 row 39)."""

from __future__ import annotations

from typing import Any

import pytest

import aura
from aura import (
    AuraMigrationError,
    AuraSchemaError,
    Change,
    Field,
    LockImpactEstimate,
    MigrationPlan,
    Model,
    Vector,
    diff_schemas,
    generate_migration,
)
from aura.schema import FieldSchema, RelationshipSchema, schema_document
from aura.transport import MemoryTransport, ReferenceServer


def fld(name: str, type_: str = "int", **options: Any) -> dict[str, Any]:
    return FieldSchema(name=name, type=type_, **options).to_dict()


def rel(name: str, target: str, kind: str = "link", on_delete: str | None = None) -> dict:
    return RelationshipSchema(name, target, kind, on_delete).to_dict()


def model(name: str, *fields: dict, relationships: tuple[dict, ...] = ()) -> dict[str, Any]:
    return {
        "name": name,
        "primary_key": "id",
        "fields": list(fields),
        "relationships": list(relationships),
    }


ID = fld("id", primary_key=True)


def one_change(old: dict, new: dict) -> Change:
    (change,) = diff_schemas([old], [new]).changes
    return change


# --------------------------------------------------------------------------- exports


def test_package_exports_check_1_and_2() -> None:  # §1.1, §15 checks 1-2
    assert aura.Model is aura.AuraModel
    assert aura.AuraCapabilityError is aura.AuraBackendCapabilityError
    assert len(aura.__all__) == 72
    assert len(set(aura.__all__)) == 72
    for name in (
        "Change",
        "MigrationPlan",
        "LockImpactEstimate",
        "diff_schemas",
        "generate_migration",
    ):
        assert name in aura.__all__
        assert getattr(aura, name) is getattr(aura.schema, name)
        assert name in aura.schema.__all__
    from aura.config import TLSConfig, TokenAuth

    assert TokenAuth("t").token == "t" and TLSConfig().enabled is False


# --------------------------------------------------------------------------- change kinds


def test_add_model_is_one_safe_change() -> None:
    new = model("MigNew", ID, fld("name", "str", unique=True), relationships=(rel("a", "X"),))
    plan = diff_schemas({"format_version": 1, "models": []}, [new])
    assert [c.to_dict() for c in plan.changes] == [
        {
            "kind": "add_model",
            "model": "MigNew",
            "target": "",
            "detail": "create model MigNew (2 field(s), 1 relationship(s))",
            "destructive": False,
            "rollback": "drop model MigNew",
        }
    ]
    assert not plan.is_destructive


def test_drop_model_is_destructive() -> None:
    change = diff_schemas([model("MigOld", ID)], []).changes[0]
    assert (change.kind, change.model, change.target) == ("drop_model", "MigOld", "")
    assert change.destructive
    assert change.detail == "drop model MigOld and all its rows"
    assert change.rollback == "create model MigOld (1 field(s), 0 relationship(s))"


@pytest.mark.parametrize(
    ("options", "destructive", "detail"),
    [
        ({}, True, "add field n: int (NOT NULL without default)"),
        ({"nullable": True}, False, "add field n: int | None"),
        ({"has_default": True}, False, "add field n: int"),
    ],
)
def test_add_field_destructive_only_when_not_null_without_default(
    options: dict, destructive: bool, detail: str
) -> None:
    change = one_change(model("MigM", ID), model("MigM", ID, fld("n", **options)))
    assert (change.kind, change.target, change.destructive) == ("add_field", "n", destructive)
    assert change.detail == detail


def test_drop_field_is_destructive() -> None:
    change = one_change(model("MigM", ID, fld("n", "str")), model("MigM", ID))
    assert change.to_dict() == {
        "kind": "drop_field",
        "model": "MigM",
        "target": "n",
        "detail": "drop field n: str",
        "destructive": True,
        "rollback": "add field n: str (NOT NULL without default)",
    }


@pytest.mark.parametrize(
    ("old", "new", "destructive", "detail"),
    [
        (fld("n"), fld("n", "str"), True, 'type: "int" -> "str"'),
        (
            fld("v", "vector", vector_dim=3),
            fld("v", "vector", vector_dim=4),
            True,
            "vector_dim: 3 -> 4",
        ),
        (fld("n", nullable=True), fld("n"), True, "nullable: true -> false"),
        (fld("n"), fld("n", nullable=True), False, "nullable: false -> true"),
        (fld("n"), fld("n", alias="N"), True, 'storage_name: "n" -> "N"'),  # §16 row 46
        (fld("n", "str"), fld("n", "str", full_text=True), False, "full_text: false -> true"),
        (
            fld("v", "vector", vector_dim=3),
            fld("v", "vector", vector_dim=3, vector_index="hnsw"),
            False,
            'vector_index: null -> "hnsw"',
        ),
        (fld("n"), fld("n", description="Age"), False, 'description: null -> "Age"'),
        (fld("n"), fld("n", has_default=True), False, "has_default: false -> true"),
        (fld("n", "list", container="list"), fld("n", "list"), True, 'container: "list" -> "none"'),
    ],
)
def test_alter_field(old: dict, new: dict, destructive: bool, detail: str) -> None:
    change = one_change(model("MigM", ID, old), model("MigM", ID, new))
    assert (change.kind, change.target) == ("alter_field", new["name"])
    assert (change.destructive, change.detail) == (destructive, detail)


def test_alter_field_lists_every_attribute_and_rollback_swaps_them() -> None:
    change = one_change(
        model("MigM", ID, fld("n", nullable=True)),
        model("MigM", ID, fld("n", "float", alias="N", description="d")),
    )
    assert change.detail == (
        'type: "int" -> "float"; nullable: true -> false; storage_name: "n" -> "N"; '
        'description: null -> "d"'
    )
    assert change.rollback == (
        'type: "float" -> "int"; nullable: false -> true; storage_name: "N" -> "n"; '
        'description: "d" -> null'
    )


def test_unchanged_schema_is_empty() -> None:
    doc = [model("MigM", ID, fld("n", alias="N")), model("MigZ", ID)]
    plan = diff_schemas(doc, {"format_version": 1, "models": list(reversed(doc))})
    assert plan.is_empty and plan.changes == ()
    assert plan.format() == "# Aura migration\n\nNo schema changes detected.\n"


@pytest.mark.parametrize(
    ("flag", "label"),
    [("index", "index"), ("unique", "unique index"), ("primary_key", "primary key")],
)
def test_index_changes(flag: str, label: str) -> None:
    plain, flagged = fld("k"), fld("k", **{flag: True})
    added = one_change(model("MigM", ID, plain), model("MigM", ID, flagged))
    dropped = one_change(model("MigM", ID, flagged), model("MigM", ID, plain))
    assert (added.kind, added.target, added.destructive) == ("add_index", "k", False)
    assert added.detail == f"add {label} on k"
    assert (dropped.kind, dropped.destructive) == ("drop_index", True)
    assert (dropped.detail, dropped.rollback) == (f"drop {label} on k", f"add {label} on k")


def test_index_replaced_by_unique_gives_add_and_drop() -> None:
    plan = diff_schemas(
        [model("MigM", ID, fld("e", "str", index=True))],
        [model("MigM", ID, fld("e", "str", unique=True))],
    )
    assert [(c.kind, c.detail, c.destructive) for c in plan.changes] == [
        ("add_index", "add unique index on e", False),
        ("drop_index", "drop index on e", True),
    ]


def test_new_and_dropped_fields_carry_their_indexes() -> None:
    plan = diff_schemas(
        [model("MigM", ID, fld("old", unique=True))],
        [model("MigM", ID, fld("new", nullable=True, index=True))],
    )
    assert [(c.kind, c.target, c.destructive) for c in plan.changes] == [
        ("add_field", "new", False),
        ("drop_field", "old", True),
        ("add_index", "new", False),
        ("drop_index", "old", True),
    ]


def test_relationship_changes() -> None:
    old = model("MigM", ID, relationships=(rel("a", "X"), rel("b", "Y"), rel("c", "Z")))
    new = model(
        "MigM",
        ID,
        relationships=(
            rel("a", "X2"),
            rel("c", "Z", on_delete="cascade"),
            rel("d", "W", "collection"),
        ),
    )
    plan = diff_schemas([old], [new])
    assert [(c.kind, c.target, c.destructive, c.detail) for c in plan.changes] == [
        ("add_relationship", "d", False, "add relationship d: collection -> W"),
        ("alter_relationship", "a", True, "a: link -> X => a: link -> X2"),
        ("alter_relationship", "c", False, "c: link -> Z => c: link -> Z (on_delete cascade)"),
        ("drop_relationship", "b", True, "drop relationship b: link -> Y"),
    ]


def test_relationship_kind_change_is_destructive() -> None:
    change = one_change(
        model("MigM", ID, relationships=(rel("a", "X"),)),
        model("MigM", ID, relationships=(rel("a", "X", "collection"),)),
    )
    assert (change.kind, change.destructive) == ("alter_relationship", True)


def test_changes_sort_by_model_kind_order_then_target() -> None:
    old = [model("MigB", ID, fld("z"), fld("y")), model("MigA", ID, fld("q"))]
    new = [
        model("MigB", ID, fld("b", nullable=True), fld("a", nullable=True), fld("z", "str")),
        model("MigC", ID),
    ]
    plan = diff_schemas(old, new)
    assert [(c.model, c.kind, c.target) for c in plan.changes] == [
        ("MigA", "drop_model", ""),
        ("MigB", "add_field", "a"),
        ("MigB", "add_field", "b"),
        ("MigB", "alter_field", "z"),
        ("MigB", "drop_field", "y"),
        ("MigC", "add_model", ""),
    ]


# --------------------------------------------------------------------------- inputs


def test_generate_migration_from_model_classes() -> None:
    def version_one() -> list[type[Model]]:
        class MigUser(Model):
            id: int = Field(primary_key=True)
            name: str
            embedding: Vector[3]

        return [MigUser]

    old = version_one()

    class MigUser(Model):
        id: int = Field(primary_key=True)
        name: str = Field(alias="full_name", full_text=True)
        embedding: Vector[3] = Field(vector_index="hnsw")
        age: int | None = None

    plan = generate_migration(old, [MigUser])
    assert [(c.kind, c.target, c.destructive, c.detail) for c in plan.changes] == [
        ("add_field", "age", False, "add field age: int | None"),
        ("alter_field", "embedding", False, 'vector_index: null -> "hnsw"'),
        (
            "alter_field",
            "name",
            True,
            'storage_name: "name" -> "full_name"; full_text: false -> true',
        ),
    ]
    assert plan == diff_schemas(schema_document(old), schema_document([MigUser]))


@pytest.mark.parametrize(
    "bad",
    [
        "models",
        42,
        None,
        {"models": "x"},
        {"format_version": 2, "models": []},
        {"format_version": True, "models": []},
        [{"fields": []}],
        ["MigM"],
        [{"name": "MigM", "fields": [{"type": "int"}]}],
        [{"name": "MigM", "fields": [{"name": 1, "type": "int"}]}],
        [{"name": "MigM", "relationships": [{"name": "a", "target": None, "kind": "link"}]}],
        [model("MigM", ID), model("MigM", ID)],
    ],
)
def test_diff_schemas_rejects_other_inputs(bad: Any) -> None:
    with pytest.raises(AuraMigrationError) as err:
        diff_schemas(bad, [])
    assert err.value.code == "migration_error"
    with pytest.raises(AuraMigrationError):
        diff_schemas([], bad)


def test_diff_schemas_error_messages() -> None:
    with pytest.raises(AuraMigrationError) as err:
        diff_schemas([], 42)
    assert err.value.message == (
        "The new schema must be a schema document or a list of model dicts, got int"
    )
    with pytest.raises(AuraMigrationError) as err:
        diff_schemas({"format_version": 2, "models": []}, [])
    assert err.value.message == "Unsupported schema format_version 2 in the old schema"


def test_generate_migration_rejects_non_models() -> None:
    with pytest.raises(AuraSchemaError):
        generate_migration([object], [])


# --------------------------------------------------------------------------- the plan


def sample_plan() -> MigrationPlan:
    return diff_schemas(
        [model("MigM", ID, fld("gone", "str"), fld("n", nullable=True))],
        [model("MigM", ID, fld("n"), fld("extra", nullable=True)), model("MigN", ID)],
    )


def test_plan_properties_and_require_safe() -> None:
    plan = sample_plan()
    assert not plan.is_empty and plan.is_destructive
    assert [c.label for c in plan.destructive_changes] == ["MigM.n", "MigM.gone"]
    assert plan.requires_live_cluster_estimate
    assert plan.impact_estimate_status == "local_only" and plan.lock_impact_estimate is None
    assert (plan.from_version, plan.to_version) == (1, 1)
    with pytest.raises(AuraMigrationError) as err:
        plan.require_safe()
    assert err.value.message == "Migration has destructive changes: MigM.n, MigM.gone"
    assert err.value.context == {"changes": ["MigM.n", "MigM.gone"]}
    safe = diff_schemas([model("MigM", ID)], [model("MigM", ID, fld("x", nullable=True))])
    assert safe.require_safe() is None


def test_plan_format() -> None:
    assert sample_plan().format() == (
        "# Aura migration\n"
        "\n"
        "Schema format 1 -> 1; 4 change(s), 2 destructive.\n"
        "Impact estimate: local only (no live cluster estimate)\n"
        "\n"
        "## MigM\n"
        "\n"
        "- add_field MigM.extra: add field extra: int | None\n"
        "  rollback: drop field extra: int | None\n"
        "- alter_field MigM.n [DESTRUCTIVE]: nullable: true -> false\n"
        "  rollback: nullable: false -> true\n"
        "- drop_field MigM.gone [DESTRUCTIVE]: drop field gone: str\n"
        "  rollback: add field gone: str (NOT NULL without default)\n"
        "\n"
        "## MigN\n"
        "\n"
        "- add_model MigN: create model MigN (1 field(s), 0 relationship(s))\n"
        "  rollback: drop model MigN\n"
    )


def test_rollback_plan_reverses_and_inverts() -> None:
    back = sample_plan().rollback_plan()
    assert [(c.kind, c.label, c.destructive, c.detail) for c in back.changes] == [
        ("drop_model", "MigN", True, "drop model MigN"),
        ("add_field", "MigM.gone", True, "add field gone: str (NOT NULL without default)"),
        ("alter_field", "MigM.n", False, "nullable: false -> true"),
        ("drop_field", "MigM.extra", True, "drop field extra: int | None"),
    ]
    # Undoing twice gives the original plan back.
    assert back.rollback_plan() == sample_plan()


def test_rollback_of_relaxed_nullability_is_destructive() -> None:
    plan = diff_schemas([model("MigM", ID, fld("n"))], [model("MigM", ID, fld("n", nullable=True))])
    assert not plan.is_destructive
    assert plan.rollback_plan().is_destructive


def test_rollback_of_index_and_relationship_changes() -> None:
    plan = diff_schemas(
        [model("MigM", ID, fld("k", unique=True), relationships=(rel("a", "X"),))],
        [
            model(
                "MigM",
                ID,
                fld("k", index=True),
                relationships=(rel("a", "X", on_delete="restrict"),),
            )
        ],
    )
    assert [(c.kind, c.destructive) for c in plan.rollback_plan().changes] == [
        ("alter_relationship", False),
        ("add_index", False),
        ("drop_index", True),
    ]


def test_server_estimate_and_statuses() -> None:
    plan = sample_plan()
    estimate = LockImpactEstimate("access_exclusive", True, 120, 5000, detail="rewrites MigM")
    estimated = plan.with_server_estimate(estimate)
    assert estimated.impact_estimate_status == "server_estimated"
    assert estimated.lock_impact_estimate is estimate
    assert not estimated.requires_live_cluster_estimate
    assert estimated.changes == plan.changes
    assert plan.impact_estimate_status == "local_only"  # plans are immutable
    assert estimated.format().splitlines()[3] == (
        "Impact estimate: lock level access_exclusive, blocking, ~120 ms, 5000 rows, "
        "rewrites MigM (source: server)"
    )
    unavailable = estimated.mark_estimate_unavailable()
    assert unavailable.impact_estimate_status == "unavailable"
    assert unavailable.lock_impact_estimate is None
    assert unavailable.requires_live_cluster_estimate
    assert unavailable.format().splitlines()[3] == "Impact estimate: unavailable"
    assert not MigrationPlan().requires_live_cluster_estimate


def test_plan_to_dict() -> None:
    estimate = LockImpactEstimate("row", False)
    plan = MigrationPlan(sample_plan().changes[:1]).with_server_estimate(estimate)
    assert plan.to_dict() == {
        "from_version": 1,
        "to_version": 1,
        "is_destructive": False,
        "impact_estimate_status": "server_estimated",
        "lock_impact_estimate": {
            "lock_level": "row",
            "blocking": False,
            "estimated_duration_ms": None,
            "affected_rows": None,
            "source": "server",
            "detail": "",
        },
        "changes": [sample_plan().changes[0].to_dict()],
    }


def test_plan_validation() -> None:
    with pytest.raises(AuraMigrationError) as err:
        MigrationPlan(impact_estimate_status="guessed")
    assert err.value.message == (
        "Unknown impact estimate status 'guessed'; "
        "expected one of local_only, server_estimated, unavailable"
    )
    estimate = LockImpactEstimate("row", False)
    for status in ("local_only", "unavailable"):
        with pytest.raises(AuraMigrationError):
            MigrationPlan(impact_estimate_status=status, lock_impact_estimate=estimate)
    with pytest.raises(AuraMigrationError):
        MigrationPlan(impact_estimate_status="server_estimated")
    with pytest.raises(AuraMigrationError):
        sample_plan().with_server_estimate({"lock_level": "row"})  # type: ignore[arg-type]
    with pytest.raises(AuraMigrationError):
        MigrationPlan(changes=("not a change",))  # type: ignore[arg-type]
    with pytest.raises(AuraMigrationError) as err:
        Change("rename_model", "M", "", "", False, "")
    assert err.value.message == "Unknown change kind 'rename_model'"
    assert MigrationPlan(changes=list(sample_plan().changes)).changes == sample_plan().changes


# --------------------------------------------------------------------------- memory backend


class MigStored(Model):
    id: int = Field(primary_key=True)
    title: str


async def test_memory_diff_schema_against_held_tables() -> None:
    server = ReferenceServer()
    async with aura.connect(
        "memory://", models=[MigStored], transport=MemoryTransport(server)
    ) as client:
        backend = client.backend
        assert (await backend.diff_schema([MigStored])).is_empty

        class MigFresh(Model):
            id: int = Field(primary_key=True)

        plan = await backend.diff_schema([MigStored, MigFresh])
        assert [(c.kind, c.model) for c in plan.changes] == [("add_model", "MigFresh")]

        await backend.drop_schema([MigStored])
        plan = await backend.diff_schema([MigStored])
        assert [(c.kind, c.model) for c in plan.changes] == [("add_model", "MigStored")]


async def test_memory_diff_schema_sees_a_changed_definition() -> None:
    server = ReferenceServer()
    async with aura.connect("memory://", models=[MigStored], transport=MemoryTransport(server)):
        pass

    def changed() -> type[Model]:
        class MigStored(Model):  # same name, new definition (same module)
            id: int = Field(primary_key=True)
            title: str = Field(alias="TITLE")

        return MigStored

    new = changed()
    try:
        async with aura.connect("memory://", transport=MemoryTransport(server)) as client:
            plan = await client.backend.diff_schema([new])
        assert [(c.kind, c.label, c.destructive) for c in plan.changes] == [
            ("alter_field", "MigStored.title", True)
        ]
    finally:
        aura.models._REGISTRY["MigStored"] = globals()["MigStored"]


async def test_memory_drop_schema_drops_rows_row_39() -> None:
    server = ReferenceServer()
    async with aura.connect(
        "memory://", models=[MigStored], transport=MemoryTransport(server)
    ) as client:
        await client.insert(MigStored(id=1, title="a"))
        assert await client.query(MigStored).count() == 1
        await client.backend.drop_schema([MigStored])
        assert server.table_names() == []
        assert server.held_schemas() == {}
        await client.backend.create_schema([MigStored])
        assert await client.query(MigStored).count() == 0
        # The old row is gone for good: the same key can be inserted again.
        await client.insert(MigStored(id=1, title="b"))
        assert [row.title for row in await client.query(MigStored).all()] == ["b"]


def test_rollback_reads_details_with_tricky_descriptions() -> None:
    tricky = 'x; type: "a" -> "b"'
    plan = diff_schemas(
        [model("MigM", ID, fld("n", description=tricky))],
        [model("MigM", ID, fld("n", nullable=True))],
    )
    (change,) = plan.changes
    assert (
        change.detail
        == 'nullable: false -> true; description: "x; type: \\"a\\" -> \\"b\\"" -> null'
    )
    assert not change.destructive
    assert plan.rollback_plan().changes[0].destructive  # restores NOT NULL


def test_inverse_of_a_hand_written_alter_is_assumed_destructive() -> None:
    change = Change("alter_field", "MigM", "n", "widen n", False, "narrow n")
    assert change.inverse() == Change("alter_field", "MigM", "n", "narrow n", True, "widen n")
