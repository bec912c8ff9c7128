"""The fast IR reader (crates/aura-py/src/ir_fast.rs) must agree with the
general serde reader on every request it accepts, and decline the rest."""

from __future__ import annotations

import random
from typing import Any

import pytest

import aura
from aura import Field, Model, Vector, _core, and_, not_, or_


class FastIr(Model):
    id: int = Field(primary_key=True)
    n: int | None = None
    s: str | None = None
    x: float | None = None
    tags: list[str] = Field(default_factory=list)
    body: str | None = Field(default=None, full_text=True)
    v: Vector[3] | None = None


VALUES: dict[str, list[Any]] = {
    "id": [0, 1, -(2**63), 2**63 - 1],
    "n": [None, 0, 7, -3, 2.5],
    "s": [None, "", "a", "é💥", "'; DROP TABLE x; --", "%_\\"],
    "x": [None, 0.0, -1.5, 1e308, float("inf")],
}


def leaf(rng: random.Random) -> Any:
    name = rng.choice([*VALUES, "tags"])
    ref = getattr(FastIr, name)
    if name == "tags":
        return ref.contains(rng.choice(["a", "b"]))
    value = rng.choice(VALUES[name])
    ops = [
        lambda: ref == value,
        lambda: ref != value,
        lambda: ref.in_(rng.sample(VALUES[name], 2)),
        lambda: ref.not_in(rng.sample(VALUES[name], 2)),
        lambda: ref.is_null(),
        lambda: ref.is_not_null(),
    ]
    if value is not None:
        ops += [lambda: ref < value, lambda: ref >= value]
    if name == "s" and isinstance(value, str):
        ops += [lambda: ref.contains(value), lambda: ref.startswith(value), lambda: ref.like("a%")]
    return rng.choice(ops)()


