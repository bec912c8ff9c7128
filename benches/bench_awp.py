"""auradb:// (AWP 1 over loopback TCP, against the project's server) against
memory:// (same engine, in process), in one run.

    .venv/bin/python benches/bench_awp.py [--rows 100000] [--lookups 10000]

Workloads: N point lookups by primary key, sequential and 64 concurrent on
one client (64 worker tasks sharing the keys, one connection: requests are
multiplexed); a streamed fetch of
all rows (server cursor, batches of 1000). Each workload runs five times
per backend, memory:// and auradb:// alternating, and the fastest run of
each counts: both see the same moments of the machine. Ratios are
auradb / memory.

Client memory: the Python heap's peak (tracemalloc) while streaming every
row over auradb:// in batches of 1000, against the peak of fetching one
batch of 1000 rows and of fetching all rows at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
import tracemalloc
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


# Timed runs per workload and backend; the fastest counts (a pause of the
# machine only ever slows a run down).
RUNS = 5

Workloads = dict[str, Callable[[], Awaitable[None]]]


async def timed(run: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await run()
    return time.perf_counter() - start


async def alternating(memory: Workloads, auradb: Workloads) -> dict[str, tuple[float, float]]:
    """Fastest (memory, auradb) time per workload, the runs interleaved."""
    best = {name: (float("inf"), float("inf")) for name in memory}
    for name in memory:
        for _ in range(RUNS):
            mem_s = await timed(memory[name])
            awp_s = await timed(auradb[name])
            best[name] = (min(best[name][0], mem_s), min(best[name][1], awp_s))
    return best


async def workloads(client: aura.Client, rows: int, lookups: int) -> Workloads:
    batch = [AwpBenchRow(id=i, name=f"n{i}", age=i % 90, score=i / 7) for i in range(rows)]
    await client.bulk_insert(AwpBenchRow, batch, batch_size=10_000)
    keys = [(i * 7919) % rows for i in range(lookups)]

    async def sequential() -> None:
        for k in keys:
            await client.query(AwpBenchRow).where(AwpBenchRow.id == k).one()

    async def concurrent() -> None:
        # 64 workers share the keys, as an application bounds its
        # concurrency: a task per key behind a semaphore would time
        # asyncio's task and semaphore bookkeeping as much as the lookups.
        todo = iter(keys)

        async def worker() -> None:
            for k in todo:
                await client.query(AwpBenchRow).where(AwpBenchRow.id == k).one()

        await asyncio.gather(*(worker() for _ in range(64)))

    async def stream() -> None:
        n = 0
        async for _ in client.query(AwpBenchRow).stream(batch_size=1000):
            n += 1
        assert n == rows

    return {
        f"{lookups} point lookups, sequential": sequential,
        f"{lookups} point lookups, 64 concurrent": concurrent,
        f"{rows}-row streamed fetch": stream,
    }


async def peak_kib(work: Callable[[], Awaitable[Any]]) -> int:
    tracemalloc.start()
    try:
        await work()
        return tracemalloc.get_traced_memory()[1] // 1024
    finally:
        tracemalloc.stop()


async def client_memory(client: aura.Client, rows: int) -> dict[str, int]:
    async def stream() -> None:
        async for _ in client.query(AwpBenchRow).stream(batch_size=1000):
            pass

    async def one_batch() -> None:
        assert len(await client.query(AwpBenchRow).limit(1000).all()) == 1000

    async def everything() -> None:
        assert len(await client.query(AwpBenchRow).all()) == rows

    return {
        "stream_peak_kib": await peak_kib(stream),
        "one_batch_peak_kib": await peak_kib(one_batch),
        "fetch_all_peak_kib": await peak_kib(everything),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=10_000)
    args = parser.parse_args()
    with AuraServer(port=0, log_to_stderr=False) as server:
        async with (
            aura.connect("memory://", models=[AwpBenchRow]) as mem,
            aura.connect(server.dsn, models=[AwpBenchRow]) as remote,
        ):
            times = await alternating(
                await workloads(mem, args.rows, args.lookups),
                await workloads(remote, args.rows, args.lookups),
            )
            memory_use = await client_memory(remote, args.rows)
    report = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "results": {
            name: {
                "memory_s": round(mem_s, 4),
                "auradb_s": round(awp_s, 4),
                "ratio": round(awp_s / mem_s, 2),
            }
            for name, (mem_s, awp_s) in times.items()
        },
        "auradb client memory": memory_use,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
