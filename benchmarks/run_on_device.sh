#!/usr/bin/env bash
# Runs ON THE GPU MACHINE (16 cores) from the repository root of the copy sent there, right after the GPU
# suite's two calls (tests/gpu/README.md), whose vLLM site (openai, httpx) and wheels it reuses:
#   bash benchmarks/run_on_device.sh bench    # workers + overhead; carry .gpu/bench and .gpu/wheels
# .gpu/bench: scripts/bench_wheels.sh (openai, httpx, pydantic, fpdf2, ... as cp312 wheels), for a machine
# where the GPU suite's staging is not there (a fresh one); the ray call then follows at once.
#   bash benchmarks/run_on_device.sh ray      # Ray ingest scaling; carry .gpu/ray (scripts/ray_pack.sh)
# Results go to $OUT (the files of benchmarks/results/ the run wrote, and the console output).
set -u
STAGE=${STAGE:-/root/stage}; OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD:$STAGE/site:/tmp/site
for d in .gpu/wheels .gpu/bench; do   # a machine without the GPU suite's staging gets the package's dependencies
  [ -d "$d" ] && python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site "$d"/*.whl
done
before=$(mktemp); sleep 1
case "${1:-bench}" in
  bench)
    timeout 500 python3 -m benchmarks --only workers --only overhead 2>&1 | tee "$OUT/bench.log" ;;
  ray)
    mkdir -p /root/ray && xz -d -T0 -c .gpu/ray/raysite.tar.xz | tar -x -C /root/ray
    chmod -R u+x /root/ray/raysite/ray/core
    export PYTHONPATH=$PWD:/root/ray/raysite:$STAGE/site:/tmp/site
    python3 -c "import ray, pyarrow, pandas, numpy; print('ray', ray.__version__, 'pyarrow', pyarrow.__version__, 'pandas', pandas.__version__, 'numpy', numpy.__version__)" | tee "$OUT/ray_env.txt"
    timeout 520 python3 -m benchmarks --only ray_ingest 2>&1 | tee "$OUT/bench.log" ;;
esac
rc=${PIPESTATUS[0]}
# only the result files this run wrote
find benchmarks/results -type f -newer "$before" -exec cp {} "$OUT"/ \;
exit "$rc"
