#!/usr/bin/env bash
# Runs ON THE GPU MACHINE (16 cores) from the repository root of the copy sent there (see
# tests/gpu/README.md for the device calls):
#   bash benchmarks/run_on_device.sh bench    # workers + overhead
#   bash benchmarks/run_on_device.sh ray      # Ray ingest scaling
#   bash benchmarks/run_on_device.sh all      # workers, then Ray ingest (~330 s)
# carry .gpu/wheels (scripts/gpu_wheels.sh) and .gpu/bench (scripts/bench_wheels.sh: openai, httpx, pydantic,
# fpdf2, ... as cp312 wheels), and for ray .gpu/ray (scripts/ray_pack.sh, ~28 MB); right after the GPU
# suite's calls its vLLM staging is reused too. Results go to $OUT: the files of benchmarks/results/ the
# run wrote, and the console output.
set -u
STAGE=${STAGE:-/root/stage}; OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD:$STAGE/site:/tmp/site
for d in .gpu/wheels .gpu/bench; do
  [ -d "$d" ] && python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site "$d"/*.whl
done
if [ -f .gpu/ray/raysite.tar.xz ]; then
  mkdir -p /root/ray && xz -d -T0 -c .gpu/ray/raysite.tar.xz | tar -x -C /root/ray
  chmod -R u+x /root/ray/raysite/ray/core
fi
before=$(mktemp); sleep 1
rc=0
bench() { timeout "$1" python3 -m benchmarks "${@:2}" 2>&1 | tee -a "$OUT/bench.log"; [ "${PIPESTATUS[0]}" = 0 ] || rc=1; }
ray_env() {
  export PYTHONPATH=$PWD:/root/ray/raysite:$STAGE/site:/tmp/site
  python3 -c "import ray, pyarrow, pandas, numpy; print('ray', ray.__version__, 'pyarrow', pyarrow.__version__, 'pandas', pandas.__version__, 'numpy', numpy.__version__)" | tee "$OUT/ray_env.txt"
}
case "${1:-bench}" in
  bench) bench 500 --only workers --only overhead ;;
  ray) ray_env; bench 520 --only ray_ingest ;;
  all) bench 250 --only workers; ray_env; bench 300 --only ray_ingest ;;
esac
# only the result files this run wrote
find benchmarks/results -type f -newer "$before" -exec cp {} "$OUT"/ \;
exit "$rc"
