#!/usr/bin/env bash
# Downloads, as CPython 3.12 x86_64 wheels into .gpu/bench, what benchmarks/run_on_device.sh needs on a GPU
# machine without the GPU suite's vLLM staging: the client's dependencies (openai, httpx, pydantic, ...)
# and fpdf2 for the benchmarks' test PDFs; versions are those of the local .venv (scripts/gpu_wheels.sh
# does the download). With .gpu/wheels it is ~20 MB, one device call.
set -euo pipefail
cd "$(dirname "$0")/.."
OUTD=.gpu/bench NAMES="openai httpx2 httpcore2 httpx httpcore h11 jiter pydantic pydantic-core annotated-types
typing-inspection sniffio certifi idna tqdm typing-extensions packaging requests urllib3 charset-normalizer
pyyaml fpdf2 defusedxml fonttools truststore" exec bash scripts/gpu_wheels.sh
