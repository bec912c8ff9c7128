"""In-process metrics, query fingerprints and the optional OpenTelemetry bridge (API.md §12).

Nothing here logs. Span attributes and fingerprints never carry literal
values, credentials or row data (§9 redaction, §16 row 40).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, fields
from typing import Any

from aura import _core

__all__ = [
    "CAPTURE_QUERY_IR_MODES",
    "LatencyHistogram",
    "Metrics",
    "TelemetryConfig",
    "Tracer",
    "query_fingerprint",
    "redact_ir",
]


# --------------------------------------------------------------------------- metrics

# Counters and histograms are native (crates/aura-py/src/metrics.rs): a
# request is recorded by one call into the core.
Metrics = _core.Metrics
LatencyHistogram = _core.LatencyHistogram


# --------------------------------------------------------------------------- telemetry config

CAPTURE_QUERY_IR_MODES = ("off", "redacted")


@dataclass(frozen=True)
class TelemetryConfig:
    """Tracing switches. ``capture_bind_params`` is accepted for compatibility,
    but bound values are never exported (§9 redaction rule). ``metrics=False``
    stops recording requests into ``client.metrics``."""

    opentelemetry: bool = False
    capture_query_ir: str = "off"
    capture_bind_params: bool = False
    metrics: bool = True

    def __post_init__(self) -> None:
        for name in ("opentelemetry", "capture_bind_params", "metrics"):
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

    __slots__ = ("_tracer", "config", "enabled")

    def __init__(self, config: Any = None) -> None:
        self.config = TelemetryConfig.from_value(config)
        trace = _load_otel_trace() if self.config.opentelemetry else None
        self._tracer: Any = trace.get_tracer("aura") if trace is not None else None
        # A plain attribute, not a property: every request reads it.
        self.enabled: bool = self._tracer is not None

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
