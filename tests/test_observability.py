"""aura.observability (API.md §12; §15 check 48; §16 rows 40, 43)."""

from __future__ import annotations

import hashlib
import json
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from aura import observability
from aura.errors import AuraQueryError
from aura.observability import (
    LatencyHistogram,
    Metrics,
    TelemetryConfig,
    Tracer,
    query_fingerprint,
    redact_ir,
)

# --------------------------------------------------------------------------- histograms


def test_histogram_empty_snapshot() -> None:
    hist = LatencyHistogram("x")
    assert hist.name == "x" and hist.max_samples == 8192
    assert hist.snapshot() == {
        "count": 0,
        "total_ms": 0.0,
        "p50_ms": 0.0,
        "p95_ms": 0.0,
        "p99_ms": 0.0,
    }


def test_histogram_linear_interpolation() -> None:
    hist = LatencyHistogram("x")
    for ms in (1, 2, 3, 4, 10):
        hist.record(ms / 1000)
    # ranks: p50 → 2.0 (3 ms); p95 → 3.8 (4 + 0.8·6 = 8.8 ms); p99 → 3.96 (9.76 ms)
    assert hist.snapshot() == {
        "count": 5,
        "total_ms": 20.0,
        "p50_ms": 3.0,
        "p95_ms": 8.8,
        "p99_ms": 9.76,
    }
    assert hist.count == 5
    assert hist.total_seconds == pytest.approx(0.02)


def test_histogram_single_sample_and_rounding() -> None:
    hist = LatencyHistogram("x")
    hist.record(0.00012345678)
    snap = hist.snapshot()
    assert snap["p50_ms"] == snap["p99_ms"] == snap["total_ms"] == 0.1235


def test_histogram_two_samples_percentiles() -> None:
    hist = LatencyHistogram("x")
    hist.record(0.0)
    hist.record(1.0)
    assert hist.snapshot()["p50_ms"] == 500.0
    assert hist.snapshot()["p95_ms"] == 950.0
    assert hist.snapshot()["p99_ms"] == 990.0
    assert hist.percentile(25) == 0.25


def test_histogram_keeps_newest_samples_but_counts_all() -> None:
    hist = LatencyHistogram("x", max_samples=3)
    for s in (100.0, 1.0, 2.0, 3.0):
        hist.record(s)
    snap = hist.snapshot()
    assert snap["count"] == 4
    assert snap["total_ms"] == 106000.0
    assert snap["p50_ms"] == 2000.0  # 100 s was evicted


def test_histogram_ignores_non_finite_and_clamps_negative() -> None:
    hist = LatencyHistogram("x")
    hist.record(float("nan"))
    hist.record(float("inf"))
    hist.record(-1.0)
    assert hist.count == 1 and hist.total_seconds == 0.0


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
def test_histogram_rejects_bad_max_samples(bad: Any) -> None:
    with pytest.raises(ValueError):
        LatencyHistogram("x", max_samples=bad)


def test_histogram_reset() -> None:
    hist = LatencyHistogram("x")
    hist.record(1)
    hist.reset()
    assert hist.snapshot()["count"] == 0 and hist.total_seconds == 0.0


# --------------------------------------------------------------------------- metrics

SNAPSHOT_KEYS = [
    "query_count",
    "error_count",
    "errors_total",
    "retry_count",
    "bytes_sent",
    "bytes_received",
    "frames_sent",
    "frames_received",
    "stream_cancellations",
    "request_latency",
    "serialize",
    "deserialize",
]


def test_metrics_initial_snapshot() -> None:
    snap = Metrics().snapshot()
    assert list(snap) == SNAPSHOT_KEYS
    assert snap["query_count"] == {} and snap["error_count"] == {}
    for key in SNAPSHOT_KEYS[2:9]:
        assert snap[key] == 0
    assert snap["request_latency"]["count"] == 0


