"""sqlite:// against raw aiosqlite, in one run, on the same machine.

    .venv/bin/python -m pip install -r benches/requirements.txt
    .venv/bin/python benches/bench_sqlite.py [--rows 100000] [--lookups 10000]

Workloads (both sides on a fresh file database in a temporary directory,
WAL and synchronous=NORMAL):

- insert: N rows; aura ``bulk_insert`` of model instances (batches of
  1000, each its own transaction), aiosqlite ``executemany`` of tuples in
  one transaction;
- fetch: all N rows; aura returns model instances, aiosqlite
  ``fetchall()`` returns plain tuples;
- lookups: point lookups by primary key; aura ``await db.M.find(id=k)``
  (an instance), aiosqlite ``execute`` + ``fetchone`` (a tuple).

Ratios are aura time / aiosqlite time (lower is better; 1.0 = as fast).
Each workload runs ``--repeat`` times and the best time counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import platform
import random
import tempfile
import time
from typing import Any

import aiosqlite

import aura
from aura import Field, Model


class BenchSqlUser(Model):
    id: int = Field(primary_key=True)
    email: str = Field(unique=True)
    name: str
    age: int
    score: float
    active: bool


COLUMNS = "id, email, name, age, score, active"
DDL = (
    'CREATE TABLE IF NOT EXISTS "BenchSqlUser" ("id" INTEGER NOT NULL PRIMARY KEY, '
    '"email" TEXT NOT NULL UNIQUE, "name" TEXT NOT NULL, "age" INTEGER NOT NULL, '
    '"score" REAL NOT NULL, "active" INTEGER NOT NULL)'
)


def make_tuples(n: int) -> list[tuple[Any, ...]]:
    return [
        (i, f"user{i}@example.com", f"user {i}", 18 + i % 60, i * 0.5, i % 2 == 0) for i in range(n)
    ]


async def best(repeat: int, setup: Any, work: Any, close: Any = None) -> float:
    """Best time of `work` over `repeat` runs; `close` releases what `setup` made
    (an unclosed aiosqlite connection keeps its thread, and the process, alive)."""
    times = []
    for _ in range(repeat):
        state = await setup()
        started = time.perf_counter()
        await work(state)
        times.append(time.perf_counter() - started)
        if close is not None:
            await close(state)
    return min(times)


async def aura_side(
    root: pathlib.Path, rows: list[tuple[Any, ...]], keys: list[int], repeat: int
) -> dict[str, float]:
    instances = [BenchSqlUser(**dict(zip(COLUMNS.split(", "), r, strict=True))) for r in rows]
    counter = iter(range(10**6))

    async def fresh() -> aura.Client:
        path = root / f"aura-{next(counter)}.db"
        return await aura.connect(f"sqlite:///{path}", models=[BenchSqlUser])

    async def insert(db: aura.Client) -> None:
        assert await db.bulk_insert(BenchSqlUser, instances) == len(rows)

    async def close(db: aura.Client) -> None:
        await db.close()

    out = {"insert": await best(repeat, fresh, insert, close)}
    db = await fresh()
    await insert(db)

    async def same() -> aura.Client:
        return db

    async def fetch(db: aura.Client) -> None:
        assert len(await db.query(BenchSqlUser).all()) == len(rows)

    async def lookups(db: aura.Client) -> None:
        for k in keys:
            user = await db.BenchSqlUser.find(id=k)
            assert user.id == k

    out["fetch"] = await best(repeat, same, fetch)
    out["lookups"] = await best(repeat, same, lookups)
    await db.close()
    return out


async def aiosqlite_side(
    root: pathlib.Path, rows: list[tuple[Any, ...]], keys: list[int], repeat: int
) -> dict[str, float]:
    counter = iter(range(10**6))

    async def fresh() -> aiosqlite.Connection:
        db = await aiosqlite.connect(root / f"raw-{next(counter)}.db")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute(DDL)
        await db.commit()
        return db

    async def insert(db: aiosqlite.Connection) -> None:
        await db.executemany(
            f"INSERT INTO BenchSqlUser ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows
        )
        await db.commit()

    async def close(db: aiosqlite.Connection) -> None:
        await db.close()

    out = {"insert": await best(repeat, fresh, insert, close)}
    db = await fresh()
    await insert(db)

    async def same() -> aiosqlite.Connection:
        return db

    async def fetch(db: aiosqlite.Connection) -> None:
        async with db.execute(f"SELECT {COLUMNS} FROM BenchSqlUser") as cursor:
            assert len(await cursor.fetchall()) == len(rows)

    async def lookups(db: aiosqlite.Connection) -> None:
        for k in keys:
            async with db.execute(
                f"SELECT {COLUMNS} FROM BenchSqlUser WHERE id = ?", (k,)
            ) as cursor:
                row = await cursor.fetchone()
                assert row is not None and row[0] == k

    out["fetch"] = await best(repeat, same, fetch)
    out["lookups"] = await best(repeat, same, lookups)
    await db.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = make_tuples(args.rows)
    keys = [random.Random(7).randrange(args.rows) for _ in range(args.lookups)]
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        ours = await aura_side(root, rows, keys, args.repeat)
        peer = await aiosqlite_side(root, rows, keys, args.repeat)
    report = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "aiosqlite": aiosqlite.__version__,
        "rows": args.rows,
        "lookups": args.lookups,
        "seconds": {"aura": ours, "aiosqlite": peer},
        "ratio_aura_over_aiosqlite": {k: round(ours[k] / peer[k], 3) for k in ours},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
