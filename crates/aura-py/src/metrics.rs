//! `client.metrics` (API.md §12): request counters and latency histograms,
//! recorded here so that a request costs one native call, not a handful of
//! Python dict and deque operations.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyString};

/// Latency samples in seconds; percentiles over the newest `max_samples`.
#[pyclass(module = "aura._core")]
pub struct LatencyHistogram {
    #[pyo3(get)]
    name: String,
    #[pyo3(get)]
    max_samples: usize,
    #[pyo3(get)]
    count: u64,
    #[pyo3(get)]
    total_seconds: f64,
    samples: VecDeque<f64>,
}

#[pymethods]
impl LatencyHistogram {
    #[new]
    #[pyo3(signature = (name, max_samples = None))]
    fn new(name: String, max_samples: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let max_samples = match max_samples {
            None => 8192,
            // bool is an int subclass: refuse it like any non-integer.
            Some(v) if v.is_instance_of::<PyBool>() => return Err(bad_max_samples()),
            Some(v) => match v.extract::<i64>() {
                Ok(n) if n >= 1 => n as usize,
                _ => return Err(bad_max_samples()),
            },
        };
        Ok(LatencyHistogram {
            max_samples,
            ..LatencyHistogram::named(&name)
        })
    }

    fn record(&mut self, seconds: f64) {
        let value = if seconds.is_nan() || seconds.is_infinite() {
            // A broken clock reading must not poison every percentile.
            return;
        } else {
            seconds.max(0.0)
        };
        self.count += 1;
        self.total_seconds += value;
        if self.samples.len() == self.max_samples {
            self.samples.pop_front();
        }
        self.samples.push_back(value);
    }

    /// Seconds at percentile `p` (0..100), linear interpolation at rank
    /// p/100·(n-1).
    fn percentile(&self, p: f64) -> f64 {
        interpolate(&self.sorted(), p)
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let ordered = self.sorted();
        let out = PyDict::new(py);
        out.set_item("count", self.count)?;
        out.set_item("total_ms", ms(py, self.total_seconds)?)?;
        for (key, p) in [("p50_ms", 50.0), ("p95_ms", 95.0), ("p99_ms", 99.0)] {
            out.set_item(key, ms(py, interpolate(&ordered, p))?)?;
        }
        Ok(out)
    }

    fn reset(&mut self) {
        self.count = 0;
        self.total_seconds = 0.0;
        self.samples.clear();
    }

    fn __repr__(&self) -> String {
        format!(
            "LatencyHistogram(name={}, count={})",
            py_str_repr(&self.name),
            self.count
        )
    }
}

impl LatencyHistogram {
    fn named(name: &str) -> Self {
        LatencyHistogram {
            name: name.to_owned(),
            max_samples: 8192,
            count: 0,
            total_seconds: 0.0,
            samples: VecDeque::new(),
        }
    }

    fn sorted(&self) -> Vec<f64> {
        let mut ordered: Vec<f64> = self.samples.iter().copied().collect();
        ordered.sort_by(f64::total_cmp);
        ordered
    }
}

fn bad_max_samples() -> PyErr {
    PyValueError::new_err("max_samples must be a positive integer")
}

fn interpolate(ordered: &[f64], p: f64) -> f64 {
    let Some(last) = ordered.len().checked_sub(1) else {
        return 0.0;
    };
    let rank = p.clamp(0.0, 100.0) / 100.0 * last as f64;
    let low = rank.floor() as usize;
    let high = (low + 1).min(last);
    ordered[low] + (ordered[high] - ordered[low]) * (rank - low as f64)
}

/// Milliseconds rounded as Python's `round(x, 4)` does (the documented
/// snapshot values), so the two never disagree in the last digit.
fn ms(py: Python<'_>, seconds: f64) -> PyResult<Py<PyAny>> {
    static ROUND: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let round = ROUND.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("builtins")?.getattr("round")?.unbind())
    })?;
    Ok(round.bind(py).call1((seconds * 1000.0, 4))?.unbind())
}

