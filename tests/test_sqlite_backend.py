"""SQLite-specific behaviour (docs/sqlite.md): paths, persistence, the
quick-start, transactions on their own connections, concurrency, explain,
raw, timeouts, error mapping and injection safety. The shared semantics are
checked on both backends in tests/test_memory_backend.py."""

from __future__ import annotations

import asyncio
import pathlib
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

import aura
from aura import (
    AuraCapabilityError,
    AuraConstraintError,
    AuraDialectError,
    AuraQueryError,
    AuraRetryableTransactionError,
    AuraSchemaError,
    AuraSerializationError,
    AuraTimeoutError,
    Field,
    Model,
)
from aura.config import PoolConfig

DRIVER = "sqlite (rusqlite, bundled)"


class SqlNote(Model):
    id: int = Field(primary_key=True)
    text: str
    rank: float | None = None


class SqlOwner(Model):
    id: int = Field(primary_key=True)
    name: str = Field(unique=True)


class SqlPet(Model):
    id: int = Field(primary_key=True)
    owner: SqlOwner | None = Field(default=None, on_delete="restrict")


class SqlHostile(Model):
    id: int = Field(primary_key=True)
    value: str = Field(alias='va"l; DROP TABLE SqlNote; --')
    other: str = Field(alias="`x`")


class SqlGuard(Model):
    id: int = Field(primary_key=True)
    stamp: str = Field(alias="'); DELETE FROM SqlNote; --", default="g")


@pytest.fixture
async def db() -> AsyncIterator[aura.Client]:
    async with aura.connect("sqlite://", models=[SqlNote, SqlOwner, SqlPet]) as client:
        yield client


# -- paths and persistence ---------------------------------------------------------------