def test_metrics_recording() -> None:
    metrics = Metrics()
    metrics.record_query("select", 0.002)
    metrics.record_query("select")
    metrics.record_query("insert", 0.004)
    metrics.record_error(AuraQueryError("bad"))
    metrics.record_error("timeout")
    metrics.record_error("not_found")
    metrics.record_error(ValueError("no code"))
    metrics.record_retry()
    metrics.record_retry(attempts_beyond_first=2)
    metrics.record_bytes(10, 20)
    metrics.record_bytes(sent=1)
    metrics.record_frames(1, 2)
    metrics.record_frames(received=1)
    metrics.record_stream_cancellation()
    metrics.record_serialize(0.001)
    metrics.record_deserialize(0.003)
    snap = metrics.snapshot()
    assert snap["query_count"] == {"insert": 1, "select": 2}
    assert list(snap["error_count"].items()) == [
        ("not_found", 1),
        ("query_error", 1),
        ("timeout", 1),
        ("unknown", 1),
    ]
    assert snap["errors_total"] == 4
    assert snap["retry_count"] == 3
    assert (snap["bytes_sent"], snap["bytes_received"]) == (11, 20)
    assert (snap["frames_sent"], snap["frames_received"]) == (1, 3)
    assert snap["stream_cancellations"] == 1
    assert snap["request_latency"]["count"] == 2
    assert snap["request_latency"]["total_ms"] == 6.0
    assert snap["serialize"]["total_ms"] == 1.0
    assert snap["deserialize"]["total_ms"] == 3.0
    assert metrics.query_count == {"select": 2, "insert": 1}
    assert repr(metrics) == "Metrics(queries=3, errors=4)"


def test_metrics_reset() -> None:
    metrics = Metrics()
    metrics.record_query("select", 1.0)
    metrics.record_error("timeout")
    metrics.record_bytes(5, 5)
    latency = metrics.request_latency
    metrics.reset()
    assert metrics.snapshot() == Metrics().snapshot()
    assert metrics.request_latency is latency  # histograms are reset in place


def test_metrics_snapshot_is_a_copy() -> None:
    metrics = Metrics()
    metrics.record_query("select")
    snap = metrics.snapshot()
    snap["query_count"]["select"] = 99
    assert metrics.query_count == {"select": 1}


# --------------------------------------------------------------------------- TelemetryConfig


def test_telemetry_config_defaults_and_from_value() -> None:
    default = TelemetryConfig()
    assert (default.opentelemetry, default.capture_query_ir, default.capture_bind_params) == (
        False,
        "off",
        False,
    )
    assert TelemetryConfig.from_value(None) == default
    assert TelemetryConfig.from_value(False) == default
    assert TelemetryConfig.from_value(True) == TelemetryConfig(opentelemetry=True)
    assert TelemetryConfig.from_value({"capture_query_ir": "redacted"}) == TelemetryConfig(
        capture_query_ir="redacted"
    )
    given = TelemetryConfig(opentelemetry=True)
    assert TelemetryConfig.from_value(given) is given


@pytest.mark.parametrize("value", [1, 0, "on", ["x"], 1.0, object()])
def test_telemetry_config_from_value_rejects_other_types(value: Any) -> None:
    with pytest.raises(TypeError, match="telemetry must be None, a bool, a dict"):
        TelemetryConfig.from_value(value)


