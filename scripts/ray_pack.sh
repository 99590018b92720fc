#!/usr/bin/env bash
# Prepares Ray and its dependencies (cp312, the GPU machine's Python) for a device call (~25 MB),
# for `python -m benchmarks --only ray_ingest` on the 16-core machine (benchmarks/run_on_device.sh ray).
# Ray's version is this checkout's .venv's; numpy, pyarrow and pandas are left out (the GPU machine's
# Python has them: numpy 2.5, pyarrow 25, pandas 3.0). The Java jars, RLlib, Ray's LLM and dashboard web
# client and test folders are dropped: nothing in the ingest path loads them.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.gpu/ray; W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
[ -f "$OUT/raysite.tar.xz" ] && { ls -la "$OUT/raysite.tar.xz"; exit 0; }
v() { .venv/bin/python -c "import $1; print($1.__version__)"; }
.venv/bin/pip download -q "ray[data]==$(v ray)" \
  --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux_2_24_x86_64 --platform manylinux_2_28_x86_64 -d "$W/wheels"
mkdir -p "$W/raysite"
for w in "$W"/wheels/*.whl; do
  case "$(basename "$w")" in numpy-* | pyarrow-* | pandas-*) continue ;; esac
  .venv/bin/python -m zipfile -e "$w" "$W/raysite/"
done
cd "$W/raysite"
rm -rf ray/jars ray/rllib ray/llm ray/dashboard/client
find . -name __pycache__ -prune -exec rm -rf {} +
cd - > /dev/null
mkdir -p "$OUT"
tar -cf - -C "$W" raysite | xz -9 -T0 > "$OUT/raysite.tar.xz"
ls -la "$OUT/raysite.tar.xz"