def predicate(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth >= 3 or roll < 0.5:
        return leaf(rng)
    if roll < 0.65:
        return not_(predicate(rng, depth + 1))
    parts = [predicate(rng, depth + 1) for _ in range(rng.randint(1, 3))]
    return and_(*parts) if roll < 0.85 else or_(*parts)


def random_ir(client: aura.Client, rng: random.Random) -> dict[str, Any]:
    ir = random_builder(client, rng).explain()
    kind = rng.choice(["select", "select", "count", "exists"])
    if kind != "select":
        ir = {
            "operation": kind,
            "model": ir["model"],
            "filters": ir.get("filters", []),
            **({"timeout_ms": ir["timeout_ms"]} if "timeout_ms" in ir else {}),
        }
    return ir


def random_builder(client: aura.Client, rng: random.Random) -> Any:
    q = client.query(FastIr)
    for _ in range(rng.choice([0, 1, 2])):
        q = q.where(predicate(rng))
    if rng.random() < 0.4:
        q = q.limit(rng.randint(0, 50))
    if rng.random() < 0.3:
        q = q.offset(rng.randint(0, 50))
    if rng.random() < 0.2:
        q = q.timeout(rng.randint(1, 5000))
    if rng.random() < 0.2:
        q = q.order_by(FastIr.n.desc())
    q = ranked(q, rng)
    if rng.random() < 0.2:
        q = q.select(*rng.sample([FastIr.id, FastIr.s, FastIr.v], 2))
    return q


def ranked(q: Any, rng: random.Random) -> Any:
    """A top-k vector or text search on ``q``, or ``q`` unchanged."""
    roll = rng.random()
    if roll < 0.2:
        return q.search_vector(
            "v",
            [rng.uniform(-1, 1) for _ in range(3)],
            top_k=rng.randint(1, 20),
            metric=rng.choice(["cosine", "euclidean", "dot"]),
            approximate=rng.choice([None, True, {"m": 8, "ef_search": 32}]),
        )
    if roll < 0.4:
        return q.search_text(
            "body",
            rng.choice(["a b", "é x", "b"]),
            operator=rng.choice(["or", "and"]),
            rank=rng.choice(["bm25", "term_frequency"]),
            k1=rng.choice([None, 0, 0.5, 2]),
            b=rng.choice([None, 0, 0.3, 1]),
        )
    return q


async def test_a_select_read_from_its_node_is_the_one_read_from_its_ir() -> None:
    """The in-process engine reads unfiltered selects from the builder's
    node (no IR dict): the same request as the node's IR, with first()'s
    and one()'s caps too; any other shape is declined."""
    rng = random.Random(11)
    accepted = searches = 0
    async with aura.connect("memory://", models=[FastIr]) as client:
        for _ in range(1500):
            q = random_builder(client, rng)
            if rng.random() < 0.3:  # unfiltered selects are the node reader's
                q = ranked(client.query(FastIr), rng).limit(rng.randint(0, 30))
            node = q.query
            for cap in (None, 1, 2):
                fast, general = _core.node_parse_paths(node, cap)
                if fast is None:  # only shapes it does not cover
                    assert node.filters or node.order_by, node
                    continue
                accepted += 1
                searches += node.vector is not None or node.text_search is not None
                assert fast == general, (node, cap)
    assert accepted > 1000
    assert searches > 300, "top-k searches take the node reader"


async def test_the_node_reader_knows_every_field_of_a_select_node() -> None:
    """`ir_fast::select_node` reads these fields (or declines a node whose
    field it does not read): a field added to `SelectQuery` must be read
    there too, or the reader would leave it out of the request."""
    import dataclasses

    from aura.query.ast import SelectQuery

    assert [f.name for f in dataclasses.fields(SelectQuery)] == [
        "model", "filters", "projection", "includes", "order_by", "limit", "offset",
        "vector", "vector_ann", "text", "text_search", "hybrid", "fusion_alpha",
        "consistency", "timeout_ms", "facets", "metrics", "group_by",
    ]  # fmt: skip


async def test_the_node_reader_declines_what_it_does_not_read() -> None:
    """Filters, sort, includes, legacy text, fusion and hybrid go through
    the node's IR; consistency and the caps are read from the node."""
    async with aura.connect("memory://", models=[FastIr]) as client:
        q = client.query(FastIr)
        declined = [
            q.where(FastIr.n == 1),
            q.order_by(FastIr.n),
            q.text("body", query="a"),
            q.search_vector("v", [1.0, 0.0, 0.0]).fusion(alpha=0.5),
            q.search_hybrid("body", "a", "v", [1.0, 0.0, 0.0]),
        ]
        for builder in declined:
            assert _core.node_parse_paths(builder.query)[0] is None, builder.query
        for builder in (q.consistency("eventual"), q.consistency("strong").limit(5)):
            for cap in (None, 1, 2):
                fast, general = _core.node_parse_paths(builder.query, cap)
                assert fast is not None and fast == general


async def test_reads_on_the_engine_return_what_their_ir_returns() -> None:
    """all(), first() and one() through the node reader answer what the
    request built from the node's IR answers, rows and scores."""
    from aura import search_scores

    async with aura.connect("memory://", models=[FastIr]) as client:
        await client.bulk_insert(
            FastIr,
            [
                FastIr(id=i, n=i % 5, s=f"s{i}", body=f"a b {'x ' * (i % 4)}", v=[i, 1.0, -i])
                for i in range(40)
            ],
        )
        rng = random.Random(3)
        ones = 0
        for _ in range(200):
            q = ranked(client.query(FastIr), rng).limit(rng.randint(1, 12))
            assert _core.node_parse_paths(q.query)[0] is not None  # the node is read
            for terminal, cap in (("all", None), ("first", 1), ("one", 2)):
                if terminal == "one" and len(await q.all()) != 1:
                    continue  # one() raises unless exactly one row comes back
                got = await getattr(q, terminal)()
                ir = q.query.to_ir() if cap is None else q.query.capped_ir(cap)
                want = await client._execute(ir, FastIr)
                got = got if isinstance(got, list) else ([] if got is None else [got])
                want = want if cap is None else want[:1]
                assert [r.id for r in got] == [r.id for r in want]
                if q.query.is_ranked:
                    assert [search_scores(r) for r in got] == [search_scores(r) for r in want]
                ones += terminal == "one"
        assert ones > 5, "one() goes through the node reader too"


async def test_both_readers_agree_on_random_builder_queries() -> None:
    rng = random.Random(7)
    accepted = searches = 0
    async with aura.connect("memory://", models=[FastIr]) as client:
        for _ in range(1500):
            ir = random_ir(client, rng)
            fast, general = _core.ir_parse_paths(ir)
            if fast is not None:
                accepted += 1
                searches += "vector" in ir or "text_search" in ir
                assert fast == general, ir
            else:  # only shapes the fast reader does not cover
                assert "sort" in ir, ir
    assert accepted > 1000
    assert searches > 200, "top-k searches take the fast reader"


@pytest.mark.parametrize(
    "ir",
    [
        {"operation": "select", "model": "FastIr", "limit": -1},
        {"operation": "select", "model": "FastIr", "limit": True},
        {"operation": "select", "model": "FastIr", "surprise": 1},
        {"operation": "select", "model": 3},
        {"operation": "count", "model": "FastIr", "filters": [{"kind": "compare"}]},
        {
            "operation": "select",
            "model": "FastIr",
            "filters": [
                {
                    "kind": "compare",
                    "op": "eq",
                    "left": {"kind": "field", "model": "FastIr", "field": "n", "extra": 1},
                    "right": {"kind": "literal", "value": 1},
                }
            ],
        },
    ],
)
def test_malformed_or_unusual_requests_are_left_to_the_general_reader(
    ir: dict[str, Any],
) -> None:
    with pytest.raises(aura.AuraQueryError):
        _core.ir_parse_paths(ir)


def test_valid_shapes_it_does_not_cover_are_read_by_the_general_reader() -> None:
    ir = {"model": "FastIr", "operation": "select", "filters": ({"kind": "literal"},)}
    fast, general = _core.ir_parse_paths(ir)
    assert fast is None
    assert general["filters"] == [{"kind": "literal", "value": None}]


def test_vector_queries_of_ints_are_converted_by_the_general_reader() -> None:
    vector = {"field": "v", "metric": "cosine", "query": [1, 2.5, -3]}
    fast, general = _core.ir_parse_paths(
        {"operation": "select", "model": "FastIr", "vector": vector}
    )
    assert fast is None
    assert general["vector"]["query"] == [1.0, 2.5, -3.0]


@pytest.mark.parametrize(
    "clause",
    [
        {"vector": {"field": "v", "metric": "cosine", "query": [float("nan"), 1.0, 2.0]}},
        {"vector": {"field": "v", "metric": "cosine", "query": [float("inf"), 1.0, 2.0]}},
        {
            "text_search": {
                "field": "body",
                "query": "a",
                "operator": "or",
                "rank": "bm25",
                "k1": float("inf"),
            }
        },
        {
            "text_search": {
                "field": "body",
                "query": "a",
                "operator": "or",
                "rank": "bm25",
                "b": float("nan"),
            }
        },
    ],
)
@pytest.mark.parametrize("operation_first", [True, False])
async def test_non_finite_numbers_are_left_to_the_general_reader(
    clause: dict[str, Any], operation_first: bool
) -> None:
    head = {"operation": "select", "model": "FastIr"}
    ir = {**head, **clause} if operation_first else {**clause, **head}
    try:
        fast, _ = _core.ir_parse_paths(ir)
    except aura.AuraQueryError:
        # The general reader refuses it: so must a request that runs.
        async with aura.connect("memory://", models=[FastIr]) as client:
            with pytest.raises(aura.AuraQueryError):
                client._backend.connection.execute(ir, None)
        return
    assert fast is None
