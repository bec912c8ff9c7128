"""The native builder steps (crates/aura-py/src/builder_fast.rs) must build
the very node the Python methods build, and leave every input they do not
take (anything invalid among it) to the Python method and its errors."""

from __future__ import annotations

import random
from typing import Any

import pytest

import aura
from aura import Field, Model, _core
from aura.errors import AuraError
from aura.query import builder as builder_module
from aura.query.ast import TextRankedSearch

native_only = pytest.mark.skipif(
    builder_module.builder_step is None, reason="the native module is not built"
)


class StepDoc(Model):
    id: int = Field(primary_key=True)
    body: str | None = Field(default=None, full_text=True)
    title: str | None = Field(default=None, alias="headline")
    meta: dict[str, Any] = Field(default_factory=dict)


class Sub(StepDoc):
    extra: int = 0


FIELDS: list[Any] = [
    "body",
    "title",
    "headline",
    "meta.a",
    "nope",
    "",
    None,
    7,
    StepDoc.body,
    StepDoc.title,
]
QUERIES: list[Any] = ["w1 w2", "x", "  padded  ", "", "   ", "\x1c\u3000", "é", None, 3, b"w1"]
OPERATORS: list[Any] = ["or", "and", "OR", "xor", None, 1]
RANKS: list[Any] = ["bm25", "term_frequency", "BM25", "tf", None]
PARAMS: list[Any] = [None, None, None, 0, 0.0, 1.2, -1, 2, True, "1"]
LIMITS: list[Any] = [None, None, 0, 10, 2**70, -1, True, 2.0, "3"]


def python_search_text(q: Any, *args: Any, **kwargs: Any) -> Any:
    """``search_text`` with the native step switched off."""
    saved = builder_module._search_text_step
    builder_module._search_text_step = builder_module._no_text_step
    try:
        return q.search_text(*args, **kwargs)
    finally:
        builder_module._search_text_step = saved


def outcome(call: Any) -> Any:
    try:
        return call()
    except AuraError as error:
        return (type(error), str(error))


def same_builder(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    assert a._model is b._model and a._executor is b._executor
    assert type(a.query) is type(b.query)
    assert a.query == b.query
    assert list(vars(a.query)) == list(vars(b.query))  # the node reader's layout
    clause = a.query.text_search
    assert clause is None or type(clause) is TextRankedSearch


@native_only
async def test_search_text_agrees_with_the_python_method_on_random_input() -> None:
    rng = random.Random(5)
    taken = 0
    async with aura.connect("memory://", models=[StepDoc, Sub]) as db:
        bases = [
            db.search(StepDoc),
            db.search(StepDoc).limit(3).offset(1),
            db.search(Sub),
            db.search(StepDoc).search_text("body", "old"),
        ]
        for _ in range(3000):
            # Mostly the first (valid) choice, so that most calls are taken.
            def pick(choices: list[Any]) -> Any:
                return choices[0] if rng.random() < 0.6 else rng.choice(choices)

            base = rng.choice(bases)
            args = (pick(FIELDS), pick(QUERIES))
            kwargs = {
                name: pick(choices)
                for name, choices in [
                    ("operator", OPERATORS),
                    ("rank", RANKS),
                    ("k1", PARAMS),
                    ("b", PARAMS),
                    ("limit", LIMITS),
                ]
                if rng.random() < 0.5
            }
            native = _core.builder_search_text(
                base,
                *args,
                kwargs.get("operator", "or"),
                kwargs.get("rank", "bm25"),
                kwargs.get("k1"),
                kwargs.get("b"),
                kwargs.get("limit"),
            )
            expected = outcome(lambda: python_search_text(base, *args, **kwargs))  # noqa: B023
            if native is None:
                continue  # declined: the method ran its own checks
            taken += 1
            assert not isinstance(expected, tuple), (args, kwargs, expected)
            same_builder(native, expected)
            same_builder(base.search_text(*args, **kwargs), expected)
    assert taken > 300, taken  # the common shape is really taken natively


@native_only
async def test_the_step_copies_the_node_with_one_field_changed() -> None:
    async with aura.connect("memory://", models=[StepDoc]) as db:
        base = db.search(StepDoc).search_text("body", "w1").offset(2)
        for field, value in [
            ("limit", 5),
            ("offset", 0),
            ("timeout_ms", 9),
            ("consistency", "eventual"),
        ]:
            native = _core.builder_step(base, field, value)
            same_builder(native, builder_module._py_step(base, field, value))
            assert getattr(native.query, field) == value
        assert base.query.offset == 2 and base.query.limit is None  # the source is unchanged


@native_only
async def test_native_steps_run_reads_exactly_as_the_python_ones() -> None:
    async with aura.connect("memory://", models=[StepDoc]) as db:
        rows = [StepDoc(id=i, body=f"w{i % 3} w{i % 5} common") for i in range(30)]
        await db.bulk_insert(StepDoc, rows)
        fast = await db.search(StepDoc).search_text("body", "w1 w2").limit(4).all()
        slow = await python_search_text(db.search(StepDoc), "body", "w1 w2").limit(4).all()
        assert [r.id for r in fast] == [r.id for r in slow]
        assert [r.__score__ for r in fast] == [r.__score__ for r in slow]
        assert len(fast) == 4


@native_only
def test_the_builders_call_the_native_steps() -> None:
    assert builder_module._step is _core.builder_step
    assert builder_module._search_text_step is _core.builder_search_text


async def test_the_python_steps_build_the_same_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    """What runs without the native module (``AURA_DISABLE_NATIVE``)."""

    def build(db: aura.Client) -> Any:
        q = db.search(StepDoc).search_text("body", "w1 w2", operator="and").limit(4)
        return q.where(StepDoc.id >= 2).offset(1).timeout(50).consistency("eventual")

    async with aura.connect("memory://", models=[StepDoc]) as db:
        rows = [StepDoc(id=i, body=f"w{i % 3} w{i % 5} common") for i in range(30)]
        await db.bulk_insert(StepDoc, rows)
        built = build(db)
        expected = [(r.id, r.__score__) for r in await built.all()]
        monkeypatch.setattr(builder_module, "_step", builder_module._py_step)
        monkeypatch.setattr(builder_module, "_search_text_step", builder_module._no_text_step)
        python_built = build(db)
        assert python_built.explain() == built.explain()
        assert [(r.id, r.__score__) for r in await python_built.all()] == expected
        # Ids 7, 11, 22 and 26 hold both terms and tie: the first is skipped.
        assert [row_id for row_id, _ in expected] == [11, 22, 26]