def test_telemetry_config_validation() -> None:
    with pytest.raises(TypeError, match="Unknown telemetry option"):
        TelemetryConfig.from_value({"bogus": 1})
    with pytest.raises(ValueError, match="capture_query_ir must be 'off' or 'redacted'"):
        TelemetryConfig(capture_query_ir="full")
    with pytest.raises(TypeError):
        TelemetryConfig(opentelemetry=1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- fingerprints


def select_ir(title: str = "R", limit: int = 2, offset: int = 1) -> dict[str, Any]:
    return {
        "operation": "select",
        "model": "Doc",
        "filters": [
            {
                "kind": "compare",
                "op": "contains",
                "left": {"kind": "field", "model": "Doc", "field": "title"},
                "right": {"kind": "literal", "value": title},
            }
        ],
        "projection": ["title"],
        "sort": [{"field": "id", "direction": "desc"}],
        "limit": limit,
        "offset": offset,
        "consistency": "strong",
        "timeout_ms": 50,
    }


def expected_hash(skeleton: dict[str, Any]) -> str:
    text = json.dumps(skeleton, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def test_fingerprint_format_and_hash_rule() -> None:
    ir = select_ir()
    skeleton = json.loads(json.dumps(ir))
    skeleton["filters"][0]["right"]["value"] = "?"
    skeleton["limit"] = skeleton["offset"] = "?"
    assert query_fingerprint(ir) == f"select:Doc:{expected_hash(skeleton)}"


def test_fingerprint_ignores_literals_check_48() -> None:
    secret = "s3cret-literal-value"
    a, b = query_fingerprint(select_ir("R")), query_fingerprint(select_ir(secret))
    assert a == b
    assert secret not in b and "R" not in b.split(":")[2]


def test_fingerprint_ignores_limit_and_offset_row_40() -> None:
    assert query_fingerprint(select_ir(limit=1, offset=0)) == query_fingerprint(
        select_ir(limit=500, offset=40)
    )


def test_fingerprint_distinguishes_shape() -> None:
    other = select_ir()
    other["filters"][0]["op"] = "startswith"
    assert query_fingerprint(other) != query_fingerprint(select_ir())
    no_limit = select_ir()
    del no_limit["limit"]
    assert query_fingerprint(no_limit) != query_fingerprint(select_ir())


def test_fingerprint_replaces_every_listed_key() -> None:
    insert = {"operation": "insert", "model": "User", "rows": [{"id": 1, "pw": "x"}]}
    insert2 = {"operation": "insert", "model": "User", "rows": [{"id": 2}, {"id": 3}]}
    assert query_fingerprint(insert) == query_fingerprint(insert2)
    upsert = {"operation": "upsert", "model": "U", "key": {"id": 1}, "values": {"n": "a"}}
    upsert2 = {"operation": "upsert", "model": "U", "key": {"id": 9}, "values": {"n": "b"}}
    assert query_fingerprint(upsert) == query_fingerprint(upsert2)
    update = {"operation": "update", "model": "U", "filters": [], "set": {"n": 1}}
    assert query_fingerprint(update) == query_fingerprint({**update, "set": {"m": 2}})
    vec: dict[str, Any] = {"operation": "select", "model": "D"}
    vec["vector"] = {"field": "e", "metric": "cosine"}
    a = {**vec, "vector": {**vec["vector"], "query": [1.0, 0.0]}}
    b = {**vec, "vector": {**vec["vector"], "query": [0.0, 1.0]}}
    assert query_fingerprint(a) == query_fingerprint(b)
    c = {**vec, "vector": {"field": "e", "metric": "dot", "query": [0.0, 1.0]}}
    assert query_fingerprint(c) != query_fingerprint(b)


def test_fingerprint_hybrid_literals() -> None:
    def hybrid(text: str, vector: list[float]) -> dict[str, Any]:
        clause = {"text_field": "body", "text_query": text, "vector_field": "e", "vector": vector}
        return {"operation": "select", "model": "Doc", "hybrid": clause}

    assert query_fingerprint(hybrid("a b", [1.0])) == query_fingerprint(hybrid("zz", [0.5]))


def test_fingerprint_raw_uses_first_word_of_statement() -> None:
    raw = {
        "operation": "raw",
        "statement": "SELECT * FROM User WHERE id = $id",
        "params": {"id": 1},
    }
    fp = query_fingerprint(raw)
    assert fp.startswith("raw:SELECT:")
    assert fp == query_fingerprint({**raw, "params": {"id": 2}})
    skeleton = {**raw, "params": "?"}
    assert fp == f"raw:SELECT:{expected_hash(skeleton)}"


def test_fingerprint_missing_model_and_operation() -> None:
    assert query_fingerprint({"operation": "raw", "statement": "  "}).startswith("raw:-:")
    assert query_fingerprint({}).startswith("-:-:")


def test_fingerprint_accepts_objects_with_to_ir_and_rejects_others() -> None:
    class Node:
        def to_ir(self) -> dict[str, Any]:
            return select_ir()

    assert query_fingerprint(Node()) == query_fingerprint(select_ir())
    with pytest.raises(TypeError):
        query_fingerprint(42)


def test_fingerprint_tolerates_non_json_values() -> None:
    import datetime

    ir = {"operation": "select", "model": "M", "extra": datetime.date(2024, 1, 1)}
    assert query_fingerprint(ir).startswith("select:M:")


# --------------------------------------------------------------------------- redaction


def test_redact_ir_hides_literals_and_keeps_structure() -> None:
    ir = select_ir("s3cret")
    redacted = redact_ir(ir)
    assert redacted["filters"][0]["right"] == {"kind": "literal", "value": "?"}
    assert redacted["filters"][0]["left"] == ir["filters"][0]["left"]
    assert redacted["limit"] == 2 and redacted["projection"] == ["title"]
    assert ir["filters"][0]["right"]["value"] == "s3cret"  # input untouched
    assert "s3cret" not in json.dumps(redacted)


def test_redact_ir_row_40() -> None:
    ir = {
        "operation": "search_page",
        "model": "Doc",
        "vector": {"field": "e", "metric": "cosine", "query": [0.1, 0.2]},
        "text_search": {"field": "body", "query": "private words", "operator": "or"},
        "hybrid": {
            "text_field": "body",
            "text_query": "private words",
            "vector_field": "e",
            "vector": [0.3, 0.4],
            "weights": {"text": 0.5, "vector": 0.5},
        },
        "page_size": 2,
        "cursor": "7b2273223a312e307d",
    }
    redacted = redact_ir(ir)
    assert redacted["vector"] == {"field": "e", "metric": "cosine", "query": "?"}
    assert redacted["text_search"]["query"] == "?"
    assert redacted["hybrid"]["text_query"] == "?"
    assert redacted["hybrid"]["vector"] == "?"
    assert redacted["hybrid"]["weights"] == {"text": 0.5, "vector": 0.5}
    assert redacted["cursor"] == "?"
    assert redacted["page_size"] == 2
    text = json.dumps(redacted)
    assert "private" not in text and "0.1" not in text and "7b22" not in text


def test_redact_ir_raw_statement_and_mutations() -> None:
    raw = redact_ir({"operation": "raw", "statement": "SELECT 'x'", "params": [1]})
    assert raw == {"operation": "raw", "statement": "?", "params": "?"}
    insert = redact_ir({"operation": "insert", "model": "U", "rows": [{"pw": "x"}]})
    assert insert == {"operation": "insert", "model": "U", "rows": "?"}
    stream = redact_ir({"operation": "select", "model": "U", "cursor": {"batch_size": 5}})
    assert stream["cursor"] == "?"


# --------------------------------------------------------------------------- tracing


class FakeSpan:
    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self.name = name
        self.attributes = dict(attributes)
        self.exceptions: list[BaseException] = []

    def record_exception(self, exc: BaseException) -> None:
        self.exceptions.append(exc)

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value


class FakeTracer:
    def __init__(self) -> None:
        self.spans: list[FakeSpan] = []
        self.kwargs: list[dict[str, Any]] = []

    @contextmanager
    def start_as_current_span(
        self, name: str, *, attributes: dict[str, Any], **kwargs: Any
    ) -> Iterator[FakeSpan]:
        span = FakeSpan(name, attributes)
        self.spans.append(span)
        self.kwargs.append(kwargs)
        yield span


@pytest.fixture
def fake_otel(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTracer]:
    tracer = FakeTracer()
    trace = types.ModuleType("opentelemetry.trace")
    names: list[str] = []

    def get_tracer(name: str) -> FakeTracer:
        names.append(name)
        return tracer

    trace.get_tracer = get_tracer  # type: ignore[attr-defined]
    package = types.ModuleType("opentelemetry")
    package.trace = trace  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "opentelemetry", package)
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", trace)
    observability._load_otel_trace.cache_clear()
    yield tracer
    assert set(names) <= {"aura"}
    observability._load_otel_trace.cache_clear()


def test_tracer_disabled_is_a_shared_noop(fake_otel: FakeTracer) -> None:
    tracer = Tracer()
    assert not tracer.enabled
    assert tracer.span("select", select_ir()) is tracer.span("insert")
    with tracer.span("select", select_ir()) as span:
        assert span is None
    assert fake_otel.spans == []


def test_tracer_noop_when_opentelemetry_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # import → ImportError
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)
    observability._load_otel_trace.cache_clear()
    try:
        tracer = Tracer(True)
        assert not tracer.enabled
        with tracer.span("select", select_ir()):
            pass
    finally:
        observability._load_otel_trace.cache_clear()


