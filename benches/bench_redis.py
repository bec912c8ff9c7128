"""redis:// (aura, model instances) against the `redis` Python client
(redis.asyncio, JSON dicts) on the same server, in one run.

    .venv/bin/pip install -r benches/requirements.txt
    .venv/bin/python benches/bench_redis.py [--dsn redis://127.0.0.1:6379/0] [--n 10000]

Workloads: N sets and N gets by key, sequential and 64 concurrent. aura
sets are `client.insert(row)` (SET NX of the typed JSON row) and gets are
`query(M).where(M.id == k).one()` returning a model instance; the peer runs
`SET key json.dumps(row)` and `json.loads(GET key)`. Every key lives under a
unique prefix, deleted afterwards. Ratios are redis-py time / aura time
(above 1 means aura is faster).
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

import redis.asyncio as redis_asyncio

import aura
from aura import Field, Model


class RdsBenchRow(Model):
    id: int = Field(primary_key=True)
    name: str
    age: int
    score: float


async def timed(run: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await run()
    return time.perf_counter() - start


async def bounded(n: int, one: Callable[[int], Awaitable[Any]]) -> None:
    sem = asyncio.Semaphore(64)

    async def task(i: int) -> None:
        async with sem:
            await one(i)

    await asyncio.gather(*(task(i) for i in range(n)))


def row(i: int) -> dict[str, Any]:
    return {"id": i, "name": f"n{i}", "age": i % 90, "score": i / 7}


async def aura_workloads(dsn: str, n: int) -> dict[str, float]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    sep = "&" if "?" in dsn else "?"
    async with aura.connect(f"{dsn}{sep}key_prefix={prefix}", models=[RdsBenchRow]) as client:
        q = client.query(RdsBenchRow)

        async def get(i: int) -> None:
            got = await q.where(RdsBenchRow.id == i).one()
            assert got.id == i

        async def sets_seq() -> None:
            for i in range(n):
                await client.insert(RdsBenchRow(**row(i)))

        async def gets_seq() -> None:
            for i in range(n):
                await get(i)

        try:
            out = {
                "sets, sequential": await timed(sets_seq),
                "gets, sequential": await timed(gets_seq),
            }
            await client.delete(RdsBenchRow).execute()
            out["sets, 64 concurrent"] = await timed(
                lambda: bounded(n, lambda i: client.insert(RdsBenchRow(**row(i))))
            )
            out["gets, 64 concurrent"] = await timed(lambda: bounded(n, get))
        finally:
            await client.delete(RdsBenchRow).execute()
    return out


async def peer_workloads(dsn: str, n: int) -> dict[str, float]:
    prefix = f"bench-peer-{uuid.uuid4().hex[:8]}:RdsBenchRow:"
    r = redis_asyncio.Redis.from_url(dsn)

    async def set_(i: int) -> None:
        await r.set(f"{prefix}{i}", json.dumps(row(i)), nx=True)

    async def get(i: int) -> None:
        got = json.loads(await r.get(f"{prefix}{i}"))
        assert got["id"] == i

    async def sets_seq() -> None:
        for i in range(n):
            await set_(i)

    async def gets_seq() -> None:
        for i in range(n):
            await get(i)

    async def clear() -> None:
        keys = [f"{prefix}{i}" for i in range(n)]
        for start in range(0, n, 1000):
            await r.delete(*keys[start : start + 1000])

    try:
        out = {
            "sets, sequential": await timed(sets_seq),
            "gets, sequential": await timed(gets_seq),
        }
        await clear()
        out["sets, 64 concurrent"] = await timed(lambda: bounded(n, set_))
        out["gets, 64 concurrent"] = await timed(lambda: bounded(n, get))
    finally:
        await clear()
        await r.aclose()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--dsn", default=os.environ.get("AURA_TEST_REDIS_DSN", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    peer = await peer_workloads(args.dsn, args.n)
    ours = await aura_workloads(args.dsn, args.n)
    report = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "redis_py": redis_asyncio.__name__ and __import__("redis").__version__,
        "n": args.n,
        "results": {
            name: {
                "redis_py_s": round(peer[name], 4),
                "aura_s": round(ours[name], 4),
                "ratio": round(peer[name] / ours[name], 2),
            }
            for name in peer
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