fn py_str_repr(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Counts by name, in first-seen order (operations and error codes are few).
#[derive(Default)]
struct Tally(Vec<(String, u64)>);

impl Tally {
    fn add(&mut self, key: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, n)) => *n += 1,
            None => self.0.push((key.to_owned(), 1)),
        }
    }

    fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }

    fn to_dict<'py>(&self, py: Python<'py>, sorted: bool) -> PyResult<Bound<'py, PyDict>> {
        let mut items: Vec<&(String, u64)> = self.0.iter().collect();
        if sorted {
            items.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let out = PyDict::new(py);
        for (key, n) in items {
            out.set_item(key, n)?;
        }
        Ok(out)
    }
}

/// The IR's `operation`, or `"unknown"` for a malformed IR (whose error
/// is still the caller's result).
fn operation_of(ir: &Bound<'_, PyAny>) -> PyResult<String> {
    let operation = ir.get_item(pyo3::intern!(ir.py(), "operation"));
    match operation
        .as_ref()
        .ok()
        .and_then(|o| o.cast::<PyString>().ok())
    {
        Some(name) => Ok(name.to_str()?.to_owned()),
        None => Ok("unknown".to_owned()),
    }
}

impl Metrics {
    /// One request run by a native call: counted under the IR's
    /// `operation`, timed, and its error (if any) counted by code.
    pub fn observe(
        &mut self,
        ir: &Bound<'_, PyAny>,
        elapsed: Duration,
        error: Option<&PyErr>,
    ) -> PyResult<()> {
        self.record_request(ir.py(), &operation_of(ir)?, elapsed, error);
        Ok(())
    }

    /// `observe` for a request whose operation is known (no IR to read).
    pub fn record_request(
        &mut self,
        py: Python<'_>,
        operation: &str,
        elapsed: Duration,
        error: Option<&PyErr>,
    ) {
        self.queries.add(operation);
        self.request_latency
            .borrow_mut(py)
            .record(elapsed.as_secs_f64());
        if let Some(error) = error {
            self.record_error(error.value(py));
        }
    }
}

/// A request answered by an awaitable, recorded into `client.metrics`
/// once, when it completes: when the bridge settles its future (result or
/// error), or when the future is done without that (cancelled), which
/// counts and times it without an error, like a cancelled Python await.
pub struct Observer {
    metrics: Py<Metrics>,
    operation: String,
    started: Instant,
    recorded: AtomicBool,
}

impl Observer {
    pub fn new(metrics: &Bound<'_, Metrics>, ir: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Observer {
            metrics: metrics.clone().unbind(),
            operation: operation_of(ir)?,
            started: Instant::now(),
            recorded: AtomicBool::new(false),
        })
    }

    /// Record the request (only the first call does).
    pub fn record(&self, py: Python<'_>, error: Option<&PyErr>) {
        if self.recorded.swap(true, Ordering::Relaxed) {
            return;
        }
        // Recording never replaces the request's own outcome.
        if let Ok(mut metrics) = self.metrics.bind(py).try_borrow_mut() {
            metrics.record_request(py, &self.operation, self.started.elapsed(), error);
        }
    }
}

/// Counters and latency histograms of one client (`client.metrics`).
#[pyclass(module = "aura._core")]
pub struct Metrics {
    queries: Tally,
    errors: Tally,
    #[pyo3(get)]
    retry_count: u64,
    #[pyo3(get)]
    bytes_sent: u64,
    #[pyo3(get)]
    bytes_received: u64,
    #[pyo3(get)]
    frames_sent: u64,
    #[pyo3(get)]
    frames_received: u64,
    #[pyo3(get)]
    stream_cancellations: u64,
    #[pyo3(get)]
    request_latency: Py<LatencyHistogram>,
    #[pyo3(get)]
    serialize_latency: Py<LatencyHistogram>,
    #[pyo3(get)]
    deserialize_latency: Py<LatencyHistogram>,
}

#[pymethods]
impl Metrics {
    #[new]
    fn new(py: Python<'_>) -> PyResult<Self> {
        let hist = |name| Py::new(py, LatencyHistogram::named(name));
        Ok(Metrics {
            queries: Tally::default(),
            errors: Tally::default(),
            retry_count: 0,
            bytes_sent: 0,
            bytes_received: 0,
            frames_sent: 0,
            frames_received: 0,
            stream_cancellations: 0,
            request_latency: hist("request_latency")?,
            serialize_latency: hist("serialize_latency")?,
            deserialize_latency: hist("deserialize_latency")?,
        })
    }