async def test_relative_and_absolute_paths(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with aura.connect("sqlite:///rel.db", models=[SqlNote]) as db:
        await db.insert(SqlNote(id=1, text="kept"))
        assert db.backend.path == "rel.db"  # type: ignore[attr-defined]
    assert (tmp_path / "rel.db").is_file()
    absolute = tmp_path / "sub" / "abs.db"
    absolute.parent.mkdir()
    async with aura.connect(f"sqlite+aiosqlite:///{absolute}", models=[SqlNote]) as db:
        await db.insert(SqlNote(id=2, text="abs"))
    assert absolute.is_file()
    # a file database keeps its rows across connections
    async with aura.connect("sqlite:///rel.db", models=[SqlNote]) as db:
        assert [(n.id, n.text) for n in await db.query(SqlNote).all()] == [(1, "kept")]


async def test_private_database_is_fresh_and_removed() -> None:
    async with aura.connect("sqlite://", models=[SqlNote]) as a:
        path = pathlib.Path(a.backend.path)  # type: ignore[attr-defined]
        await a.insert(SqlNote(id=1, text="a"))
        async with aura.connect("sqlite://:memory:", models=[SqlNote]) as b:
            assert await b.query(SqlNote).count() == 0
        assert path.is_file()
    assert not path.exists()  # removed on close


async def test_quick_start_runs_verbatim(tmp_path: pathlib.Path) -> None:
    docs = (pathlib.Path(__file__).parent.parent / "docs" / "sqlite.md").read_text()
    code = re.search(r"```python\n(.*?)```", docs, re.S)
    assert code is not None and 'Aura.connect("sqlite:///app.db"' in code.group(1)
    for _ in range(2):  # runs again against the same file
        result = subprocess.run(
            [sys.executable, "-c", code.group(1)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == "Ada\n"
    assert (tmp_path / "app.db").is_file()


async def test_dsn_options_are_honoured_or_rejected() -> None:
    for dsn in ("sqlite://?cache=shared", "sqlite://?timeout=x", "sqlite://?mode=wal"):
        with pytest.raises(aura.AuraError) as info:
            await aura.connect(dsn)
        assert info.value.code == "config_error"
    with pytest.raises(aura.AuraError) as info:
        await aura.connect("sqlite://", auth=aura.PasswordAuth("u", "s3cret"))
    assert info.value.code == "config_error" and "s3cret" not in str(info.value)


async def test_read_only_mode(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "ro.db"
    async with aura.connect(f"sqlite:///{path}", models=[SqlNote]) as db:
        await db.insert(SqlNote(id=1, text="x"))
    async with aura.connect(f"sqlite:///{path}?mode=ro") as db:
        rows = await db.raw("SELECT text FROM SqlNote")
        assert rows == [{"text": "x"}]
        with pytest.raises(aura.AuraBackendError) as info:
            await db.raw("DELETE FROM SqlNote")
        assert info.value.context["driver"] == DRIVER


# -- capabilities -------------------------------------------------------------------------


async def test_capabilities_are_honest(db: aura.Client) -> None:
    caps = db.capabilities()
    assert caps.name == "sqlite"
    assert (caps.transactions, caps.relationships, caps.raw_queries, caps.query_timeouts) == (
        True,
        True,
        True,
        True,
    )
    assert (caps.full_text_search, caps.aggregations_and_facets) == (True, True)
    assert (caps.vector_search, caps.hybrid_search, caps.graph_traversal) == (False, False, False)
    assert caps.ranked_pagination is False
    with pytest.raises(AuraCapabilityError) as info:
        await db.search(SqlNote).search_vector("rank", [1.0], top_k=1).all()
    assert info.value.context == {"backend": "sqlite", "capability": "vector_search"}
    with pytest.raises(AuraCapabilityError) as legacy:
        await db.query(SqlNote).text("text", query="a").all()
    assert legacy.value.message == "Backend 'sqlite' does not support legacy text search"


# -- explain, raw, timeouts -------------------------------------------------------------


async def test_explain_returns_ir_sql_and_plan(db: aura.Client) -> None:
    ir = db.query(SqlNote).where(SqlNote.id == 3).where(SqlNote.text.contains("x")).explain()
    out = db.backend.explain(ir)
    assert out["sql"] == (
        'SELECT "id", "text", "rank" FROM "SqlNote" WHERE ("id" = ? AND "text" LIKE ? '
        "ESCAPE '!') ORDER BY \"id\" ASC"
    )
    assert out["plan"] == ["SEARCH SqlNote USING INTEGER PRIMARY KEY (rowid=?)"]
    assert out["filters"] == ir["filters"]


async def test_raw_binds_named_and_positional_params(db: aura.Client) -> None:
    await db.raw("INSERT INTO SqlNote (id, text) VALUES (:id, :text)", {"id": 1, "text": "a'b"})
    await db.raw("INSERT INTO SqlNote (id, text) VALUES (?, ?)", [2, "c"])
    assert await db.raw("SELECT id, text FROM SqlNote WHERE text = :t", {"t": "a'b"}) == [
        {"id": 1, "text": "a'b"}
    ]
    with pytest.raises(AuraQueryError) as info:
        await db.raw("SELECT 1 WHERE :a", {"b": 1})
    assert info.value.message == "raw() parameter ':b' does not appear in the statement"


async def test_timeout_is_enforced_by_the_database(db: aura.Client) -> None:
    await db.raw(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) "
        "INSERT INTO SqlNote (id, text) SELECT x, 'note ' || x FROM c"
    )
    slow = db.query(SqlNote).where(SqlNote.text.endswith("zz"))
    with pytest.raises(AuraTimeoutError) as info:
        await slow.timeout(1).count()
    assert info.value.message == "query exceeded its timeout of 1 ms"
    assert info.value.context["driver"] == DRIVER
    assert await slow.timeout(60_000).count() == 0  # the connection is usable afterwards


# -- errors ---------------------------------------------------------------------------------


async def test_driver_errors_map_to_the_taxonomy(db: aura.Client) -> None:
    await db.insert(SqlOwner(id=1, name="secret-name"))
    with pytest.raises(AuraConstraintError) as unique:
        await db.insert(SqlOwner(id=2, name="secret-name"))
    assert unique.value.message == "SqlOwner.name must be unique"
    assert unique.value.context == {
        "model": "SqlOwner",
        "field": "name",
        "driver": DRIVER,
        "sqlite_code": 2067,
    }
    assert "secret-name" not in str(unique.value) and "secret-name" not in repr(unique.value)
    with pytest.raises(AuraConstraintError) as pk:
        await db.insert(SqlOwner(id=1, name="other"))
    assert pk.value.message == "SqlOwner already has a row with this primary key"
    with pytest.raises(AuraSerializationError):
        await db.insert(SqlNote(id=1, text="x", rank=float("nan")))
    await db.backend.drop_schema([SqlNote])
    with pytest.raises(AuraSchemaError) as missing:
        await db.raw("SELECT * FROM SqlNote")
    assert (
        missing.value.message
        == "Table 'SqlNote' does not exist; register its model with the client"
    )


async def test_on_delete_restrict(db: aura.Client) -> None:
    await db.insert(SqlOwner(id=1, name="o"))
    await db.insert(SqlPet(id=1, owner=await db.SqlOwner.find(id=1)))
    with pytest.raises(AuraConstraintError) as info:
        await db.delete(SqlOwner).where(SqlOwner.id == 1).execute()
    assert info.value.message == "SqlOwner row is still referenced by SqlPet.owner"
    assert await db.query(SqlOwner).count() == 1  # nothing applied
    await db.delete(SqlPet).execute()
    assert await db.delete(SqlOwner).execute() == 1


async def test_document_paths_and_json_order_are_explicit(db: aura.Client) -> None:
    class SqlDoc(Model):
        id: int = Field(primary_key=True)
        meta: dict[str, int] = Field(default_factory=dict)

    async with aura.connect("sqlite://", models=[SqlDoc]) as local:
        await local.insert(SqlDoc(id=1, meta={"a": 1}))
        assert [d.id for d in await local.query(SqlDoc).where(SqlDoc.meta["a"] == 1).all()] == [1]
        with pytest.raises(AuraDialectError):
            await local.query(SqlDoc).order_by(SqlDoc.meta).all()


# -- injection -----------------------------------------------------------------------------

HOSTILE = [
    "'; DROP TABLE SqlNote; --",
    '"; DROP TABLE SqlNote; --',
    "` OR 1=1; --",
    "%' OR '1'='1",
    "\\'; DELETE FROM SqlNote; --",
    "1); DROP TABLE SqlHostile; --",
    "ünïcødé 💥 '\"`",
]


async def test_hostile_values_and_identifiers_stay_data() -> None:
    async with aura.connect("sqlite://", models=[SqlNote, SqlHostile, SqlGuard]) as db:
        await db.insert(SqlNote(id=1, text="survivor"))
        for i, value in enumerate(HOSTILE):
            await db.insert(SqlHostile(id=i, value=value, other=value))
            await db.insert(SqlGuard(id=i, stamp=value))
            assert [
                h.id for h in await db.query(SqlHostile).where(SqlHostile.value == value).all()
            ] == [i]
            assert await db.query(SqlHostile).where(SqlHostile.other.contains(value)).count() == 1
            assert await db.query(SqlHostile).where(SqlHostile.value.like(value)).count() >= 0
            await db.update(SqlHostile).where(SqlHostile.id == i).set(other=value + "!").execute()
            await db.upsert(SqlGuard, key={"id": i}, values={"stamp": value})
            assert await db.raw("SELECT id FROM SqlNote WHERE text = :v", {"v": value}) == []
        rows = await db.query(SqlHostile).order_by(SqlHostile.id).all()
        assert [r.value for r in rows] == HOSTILE
        assert [r.other for r in rows] == [v + "!" for v in HOSTILE]
        assert [g.stamp for g in await db.query(SqlGuard).all()] == HOSTILE
        # every table is intact
        tables = await db.raw("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        assert [t["name"] for t in tables] == ["SqlGuard", "SqlHostile", "SqlNote"]
        assert [(n.id, n.text) for n in await db.query(SqlNote).all()] == [(1, "survivor")]
        assert await db.query(SqlHostile).count() == len(HOSTILE)


async def test_identifiers_with_nul_are_dialect_errors() -> None:
    class SqlNul(Model):
        id: int = Field(primary_key=True)
        bad: str = Field(alias="a\x00b")

    with pytest.raises(AuraDialectError) as info:
        await aura.connect("sqlite://", models=[SqlNul])
    assert (
        info.value.message == "SQL identifiers must be non-empty and cannot contain NUL characters"
    )


# -- transactions and concurrency ---------------------------------------------------------


async def test_sixty_four_tasks_and_an_invisible_transaction(db: aura.Client) -> None:
    tx = await db.transaction().begin()
    await tx.insert(SqlNote(id=10_000, text="uncommitted"))
    seen: list[int] = []

    async def reader(i: int) -> None:
        seen.append(await db.query(SqlNote).where(SqlNote.id == 10_000).count())
        assert await db.query(SqlNote).where(SqlNote.id >= 0).count() == 0

    await asyncio.gather(*(reader(i) for i in range(64)))
    assert seen == [0] * 64
    assert await tx.query(SqlNote).count() == 1
    await tx.commit()

    async def writer(i: int) -> None:
        await db.insert(SqlNote(id=i, text=f"n{i}"))
        assert (await db.SqlNote.find(id=i)).text == f"n{i}"

    await asyncio.gather(*(writer(i) for i in range(64)))
    assert await db.query(SqlNote).count() == 65


async def test_a_second_writer_waits_then_conflicts(tmp_path: pathlib.Path) -> None:
    async with aura.connect(f"sqlite:///{tmp_path / 'w.db'}?timeout=0.05", models=[SqlNote]) as db:
        first = await db.transaction().begin()
        await first.insert(SqlNote(id=1, text="first"))
        with pytest.raises(AuraRetryableTransactionError) as info:
            await db.transaction().begin()
        assert info.value.code == "conflict" and info.value.retryable is True
        assert isinstance(info.value, AuraConstraintError)
        await first.commit()
        async with db.transaction() as second:  # the lock is free again
            await second.update(SqlNote).set(text="second").execute()
        assert (await db.SqlNote.find(id=1)).text == "second"


async def test_serialized_read_modify_write_loses_no_update(db: aura.Client) -> None:
    await db.insert(SqlNote(id=1, text="counter", rank=0))

    async def worker() -> None:
        for _ in range(25):
            async with db.transaction() as tx:
                row = await tx.query(SqlNote).where(SqlNote.id == 1).one()
                await asyncio.sleep(0)
                await (
                    tx.update(SqlNote)
                    .where(SqlNote.id == 1)
                    .set(rank=(row.rank or 0) + 1)
                    .execute()
                )

    await asyncio.gather(*(worker() for _ in range(8)))
    assert (await db.SqlNote.find(id=1)).rank == 200


async def test_pool_size_one_still_serves_everyone() -> None:
    async with aura.connect(
        "sqlite://", models=[SqlNote], pool=PoolConfig(min_size=1, max_size=1)
    ) as db:
        await asyncio.gather(*(db.insert(SqlNote(id=i, text="x")) for i in range(20)))
        counts = await asyncio.gather(*(db.query(SqlNote).count() for _ in range(20)))
        assert counts == [20] * 20


async def test_rolled_back_and_dropped_transactions_leave_nothing(db: aura.Client) -> None:
    tx = await db.transaction().begin()
    await tx.insert(SqlNote(id=1, text="gone"))
    await tx.rollback()
    assert await db.query(SqlNote).count() == 0
    async with db.transaction() as again:  # the connection went back to the pool
        await again.insert(SqlNote(id=2, text="kept"))
    assert [n.id for n in await db.query(SqlNote).all()] == [2]


def test_a_backend_left_out_of_the_build_names_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aura.backends import registry

    real_import = registry.importlib.import_module

    def without_postgres(name: str) -> Any:
        if name == "aura.backends.postgresql":
            raise ModuleNotFoundError(name=name)
        return real_import(name)

    monkeypatch.setattr(registry.importlib, "import_module", without_postgres)
    with pytest.raises(aura.AuraDriverNotInstalledError) as info:
        registry.resolve_backend("postgresql://h/db")
    assert str(info.value) == (
        "[driver_not_installed] The 'tokio-postgres' driver is required for the postgres "
        "backend but is not included in this build of aura-connector. Install with: "
        "pip install aura-connector[postgres]"
    )
    assert info.value.context == {
        "driver": "tokio-postgres",
        "extra": "postgres",
        "backend": "postgres",
    }
    # SQLite is always part of the build: no driver error, no Python driver needed
    assert registry.resolve_backend("sqlite://").name == "sqlite"