def test_otel_import_is_attempted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = observability.importlib.import_module

    def counting(name: str) -> Any:
        calls.append(name)
        return real(name)

    monkeypatch.setattr(observability.importlib, "import_module", counting)
    observability._load_otel_trace.cache_clear()
    try:
        for _ in range(3):
            Tracer(True)
        tracer = Tracer(True)
        for _ in range(3):
            with tracer.span("select", select_ir()):
                pass
    finally:
        observability._load_otel_trace.cache_clear()
    assert calls == ["opentelemetry.trace"]


def test_tracer_span_attributes(fake_otel: FakeTracer) -> None:
    tracer = Tracer(True)
    assert tracer.enabled
    with tracer.span("select", select_ir("s3cret")) as span:
        assert isinstance(span, FakeSpan)
    (recorded,) = fake_otel.spans
    assert recorded.name == "aura.select"
    assert recorded.attributes == {
        "aura.operation": "select",
        "aura.query.fingerprint": query_fingerprint(select_ir()),
    }
    assert fake_otel.kwargs == [{"record_exception": False}]
    assert recorded.exceptions == []


def test_tracer_span_redacted_ir(fake_otel: FakeTracer) -> None:
    tracer = Tracer({"opentelemetry": True, "capture_query_ir": "redacted"})
    with tracer.span("select", select_ir("s3cret")):
        pass
    attrs = fake_otel.spans[0].attributes
    assert json.loads(attrs["aura.query.ir"]) == redact_ir(select_ir())
    assert "s3cret" not in repr(attrs)


