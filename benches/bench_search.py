"""Search in the memory engine against named peers, in one run.

    .venv/bin/pip install -r benches/requirements.txt
    .venv/bin/python benches/bench_search.py [bm25|exact|hnsw|all] [--scale 1.0]

The engine is called through the public Python API (`client.search(...)`),
one query per call, so every number includes building the IR, crossing into
Rust and hydrating the ten result rows into model instances.

- bm25:  top-10 BM25 over a 50k-document Zipfian corpus, 200 queries, against
  bm25s (method "lucene": the same IDF, and a TF part that differs only by the
  constant factor k1+1, so rankings agree). Both get the same tokens;
  queries/s is the best of 15 alternating passes of 200 queries per peer,
  each started after writing twice the last-level cache elsewhere (at
  least 64 MiB: emptied caches, alike for both); the `_warm` figures repeat
  each pass right after itself. `top10_same_scores` is the share of
  queries whose ten scores match bm25s's to a relative 1e-5: when it is
  1.0, ids that differ (`top10_overlap` < 1) differ only between rows
  tied at the 10th score.
- exact: exact cosine top-10 over 100k x 128 f32, 200 queries, against numpy
  (pre-normalised matrix, one matmul + argpartition per query) on one thread.
  Also reports bytes scanned per second against this machine's measured
  single-thread memory read bandwidth.
- hnsw:  HNSW (M=16, ef_construction=200, ef=64) on 100k x 128 against
  hnswlib on one thread: build time, queries/s (best of five alternating
  passes of 200 queries per peer) and recall@10 against exact.
"""

from __future__ import annotations

import os

# One BLAS thread for the numpy peer; set before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import aura  # noqa: E402
from aura import Field, Model, Vector  # noqa: E402

DIM = 128
K = 10
# Timed query passes per peer in the HNSW bench (the best one counts).
PASSES = 5
# The same in the BM25 bench: its passes take milliseconds, so a pause of
# the machine spoils whole passes; with more of them each peer's best is
# more likely to be a pass that ran undisturbed.
BM25_PASSES = 15
# One-row inserts timed after the BM25 passes (each its own write).
ONE_ROW_WRITES = 200


class BenchText(Model):
    id: int = Field(primary_key=True)
    body: str = Field(full_text=True)


class BenchVec(Model):
    id: int = Field(primary_key=True)
    v: Vector[DIM]


def timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


