"""The HNSW bench's queries through the public API on 10k vectors (a graph
valgrind builds in minutes), for an instruction count under callgrind.
Only the query loop runs inside `itertools.starmap`, so toggling the
count on `starmap_next` leaves out loading the vectors and building the
graph:

    for r in 1 3; do PYTHONHASHSEED=0 valgrind --tool=callgrind \\
      --callgrind-out-file=/tmp/hnsw.$r --toggle-collect=starmap_next \\
      .venv/bin/python benches/hnsw_callgrind.py $r [full|ids]
    done

Instructions per query = (total at 3 rounds - total at 1) / 400. `full`
hydrates whole rows (the id and the vector), `ids` only the primary key.
"""

from __future__ import annotations

import asyncio
import sys
from itertools import starmap

import numpy as np
from bench_search import DIM, BenchVec, K, embedding_like, load_vectors
from bm25_callgrind import run_ready

import aura

PARAMS = {"m": 16, "ef_construction": 200, "ef_search": 64}


async def main(rounds: int, mode: str) -> None:
    rng = np.random.default_rng(3)  # the vectors and queries of bench_search.py
    basis = rng.standard_normal((16, DIM)).astype(np.float32)
    data = embedding_like(10_000, rng, basis)
    queries = embedding_like(200, rng, basis).tolist()
    async with aura.connect("memory://", models=[BenchVec]) as db:
        await load_vectors(db, data)
        search = db.search(BenchVec)
        builder = search.select(BenchVec.id) if mode == "ids" else search
        # The first approximate query builds the graph.
        await builder.search_vector("v", queries[0], top_k=K, approximate=PARAMS).all()

        def call(q: list[float]) -> list[int]:
            rows = builder.search_vector("v", q, top_k=K, approximate=PARAMS).all()
            return [r.id for r in run_ready(rows)]

        args = [(q,) for q in queries]
        for _ in range(rounds):
            list(starmap(call, args))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "full"))
