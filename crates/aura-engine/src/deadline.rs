//! Per-query deadlines (`timeout_ms`): scans and sorts poll the clock every
//! few thousand steps, so checking stays off the per-row cost.

use std::cell::Cell;
use std::time::{Duration, Instant};

use aura_core::{Error, Result};

/// Steps between two clock reads.
const POLL_EVERY: u32 = 4096;

pub(crate) struct Deadline {
    at: Option<Instant>,
    timeout_ms: u64,
    steps: Cell<u32>,
    expired: Cell<bool>,
}

impl Deadline {
    pub fn new(timeout_ms: Option<u64>) -> Self {
        Deadline {
            at: timeout_ms.map(|ms| Instant::now() + Duration::from_millis(ms)),
            timeout_ms: timeout_ms.unwrap_or(0),
            steps: Cell::new(0),
            expired: Cell::new(false),
        }
    }

    pub fn none() -> Self {
        Deadline::new(None)
    }

    pub fn is_set(&self) -> bool {
        self.at.is_some()
    }

    /// Counts one step; true once the deadline has passed (sticky).
    pub fn step_expired(&self) -> bool {
        if self.at.is_none() {
            return false;
        }
        if self.expired.get() {
            return true;
        }
        let steps = self.steps.get().wrapping_add(1);
        self.steps.set(steps);
        if steps % POLL_EVERY == 0 {
            self.poll();
        }
        self.expired.get()
    }

    /// Counts one step and fails once the deadline has passed.
    pub fn step(&self) -> Result<()> {
        if self.step_expired() {
            return Err(self.error());
        }
        Ok(())
    }

    /// Reads the clock now; fails if the deadline has passed.
    pub fn check(&self) -> Result<()> {
        self.poll();
        if self.expired.get() {
            return Err(self.error());
        }
        Ok(())
    }

    fn poll(&self) {
        if self.at.is_some_and(|at| Instant::now() >= at) {
            self.expired.set(true);
        }
    }

    pub fn error(&self) -> Error {
        Error::timeout(format!(
            "query exceeded its timeout of {} ms",
            self.timeout_ms
        ))
        .with_context("timeout_ms", self.timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_deadline_never_expires() {
        let d = Deadline::none();
        for _ in 0..10_000 {
            assert!(d.step().is_ok());
        }
        assert!(d.check().is_ok());
    }

    #[test]
    fn zero_timeout_expires_at_first_poll() {
        let d = Deadline::new(Some(0));
        assert!(d.check().is_err());
        let err = d.step().unwrap_err();
        assert_eq!(err.code, aura_core::ErrorCode::Timeout);
        assert_eq!(err.message, "query exceeded its timeout of 0 ms");
    }
}
