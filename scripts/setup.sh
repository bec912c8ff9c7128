#!/usr/bin/env bash
# One-time set-up on a fresh machine: a virtualenv in .venv with the test
# tools, and the Rust core built (release) and installed into it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "maturin>=1.16,<2"
VIRTUAL_ENV="$PWD/.venv" .venv/bin/maturin develop --release --extras dev