async def timed_async(coro: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = await coro
    return out, time.perf_counter() - start


def _has_numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


# -- BM25 ---------------------------------------------------------------------------------


def _cache_bytes(size: str) -> int:
    """A sysfs cache size (``2048K``, ``300M``) in bytes."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    size = size.strip()
    if size[-1:] in units:
        return int(size[:-1]) * units[size[-1]]
    return int(size)


@functools.cache
def eviction_bytes() -> int:
    """Twice the largest cache Linux reports for CPU 0 (a VM may report
    its host's whole L3, hundreds of MiB), at least 64 MiB."""
    largest = 0
    for entry in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            largest = max(largest, _cache_bytes(entry.read_text()))
        except (OSError, ValueError):
            continue
    return max(64 * 2**20, 2 * largest)


@functools.cache
def _eviction_buffer() -> np.ndarray:
    return np.zeros(eviction_bytes() // 8)


def evict_caches() -> None:
    """Writes `eviction_bytes()` elsewhere so that no peer's index stays
    cached from what ran before."""
    buffer = _eviction_buffer()
    np.add(buffer, 1.0, out=buffer)


def zipf_corpus(n_docs: int, vocab: int, rng: np.random.Generator) -> list[list[str]]:
    ranks = np.arange(1, vocab + 1)
    p = 1.0 / ranks**1.07
    p /= p.sum()
    lengths = rng.integers(20, 120, size=n_docs)
    words = rng.choice(vocab, size=int(lengths.sum()), p=p)
    docs, at = [], 0
    for n in lengths:
        docs.append([f"w{w}" for w in words[at : at + n]])
        at += n
    return docs


async def bench_bm25(scale: float) -> dict[str, Any]:
    import bm25s

    rng = np.random.default_rng(1)
    n_docs, n_queries = int(50_000 * scale), 200
    docs = zipf_corpus(n_docs, 30_000, rng)
    # Queries of 2-4 terms from the frequent-to-rare middle of the vocabulary.
    queries = [
        " ".join(f"w{w}" for w in rng.integers(5, 3000, size=rng.integers(2, 5)))
        for _ in range(n_queries)
    ]
    # bm25s's fastest scorer is its numba backend (when numba is installed).
    backend = "numba" if _has_numba() else "numpy"
    retriever = bm25s.BM25(method="lucene", k1=1.2, b=0.75, backend=backend)
    _, index_s = timed(lambda: retriever.index(docs, show_progress=False))
    tokenized = [q.split() for q in queries]
    retriever.retrieve([tokenized[0]], k=K, show_progress=False, n_threads=1)

    def theirs_pass() -> list[list[int]]:
        return [
            retriever.retrieve([t], k=K, show_progress=False, n_threads=1)[0][0].tolist()
            for t in tokenized
        ]

    async with aura.connect("memory://", models=[BenchText]) as db:
        rows = [BenchText(id=i, body=" ".join(d)) for i, d in enumerate(docs)]
        _, load_s = await timed_async(db.bulk_insert(BenchText, rows, batch_size=10_000))
        search = db.search(BenchText)

        async def ours_pass() -> list[list[int]]:
            return [
                [r.id for r in await search.search_text("body", q).limit(K).all()] for q in queries
            ]

        await ours_pass()
        # Alternating passes, the fastest of each peer counts (one pass of
        # 200 queries takes milliseconds: a single one is mostly noise).
        # Each peer's counted pass starts from caches emptied the same way
        # (what ran before it otherwise decides what it finds cached); the
        # pass repeated right after it is the warm one.
        ours_s = theirs_s = batch_s = ours_warm_s = theirs_warm_s = float("inf")
        for _ in range(BM25_PASSES):
            evict_caches()
            ours, elapsed = await timed_async(ours_pass())
            ours_s = min(ours_s, elapsed)
            _, elapsed = await timed_async(ours_pass())
            ours_warm_s = min(ours_warm_s, elapsed)
            evict_caches()
            theirs, elapsed = timed(theirs_pass)
            theirs_s = min(theirs_s, elapsed)
            _, elapsed = timed(theirs_pass)
            theirs_warm_s = min(theirs_warm_s, elapsed)
            evict_caches()
            _, elapsed = timed(
                lambda: retriever.retrieve(tokenized, k=K, show_progress=False, n_threads=1)
            )
            batch_s = min(batch_s, elapsed)
        # The same top 10: where the ids differ, the scores must not (a tie
        # at the 10th place, which aura breaks by key and bm25s by its own).
        same_scores = np.mean(
            [
                await same_scores_as_bm25s(search, retriever, q, t)
                for q, t in zip(queries, tokenized, strict=True)
            ]
        )
        # Single-row writes into the loaded table, each its own write (a
        # snapshot may share the index, so a write copies what it changes).
        extra = [
            BenchText(id=n_docs + i, body=" ".join(docs[i % n_docs])) for i in range(ONE_ROW_WRITES)
        ]
        started = time.perf_counter()
        for row in extra:
            await db.insert(row)
        insert_one_s = (time.perf_counter() - started) / ONE_ROW_WRITES
    overlap = np.mean([len(set(a) & set(b)) / K for a, b in zip(ours, theirs, strict=True)])
    same_order = np.mean([a == b for a, b in zip(ours, theirs, strict=True)])
    return {
        "docs": n_docs,
        "evicted_mib_before_cold_pass": eviction_bytes() >> 20,
        "bm25s_backend": backend,
        "queries": n_queries,
        "aura_load_s": round(load_s, 2),
        "aura_insert_one_row_ms": round(insert_one_s * 1e3, 3),
        "bm25s_index_s": round(index_s, 2),
        "aura_qps": round(n_queries / ours_s, 1),
        "bm25s_qps_one_query_per_call": round(n_queries / theirs_s, 1),
        "bm25s_qps_one_batch": round(n_queries / batch_s, 1),
        "ratio_vs_per_call": round(theirs_s / ours_s, 2),
        "aura_qps_warm": round(n_queries / ours_warm_s, 1),
        "bm25s_qps_one_query_per_call_warm": round(n_queries / theirs_warm_s, 1),
        "ratio_vs_per_call_warm": round(theirs_warm_s / ours_warm_s, 2),
        "ratio_vs_batch": round(batch_s / ours_s, 2),
        "top10_overlap": round(float(overlap), 4),
        "top10_identical_order": round(float(same_order), 4),
        "top10_same_scores": round(float(same_scores), 4),
    }


async def same_scores_as_bm25s(search: Any, retriever: Any, query: str, tokens: list[str]) -> bool:
    """Whether aura's scores for `query` are bm25s's, in order, to a
    relative 1e-5. bm25s's "lucene" scores lack BM25's constant factor
    k1+1, so each list is divided by its best score first; bm25s fills its
    k places with zero scores when fewer rows match, aura returns fewer."""
    rows = await search.search_text("body", query).limit(K).all()
    ours = np.array([aura.search_scores(r).score for r in rows])
    theirs = retriever.retrieve([tokens], k=K, show_progress=False, n_threads=1)[1][0]
    n = len(ours)
    if n == 0:
        return not theirs.any()
    matched, unmatched = theirs[:n], theirs[n:]
    return not unmatched.any() and bool(
        np.allclose(ours / ours[0], matched / matched[0], rtol=1e-5, atol=0)
    )


# -- vectors --------------------------------------------------------------------------------


def embedding_like(n: int, rng: np.random.Generator, basis: np.ndarray) -> np.ndarray:
    """Embedding-like data: 128-d points near a 16-d subspace (low intrinsic
    dimension, as learned embeddings have), plus small isotropic noise."""
    latent = rng.standard_normal((n, basis.shape[0])).astype(np.float32)
    noise = rng.standard_normal((n, DIM)).astype(np.float32)
    return (latent @ basis + 0.1 * noise).astype(np.float32)


async def load_vectors(db: aura.Client, data: np.ndarray) -> float:
    rows = [BenchVec(id=i, v=v) for i, v in enumerate(data.tolist())]
    _, seconds = await timed_async(db.bulk_insert(BenchVec, rows, batch_size=10_000))
    return seconds


def memory_read_bandwidth() -> float:
    """Single-thread read bandwidth (bytes/s): a BLAS dot over 2 x 128 MiB."""
    a = np.ones(32 * 2**20, dtype=np.float32)
    b = np.ones_like(a)
    float(a @ b)
    best = min(timed(lambda: float(a @ b))[1] for _ in range(5))
    return 2 * a.nbytes / best


def numpy_topk(normed: np.ndarray, q: np.ndarray) -> list[int]:
    scores = normed @ (q / np.linalg.norm(q))
    top = np.argpartition(-scores, K)[:K]
    return top[np.argsort(-scores[top], kind="stable")].tolist()


async def bench_exact(scale: float) -> dict[str, Any]:
    rng = np.random.default_rng(2)
    n, n_queries = int(100_000 * scale), 200
    data = rng.standard_normal((n, DIM)).astype(np.float32)
    queries = rng.standard_normal((n_queries, DIM)).astype(np.float32)
    normed = data / np.linalg.norm(data, axis=1, keepdims=True)
    numpy_topk(normed, queries[0])
    start = time.perf_counter()
    theirs = [numpy_topk(normed, q) for q in queries]
    theirs_s = time.perf_counter() - start
    async with aura.connect("memory://", models=[BenchVec]) as db:
        load_s = await load_vectors(db, data)
        search = db.search(BenchVec)
        qlists = queries.tolist()
        for q in qlists[:5]:
            await search.search_vector("v", q, top_k=K).all()
        start = time.perf_counter()
        ours = [[r.id for r in await search.search_vector("v", q, top_k=K).all()] for q in qlists]
        ours_s = time.perf_counter() - start
    bytes_per_query = n * (DIM + 1) * 4  # vectors plus one f32 norm per row
    bandwidth = memory_read_bandwidth()
    scanned = bytes_per_query * n_queries / ours_s
    overlap = np.mean([len(set(a) & set(b)) / K for a, b in zip(ours, theirs, strict=True)])
    return {
        "rows": n,
        "queries": n_queries,
        "aura_load_s": round(load_s, 2),
        "aura_qps": round(n_queries / ours_s, 1),
        "numpy_qps": round(n_queries / theirs_s, 1),
        "ratio": round(theirs_s / ours_s, 2),
        "aura_bytes_scanned_per_s": f"{scanned / 1e9:.2f} GB/s",
        "memory_read_bandwidth": f"{bandwidth / 1e9:.2f} GB/s",
        "share_of_bandwidth": round(scanned / bandwidth, 2),
        "top10_overlap": round(float(overlap), 4),
    }


async def bench_hnsw(scale: float) -> dict[str, Any]:
    import hnswlib

    rng = np.random.default_rng(3)
    n, n_queries = int(100_000 * scale), 200
    basis = rng.standard_normal((16, DIM)).astype(np.float32)
    data = embedding_like(n, rng, basis)
    queries = embedding_like(n_queries, rng, basis)
    normed = data / np.linalg.norm(data, axis=1, keepdims=True)
    truth = [set(numpy_topk(normed, q)) for q in queries]

    index = hnswlib.Index(space="cosine", dim=DIM)
    index.set_num_threads(1)

    def build() -> None:
        index.init_index(max_elements=n, ef_construction=200, M=16)
        index.add_items(data, np.arange(n))

    _, their_build = timed(build)
    index.set_ef(64)

    def theirs_pass() -> list[list[int]]:
        return [index.knn_query(q, k=K)[0][0].tolist() for q in queries]

    params = {"m": 16, "ef_construction": 200, "ef_search": 64}
    async with aura.connect("memory://", models=[BenchVec]) as db:
        await load_vectors(db, data)
        search = db.search(BenchVec)
        # Same queries, hydrating only the primary key (what hnswlib returns).
        ids_only = search.select(BenchVec.id)
        qlists = queries.tolist()
        # The first approximate query builds the graph; later writes keep it.
        first = search.search_vector("v", qlists[0], top_k=K, approximate=params)
        _, our_build = await timed_async(first.all())

        async def ours_pass(builder: Any) -> list[list[int]]:
            out = []
            for q in qlists:
                rows = await builder.search_vector("v", q, top_k=K, approximate=params).all()
                out.append([r.id for r in rows])
            return out

        # One pass of 200 queries lasts tens of milliseconds, so a pause of
        # the machine skews it: passes alternate between the peers and each
        # keeps its best.
        their_s = our_s = ids_s = float("inf")
        for _ in range(PASSES):
            theirs, seconds = timed(theirs_pass)
            their_s = min(their_s, seconds)
            ours, seconds = await timed_async(ours_pass(search))
            our_s = min(our_s, seconds)
            _, seconds = await timed_async(ours_pass(ids_only))
            ids_s = min(ids_s, seconds)

    def recall(results: list[list[int]]) -> float:
        return float(np.mean([len(set(r) & t) / K for r, t in zip(results, truth, strict=True)]))

    return {
        "rows": n,
        "queries": n_queries,
        "aura_build_s": round(our_build, 2),
        "hnswlib_build_s_1_thread": round(their_build, 2),
        "build_ratio": round(our_build / their_build, 2),
        "aura_qps": round(n_queries / our_s, 1),
        "aura_qps_ids_only": round(n_queries / ids_s, 1),
        "hnswlib_qps": round(n_queries / their_s, 1),
        "qps_ratio": round(their_s / our_s, 2),
        "aura_recall_at_10": round(recall(ours), 4),
        "hnswlib_recall_at_10": round(recall(theirs), 4),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", nargs="?", default="all", choices=["bm25", "exact", "hnsw", "all"])
    parser.add_argument("--scale", type=float, default=1.0, help="shrink datasets for a quick run")
    args = parser.parse_args()
    report: dict[str, Any] = {"machine": platform.processor() or platform.machine()}
    benches = {"bm25": bench_bm25, "exact": bench_exact, "hnsw": bench_hnsw}
    for name, bench in benches.items():
        if args.which in (name, "all"):
            report[name] = await bench(args.scale)
            print(json.dumps({name: report[name]}, indent=2), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
