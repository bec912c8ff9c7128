#!/usr/bin/env bash
# The whole test suite: Rust crates, then the Python package. Service-backed
# tests run when their AURA_TEST_*_DSN variables are set, and are skipped
# (with the reason shown) otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

# Same release profile as the wheel, so dependencies are built only once.
cargo test --release --workspace --exclude aura-py

set +e
.venv/bin/python -m pytest -ra "$@"
status=$?
set -e
# pytest exits 5 when it collected no tests: that is a failure of the suite.
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit "$status"
