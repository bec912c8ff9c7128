"""Search and ranking in the memory engine (API.md §4.2-4.3, §5, §8, §15
checks 24-36, §16 search rows). Rankings and scores are checked against
independent computations written here: a plain BM25, numpy for the vector
metrics, and the fusion formulas.

Every test taking ``db``/``d`` also runs over ``auradb://`` against the
project's AWP 1 server (the same engine behind the wire), so the AWP 1
translation must give the same answers; what AWP 1 cannot express raises
``AuraCapabilityError`` there, and the tests assert that instead."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

import aura
from _backends import connect_backend, over_awp
from aura import (
    AuraCapabilityError,
    AuraQueryError,
    AuraTimeoutError,
    AuraValidationError,
    Field,
    Model,
    Vector,
    search_scores,
)
from aura.backends.base import check_capabilities
from aura.backends.capabilities import CAPABILITY_FLAGS, QUERY_FLAGS, for_backend


class SrchDoc(Model):
    id: int = Field(primary_key=True)
    title: str
    body: str
    embedding: Vector[3]


class SrchArticle(Model):
    """`body` has a BM25 index; `plain` holds the same text without one."""

    id: int = Field(primary_key=True)
    body: str = Field(full_text=True)
    plain: str
    cat: str | None = None
    n: int | float | None = None
    vec: Vector[8] | None = None


class SrchItem(Model):
    id: int = Field(primary_key=True)
    cat: Any = None
    price: Any = None


DATASET_D = [
    (1, "Refunds", "vector index for refunds", [1, 0, 0]),
    (2, "Apple", "the vector database index index", [0, 1, 0]),
    (3, "Banana", "cooking recipes", [0.7, 0.7, 0]),
]

VOCAB = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa"]


SEARCH_BACKENDS = ["memory", "auradb", "aura"]


@pytest.fixture(params=SEARCH_BACKENDS)
async def db(request: pytest.FixtureRequest) -> AsyncIterator[aura.Client]:
    async with connect_backend(request.param, [SrchDoc, SrchArticle, SrchItem]) as client:
        yield client


@pytest.fixture
async def d(db: aura.Client) -> aura.Client:
    await db.bulk_insert(
        SrchDoc, [SrchDoc(id=i, title=t, body=b, embedding=e) for i, t, b, e in DATASET_D]
    )
    return db


def make_articles(n: int, seed: int = 7) -> list[SrchArticle]:
    rng = random.Random(seed)
    rows = []
    for i in range(1, n + 1):
        # Zipf-like word choice, and every 10th text repeated to force ties.
        words = rng.choices(
            VOCAB, weights=[1 / (r + 1) for r in range(len(VOCAB))], k=rng.randint(1, 12)
        )
        text = " ".join(words) if i % 10 else "alpha beta"
        vec = [rng.uniform(-1, 1) for _ in range(8)] if i % 7 else None
        if i % 11 == 0 and rows:
            vec = list(rows[-1].vec) if rows[-1].vec is not None else vec  # duplicate vector: a tie
        rows.append(
            SrchArticle(
                id=i,
                body=text,
                plain=text,
                cat="ab"[i % 2] if i % 5 else None,
                n=i % 13,
                vec=vec,
            )
        )
    return rows


@pytest.fixture
async def corpus(db: aura.Client) -> list[SrchArticle]:
    rows = make_articles(300)
    await db.bulk_insert(SrchArticle, rows)
    return rows


# -- independent reference computations ----------------------------------------------


def tokens(text: str) -> list[str]:
    out, cur = [], ""
    for ch in text.lower():
        if ch.isalnum():
            cur += ch
        elif cur:
            out.append(cur)
            cur = ""
    return [*out, cur] if cur else out


def ref_bm25(
    docs: dict[int, str], query: str, k1: float = 1.2, b: float = 0.75, operator: str = "or"
) -> list[tuple[int, float]]:
    terms = list(dict.fromkeys(tokens(query)))
    toks = {i: tokens(t) for i, t in docs.items()}
    n = len(toks)
    avgdl = max(sum(len(t) for t in toks.values()) / n, 1.0) if n else 1.0
    df = {t: sum(1 for d in toks.values() if t in d) for t in terms}
    out = []
    for i, d in toks.items():
        tf = Counter(d)
        present = [t for t in terms if tf[t] > 0]
        if not present or (operator == "and" and len(present) < len(terms)):
            continue
        score = 0.0
        for t in terms:
            if tf[t] > 0:
                idf = math.log((n - df[t] + 0.5) / (df[t] + 0.5) + 1)
                score += idf * tf[t] * (k1 + 1) / (tf[t] + k1 * (1 - b + b * len(d) / avgdl))
        out.append((i, score))
    return sorted(out, key=lambda p: (-p[1], p[0]))


def ref_vectors(rows: list[SrchArticle], q: list[float], metric: str) -> list[tuple[int, float]]:
    with_vec = [r for r in rows if r.vec is not None]
    m = np.array([list(r.vec) for r in with_vec], dtype=np.float32)
    qv = np.array(q, dtype=np.float32)
    if metric == "cosine":
        scores = (m @ qv) / (np.linalg.norm(m, axis=1) * np.linalg.norm(qv))
    elif metric == "dot":
        scores = m @ qv
    else:
        scores = -np.linalg.norm(m - qv, axis=1)
    pairs = [(r.id, float(s)) for r, s in zip(with_vec, scores, strict=True)]
    return sorted(pairs, key=lambda p: (-p[1], p[0]))


def same_ranking(got: list[Any], want: list[tuple[int, float]], tol: float = 1e-9) -> None:
    assert [r.id for r in got] == [i for i, _ in want]
    for row, (_, score) in zip(got, want, strict=True):
        assert row.__score__ == pytest.approx(score, rel=tol, abs=tol)
    assert [r.__rank__ for r in got] == list(range(1, len(got) + 1))


# -- §15 checks 24-36 on dataset D -----------------------------------------------------


async def test_check_24_bm25(d: aura.Client) -> None:
    rows = await d.search(SrchDoc).search_text("body", "vector index").all()
    assert [r.id for r in rows] == [2, 1]
    assert [round(r.__score__, 6) for r in rows] == [0.995433, 0.906302]
    assert [search_scores(r).rank for r in rows] == [1, 2]
    assert search_scores(rows[0]).text_score is None


async def test_check_27_hybrid_weighted_sum(d: aura.Client) -> None:
    rows = await d.search(SrchDoc).search_hybrid("body", "vector", "embedding", [1, 0, 0]).all()
    assert [r.id for r in rows] == [1, 3, 2]
    assert [round(r.__score__, 6) for r in rows] == [1.0, 0.353553, 0.0]
    first, third = search_scores(rows[0]), search_scores(rows[1])
    assert round(first.text_score, 6) == 0.453151
    assert first.vector_score == 1.0
    assert third.text_score is None
    assert round(third.vector_score, 6) == 0.707107
    assert [s.rank for s in map(search_scores, rows)] == [1, 2, 3]


async def test_check_28_hybrid_rrf(d: aura.Client) -> None:
    rows = await (
        d.search(SrchDoc)
        .search_hybrid("body", "vector", "embedding", [1, 0, 0], fusion="reciprocal_rank_fusion")
        .all()
    )
    assert [r.id for r in rows] == [1, 2, 3]
    assert rows[0].__score__ == pytest.approx(1 / 61, abs=1e-12)
    assert [round(r.__score__, 6) for r in rows[1:]] == [0.016001, 0.008065]
    assert rows[1].__score__ == pytest.approx(0.5 / 62 + 0.5 / 63, abs=1e-15)


async def test_check_29_to_31_argument_errors(d: aura.Client) -> None:
    q = d.search(SrchDoc)
    with pytest.raises(AuraQueryError):
        q.search_hybrid("body", "v", "embedding", [1, 0, 0], fusion="rrf")
    with pytest.raises(AuraQueryError):
        q.search_hybrid("body", "v", "embedding", [1, 0, 0], weights=(0, 0))
    with pytest.raises(AuraQueryError):
        q.search_vector("embedding", [1, 0, 0], top_k=0)
    with pytest.raises(AuraQueryError, match="Unsupported vector metric 'l2'"):
        q.nearest("embedding", [1, 0, 0], metric="l2")
    with pytest.raises(AuraQueryError):
        q.search_text("body", "   ")
    with pytest.raises(AuraQueryError):
        q.search_vector("embedding", [1, 0, 0], approximate={"zz": 1})


async def test_check_32_tokenizer(db: aura.Client) -> None:
    await db.insert(SrchDoc(id=1, title="t", body="x_y z", embedding=[1, 0, 0]))
    await db.insert(SrchDoc(id=2, title="t", body="Café … CAFÉ!", embedding=[1, 0, 0]))
    assert [r.id for r in await db.search(SrchDoc).search_text("body", "y").all()] == [1]
    assert [r.id for r in await db.search(SrchDoc).search_text("body", "café").all()] == [2]
    assert await db.search(SrchDoc).search_text("body", "cafe").all() == []


async def test_check_33_approximate_ir(d: aura.Client) -> None:
    ir = d.search(SrchDoc).search_vector("embedding", [1, 0, 0], approximate=True).explain()
    assert ir["vector_ann"] == {}


async def test_check_34_ranked_pages(d: aura.Client) -> None:
    with pytest.raises(AuraQueryError, match="search_pages requires a ranked clause"):
        d.search(SrchDoc).search_pages(page_size=2)
    await d.insert(SrchDoc(id=4, title="t", body="b", embedding=[0.1, 0.9, 0]))
    pages = [
        p
        async for p in d.search(SrchDoc)
        .search_vector("embedding", [1, 0, 0], top_k=4)
        .search_pages(page_size=2)
    ]
    assert [[(r.id, r.__rank__) for r in p.rows] for p in pages] == [
        [(1, 1), (3, 2)],
        [(4, 3), (2, 4)],
    ]
    assert pages[0].has_more and pages[-1].cursor is None


async def test_check_35_facets(db: aura.Client) -> None:
    await db.bulk_insert(SrchItem, [SrchItem(id=i, cat=c) for i, c in enumerate("abab", 1)])
    await db.insert(SrchItem(id=5, cat=None))
    result = await db.query(SrchItem).facet("cat").aggregate()
    assert result.facet("cat").buckets == [("a", 2), ("b", 2)]
    with pytest.raises(AuraQueryError):
        db.query(SrchItem).aggregate()


async def test_check_36_search_scoped_aggregate(d: aura.Client) -> None:
    result = (
        await d.search(SrchDoc).search_text("body", "vector index").aggregate_count().aggregate()
    )
    assert result.search_scoped is True
    assert result.matched == 2 and result.scanned == 3
    assert result.metric("count") == 2


# -- BM25 against the reference ---------------------------------------------------------


@pytest.mark.parametrize("field", ["body", "plain"])  # inverted index / token scan
@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("alpha gamma", {}),
        ("beta theta kappa", {"k1": 0.0}),
        ("beta theta kappa", {"b": 0.0}),
        ("beta theta kappa", {"k1": 2.5, "b": 1.0}),
        ("Gamma, gamma! zeta", {"operator": "and"}),
    ],
)
async def test_bm25_matches_reference(
    db: aura.Client, corpus: list[SrchArticle], field: str, query: str, params: dict[str, Any]
) -> None:
    rows = await db.search(SrchArticle).search_text(field, query, **params).all()
    want = ref_bm25({r.id: r.body for r in corpus}, query, **params)
    assert want, "the query must match something"
    same_ranking(rows, want)


async def test_k1_and_b_change_the_order(db: aura.Client) -> None:
    await db.bulk_insert(
        SrchArticle,
        [
            SrchArticle(id=1, body="apple apple apple pie pie pie pie pie pie", plain="-"),
            SrchArticle(id=2, body="apple", plain="-"),
            SrchArticle(id=3, body="pear", plain="-"),
        ],
    )
    docs = {1: "apple apple apple pie pie pie pie pie pie", 2: "apple", 3: "pear"}
    orders = {}
    for params in ({}, {"k1": 0.0}, {"b": 0.0}):
        rows = await db.search(SrchArticle).search_text("body", "apple", **params).all()
        same_ranking(rows, ref_bm25(docs, "apple", **params))
        orders[tuple(params)] = [r.id for r in rows]
    assert orders[()] == [2, 1]
    assert orders[("k1",)] == [1, 2]  # k1=0: tf saturates at once; ties break by key
    assert orders[("b",)] == [1, 2]  # b=0: no length normalisation, tf 3 wins


async def test_bm25_statistics_use_the_filtered_rows(
    db: aura.Client, corpus: list[SrchArticle]
) -> None:
    for field in ("body", "plain"):
        rows = await (
            db.search(SrchArticle)
            .where(SrchArticle.cat == "a")
            .search_text(field, "gamma eta")
            .all()
        )
        want = ref_bm25({r.id: r.body for r in corpus if r.cat == "a"}, "gamma eta")
        same_ranking(rows, want)


async def test_term_frequency_rank(db: aura.Client, corpus: list[SrchArticle]) -> None:
    rows = (
        await db.search(SrchArticle)
        .search_text("body", "gamma gamma zeta", rank="term_frequency")
        .all()
    )
    counts = {r.id: Counter(tokens(r.body)) for r in corpus}
    want = [(i, float(2 * c["gamma"] + c["zeta"])) for i, c in counts.items()]
    want = sorted([p for p in want if p[1] > 0], key=lambda p: (-p[1], p[0]))
    same_ranking(rows, want, tol=0)


async def test_text_limit_ties_and_rows_sharing_a_first_value(db: aura.Client) -> None:
    # §16 row 19: rows keyed by primary key, not by their first column.
    await db.bulk_insert(SrchItem, [SrchItem(id=i, cat="same") for i in (3, 1, 2)])
    await db.bulk_insert(
        SrchArticle, [SrchArticle(id=i, body="tie tie", plain="x") for i in (5, 4, 6)]
    )
    rows = await db.search(SrchArticle).search_text("body", "tie", limit=2).all()
    assert [r.id for r in rows] == [4, 5]
    assert rows[0].__score__ == rows[1].__score__


async def test_order_by_breaks_score_ties(db: aura.Client) -> None:
    # §16 row 18: order_by applies after the score, before the key.
    await db.bulk_insert(
        SrchArticle,
        [SrchArticle(id=i, body="w", plain="x", n=n) for i, n in ((1, 5), (2, 9), (3, 7))]
        + [SrchArticle(id=4, body="w w", plain="x", n=0)],
    )
    query = db.search(SrchArticle).search_text("body", "w").order_by(SrchArticle.n.desc())
    if over_awp(db):  # AWP 1 ignores order_by next to a ranked clause: refused, never dropped
        with pytest.raises(AuraCapabilityError) as info:
            await query.all()
        assert info.value.context == {"backend": "auradb", "capability": "ranked_order_by"}
        return
    rows = await query.all()
    assert [r.id for r in rows] == [4, 2, 3, 1]


async def test_search_inside_a_transaction(db: aura.Client) -> None:
    await db.insert(SrchArticle(id=1, body="committed words", plain="x"))
    async with db.transaction() as tx:
        await tx.insert(SrchArticle(id=2, body="words words pending", plain="x"))
        inside = await tx.search(SrchArticle).search_text("body", "words").all()
        outside = await db.search(SrchArticle).search_text("body", "words").all()
        assert [r.id for r in inside] == [2, 1]
        assert [r.id for r in outside] == [1]
    after = await db.search(SrchArticle).search_text("body", "words").all()
    assert [r.id for r in after] == [2, 1]


async def test_index_follows_updates_and_deletes(db: aura.Client) -> None:
    await db.bulk_insert(
        SrchArticle, [SrchArticle(id=i, body=f"doc {w}", plain="x") for i, w in enumerate(VOCAB, 1)]
    )
    await db.update(SrchArticle).where(SrchArticle.id == 1).set(body="gamma gamma").execute()
    await db.delete(SrchArticle).where(SrchArticle.id == 3).execute()
    rows = await db.search(SrchArticle).search_text("body", "gamma").all()
    docs = {i: f"doc {w}" for i, w in enumerate(VOCAB, 1)}
    docs[1] = "gamma gamma"
    del docs[3]
    same_ranking(rows, ref_bm25(docs, "gamma"))
    assert [r.id for r in rows] == [1]


# -- vectors against numpy ---------------------------------------------------------------


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
async def test_exact_vectors_match_numpy(
    db: aura.Client, corpus: list[SrchArticle], metric: str
) -> None:
    q = [0.3, -0.2, 0.9, 0.1, -0.5, 0.4, 0.0, 0.7]
    rows = await db.search(SrchArticle).search_vector("vec", q, metric=metric, top_k=25).all()
    want = ref_vectors(corpus, q, metric)[:25]
    assert [r.id for r in rows] == [i for i, _ in want]
    for row, (_, score) in zip(rows, want, strict=True):
        assert row.__score__ == pytest.approx(score, rel=1e-5, abs=1e-6)
    filtered = await (
        db.search(SrchArticle)
        .where(SrchArticle.cat == "b")
        .search_vector("vec", q, metric=metric, top_k=300)
        .all()
    )
    want_b = ref_vectors([r for r in corpus if r.cat == "b"], q, metric)
    assert [r.id for r in filtered] == [i for i, _ in want_b]


async def test_vector_ties_break_by_key(db: aura.Client) -> None:
    await db.bulk_insert(
        SrchArticle,
        [SrchArticle(id=i, body="x", plain="x", vec=[1, 0, 0, 0, 0, 0, 0, 0]) for i in (9, 2, 5)],
    )
    rows = await db.search(SrchArticle).search_vector("vec", [2, 0, 0, 0, 0, 0, 0, 0]).all()
    assert [r.id for r in rows] == [2, 5, 9]


async def test_wrong_dimension_is_a_validation_error(d: aura.Client) -> None:
    # §16 row 16, also when the IR bypasses the builder's own check.
    ir = d.search(SrchDoc).search_vector("embedding", [1, 0, 0]).explain()
    ir["vector"]["query"] = [1.0, 0.0]
    with pytest.raises(AuraValidationError, match="expects dimension 3, got 2"):
        await d._execute(ir, SrchDoc)
    hybrid = d.search(SrchDoc).search_hybrid("body", "v", "embedding", [1, 0, 0]).explain()
    hybrid["hybrid"]["vector"] = [1.0]
    with pytest.raises(AuraValidationError):
        await d._execute(hybrid, SrchDoc)


async def test_approximate_search_uses_hnsw_and_follows_writes(
    db: aura.Client, corpus: list[SrchArticle]
) -> None:
    q = [0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8]
    exact = await db.search(SrchArticle).search_vector("vec", q, top_k=10).all()
    approx_q = db.search(SrchArticle).search_vector(
        "vec", q, top_k=10, approximate={"ef_search": 100}
    )
    approx = await approx_q.all()
    assert [r.id for r in approx] == [r.id for r in exact]  # tiny graph: exact answer
    assert [r.__score__ for r in approx] == [r.__score__ for r in exact]
    if over_awp(db):
        assert db.backend.explain(approx_q.explain())["awp"]["vector_ann"] == {"ef_search": 100}
    if db.backend.name != "memory":
        pytest.skip(f"{db.config.scheme}://: backend.explain() shows the request, not the plan")
    plan = db.backend.explain(approx_q.explain())["plan"]["search"]
    assert plan["mode"] == "hnsw" and plan["ef_search"] == 100
    assert plan["graph_nodes"] == sum(1 for r in corpus if r.vec is not None)
    best = exact[0].id
    await db.delete(SrchArticle).where(SrchArticle.id == best).execute()
    await db.insert(SrchArticle(id=1000, body="x", plain="x", vec=q))
    after = await approx_q.all()
    assert after[0].id == 1000 and after[0].__score__ == pytest.approx(1.0)
    assert best not in [r.id for r in after]
    exact_plan = db.backend.explain(db.search(SrchArticle).search_vector("vec", q).explain())
    assert exact_plan["plan"]["search"]["mode"] == "exact_scan"
    # Pages of an approximate query walk the exact order past each cursor.
    pages = [p async for p in approx_q.search_pages(page_size=4)]
    exact_after = await db.search(SrchArticle).search_vector("vec", q, top_k=10).all()
    assert [r.id for p in pages for r in p.rows] == [r.id for r in exact_after]


# -- hybrid and legacy clauses against their formulas ----------------------------------


@pytest.mark.parametrize("fusion", ["weighted_sum", "reciprocal_rank_fusion"])
async def test_hybrid_matches_the_fusion_formulas(
    db: aura.Client, corpus: list[SrchArticle], fusion: str
) -> None:
    q = [0.5, 0.1, -0.2, 0.3, 0.3, -0.1, 0.2, 0.9]
    weights = (0.3, 0.7)
    rows = await (
        db.search(SrchArticle)
        .where(SrchArticle.n < 9)
        .search_hybrid("body", "delta iota", "vec", q, weights=weights, fusion=fusion, top_k=40)
        .all()
    )
    kept = [r for r in corpus if r.n < 9]
    text = dict(ref_bm25({r.id: r.body for r in kept}, "delta iota"))
    vec = dict(ref_vectors(kept, q, "cosine"))

    def side(scores: dict[int, float]) -> dict[int, float]:
        if fusion == "reciprocal_rank_fusion":
            ranked = sorted(scores, key=lambda i: (-scores[i], i))
            return {i: 60.0 + n for n, i in enumerate(ranked, 1)}
        lo, hi = min(scores.values()), max(scores.values())
        return {i: 1.0 if hi - lo < 1e-12 else (s - lo) / (hi - lo) for i, s in scores.items()}

    t_side, v_side = side(text), side(vec)
    fused = {}
    for i in set(text) | set(vec):
        score = 0.0
        for w, part in zip(weights, (t_side, v_side), strict=True):
            if i in part:
                score += w / part[i] if fusion == "reciprocal_rank_fusion" else w * part[i]
        fused[i] = score
    want = sorted(fused.items(), key=lambda p: (-p[1], p[0]))[:40]
    assert [r.id for r in rows] == [i for i, _ in want]
    for row, (i, score) in zip(rows, want, strict=True):
        assert row.__score__ == pytest.approx(score, rel=1e-5, abs=1e-7)
        s = search_scores(row)
        assert (s.text_score is None) == (i not in text)
        if i in text:
            assert s.text_score == pytest.approx(text[i], rel=1e-12)


async def test_legacy_text_and_fusion(d: aura.Client) -> None:
    if over_awp(d):  # AWP 1 has no legacy text clause
        with pytest.raises(AuraCapabilityError) as info:
            await d.search(SrchDoc).text("title", "body", query="Index REFUNDS").all()
        assert info.value.context == {"backend": "auradb", "capability": "full_text_search"}
        return
    rows = await d.search(SrchDoc).text("title", "body", query="Index REFUNDS").all()
    # haystack "refunds vector index for refunds": (1 + 2) / 2; row 2: "index" twice.
    assert [(r.id, r.__score__) for r in rows] == [(1, 1.5), (2, 1.0), (3, 0.0)]
    blended = await (
        d.search(SrchDoc)
        .similar_to("embedding", [1, 0, 0])
        .text("body", query="index")
        .fusion(alpha=0.25)
        .all()
    )
    # 0.25·cosine + 0.75·text: row 2 = 0.75·2, row 1 = 0.25 + 0.75, row 3 = 0.25·0.707107.
    assert [r.id for r in blended] == [2, 1, 3]
    assert blended[0].__score__ == pytest.approx(1.5)
    assert blended[1].__score__ == pytest.approx(1.0)
    assert blended[2].__score__ == pytest.approx(0.25 * 0.70710678, rel=1e-6)
    assert search_scores(blended[0]).text_score is None


# -- pages ----------------------------------------------------------------------------------


async def test_pages_cover_the_ranking_once(db: aura.Client, corpus: list[SrchArticle]) -> None:
    query = db.search(SrchArticle).search_text("body", "alpha beta")
    everything = await query.all()
    pages = [p async for p in query.search_pages(page_size=7)]
    paged = [r for p in pages for r in p.rows]
    assert [(r.id, r.__rank__, r.__score__) for r in paged] == [
        (r.id, r.__rank__, r.__score__) for r in everything
    ]
    assert all(len(p.rows) == 7 for p in pages[:-1]) and pages[-1].cursor is None
    bounded = [p async for p in query.limit(10).search_pages(page_size=4)]  # §16 row 20
    assert [len(p.rows) for p in bounded] == [4, 4, 2]
    assert [r.id for p in bounded for r in p.rows] == [r.id for r in everything[:10]]


async def test_foreign_and_malformed_cursors(d: aura.Client) -> None:
    query = d.search(SrchDoc).search_vector("embedding", [1, 0, 0], top_k=3)
    first = await d._execute(query._query.search_page_ir(1), SrchDoc)
    cursor = first[1]
    assert isinstance(cursor, str)
    second = await d._execute(query._query.search_page_ir(1, cursor), SrchDoc)
    assert [(r.id, r.__rank__) for r in second[0]] == [(3, 2)]
    other = d.search(SrchDoc).search_text("body", "vector")
    with pytest.raises(AuraQueryError, match="cursor token does not belong to this query"):
        await d._execute(other._query.search_page_ir(1, cursor), SrchDoc)
    for bad in ("zz", "00", cursor[:-2]):
        with pytest.raises(AuraQueryError, match="invalid cursor token"):
            await d._execute(query._query.search_page_ir(1, bad), SrchDoc)


# -- aggregations -------------------------------------------------------------------------


async def test_metrics_and_bucket_order(db: aura.Client) -> None:
    values = [
        ("b", 3),
        ("a", 1.5),
        (2, True),
        ("b", "x"),
        (1, None),
        (2, 7),
        ([1], 4),
        ({"k": 1}, -2),
    ]
    await db.bulk_insert(
        SrchItem, [SrchItem(id=i, cat=c, price=p) for i, (c, p) in enumerate(values, 1)]
    )
    result = await (
        db.query(SrchItem)
        .facet("cat")
        .facet("price", limit=2)
        .aggregate_count()
        .min("price")
        .max("price")
        .aggregate()
    )
    assert result.facet("cat").buckets == [(2, 2), ("b", 2), (1, 1), ("a", 1)]
    # True counts as the number 1 (as in Python), so it sorts between -2 and 1.5.
    assert result.facet("price").buckets == [(-2, 1), (True, 1)]
    assert result.metric("count") == 8 and result.matched == 8 and result.scanned == 8
    assert result.metric("min", "price") == -2 and result.metric("max", "price") == 7
    assert result.filter_present is False and result.search_scoped is False
    filtered = await db.query(SrchItem).where(SrchItem.id > 6).min("price").facet("cat").aggregate()
    assert filtered.filter_present is True and filtered.matched == 2
    assert filtered.metric("min", "price") == -2
    none = await db.query(SrchItem).where(SrchItem.id == 4).min("price").aggregate()
    assert none.metric("min", "price") is None


async def test_sum_and_avg_additions(db: aura.Client) -> None:
    await db.bulk_insert(
        SrchItem, [SrchItem(id=i, price=p) for i, p in enumerate([1, 2, 4, True, "x", None], 1)]
    )
    if over_awp(db):  # AWP 1 metrics are count, min, max and avg
        with pytest.raises(AuraCapabilityError) as info:
            await db.query(SrchItem).sum("price").aggregate()
        assert info.value.context == {"backend": "auradb", "capability": "aggregations_and_facets"}
        result = await db.query(SrchItem).avg("price").aggregate()
        assert result.metric("avg", "price") == pytest.approx(7 / 3)
        return
    result = await db.query(SrchItem).sum("price").avg("price").aggregate()
    assert result.metric("sum", "price") == 7
    assert result.metric("avg", "price") == pytest.approx(7 / 3)


# -- timeouts ----------------------------------------------------------------------------------


async def test_timeout_interrupts_a_long_search_and_leaves_data_intact(db: aura.Client) -> None:
    rng = random.Random(3)
    rows = [
        SrchArticle(id=i, body="x", plain=" ".join(rng.choices(VOCAB, k=40)))
        for i in range(1, 20_001)
    ]
    await db.bulk_insert(SrchArticle, rows, batch_size=5000)
    slow = db.search(SrchArticle).search_text("plain", "alpha kappa").timeout(1)
    with pytest.raises(AuraTimeoutError) as info:
        await slow.all()
    # AuraDB's wire code is kept as the error code (API.md §9).
    assert info.value.code == ("query_timeout" if over_awp(db) else "timeout")
    assert info.value.retryable
    with pytest.raises(AuraTimeoutError):
        await (
            db.query(SrchArticle)
            .search_text("plain", "beta")
            .aggregate_count()
            .timeout(1)
            .aggregate()
        )
    async with db.transaction() as tx:
        await tx.insert(SrchArticle(id=0, body="y", plain="alpha"))
        with pytest.raises(AuraTimeoutError):
            await tx.search(SrchArticle).search_text("plain", "alpha").timeout(1).all()
        assert await tx.query(SrchArticle).count() == 20_001
    assert await db.query(SrchArticle).count() == 20_001
    top = await db.search(SrchArticle).search_text("plain", "alpha kappa").limit(3).all()
    assert len(top) == 3


# -- capabilities ------------------------------------------------------------------------------


def test_memory_capabilities_are_real(db: aura.Client) -> None:
    caps = db.capabilities()
    for flag in (
        "full_text_search",
        "vector_search",
        "hybrid_search",
        "aggregations_and_facets",
        "ranked_pagination",
        "query_timeouts",
        "approximate_vector_search",
    ):
        assert caps.supports(flag), flag


@pytest.mark.parametrize(
    ("clause", "flag", "what"),
    [
        ({"text_search": {}}, "full_text_search", "ranked full-text search"),
        ({"vector": {}}, "vector_search", "vector search"),
        ({"hybrid": {}}, "hybrid_search", "hybrid search"),
    ],
)
def test_backends_without_search_raise_before_io(
    clause: dict[str, Any], flag: str, what: str
) -> None:
    ir = {"operation": "select", "model": "SrchDoc", **clause}
    with pytest.raises(AuraCapabilityError) as info:
        check_capabilities(for_backend("sqlite"), ir)
    assert info.value.message == f"Backend 'sqlite' does not support {what}"
    assert info.value.context == {"backend": "sqlite", "capability": flag}


_REFUSALS_BY_FLAG: dict[str, dict[str, Any]] = {
    "full_text_search": {"operation": "select", "text_search": {}},
    "vector_search": {"operation": "select", "vector": {}},
    "hybrid_search": {"operation": "select", "hybrid": {}},
    "query_timeouts": {"operation": "select", "timeout_ms": 5},
    "aggregations_and_facets": {"operation": "aggregate"},
    "ranked_pagination": {"operation": "search_page"},
    "graph_traversal": {"operation": "traverse"},
}


@pytest.mark.parametrize(("flag", "ir"), list(_REFUSALS_BY_FLAG.items()))
def test_a_backend_lacking_one_query_flag_still_refuses(flag: str, ir: dict[str, Any]) -> None:
    # The check skips backends with every query flag (QUERY_FLAGS): a
    # backend lacking any one of them must still meet its refusal.
    caps = for_backend("memory").with_flags(**{flag: False})
    assert caps.refuses_queries and not for_backend("memory").refuses_queries
    with pytest.raises(AuraCapabilityError) as info:
        check_capabilities(caps, {"model": "SrchDoc", **ir})
    assert info.value.context == {"backend": "memory", "capability": flag}
    assert set(QUERY_FLAGS) == set(_REFUSALS_BY_FLAG)  # every query flag is tested here
    assert set(QUERY_FLAGS) <= set(CAPABILITY_FLAGS)


async def test_group_by_addition(db: aura.Client) -> None:
    prices = [("a", 1), ("b", 5), ("a", 3), ("c", 2), ("b", 7), (None, 9), ("a", True)]
    await db.bulk_insert(
        SrchItem, [SrchItem(id=i, cat=c, price=p) for i, (c, p) in enumerate(prices, 1)]
    )
    # AWP 1 has no sum: avg stands in for it there.
    op, first, second, whole = ("avg", 2, 6, 27 / 6) if over_awp(db) else ("sum", 4, 12, 27)
    grouped = db.query(SrchItem).group_by("cat", limit=2)
    grouped = grouped.avg("price") if op == "avg" else grouped.sum("price")
    result = await grouped.max("price").aggregate()
    assert [(g.value, g.count) for g in result.groups] == [("a", 3), ("b", 2)]
    assert [(m.op, m.value) for m in result.groups[0].metrics] == [(op, first), ("max", 3)]
    assert [(m.op, m.value) for m in result.groups[1].metrics] == [(op, second), ("max", 7)]
    assert result.metric(op, "price") == whole  # the whole matched set, bool ignored
    only_groups = await db.query(SrchItem).where(SrchItem.id < 3).group_by("cat").aggregate()
    assert [(g.value, g.count, g.metrics) for g in only_groups.groups] == [
        ("a", 1, []),
        ("b", 1, []),
    ]
    with pytest.raises(AuraQueryError):
        db.query(SrchItem).group_by("cat", limit=0)


async def test_approximate_search_inside_a_transaction(db: aura.Client) -> None:
    base = [[1.0 if j == i % 8 else 0.1 for j in range(8)] for i in range(40)]
    await db.bulk_insert(
        SrchArticle, [SrchArticle(id=i, body="x", plain="x", vec=v) for i, v in enumerate(base)]
    )
    probe = [0.3, -0.4, 0.2, 0.9, -0.1, 0.5, 0.7, -0.6]
    query = db.search(SrchArticle).search_vector("vec", probe, top_k=3, approximate=True)
    async with db.transaction() as tx:
        await tx.insert(SrchArticle(id=100, body="x", plain="x", vec=probe))
        inside = (
            await tx.search(SrchArticle)
            .search_vector("vec", probe, top_k=3, approximate=True)
            .all()
        )
        assert inside[0].id == 100
        assert (await query.all())[0].id != 100  # not visible outside yet
    assert (await query.all())[0].id == 100  # the committed graph follows the commit
