"""In-process metrics, query fingerprints and the optional OpenTelemetry bridge (API.md §12).

Nothing here logs. Span attributes and fingerprints never carry literal
values, credentials or row data (§9 redaction, §16 row 40).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import math
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "CAPTURE_QUERY_IR_MODES",
    "LatencyHistogram",
    "Metrics",
    "TelemetryConfig",
    "Tracer",
    "query_fingerprint",
    "redact_ir",
]


# --------------------------------------------------------------------------- histograms


class LatencyHistogram:
    """Latency samples in seconds; percentiles over the newest ``max_samples``."""

    __slots__ = ("_samples", "count", "max_samples", "name", "total_seconds")

    def __init__(self, name: str, max_samples: int = 8192) -> None:
        if not isinstance(max_samples, int) or isinstance(max_samples, bool) or max_samples < 1:
            raise ValueError("max_samples must be a positive integer")
        self.name = name
        self.max_samples = max_samples
        self.count = 0
        self.total_seconds = 0.0
        self._samples: deque[float] = deque(maxlen=max_samples)

    def record(self, seconds: float) -> None:
        value = float(seconds)
        if not 0.0 <= value < math.inf:  # negative, infinite or NaN: the rare case
            if not math.isfinite(value):
                return  # a broken clock reading must not poison every percentile
            value = 0.0
        self.count += 1
        self.total_seconds += value
        self._samples.append(value)

    def percentile(self, p: float) -> float:
        """Seconds at percentile ``p`` (0..100), linear interpolation at rank p/100*(n-1)."""
        ordered = sorted(self._samples)
        return _interpolate(ordered, p)

    def snapshot(self) -> dict[str, Any]:
        ordered = sorted(self._samples)
        return {
            "count": self.count,
            "total_ms": _ms(self.total_seconds),
            "p50_ms": _ms(_interpolate(ordered, 50)),
            "p95_ms": _ms(_interpolate(ordered, 95)),
            "p99_ms": _ms(_interpolate(ordered, 99)),
        }

    def reset(self) -> None:
        self.count = 0
        self.total_seconds = 0.0
        self._samples.clear()

    def __repr__(self) -> str:
        return f"LatencyHistogram(name={self.name!r}, count={self.count})"


def _interpolate(ordered: list[float], p: float) -> float:
    if not ordered:
        return 0.0
    rank = min(max(p, 0.0), 100.0) / 100.0 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 4)


# --------------------------------------------------------------------------- metrics


class Metrics:
    """Counters and latency histograms of one client (``client.metrics``)."""

    def __init__(self) -> None:
        self.request_latency = LatencyHistogram("request_latency")
        self.serialize_latency = LatencyHistogram("serialize_latency")
        self.deserialize_latency = LatencyHistogram("deserialize_latency")
        self.reset()

    def reset(self) -> None:
        self.query_count: dict[str, int] = {}
        self.error_count: dict[str, int] = {}
        self.errors_total = 0
        self.retry_count = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.frames_sent = 0
        self.frames_received = 0
        self.stream_cancellations = 0
        self.request_latency.reset()
        self.serialize_latency.reset()
        self.deserialize_latency.reset()

    def record_query(self, operation: str, seconds: float | None = None) -> None:
        """Count one request of ``operation``; record its latency when given."""
        self.query_count[operation] = self.query_count.get(operation, 0) + 1
        if seconds is not None:
            self.request_latency.record(seconds)

    def record_error(self, error: BaseException | str) -> None:
        """Count an error by its stable code (an exception or the code itself)."""
        code = error if isinstance(error, str) else getattr(error, "code", None)
        key = code if isinstance(code, str) and code else "unknown"
        self.error_count[key] = self.error_count.get(key, 0) + 1
        self.errors_total += 1

    def record_retry(self, attempts_beyond_first: int = 1) -> None:
        self.retry_count += max(int(attempts_beyond_first), 0)

    def record_bytes(self, sent: int = 0, received: int = 0) -> None:
        self.bytes_sent += int(sent)
        self.bytes_received += int(received)

    def record_frames(self, sent: int = 0, received: int = 0) -> None:
        self.frames_sent += int(sent)
        self.frames_received += int(received)

    def record_stream_cancellation(self) -> None:
        self.stream_cancellations += 1

    def record_serialize(self, seconds: float) -> None:
        self.serialize_latency.record(seconds)

    def record_deserialize(self, seconds: float) -> None:
        self.deserialize_latency.record(seconds)

    def snapshot(self) -> dict[str, Any]:
        return {
            "query_count": dict(sorted(self.query_count.items())),
            "error_count": dict(sorted(self.error_count.items())),
            "errors_total": self.errors_total,
            "retry_count": self.retry_count,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "frames_sent": self.frames_sent,
            "frames_received": self.frames_received,
            "stream_cancellations": self.stream_cancellations,
            "request_latency": self.request_latency.snapshot(),
            "serialize": self.serialize_latency.snapshot(),
            "deserialize": self.deserialize_latency.snapshot(),
        }

    def __repr__(self) -> str:
        total = sum(self.query_count.values())
        return f"Metrics(queries={total}, errors={self.errors_total})"


# --------------------------------------------------------------------------- telemetry config

CAPTURE_QUERY_IR_MODES = ("off", "redacted")


@dataclass(frozen=True)
class TelemetryConfig:
    """Tracing switches. ``capture_bind_params`` is accepted for compatibility,
    but bound values are never exported (§9 redaction rule)."""

    opentelemetry: bool = False
    capture_query_ir: str = "off"
    capture_bind_params: bool = False

    def __post_init__(self) -> None:
        for name in ("opentelemetry", "capture_bind_params"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"TelemetryConfig.{name} must be a bool")
        if self.capture_query_ir not in CAPTURE_QUERY_IR_MODES:
            raise ValueError(
                "TelemetryConfig.capture_query_ir must be 'off' or 'redacted', "
                f"got {self.capture_query_ir!r}"
            )

    @classmethod
    def from_value(cls, value: Any) -> TelemetryConfig:
        """None/False → defaults, True → OpenTelemetry on, dict, or an instance."""
        if value is None or value is False:
            return cls()
        if value is True:
            return cls(opentelemetry=True)
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - _TELEMETRY_FIELDS)
            if unknown:
                raise TypeError(f"Unknown telemetry option(s): {', '.join(map(str, unknown))}")
            return cls(**value)
        raise TypeError(
            "telemetry must be None, a bool, a dict or a TelemetryConfig, "
            f"not {type(value).__name__}"
        )


_TELEMETRY_FIELDS = frozenset(f.name for f in fields(TelemetryConfig))


# --------------------------------------------------------------------------- fingerprints

_PLACEHOLDER = "?"
# §12: values under these keys are literals or row data.
_FINGERPRINT_KEYS = frozenset({"value", "values", "query", "params", "rows", "set", "key"})
# §16 row 40: page windows do not change the query's shape. Hybrid's text and
# vector and a page cursor are literals too (§12 "differing only in literal values").
_FINGERPRINT_EXTRA = frozenset({"limit", "offset", "text_query", "cursor"})
# Captured IR additionally hides raw statements and every vector (§16 row 40).
_REDACT_KEYS = _FINGERPRINT_KEYS | {"text_query", "cursor", "statement"}


def _scrub(node: Any, keys: frozenset[str]) -> Any:
    """Deep copy of ``node`` with the values under ``keys`` (and literal vectors) → "?"."""
    if isinstance(node, Mapping):
        return _scrub_mapping(node, keys)
    if isinstance(node, (list, tuple)):
        return [_scrub(item, keys) for item in node]
    return node


def _scrub_mapping(node: Mapping[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        # `vector` is a clause dict in selects, a literal list in hybrid and a
        # number in hybrid weights: only the list is a value to hide.
        hide = key in keys or (key == "vector" and isinstance(value, (list, tuple)))
        out[str(key)] = _PLACEHOLDER if hide else _scrub(value, keys)
    return out


def _as_ir(ir: Any) -> Mapping[str, Any]:
    if isinstance(ir, Mapping):
        return ir
    to_ir = getattr(ir, "to_ir", None) or getattr(ir, "explain", None)
    if callable(to_ir):
        result = to_ir()
        if isinstance(result, Mapping):
            return result
    raise TypeError(f"expected a Query IR dict, not {type(ir).__name__}")


def redact_ir(ir: Any) -> dict[str, Any]:
    """The IR skeleton safe to export: literals, text/vector queries, rows,
    cursors and raw statements replaced by ``"?"``; structure kept."""
    return _scrub_mapping(_as_ir(ir), _REDACT_KEYS)


def query_fingerprint(ir: Any) -> str:
    """``"<operation>:<model>:<8 hex>"``, equal for queries differing only in literals."""
    mapping = _as_ir(ir)
    skeleton = _scrub_mapping(mapping, _FINGERPRINT_KEYS | _FINGERPRINT_EXTRA)
    text = json.dumps(skeleton, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return f"{mapping.get('operation') or '-'}:{_fingerprint_model(mapping)}:{digest}"


def _fingerprint_model(ir: Mapping[str, Any]) -> str:
    model = ir.get("model")
    if model:
        return str(model)
    statement = ir.get("statement")
    words = statement.split() if isinstance(statement, str) else []
    return words[0] if words else "-"


# --------------------------------------------------------------------------- tracing


@functools.cache
def _load_otel_trace() -> Any:
    """``opentelemetry.trace`` or ``None``; imported at most once per process."""
    try:
        return importlib.import_module("opentelemetry.trace")
    except ImportError:
        return None


_NOOP: AbstractContextManager[None] = nullcontext()


class Tracer:
    """Opens one ``aura.<operation>`` span per request when OpenTelemetry is
    installed and enabled; otherwise ``span()`` returns a shared no-op."""

    __slots__ = ("_tracer", "config")

    def __init__(self, config: Any = None) -> None:
        self.config = TelemetryConfig.from_value(config)
        trace = _load_otel_trace() if self.config.opentelemetry else None
        self._tracer: Any = trace.get_tracer("aura") if trace is not None else None

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def span(self, operation: str, ir: Any = None) -> AbstractContextManager[Any]:
        if self._tracer is None:
            return _NOOP
        return self._span(operation, ir)

    @contextmanager
    def _span(self, operation: str, ir: Any) -> Iterator[Any]:
        attributes = self._attributes(operation, ir)
        # We record the exception ourselves so it is recorded exactly once.
        with self._tracer.start_as_current_span(
            f"aura.{operation}", attributes=attributes, record_exception=False
        ) as span:
            try:
                yield span
            except BaseException as exc:
                span.record_exception(exc)
                code = getattr(exc, "code", None)
                if isinstance(code, str):
                    span.set_attribute("aura.error.code", code)
                raise

    def _attributes(self, operation: str, ir: Any) -> dict[str, str]:
        attributes = {"aura.operation": operation}
        if ir is None:
            return attributes
        attributes["aura.query.fingerprint"] = query_fingerprint(ir)
        if self.config.capture_query_ir == "redacted":
            attributes["aura.query.ir"] = json.dumps(
                redact_ir(ir), sort_keys=True, separators=(",", ":"), default=str
            )
        return attributes
