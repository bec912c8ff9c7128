"""auradb:// (AWP 1 over loopback TCP, against the project's server) against
memory:// (same engine, in process), in one run.

    .venv/bin/python benches/bench_awp.py [--rows 100000] [--lookups 10000]

Workloads: N point lookups by primary key, sequential and 64 concurrent on
one client (one connection: requests are multiplexed); a streamed fetch of
all rows (server cursor, batches of 1000). Ratios are auradb / memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aura
from aura import Field, Model
from aura.server import AuraServer


class AwpBenchRow(Model):
    id: int = Field(primary_key=True)
    name: str
    age: int
    score: float


async def timed(run: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await run()
    return time.perf_counter() - start


async def workloads(client: aura.Client, rows: int, lookups: int) -> dict[str, float]:
    batch = [AwpBenchRow(id=i, name=f"n{i}", age=i % 90, score=i / 7) for i in range(rows)]
    await client.bulk_insert(AwpBenchRow, batch, batch_size=10_000)
    keys = [(i * 7919) % rows for i in range(lookups)]

    async def sequential() -> None:
        for k in keys:
            await client.query(AwpBenchRow).where(AwpBenchRow.id == k).one()

    async def concurrent() -> None:
        sem = asyncio.Semaphore(64)

        async def one(k: int) -> None:
            async with sem:
                await client.query(AwpBenchRow).where(AwpBenchRow.id == k).one()

        await asyncio.gather(*(one(k) for k in keys))

    async def stream() -> None:
        n = 0
        async for _ in client.query(AwpBenchRow).stream(batch_size=1000):
            n += 1
        assert n == rows

    return {
        f"{lookups} point lookups, sequential": await timed(sequential),
        f"{lookups} point lookups, 64 concurrent": await timed(concurrent),
        f"{rows}-row streamed fetch": await timed(stream),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=10_000)
    args = parser.parse_args()
    async with aura.connect("memory://", models=[AwpBenchRow]) as mem:
        memory = await workloads(mem, args.rows, args.lookups)
    with AuraServer(port=0, log_to_stderr=False) as server:
        async with aura.connect(server.dsn, models=[AwpBenchRow]) as remote:
            auradb = await workloads(remote, args.rows, args.lookups)
    report = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "results": {
            name: {
                "memory_s": round(memory[name], 4),
                "auradb_s": round(auradb[name], 4),
                "ratio": round(auradb[name] / memory[name], 1),
            }
            for name in memory
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
