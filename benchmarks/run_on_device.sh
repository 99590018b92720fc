#!/usr/bin/env bash
# Runs ON THE GPU MACHINE (16 cores) from the repository root of the copy sent there, right after the GPU
# suite's two calls (tests/gpu/README.md), whose vLLM site (openai, httpx) and wheels it reuses:
#   bash benchmarks/run_on_device.sh bench    # workers + overhead, nothing carried
#   bash benchmarks/run_on_device.sh ray      # Ray ingest scaling; carry .gpu/ray (scripts/ray_pack.sh)
# Results go to $OUT (the files of benchmarks/results/ the run wrote, and the console output).
set -u
STAGE=${STAGE:-/root/stage}; OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD:$STAGE/site:/tmp/site
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
cp benchmarks/results/*.txt benchmarks/results/latest.md "$OUT"/ 2>/dev/null
exit "$rc"
