#!/usr/bin/env bash
# The test command README.md gives: ruff, then pytest (unit, integration against the local vLLM test
# double, notebooks through nbmake). GPU tests skip themselves unless a live vLLM server is named.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/python -m pytest tests notebooks --nbmake "$@"
