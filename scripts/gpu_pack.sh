#!/usr/bin/env bash
# Prepares the GPU suite's payload so that it reaches the GPU machine in TWO device calls (tests/gpu/README.md).
# A call carries at most 64 MiB, the repository copy included. Call 1 carries vLLM part 0 + .gpu/tools (the
# tiny checkpoint and its scripts); call 2 carries vLLM part 1 + .gpu/wheels (this project's cp312 wheels).
# The compressed vLLM tree (~114 MiB, from ../shared/gpu/pack.sh) is split unevenly so that both calls fit;
# the script fails, naming the call and its size, if either would not.
set -euo pipefail
cd "$(dirname "$0")/.."
G=.gpu
LIMIT=$((64 * 1024 * 1024))
[ -d "$G/tools" ] || { mkdir -p "$G" && cp -r ../shared/gpu "$G/tools" && chmod -R u+w "$G/tools"; }
[ -f "$G/site.tar.xz" ] || bash "$G/tools/pack.sh"
[ -n "$(ls "$G"/wheels/*.whl 2>/dev/null)" ] || bash scripts/gpu_wheels.sh
# zstandard (5.5 MB) only compresses LangSmith traces; langsmith imports it lazily and tracing is off there
rm -f "$G"/wheels/zstandard-*.whl

bytes() { find "$@" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }   # file bytes
repo=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
tools=$(bytes "$G/tools"); wheels=$(bytes "$G/wheels"); total=$(stat -c %s "$G/site.tar.xz")
part0=$(((total + wheels - tools) / 2))      # both calls carry the same, leaving equal room to spare
[ "$part0" -gt 0 ] && [ "$part0" -lt "$total" ] || part0=$((total / 2))
rm -rf "$G/parts" && mkdir -p "$G/parts/p0" "$G/parts/p1"
head -c "$part0" "$G/site.tar.xz" > "$G/parts/p0/site.tar.xz.part0"
tail -c "+$((part0 + 1))" "$G/site.tar.xz" > "$G/parts/p1/site.tar.xz.part1"
(cd "$G" && sha256sum site.tar.xz > parts/p0/site.tar.xz.sha256)
call1=$((repo + tools + $(bytes "$G/parts/p0")))
call2=$((repo + wheels + $(bytes "$G/parts/p1")))
mib() { awk "BEGIN{printf \"%.2f MiB\", $1/1048576}"; }
echo "repo copy $(mib "$repo"), tools $(mib "$tools"), wheels $(mib "$wheels"), vLLM $(mib "$total")"
echo "call 1 (.gpu/parts/p0 + .gpu/tools):  $(mib "$call1") of $(mib "$LIMIT")"
echo "call 2 (.gpu/parts/p1 + .gpu/wheels): $(mib "$call2") of $(mib "$LIMIT")"
[ "$call1" -le "$LIMIT" ] || { echo "call 1 carries $(mib "$call1"): over the $(mib "$LIMIT") a device call carries" >&2; exit 1; }
[ "$call2" -le "$LIMIT" ] || { echo "call 2 carries $(mib "$call2"): over the $(mib "$LIMIT") a device call carries; slim .gpu/wheels" >&2; exit 1; }