    /// Histograms are reset in place (references to them stay valid).
    fn reset(&mut self, py: Python<'_>) {
        self.queries = Tally::default();
        self.errors = Tally::default();
        self.retry_count = 0;
        self.bytes_sent = 0;
        self.bytes_received = 0;
        self.frames_sent = 0;
        self.frames_received = 0;
        self.stream_cancellations = 0;
        for hist in self.histograms() {
            hist.borrow_mut(py).reset();
        }
    }

    #[getter]
    fn query_count<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.queries.to_dict(py, false)
    }

    #[getter]
    fn error_count<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.errors.to_dict(py, false)
    }

    #[getter]
    fn errors_total(&self) -> u64 {
        self.errors.total()
    }

    /// Count one request of `operation`; record its latency when given.
    #[pyo3(signature = (operation, seconds = None))]
    fn record_query(&mut self, py: Python<'_>, operation: &str, seconds: Option<f64>) {
        self.queries.add(operation);
        if let Some(seconds) = seconds {
            self.request_latency.borrow_mut(py).record(seconds);
        }
    }

    /// Count an error by its stable code (an exception or the code itself).
    fn record_error(&mut self, error: &Bound<'_, PyAny>) {
        let code = match error.cast::<PyString>() {
            Ok(s) => Some(s.clone()),
            Err(_) => error
                .getattr(pyo3::intern!(error.py(), "code"))
                .ok()
                .and_then(|c| c.cast_into::<PyString>().ok()),
        };
        let code = code.and_then(|c| c.to_str().map(str::to_owned).ok());
        match code.as_deref() {
            Some(code) if !code.is_empty() => self.errors.add(code),
            _ => self.errors.add("unknown"),
        }
    }

    #[pyo3(signature = (attempts_beyond_first = 1))]
    fn record_retry(&mut self, attempts_beyond_first: i64) {
        self.retry_count += attempts_beyond_first.max(0) as u64;
    }

    #[pyo3(signature = (sent = 0, received = 0))]
    fn record_bytes(&mut self, sent: u64, received: u64) {
        self.bytes_sent += sent;
        self.bytes_received += received;
    }

    #[pyo3(signature = (sent = 0, received = 0))]
    fn record_frames(&mut self, sent: u64, received: u64) {
        self.frames_sent += sent;
        self.frames_received += received;
    }

    fn record_stream_cancellation(&mut self) {
        self.stream_cancellations += 1;
    }

    fn record_serialize(&self, py: Python<'_>, seconds: f64) {
        self.serialize_latency.borrow_mut(py).record(seconds);
    }

    fn record_deserialize(&self, py: Python<'_>, seconds: f64) {
        self.deserialize_latency.borrow_mut(py).record(seconds);
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        out.set_item("query_count", self.queries.to_dict(py, true)?)?;
        out.set_item("error_count", self.errors.to_dict(py, true)?)?;
        out.set_item("errors_total", self.errors.total())?;
        out.set_item("retry_count", self.retry_count)?;
        out.set_item("bytes_sent", self.bytes_sent)?;
        out.set_item("bytes_received", self.bytes_received)?;
        out.set_item("frames_sent", self.frames_sent)?;
        out.set_item("frames_received", self.frames_received)?;
        out.set_item("stream_cancellations", self.stream_cancellations)?;
        out.set_item(
            "request_latency",
            self.request_latency.borrow(py).snapshot(py)?,
        )?;
        out.set_item("serialize", self.serialize_latency.borrow(py).snapshot(py)?)?;
        out.set_item(
            "deserialize",
            self.deserialize_latency.borrow(py).snapshot(py)?,
        )?;
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!(
            "Metrics(queries={}, errors={})",
            self.queries.total(),
            self.errors.total()
        )
    }
}

impl Metrics {
    fn histograms(&self) -> [&Py<LatencyHistogram>; 3] {
        [
            &self.request_latency,
            &self.serialize_latency,
            &self.deserialize_latency,
        ]
    }
}
