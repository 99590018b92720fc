"""Checks of a machine against a :class:`~.plan.ServePlan`: versions, GPUs, memory, context, layout, Ray."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..profile import MINIMAX_VL_01
from .plan import (
    ATTENTION_HEADS,
    MIN_HEADROOM_GIB,
    TEXT_LAYERS,
    TEXT_RESERVE_TOKENS,
    VISION_HEADS,
    ServePlan,
    estimate_memory,
)
from .probes import THIS_MACHINE, CachedInspect, Inspect
from .versions import (
    REMOVED_REASON,
    TRANSFORMERS_BROKEN,
    TRANSFORMERS_REQUIREMENT,
    VLLM_FIRST,
    VLLM_REMOVED,
    VLLM_REQUIREMENT,
    VLLM_STRUCTURED_OUTPUTS_FLAG,
    VLLM_V1_FIXED,
    dotted,
    parse_version,
)

Level = Literal["error", "warning", "info"]


class Check(BaseModel):
    """One check's verdict: ``ok`` False with level ``error`` blocks :func:`~.launch.launch`."""

    model_config = ConfigDict(frozen=True)

    name: str
    ok: bool
    level: Level
    message: str

    @classmethod
    def passed(cls, name: str, message: str) -> Check:
        """A passed check (level ``info``)."""
        return cls(name=name, ok=True, level="info", message=message)

    @classmethod
    def error(cls, name: str, message: str) -> Check:
        """A failed check that blocks the launch."""
        return cls(name=name, ok=False, level="error", message=message)

    @classmethod
    def warning(cls, name: str, message: str) -> Check:
        """A failed check that is reported but does not block the launch."""
        return cls(name=name, ok=False, level="warning", message=message)

    def __str__(self) -> str:
        mark = "ok" if self.ok else self.level.upper()
        return f"[{mark}] {self.name}: {self.message}"


def _vllm_version(inspect: Inspect) -> tuple[str, tuple[int, int, int], bool] | None:
    raw = inspect.package_version("vllm")
    if raw is None:
        return None
    try:
        release, pre = parse_version(raw)
    except ValueError:
        return None
    return raw, release, pre


def check_vllm(plan: ServePlan, inspect: Inspect = THIS_MACHINE) -> Check:
    """vLLM is installed and inside the window that has ``MiniMaxVL01ForConditionalGeneration``.

    Refuses >= 0.24 (class removed) and < 0.9.0 (not yet added); warns on 0.9.0-0.10.1 (``VLLM_USE_V1=0``
    needed, model marked broken in vLLM's tests until ~0.10.2) and on dev builds after 0.23.0.
    """
    name = "vllm"
    raw = inspect.package_version("vllm")
    if raw is None:
        return Check.error(
            name, f"vLLM is not installed: pip install '{VLLM_REQUIREMENT}' '{TRANSFORMERS_REQUIREMENT}'"
        )
    try:
        release, pre = parse_version(raw)
    except ValueError:
        return Check.warning(name, f"cannot parse vLLM version {raw!r}")
    if release >= VLLM_REMOVED:
        return Check.error(name, f"vLLM {raw}: {REMOVED_REASON}")
    if release < VLLM_FIRST:
        return Check.error(
            name,
            f"vLLM {raw} predates MiniMaxVL01ForConditionalGeneration (added in "
            f"{dotted(VLLM_FIRST)}); install '{VLLM_REQUIREMENT}'",
        )
    if release < VLLM_V1_FIXED:
        has_env = plan.env.get("VLLM_USE_V1") == "0"
        return Check.warning(
            name,
            f"vLLM {raw} needs VLLM_USE_V1=0 for this model"
            f"{' (set in the plan)' if has_env else ' (not set in the plan: add it to env)'}, and the "
            f"model was marked broken in vLLM's tests until ~{dotted(VLLM_V1_FIXED)}; prefer "
            f"'{VLLM_REQUIREMENT}'",
        )
    if pre and release > (0, 23, 0):
        return Check.warning(
            name,
            f"vLLM {raw} is a development build after 0.23.0: the model class was removed "
            f"on the way to 0.24.0; use a release in '{VLLM_REQUIREMENT}'",
        )
    return Check.passed(name, f"vLLM {raw} supports MiniMaxVL01ForConditionalGeneration")


