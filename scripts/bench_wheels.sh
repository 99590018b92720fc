#!/usr/bin/env bash
# Downloads, as CPython 3.12 x86_64 wheels into .gpu/bench, what benchmarks/run_on_device.sh needs on a GPU
# machine without the GPU suite's vLLM staging: the client's dependencies (openai, httpx, pydantic, ...)
# and fpdf2 for the benchmarks' test PDFs. Versions are those of the local .venv. With .gpu/wheels
# (scripts/gpu_wheels.sh) it is ~20 MB, one device call.
set -euo pipefail
cd "$(dirname "$0")/.."
OUTD=.gpu/bench
mkdir -p "$OUTD"
names="openai httpx2 httpcore2 httpx httpcore h11 jiter pydantic pydantic-core annotated-types typing-inspection
sniffio certifi idna tqdm typing-extensions packaging requests urllib3 charset-normalizer pyyaml fpdf2 defusedxml
fonttools truststore"
reqs=""
for n in $names; do
  v=$(.venv/bin/python -c "import importlib.metadata as m,sys; print(m.version(sys.argv[1]))" "$n" 2>/dev/null) || continue
  reqs="$reqs $n==$v"
done
plat="--only-binary=:all: --python-version 3.12 --implementation cp"
for n in 39 35 34 31 28 27 24 17 5; do plat="$plat --platform manylinux_2_${n}_x86_64"; done
plat="$plat --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any"
# shellcheck disable=SC2086
.venv/bin/pip download -q --no-deps $plat -d "$OUTD" $reqs 2>&1 | grep -v 'is ignored' || true
ls "$OUTD" | wc -l; du -sh "$OUTD"