def test_tracer_span_without_ir(fake_otel: FakeTracer) -> None:
    with Tracer(True).span("ping"):
        pass
    assert fake_otel.spans[0].attributes == {"aura.operation": "ping"}


def test_tracer_records_errors(fake_otel: FakeTracer) -> None:
    tracer = Tracer(True)
    err = AuraQueryError("boom")
    with pytest.raises(AuraQueryError), tracer.span("select", select_ir()):
        raise err
    with pytest.raises(KeyError), tracer.span("count", select_ir()):
        raise KeyError("k")
    first, second = fake_otel.spans
    assert first.exceptions == [err]
    assert first.attributes["aura.error.code"] == "query_error"
    assert len(second.exceptions) == 1 and "aura.error.code" not in second.attributes


def test_tracer_with_real_opentelemetry_sdk() -> None:
    # importorskip keeps the optional dependency out of static imports.
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    export = pytest.importorskip("opentelemetry.sdk.trace.export")
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    status_code = pytest.importorskip("opentelemetry.trace").StatusCode

    exporter = memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    observability._load_otel_trace.cache_clear()
    tracer = Tracer({"opentelemetry": True, "capture_query_ir": "redacted"})
    tracer._tracer = provider.get_tracer("aura")  # avoid the process-global provider
    with pytest.raises(AuraQueryError), tracer.span("select", select_ir("s3cret")):
        raise AuraQueryError("bad")
    (span,) = exporter.get_finished_spans()
    assert span.name == "aura.select"
    assert span.attributes is not None
    assert span.attributes["aura.operation"] == "select"
    assert span.attributes["aura.error.code"] == "query_error"
    assert "s3cret" not in str(span.attributes["aura.query.ir"])
    assert [event.name for event in span.events] == ["exception"]
    assert span.status.status_code is status_code.ERROR
