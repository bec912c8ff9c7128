"""memory:// against a plain-Python floor (dicts and lists), in one run.

    .venv/bin/python benches/bench_memory.py [--rows 100000] [--lookups 10000]

Workloads: insert N typed rows one by one and with bulk_insert; fetch N rows
hydrated into model instances; point lookups by primary key and by a unique
indexed field. The floor does the same work on plain dicts and lists (with a
dict per unique index), building plain objects for the fetch. Ratios are
aura time / floor time (lower is better; 1.0 = as fast as plain Python).

Metrics overhead: the same primary-key lookups on one client, recording
`client.metrics` (the default) and with `telemetry={"metrics": False}`, in
adjacent on/off pairs timed in process CPU time; the median pair ratio of a
run, and the median of several runs (fresh engine each), is reported. For a
noise-free count, compare instructions under callgrind:
`valgrind --tool=callgrind .venv/bin/python benches/lookups_callgrind.py on|off N`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from typing import Any

import aura
from aura import Field, Model


class BenchUser(Model):
    id: int = Field(primary_key=True)
    email: str = Field(unique=True)
    name: str
    age: int
    score: float
    active: bool


def make_rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "email": f"user{i}@example.com",
            "name": f"user {i}",
            "age": 18 + i % 60,
            "score": i * 0.5,
            "active": i % 2 == 0,
        }
        for i in range(n)
    ]


class PlainUser:
    __slots__ = ("active", "age", "email", "id", "name", "score")

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            setattr(self, k, v)


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


async def atimed(coro: Any) -> float:
    started = time.perf_counter()
    await coro
    return time.perf_counter() - started


def floor(rows: list[dict[str, Any]], keys: list[int]) -> dict[str, float]:
    store: dict[int, dict[str, Any]] = {}
    by_email: dict[str, int] = {}

    def insert_one() -> None:
        for r in rows:
            if r["id"] in store or r["email"] in by_email:
                raise ValueError("duplicate")
            store[r["id"]] = dict(r)
            by_email[r["email"]] = r["id"]

    out = {"insert_one": timed(insert_one)}
    store.clear()
    by_email.clear()

    def bulk() -> None:
        store.update({r["id"]: dict(r) for r in rows})
        by_email.update({r["email"]: r["id"] for r in rows})

    out["bulk_insert"] = timed(bulk)
    out["fetch_all"] = timed(lambda: [PlainUser(**r) for r in store.values()])
    emails = [f"user{k}@example.com" for k in keys]
    out["lookup_pk"] = timed(lambda: [PlainUser(**store[k]) for k in keys])
    out["lookup_unique"] = timed(lambda: [PlainUser(**store[by_email[e]]) for e in emails])
    return out


async def aura_run(rows: list[dict[str, Any]], keys: list[int]) -> dict[str, float]:
    instances = [BenchUser(**r) for r in rows]
    out: dict[str, float] = {}
    async with aura.connect("memory://", models=[BenchUser]) as db:

        async def insert_one() -> None:
            for obj in instances:
                await db.insert(obj)

        out["insert_one"] = await atimed(insert_one())
    async with aura.connect("memory://", models=[BenchUser]) as db:
        out["bulk_insert"] = await atimed(db.bulk_insert(BenchUser, instances))
        fetched: list[Any] = []

        async def fetch() -> None:
            fetched.extend(await db.query(BenchUser).all())

        out["fetch_all"] = await atimed(fetch())
        assert len(fetched) == len(rows)

        async def by_pk() -> None:
            q = db.query(BenchUser)
            for k in keys:
                await q.where(BenchUser.id == k).one()

        async def by_email() -> None:
            q = db.query(BenchUser)
            for k in keys:
                await q.where(BenchUser.email == f"user{k}@example.com").one()

        out["lookup_pk"] = await atimed(by_pk())
        out["lookup_unique"] = await atimed(by_email())
        plan = db.query(BenchUser).where(BenchUser.email == "user1@example.com")
        out_plan = db.backend.explain(plan.explain())["plan"]
        print("access path for a unique lookup:", json.dumps(out_plan))
    return out


async def metrics_overhead(rows: list[dict[str, Any]], keys: list[int], rounds: int) -> float:
    """Time with metrics on / off, minus one (0.03 = 3% slower): the median
    over ``rounds`` adjacent on/off pairs (alternating which goes first),
    so that drift of the machine's speed between pairs cancels out.

    One client and one engine for both, so data layout and caches are the
    same; only the client's telemetry switch changes between runs."""
    instances = [BenchUser(**r) for r in rows]
    on = aura.TelemetryConfig()
    off = aura.TelemetryConfig(metrics=False)
    async with aura.connect("memory://", models=[BenchUser]) as db:
        await db.bulk_insert(BenchUser, instances)
        q = db.query(BenchUser)

        async def lookups() -> None:
            for k in keys:
                await q.where(BenchUser.id == k).one()

        async def timed_with(telemetry: aura.TelemetryConfig) -> float:
            # CPU time of this process: time the VM's vCPU spends
            # descheduled (steal) is not counted, unlike wall-clock time.
            db._set_telemetry(telemetry)
            started = time.process_time()
            await lookups()
            return time.process_time() - started

        await timed_with(on)  # warm-up
        ratios = []
        for i in range(rounds):
            if i % 2 == 0:
                t_off, t_on = await timed_with(off), await timed_with(on)
            else:
                t_on, t_off = await timed_with(on), await timed_with(off)
            ratios.append(t_on / t_off)
        assert db.metrics.query_count["select"] == (rounds + 1) * len(keys)
    return statistics.median(ratios) - 1.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=41)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = make_rows(args.rows)
    keys = [(i * 7919) % args.rows for i in range(args.lookups)]
    base = floor(rows, keys)
    mine = asyncio.run(aura_run(rows, keys))
    counts = {
        "insert_one": args.rows,
        "bulk_insert": args.rows,
        "fetch_all": args.rows,
        "lookup_pk": args.lookups,
        "lookup_unique": args.lookups,
    }
    print(f"python {platform.python_version()} on {platform.machine()}, {args.rows} rows")
    print(f"{'workload':<15}{'aura ops/s':>14}{'floor ops/s':>14}{'aura/floor time':>17}")
    for name, n in counts.items():
        print(
            f"{name:<15}{n / mine[name]:>14,.0f}{n / base[name]:>14,.0f}"
            f"{mine[name] / base[name]:>17.2f}"
        )
    # Each run is a fresh engine and client; runs differ more than pairs
    # within a run (memory layout), so the median run is reported.
    runs = [asyncio.run(metrics_overhead(rows, keys[:2000], args.pairs)) for _ in range(args.runs)]
    print(
        f"metrics overhead on pk lookups: {statistics.median(runs):+.1%} (median of "
        f"{args.runs} runs, each the median of {args.pairs} on/off pairs of 2,000 lookups; "
        f"runs: {', '.join(f'{r:+.1%}' for r in runs)})"
    )


if __name__ == "__main__":
    main()
