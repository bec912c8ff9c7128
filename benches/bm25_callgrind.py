"""The BM25 bench's 200 queries through the public API, for an instruction
count under callgrind (this machine's timings drift by more than the
changes being measured; instructions do not). Only the query loop runs
inside `itertools.starmap`, so toggling the count on `starmap_next`
leaves out loading the corpus:

    for r in 1 3; do PYTHONHASHSEED=0 valgrind --tool=callgrind \\
      --callgrind-out-file=/tmp/cg.$r --toggle-collect=starmap_next \\
      .venv/bin/python benches/bm25_callgrind.py $r [call|native|builder|steps] [cold]
    done

Instructions per query = (total at 3 rounds - total at 1) / 400. `call`
is the whole `await search.search_text(...).limit(10).all()` and reading
each row's id; `native` the backend's native call on a ready IR dict (the
engine, reading the IR, hydrating the rows) and reading the ids;
`builder` only building the IR; `steps` only the two builder steps
(what a read on an in-process backend takes, without an IR).

A third argument `cold` writes `bench_search.evict_caches()`'s buffer
(`eviction_bytes()`: twice the largest cache Linux reports, at least
64 MiB) before each round, as the bench does before its cold passes;
with `--cache-sim=yes --LL=SIZE,16,64`, SIZE a power of two no larger
than that buffer (268435456 where it is 960 MiB), the last-level misses
per query, computed the same way, count what a query finds evicted (a
measure that, unlike a VM's cold timings, does not drift).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from itertools import starmap
from typing import Any

import numpy as np
from bench_search import BenchText, K, evict_caches, zipf_corpus

import aura


def run_ready(coro: Coroutine[Any, Any, Any]) -> Any:
    """The result of a coroutine that finishes without suspending (memory://)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the query suspended")


async def main(rounds: int, mode: str, cold: bool) -> None:
    rng = np.random.default_rng(1)  # the corpus and queries of bench_search.py
    docs = zipf_corpus(50_000, 30_000, rng)
    queries = [
        " ".join(f"w{w}" for w in rng.integers(5, 3000, size=rng.integers(2, 5)))
        for _ in range(200)
    ]
    async with aura.connect("memory://", models=[BenchText]) as db:
        rows = [BenchText(id=i, body=" ".join(d)) for i, d in enumerate(docs)]
        await db.bulk_insert(BenchText, rows, batch_size=10_000)
        search = db.search(BenchText)
        native, metrics = db._backend.execute_now, db._native_metrics
        assert native is not None

        def call(q: str) -> list[int]:
            return [r.id for r in run_ready(search.search_text("body", q).limit(K).all())]

        def native_call(ir: dict[str, Any]) -> list[int]:
            return [r.id for r in native(ir, None, metrics)]

        def builder(q: str) -> dict[str, Any]:
            return search.search_text("body", q).limit(K).query.to_ir()

        def steps(q: str) -> Any:
            return search.search_text("body", q).limit(K)

        if mode == "native":
            fn, args = native_call, [(builder(q),) for q in queries]
        else:
            fn = {"call": call, "builder": builder, "steps": steps}[mode]
            args = [(q,) for q in queries]
        for _ in range(rounds):
            if cold:
                evict_caches()
            list(starmap(fn, args))


if __name__ == "__main__":
    mode = sys.argv[2] if len(sys.argv) > 2 else "call"
    if sys.argv[3:] not in ([], ["cold"]):
        sys.exit(f"unknown arguments {sys.argv[3:]}: only 'cold' may follow the mode")
    asyncio.run(main(int(sys.argv[1]), mode, sys.argv[3:] == ["cold"]))
