#!/usr/bin/env bash
# Downloads this project's own runtime/test dependencies as CPython 3.12 x86_64 wheels into .gpu/wheels,
# for the GPU machine (its image lacks them and reaches no registry). vLLM's own parts (openai, pydantic,
# httpx2, ...) come from ../shared/gpu/pack.sh. Versions are those of the local .venv, so both sides match.
# zstandard is left out: langsmith imports it only to compress traces, and the GPU run does not trace.
set -euo pipefail
cd "$(dirname "$0")/.."
OUTD=${OUTD:-.gpu/wheels}   # OUTD and NAMES: scripts/bench_wheels.sh downloads another set the same way
mkdir -p "$OUTD"
names=${NAMES:-"langchain-core langchain-protocol langsmith jsonpatch jsonpointer tenacity uuid-utils orjson
requests-toolbelt xxhash websockets pypdfium2 pytest-asyncio pytest-timeout distro anyio"}
reqs=""
for n in $names; do
  v=$(.venv/bin/python -c "import importlib.metadata as m,sys; print(m.version(sys.argv[1]))" "$n" 2>/dev/null) || continue
  reqs="$reqs $n==$v"
done
plat="--only-binary=:all: --python-version 3.12 --implementation cp"
for n in 39 35 34 31 28 27 24 17 5; do plat="$plat --platform manylinux_2_${n}_x86_64"; done
plat="$plat --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any"
# shellcheck disable=SC2086
python3 -m pip download -q --no-deps $plat -d "$OUTD" $reqs 2>&1 | grep -v 'is ignored' || true
ls "$OUTD" | wc -l; du -sh "$OUTD"
