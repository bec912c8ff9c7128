"""postgresql:// against raw asyncpg and the SQLAlchemy 2 async ORM, in one
run, on the same machine and server.

    .venv/bin/python -m pip install -r benches/requirements.txt
    AURA_BENCH_POSTGRES_DSN=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benches/bench_postgres.py [--rows 100000] [--repeat 3]

Workloads (each side on its own freshly created table, in a schema of its
own that is dropped afterwards):

- insert: N rows; aura ``bulk_insert`` of model instances (one call:
  binary COPY in one transaction), asyncpg ``copy_records_to_table`` of
  tuples, SQLAlchemy ``session.add_all`` + ``commit`` of ORM objects;
- fetch: all N rows; aura returns model instances, asyncpg ``fetch``
  returns ``Record`` tuples, SQLAlchemy ``select(User)`` returns ORM objects.

Ratios are aura time / peer time (lower is better; 1.0 = as fast). Each
workload runs ``--repeat`` times and the best time counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import asyncpg
import sqlalchemy
from sqlalchemy import BigInteger, Boolean, Float, Text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import aura
from aura import Field, Model

DSN = os.environ.get("AURA_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
COLUMNS = ["id", "email", "name", "age", "score", "active"]


class BenchPgUser(Model):
    id: int = Field(primary_key=True)
    email: str = Field(unique=True)
    name: str
    age: int
    score: float
    active: bool


class Base(DeclarativeBase):
    pass


class SaUser(Base):
    __tablename__ = "sa_user"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    email: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    age: Mapped[int] = mapped_column(BigInteger)
    score: Mapped[float] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean)


RAW_DDL = (
    "CREATE TABLE raw_user (id BIGINT PRIMARY KEY, email TEXT NOT NULL UNIQUE, "
    "name TEXT NOT NULL, age BIGINT NOT NULL, score DOUBLE PRECISION NOT NULL, "
    "active BOOLEAN NOT NULL)"
)


def make_tuples(n: int) -> list[tuple[Any, ...]]:
    return [
        (i, f"user{i}@example.com", f"user {i}", 18 + i % 60, i * 0.5, i % 2 == 0) for i in range(n)
    ]


async def best(repeat: int, setup: Callable[[], Awaitable[Any]], work: Any) -> float:
    times = []
    for _ in range(repeat):
        state = await setup()
        started = time.perf_counter()
        await work(state)
        times.append(time.perf_counter() - started)
    return min(times)


def in_schema(schema: str) -> str:
    sep = "&" if "?" in DSN else "?"
    return f"{DSN}{sep}options={quote(f'-c search_path={schema}')}"


async def aura_side(schema: str, rows: list[tuple[Any, ...]], repeat: int) -> dict[str, float]:
    instances = [BenchPgUser(**dict(zip(COLUMNS, r, strict=True))) for r in rows]
    db = await aura.connect(in_schema(schema), models=[BenchPgUser])

    async def fresh() -> aura.Client:
        await db.backend.drop_schema([BenchPgUser])
        await db.backend.create_schema([BenchPgUser])
        return db

    async def insert(db: aura.Client) -> None:
        assert await db.bulk_insert(BenchPgUser, instances, batch_size=len(rows)) == len(rows)

    async def same() -> aura.Client:
        return db

    async def fetch(db: aura.Client) -> None:
        assert len(await db.query(BenchPgUser).all()) == len(rows)

    out = {"insert": await best(repeat, fresh, insert)}
    out["fetch"] = await best(repeat, same, fetch)
    await db.close()
    return out


async def asyncpg_side(schema: str, rows: list[tuple[Any, ...]], repeat: int) -> dict[str, float]:
    conn = await asyncpg.connect(DSN, server_settings={"search_path": schema})

    async def fresh() -> asyncpg.Connection:
        await conn.execute("DROP TABLE IF EXISTS raw_user")
        await conn.execute(RAW_DDL)
        return conn

    async def insert(conn: asyncpg.Connection) -> None:
        await conn.copy_records_to_table("raw_user", records=rows, columns=COLUMNS)

    async def same() -> asyncpg.Connection:
        return conn

    async def fetch(conn: asyncpg.Connection) -> None:
        assert len(await conn.fetch(f"SELECT {', '.join(COLUMNS)} FROM raw_user")) == len(rows)

    out = {"insert": await best(repeat, fresh, insert)}
    out["fetch"] = await best(repeat, same, fetch)
    await conn.close()
    return out


async def sqlalchemy_side(
    schema: str, rows: list[tuple[Any, ...]], repeat: int
) -> dict[str, float]:
    url = DSN.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def fresh() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.run_sync(Base.metadata.create_all)

    async def insert(_: None) -> None:
        async with sessions() as session:
            session.add_all([SaUser(**dict(zip(COLUMNS, r, strict=True))) for r in rows])
            await session.commit()

    async def same() -> None:
        return None

    async def fetch(_: None) -> None:
        async with sessions() as session:
            result = await session.execute(sqlalchemy.select(SaUser))
            assert len(result.scalars().all()) == len(rows)

    out = {"insert": await best(repeat, fresh, insert)}
    out["fetch"] = await best(repeat, same, fetch)
    await engine.dispose()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = make_tuples(args.rows)
    schema = f"aura_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(DSN)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        ours = await aura_side(schema, rows, args.repeat)
        raw = await asyncpg_side(schema, rows, args.repeat)
        orm = await sqlalchemy_side(schema, rows, args.repeat)
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()
    report = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "asyncpg": asyncpg.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "rows": args.rows,
        "seconds": {"aura": ours, "asyncpg": raw, "sqlalchemy": orm},
        "ratio_aura_over_asyncpg": {k: round(ours[k] / raw[k], 3) for k in ours},
        "speedup_aura_vs_sqlalchemy": {k: round(orm[k] / ours[k], 2) for k in ours},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
