"""Spans and metrics recorded by a real memory:// client (API.md §12;
§16 rows 40, 43), exported through the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

import aura
from aura import (
    AuraConstraintError,
    AuraNotFoundError,
    AuraQueryError,
    Field,
    Model,
    query_fingerprint,
)
from aura.observability import Tracer, redact_ir
from aura.transport import MemoryTransport

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
sdk_export = pytest.importorskip("opentelemetry.sdk.trace.export")
in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
StatusCode = pytest.importorskip("opentelemetry.trace").StatusCode

SECRET = "s3cret-Value"


class OtelItem(Model):
    id: int = Field(primary_key=True)
    name: str
    code: str = Field(unique=True)


def otel_tracer(exporter: Any, capture: str) -> Tracer:
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(sdk_export.SimpleSpanProcessor(exporter))
    tracer = Tracer({"opentelemetry": True, "capture_query_ir": capture})
    tracer._tracer = provider.get_tracer("aura")  # a private provider, not the global one
    return tracer


@pytest.fixture
def exporter() -> Any:
    return in_memory.InMemorySpanExporter()


async def open_client(tracer: Tracer) -> aura.Client:
    client = aura.Client(
        aura.parse_dsn("memory://"),
        MemoryTransport(),
        models=[OtelItem],
        telemetry_bridge=tracer,
    )
    return await client._open()


@pytest.fixture
async def traced(exporter: Any) -> AsyncIterator[aura.Client]:
    client = await open_client(otel_tracer(exporter, "redacted"))
    yield client
    await client.close()


def attribute_text(span: Any) -> str:
    return json.dumps(dict(span.attributes), sort_keys=True)


async def test_spans_for_each_request(traced: aura.Client, exporter: Any) -> None:
    await traced.insert(OtelItem(id=1, name=SECRET, code="c1"))
    query = traced.query(OtelItem).where(OtelItem.name == SECRET)
    assert len(await query.all()) == 1
    assert await query.count() == 1
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["aura.insert", "aura.select", "aura.count"]
    select = spans[1]
    ir = query.explain()
    assert dict(select.attributes) == {
        "aura.operation": "select",
        "aura.query.fingerprint": query_fingerprint(ir),
        "aura.query.ir": json.dumps(redact_ir(ir), sort_keys=True, separators=(",", ":")),
    }
    assert select.status.status_code is StatusCode.UNSET
    for span in spans:
        assert SECRET not in attribute_text(span)
        assert span.instrumentation_scope.name == "aura"


async def test_query_ir_is_captured_only_when_redacted(exporter: Any) -> None:
    client = await open_client(otel_tracer(exporter, "off"))
    try:
        await client.query(OtelItem).where(OtelItem.name == SECRET).all()
    finally:
        await client.close()
    (span,) = exporter.get_finished_spans()
    assert sorted(span.attributes) == ["aura.operation", "aura.query.fingerprint"]


async def test_failed_request_records_exception_and_code(
    traced: aura.Client, exporter: Any
) -> None:
    await traced.insert(OtelItem(id=1, name="a", code=SECRET))
    with pytest.raises(AuraConstraintError):
        await traced.insert(OtelItem(id=2, name="b", code=SECRET))
    with pytest.raises(AuraNotFoundError):
        await traced.query(OtelItem).where(OtelItem.id == 404).one()
    spans = exporter.get_finished_spans()
    failed = spans[1]
    assert failed.name == "aura.insert"
    assert failed.attributes["aura.error.code"] == "constraint_violation"
    assert [event.name for event in failed.events] == ["exception"]
    assert failed.events[0].attributes["exception.type"].endswith("AuraConstraintError")
    assert failed.status.status_code is StatusCode.ERROR
    # `one()` raising not_found happens after the request succeeded: no error span.
    assert spans[2].name == "aura.select" and "aura.error.code" not in spans[2].attributes
    for span in spans:
        assert SECRET not in attribute_text(span)


async def test_metrics_after_real_queries() -> None:
    async with aura.connect("memory://", models=[OtelItem]) as client:
        await client.insert(OtelItem(id=1, name="a", code="c1"))
        await client.bulk_insert(OtelItem, [{"id": 2, "name": "b", "code": "c2"}])
        with pytest.raises(AuraConstraintError):
            await client.insert(OtelItem(id=1, name="dup", code="c3"))
        await client.query(OtelItem).all()
        await client.query(OtelItem).count()
        await client.query(OtelItem).exists()
        await client.update(OtelItem).where(OtelItem.id == 1).set(name="z").execute()
        await client.delete(OtelItem).where(OtelItem.id == 2).execute()
        await client.raw("SELECT * FROM OtelItem")
        metrics = client.metrics
        assert metrics.query_count == {
            "insert": 3,
            "select": 1,
            "count": 1,
            "exists": 1,
            "update": 1,
            "delete": 1,
            "raw": 1,
        }
        assert metrics.error_count == {"constraint_violation": 1}
        assert metrics.errors_total == 1
        assert metrics.request_latency.count == 9
        snapshot = client.metrics.snapshot()
        assert snapshot["request_latency"]["count"] == 9
        assert "dup" not in json.dumps(snapshot)


async def test_a_failed_read_on_the_engine_is_counted_by_code() -> None:
    async with aura.connect("memory://", models=[OtelItem]) as client:
        await client.insert(OtelItem(id=1, name="a", code="c1"))
        ir = client.query(OtelItem).where(OtelItem.id == 1).query.to_ir()
        with pytest.raises(AuraQueryError):
            await client._execute({**ir, "limit": -1}, OtelItem)
        await client.query(OtelItem).where(OtelItem.id == 1).first()
        assert client.metrics.query_count == {"insert": 1, "select": 2}
        assert client.metrics.error_count == {"query_error": 1}
        assert client.metrics.request_latency.count == 3


async def test_errors_other_than_aura_errors_are_counted() -> None:
    async with aura.connect("memory://", models=[OtelItem]) as client:
        with pytest.raises(TypeError):
            await client._observe({"operation": "select"}, _raise(TypeError("boom")))
        assert client.metrics.error_count == {"unknown": 1}
        assert client.metrics.query_count == {"select": 1}


async def _raise(exc: Exception) -> None:
    raise exc


async def test_cancellation_is_not_counted_as_an_error() -> None:
    import asyncio

    async with aura.connect("memory://", models=[OtelItem]) as client:
        with pytest.raises(asyncio.CancelledError):
            await client._observe({"operation": "select"}, _raise_cancelled())
        assert client.metrics.errors_total == 0
        assert client.metrics.query_count == {"select": 1}


async def _raise_cancelled() -> None:
    import asyncio

    raise asyncio.CancelledError


async def test_metrics_can_be_switched_off() -> None:
    async with aura.connect("memory://", models=[OtelItem], telemetry={"metrics": False}) as client:
        await client.insert(OtelItem(id=1, name="a", code="c1"))
        with pytest.raises(AuraConstraintError):
            await client.insert(OtelItem(id=1, name="dup", code="c3"))
        assert await client.query(OtelItem).count() == 1
        async for _ in client.query(OtelItem).stream(batch_size=1):
            break
        assert client.metrics.snapshot() == aura.Metrics().snapshot()


def test_metrics_switch_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="metrics"):
        aura.TelemetryConfig(metrics="no")  # type: ignore[arg-type]