def check_transformers(plan: ServePlan, inspect: Inspect = THIS_MACHINE) -> Check:
    """transformers < 5.17 next to vLLM: 5.17 removed names vLLM 0.23.0's LLaVA-family code imports."""
    name = "transformers"
    vllm = _vllm_version(inspect)
    raw = inspect.package_version("transformers")
    if vllm is None:
        return Check.passed(name, "skipped: vLLM not installed or unreadable")
    if raw is None:
        return Check.error(
            name,
            f"transformers is not installed next to vLLM {vllm[0]}: pip install '{TRANSFORMERS_REQUIREMENT}'",
        )
    try:
        release, _ = parse_version(raw)
    except ValueError:
        return Check.warning(name, f"cannot parse transformers version {raw!r}")
    if release[:2] >= TRANSFORMERS_BROKEN and vllm[1] < VLLM_REMOVED:
        return Check.error(
            name,
            f"transformers {raw} with vLLM {vllm[0]}: vLLM cannot import its LLaVA-family "
            f"models (MiniMax-VL-01 included) with transformers >= {dotted(TRANSFORMERS_BROKEN)}; "
            f"pip install '{TRANSFORMERS_REQUIREMENT}'",
        )
    return Check.passed(name, f"transformers {raw} (< {dotted(TRANSFORMERS_BROKEN)})")


def check_structured_outputs(plan: ServePlan, inspect: Inspect = THIS_MACHINE) -> Check:
    """``--structured-outputs-config`` is known to the installed vLLM (>= 0.11.0)."""
    name = "structured-outputs"
    if plan.structured_outputs is None:
        return Check.passed(name, "not configured (vLLM's default backend)")
    vllm = _vllm_version(inspect)
    if vllm is not None and vllm[1] < VLLM_STRUCTURED_OUTPUTS_FLAG:
        return Check.error(
            name,
            f"vLLM {vllm[0]} has no --structured-outputs-config (added in "
            f"{dotted(VLLM_STRUCTURED_OUTPUTS_FLAG)}); drop it or pass --guided-decoding-backend "
            "via extra_args",
        )
    return Check.passed(name, plan.structured_outputs.to_json())


def check_gpu_count(plan: ServePlan, inspect: Inspect = THIS_MACHINE) -> Check:
    """This machine has the GPUs the plan places on it (all of them on one node; one node's share else)."""
    name = "gpu-count"
    gpus = inspect.gpus()
    need = plan.world_size if plan.nodes == 1 else (plan.gpus_per_node or plan.tensor_parallel_size)
    what = (
        f"tensor parallel {plan.tensor_parallel_size} x pipeline parallel {plan.pipeline_parallel_size}"
        if plan.nodes == 1
        else f"{need} per node on {plan.nodes} nodes (the rest through Ray)"
    )
    if gpus is None:
        return Check.warning(
            name, f"cannot detect GPUs (no nvidia-smi, no torch); the plan needs {need} ({what})"
        )
    if len(gpus) < need:
        return Check.error(name, f"{len(gpus)} GPU(s) found, the plan needs {need} ({what})")
    return Check.passed(name, f"{len(gpus)} GPU(s) found, {need} needed ({what})")


def check_gpu_memory(plan: ServePlan, inspect: Inspect = THIS_MACHINE) -> Check:
    """The estimated per-GPU weight share fits ``gpu_memory_utilization`` x the smallest GPU, with headroom.

    Error when the weights alone do not fit; warning under :data:`MIN_HEADROOM_GIB` GiB left per GPU.
    """
    name = "gpu-memory"
    if "minimax-vl-01" not in plan.model.lower():
        # the arithmetic below is MiniMax-VL-01's (456B); another checkpoint (e.g. a tiny test model of
        # the same family) has weights we do not know
        return Check.passed(name, f"model {plan.model!r} is not MiniMax-VL-01: its memory is not estimated")
    gpus = inspect.gpus()
    if not gpus:
        return Check.warning(name, "no GPUs detected: memory not checked")
    mem = min(m for _, m in gpus)
    est = estimate_memory(plan, mem)
    q = plan.quantization or "bf16"
    if est.per_gpu_gib is None or est.headroom_gib is None or est.weights_gib is None:
        return Check.passed(name, f"no weight estimate for quantization {q!r}")
    facts = (
        f"weights ~{est.weights_gib:.0f} GiB ({q}) / {plan.world_size} GPUs = ~{est.per_gpu_gib:.1f} GiB "
        f"per GPU; usable {plan.gpu_memory_utilization:g} x {mem:.1f} GiB = {est.usable_gib:.1f} GiB"
    )
    if est.headroom_gib < 0:
        hint = " (try quantization='experts_int8')" if plan.quantization is None else " (more GPUs needed)"
        return Check.error(name, f"does not fit: {facts}{hint}")
    if est.headroom_gib < MIN_HEADROOM_GIB:
        left = f"{est.headroom_gib:.1f} GiB left for KV cache and activations (< {MIN_HEADROOM_GIB:g})"
        return Check.warning(name, f"tight: {facts}; {left}")
    return Check.passed(name, f"fits (estimate): {facts}; {est.headroom_gib:.1f} GiB left per GPU")


