#!/usr/bin/env bash
# Runs ON THE GPU MACHINE from the repository root of the copy sent there; see tests/gpu/README.md.
# Two device calls, back to back (payload prepared here by scripts/gpu_pack.sh):
#   1. bash tests/gpu/run_on_device.sh stage     carry .gpu/parts/p0 + .gpu/tools   (copies them to $STAGE)
#   2. bash tests/gpu/run_on_device.sh           carry .gpu/parts/p1 + .gpu/wheels
# Call 2 stages its part, unpacks vLLM 0.23.0, installs this project's own wheels (.gpu/wheels), starts vLLM
# through OUR `minimaxvl serve` on the tiny checkpoint with MiniMax-VL-01's 28 canvases, runs tests/gpu
# against it and stops it. Results and logs go to $OUT.
#   TP=2 bash tests/gpu/run_on_device.sh     # tensor parallel over 2 GPUs (the 2-GPU kind)
set -u
STAGE=${STAGE:-/root/stage}; OUT=${OUT:-/tmp/out}; PORT=${PORT:-8000}; TP=${TP:-1}
MODEL_NAME=tiny-llava-next-mm28
mkdir -p "$OUT"
t0=$(date +%s); log() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
export VLLM_CACHE_ROOT=$STAGE/cache HF_HOME=$STAGE/hf VLLM_USE_FLASHINFER_SAMPLER=0

# staging: whatever this call carries moves out of the repo copy (which the next call replaces)
mkdir -p "$STAGE"
for d in .gpu/parts/p*; do [ -d "$d" ] && cp "$d"/* "$STAGE"/ && log "staged $d"; done
if [ -d .gpu/tools/model ]; then
  mkdir -p "$STAGE/model" && cp -r .gpu/tools/model/* "$STAGE/model/" && log "staged the checkpoint"
fi
if [ "${1:-}" = stage ]; then ls -la "$STAGE"; exit 0; fi
[ -d "$STAGE/model/$MODEL_NAME" ] || { log "no checkpoint in $STAGE/model: run the stage call first"; exit 3; }
if ! cmp -s "$STAGE/site.tar.xz.sha256" "$STAGE/site/.unpacked" 2>/dev/null; then
  (cd "$STAGE" && cat site.tar.xz.part* > site.tar.xz && sha256sum -c site.tar.xz.sha256) || { log "missing part"; exit 3; }
  rm -rf "$STAGE/site" && mkdir -p "$STAGE/site"
  xz -d -T0 -c "$STAGE/site.tar.xz" | tar -x -C "$STAGE/site" && rm -f "$STAGE/site.tar.xz"
  cp "$STAGE/site.tar.xz.sha256" "$STAGE/site/.unpacked"; log "vLLM unpacked"
fi
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/wheels/*.whl 2>&1 | tail -2
export PYTHONPATH=$STAGE/site:/tmp/site:$PWD
python3 -c "import vllm, transformers, minimaxvl_tools; print('vllm', vllm.__version__, 'transformers', transformers.__version__)" | tee "$OUT/env.txt"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a "$OUT/env.txt"

SERVE=(python3 -m minimaxvl_tools.cli serve --gpus "$TP" --quantization none
  --model "$STAGE/model/$MODEL_NAME" --served-model-name "$MODEL_NAME"
  --vllm-executable "python3 -m vllm.entrypoints.cli.main" --host 127.0.0.1 --port "$PORT"
  --max-model-len 32768 --images-per-prompt 4 --gpu-memory-utilization 0.3 --enforce-eager --max-num-seqs 16
  --structured-outputs-compact)
"${SERVE[@]}" --dry-run > "$OUT/serve_dry_run.txt" 2>&1; cat "$OUT/serve_dry_run.txt"
setsid "${SERVE[@]}" --force -- --seed 0 > "$OUT/server.log" 2>&1 &
SPID=$!
for i in $(seq 1 300); do
  python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/health', timeout=2)" 2>/dev/null && { log "healthy after ${i}s"; break; }
  kill -0 $SPID 2>/dev/null || { log "server exited"; tail -80 "$OUT/server.log"; exit 4; }
  sleep 1
done
set -o pipefail
python3 -m pytest tests/gpu -v -p no:cacheprovider --vllm-base-url "http://127.0.0.1:$PORT/v1" \
  --junitxml="$OUT/junit.xml" 2>&1 | tee "$OUT/pytest.log"
rc=$?
python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:$PORT/metrics').read().decode())" 2>/dev/null \
  | grep -E '^vllm:(num_requests|prompt_tokens_total|generation_tokens_total|request_success_total)' | head -20 > "$OUT/metrics.txt"
kill -TERM -- -$SPID 2>/dev/null; sleep 5; kill -KILL -- -$SPID 2>/dev/null
grep -E "Traceback|ERROR" "$OUT/server.log" | head -20
log "done rc=$rc (TP=$TP)"
exit $rc
