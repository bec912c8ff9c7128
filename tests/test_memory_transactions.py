"""Transactions (API.md §6, §15 checks 37-40, §16 rows 1-5) on the memory
engine, SQLite and PostgreSQL, and concurrent read-modify-write without
lost updates.

PostgreSQL runs REPEATABLE READ (its snapshot isolation) with row locks:
a second writer of a row fails with the retryable ``conflict`` at its
write, once the first holds the lock past ``lock_timeout``, and a plain
write from outside waits for the transaction holding the row
(docs/postgres.md).

Tests taking ``db`` run on both backends. SQLite runs one writer at a time
(BEGIN IMMEDIATE; docs/sqlite.md), so the checks that need two open writers
at once (first-committer-wins, writes from outside during a transaction) are
memory-only, and tests/test_sqlite_backend.py checks SQLite's own behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import aura
from _backends import BACKENDS, connect_backend, lacks
from aura import (
    AuraCapabilityError,
    AuraConstraintError,
    AuraRetryableTransactionError,
    AuraTransactionError,
    Field,
    Model,
)


class TxCounter(Model):
    id: int = Field(primary_key=True)
    value: int


class TxItem(Model):
    id: int = Field(primary_key=True)
    name: str


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest) -> AsyncIterator[aura.Client]:
    """Backends without transactions (MongoDB, Redis) are asserted to refuse
    them here, then the test is skipped with that reason."""
    async with connect_backend(request.param, [TxCounter, TxItem]) as client:
        if lacks(client, "transactions"):
            with pytest.raises(AuraCapabilityError) as info:
                client.transaction()
            assert info.value.context == {
                "backend": client.backend.name,
                "capability": "transactions",
            }
            assert info.value.message == (
                f"Backend '{client.backend.name}' does not support transactions"
            )
            pytest.skip(f"{client.backend.name}: no transactions (capability error asserted)")
        yield client


def skip_single_writer(db: aura.Client) -> None:
    """SQLite runs one writer at a time: a second writing transaction waits
    for the first instead of racing it (docs/sqlite.md)."""
    if db.backend.name == "sqlite":
        pytest.skip("sqlite: one writer at a time, so concurrent snapshots do not interleave")


async def test_reads_inside_see_own_writes_only(db: aura.Client) -> None:  # check 37
    async with db.transaction() as tx:
        await tx.insert(TxItem(id=1, name="a"))
        assert await tx.query(TxItem).count() == 1
        assert await db.query(TxItem).count() == 0
    assert await db.query(TxItem).count() == 1


async def test_exception_discards_the_transaction(db: aura.Client) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.insert(TxItem(id=1, name="a"))
            raise RuntimeError("boom")
    assert await db.query(TxItem).count() == 0


async def test_own_deletes_invisible_inside(db: aura.Client) -> None:
    await db.insert(TxItem(id=1, name="a"))
    async with db.transaction() as tx:
        assert await tx.delete(TxItem).where(TxItem.id == 1).execute() == 1
        assert await tx.query(TxItem).count() == 0
        assert await db.query(TxItem).count() == 1
    assert await db.query(TxItem).count() == 0


async def test_snapshot_ignores_later_commits(db: aura.Client) -> None:
    skip_single_writer(db)
    async with db.transaction() as tx:
        await db.insert(TxItem(id=9, name="outside"))
        assert await tx.query(TxItem).count() == 0


async def test_first_committer_wins(db: aura.Client) -> None:  # check 38
    skip_single_writer(db)
    await db.insert(TxCounter(id=1, value=0))
    first = await db.transaction().begin()
    second = await db.transaction().begin()
    await first.update(TxCounter).where(TxCounter.id == 1).set(value=1).execute()
    second_write = second.update(TxCounter).where(TxCounter.id == 1).set(value=2).execute()
    if db.backend.name in ("postgres", "mysql"):  # locked by `first`: conflict at the write
        with pytest.raises(AuraRetryableTransactionError) as early:
            await second_write
        assert early.value.code == "conflict"
    else:
        await second_write
    await first.commit()
    with pytest.raises(AuraRetryableTransactionError) as info:
        await second.commit()
    err = info.value
    assert err.code == "conflict" and err.retryable is True
    assert isinstance(err, AuraConstraintError)  # §16 row 2
    assert (await db.TxCounter.find(id=1)).value == 1


async def test_disjoint_writes_both_commit(db: aura.Client) -> None:
    skip_single_writer(db)
    await db.bulk_insert(TxCounter, [TxCounter(id=1, value=0), TxCounter(id=2, value=0)])
    a = await db.transaction().begin()
    b = await db.transaction().begin()
    await a.update(TxCounter).where(TxCounter.id == 1).set(value=10).execute()
    await b.update(TxCounter).where(TxCounter.id == 2).set(value=20).execute()
    await a.commit()
    await b.commit()
    values = [c.value for c in await db.query(TxCounter).order_by(TxCounter.id).all()]
    assert values == [10, 20]


async def test_plain_write_during_transaction_survives(db: aura.Client) -> None:  # check 39
    skip_single_writer(db)
    async with db.transaction() as tx:
        await tx.insert(TxItem(id=1, name="in"))
        await db.insert(TxItem(id=2, name="out"))
    names = [i.name for i in await db.query(TxItem).order_by(TxItem.id).all()]
    assert names == ["in", "out"]


async def test_isolation_tokens(db: aura.Client) -> None:  # check 40, §16 row 4
    for token in ("snapshot", "snapshot_isolation", "serializable"):
        async with db.transaction(isolation=token) as tx:
            await tx.insert(TxItem(id=len(token), name=token))
    with pytest.raises(AuraTransactionError):
        db.transaction(isolation="bogus")
    with pytest.raises(AuraTransactionError):
        db.transaction(isolation="read_committed")


async def test_finished_transaction_refuses_work(db: aura.Client) -> None:  # §16 row 3
    tx = db.transaction()
    async with tx:
        await tx.insert(TxItem(id=1, name="a"))
    with pytest.raises(AuraTransactionError):
        await tx.query(TxItem).all()
    with pytest.raises(AuraTransactionError):
        await tx.insert(TxItem(id=2, name="b"))
    await tx.commit()  # a no-op once finished
    await tx.rollback()


async def test_transaction_ids_are_client_local(db: aura.Client) -> None:
    assert [db.transaction().id for _ in range(3)] == [1, 2, 3]


async def test_unique_violation_at_commit_applies_nothing(db: aura.Client) -> None:
    skip_single_writer(db)
    if db.backend.name in ("postgres", "mysql"):
        pytest.skip(
            f"{db.backend.name}: the outside insert waits for the transaction holding the key"
        )
    tx = await db.transaction().begin()
    await tx.insert(TxItem(id=1, name="tx"))
    await tx.insert(TxItem(id=2, name="tx2"))
    await db.insert(TxItem(id=1, name="outside"))
    with pytest.raises(AuraConstraintError):
        await tx.commit()
    rows = await db.query(TxItem).all()
    assert [(r.id, r.name) for r in rows] == [(1, "outside")]


async def test_concurrent_read_modify_write_loses_no_update(db: aura.Client) -> None:
    skip_single_writer(db)
    counters = 4
    await db.bulk_insert(TxCounter, [TxCounter(id=i, value=0) for i in range(counters)])
    committed = [0] * counters
    conflicts = 0

    async def worker(seed: int) -> None:
        nonlocal conflicts
        for step in range(1000):
            key = (seed * 31 + step) % counters
            while True:
                tx = await db.transaction().begin()
                row = await tx.query(TxCounter).where(TxCounter.id == key).one()
                await asyncio.sleep(0)  # let other tasks interleave
                try:
                    # PostgreSQL reports the conflict at the write, others at commit.
                    await (
                        tx.update(TxCounter)
                        .where(TxCounter.id == key)
                        .set(value=row.value + 1)
                        .execute()
                    )
                    await tx.commit()
                except AuraRetryableTransactionError:
                    conflicts += 1
                    continue
                committed[key] += 1
                break

    await asyncio.gather(*(worker(seed) for seed in range(8)))
    totals = [c.value for c in await db.query(TxCounter).order_by(TxCounter.id).all()]
    assert totals == committed
    assert sum(totals) == 8000
    assert conflicts > 0  # the interleaving really produced conflicts