def check_context(plan: ServePlan, inspect: Inspect = THIS_MACHINE) -> Check:
    """``max_model_len`` holds ``images_per_prompt`` images at the maximum cost plus a text reserve.

    One image costs at most 11088 tokens (1008x2016 canvas), so N images need N x 11088 + 1024.
    Error when not even the cheapest image (1176 tokens) plus the reserve fits.
    """
    name = "max-model-len"
    most = MINIMAX_VL_01.max_image_tokens
    need = plan.min_context_for_images
    least = MINIMAX_VL_01.min_image_tokens + TEXT_RESERVE_TOKENS
    if plan.max_model_len < least:
        return Check.error(
            name,
            f"max_model_len {plan.max_model_len} < {least} (one smallest image, "
            f"{MINIMAX_VL_01.min_image_tokens} tokens, + {TEXT_RESERVE_TOKENS} for text): no image fits",
        )
    if plan.max_model_len < need:
        return Check.warning(
            name,
            f"max_model_len {plan.max_model_len} < {need} = {plan.images_per_prompt} images x "
            f"{most} tokens (largest image) + {TEXT_RESERVE_TOKENS} for text: {plan.images_per_prompt} "
            f"large images will not fit one prompt (clients budget per request)",
        )
    return Check.passed(
        name,
        f"max_model_len {plan.max_model_len} >= {need} ({plan.images_per_prompt} x {most} + "
        f"{TEXT_RESERVE_TOKENS})",
    )


def check_parallel_layout(plan: ServePlan, inspect: Inspect = THIS_MACHINE) -> Check:
    """Tensor parallel divides the attention heads (64 text, 16 vision); pipeline parallel is sane.

    Pipeline parallel is declared supported by vLLM's ``MiniMaxVL01ForConditionalGeneration`` but was not
    tried by this project: warn.
    """
    name = "parallel-layout"
    tp, pp = plan.tensor_parallel_size, plan.pipeline_parallel_size
    if ATTENTION_HEADS % tp or VISION_HEADS % tp:
        return Check.error(
            name,
            f"tensor_parallel_size {tp} must divide the {ATTENTION_HEADS} text and "
            f"{VISION_HEADS} vision attention heads (1, 2, 4, 8 or 16)",
        )
    if pp > TEXT_LAYERS:
        return Check.error(name, f"pipeline_parallel_size {pp} > {TEXT_LAYERS} layers")
    if plan.nodes > 1 and tp > (plan.gpus_per_node or tp):
        return Check.warning(
            name,
            f"tensor parallel {tp} spans nodes ({plan.gpus_per_node} GPUs each): slow; "
            "keep tensor parallel inside a node and pipeline parallel across nodes",
        )
    if pp > 1:
        return Check.warning(
            name,
            f"pipeline parallel {pp} x tensor parallel {tp}: declared by vLLM for this model "
            "(SupportsPP) but not tried by this project; try a small request first",
        )
    return Check.passed(name, f"tensor parallel {tp}")


def check_ray(plan: ServePlan, inspect: Inspect = THIS_MACHINE) -> Check:
    """Ray is installed when the plan spans nodes (vLLM's multi-node executor)."""
    name = "ray"
    if plan.nodes == 1 and plan.executor_backend != "ray":
        return Check.passed(name, "not needed on one node")
    raw = inspect.package_version("ray")
    if raw is None:
        return Check.error(name, "Ray is not installed: pip install 'ray[default]' on every node")
    return Check.passed(name, f"ray {raw}")


CHECKS: tuple[Callable[[ServePlan, Inspect], Check], ...] = (
    check_vllm,
    check_transformers,
    check_structured_outputs,
    check_gpu_count,
    check_gpu_memory,
    check_context,
    check_parallel_layout,
    check_ray,
)
"""The checks :func:`run_checks` runs, in order."""


def run_checks(plan: ServePlan, inspect: Inspect | None = None) -> list[Check]:
    """All :data:`CHECKS` for ``plan`` on this machine (or on what ``inspect`` fakes)."""
    cached = CachedInspect(inspect or THIS_MACHINE)
    return [check(plan, cached) for check in CHECKS]


def failed(checks: Sequence[Check], level: Level = "error") -> list[Check]:
    """The checks that did not pass at ``level``."""
    return [c for c in checks if not c.ok and c.level == level]
