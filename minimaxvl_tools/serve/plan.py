"""ServePlan (what ``vllm serve`` needs, validated), the per-GPU memory estimate, and :func:`plan_for`.

The real model (456B parameters) cannot run in this project's CI: every number here about memory is an
*estimate* from the published architecture, not a measurement.
"""

from __future__ import annotations

import json
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..profile import MINIMAX_VL_01
from ..settings import DEFAULT_MODEL
from .probes import GiB

# the published architecture, for the memory estimate
TOTAL_PARAMS = 456e9
"""Model card: 456B parameters in all (45.9B active per token), vision tower included."""
TEXT_LAYERS = 80
HIDDEN = 6144
NUM_EXPERTS = 32
EXPERT_FFN = 9216
ATTENTION_HEADS = 64
VISION_HEADS = 16
EXPERT_PARAMS = TEXT_LAYERS * NUM_EXPERTS * 3 * HIDDEN * EXPERT_FFN
"""80 layers x 32 experts x (gate, up, down: 3 x 6144 x 9216) = 434.87B parameters."""
NON_EXPERT_PARAMS = TOTAL_PARAMS - EXPERT_PARAMS
"""Everything else, ~21.1B: attention (lightning and softmax), routers, norms, embeddings, ViT, projector.

The active count gives a smaller figure (45.9B - 2 x 80 x 169.9M = ~18.7B); taking the larger one keeps
the estimate conservative.
"""
VISION_PARAMS = 0.35e9
"""ViT (303M) plus the 2-layer projector (~44M); counted again on every GPU as if replicated."""
EXPERTS_INT8_SCALE_BYTES = TEXT_LAYERS * NUM_EXPERTS * (2 * EXPERT_FFN + HIDDEN) * 4
"""One fp32 scale per output channel of every expert matrix (~0.25 GB)."""
MIN_HEADROOM_GIB = 8.0
"""Below this much free memory per GPU after the weights, warn: the KV cache of the 10 softmax-attention
layers, the lightning-attention state of every running sequence, the vision encoder's profiling run and
CUDA graphs all live there."""
TEXT_RESERVE_TOKENS = 1024
"""Tokens kept for the prompt text and the answer when sizing ``--max-model-len`` for images."""
BF16_NAMES = ("none", "bf16", "bfloat16")
"""Names of "no quantization": :func:`plan_for` turns them into ``quantization=None`` (plain bf16)."""


class StructuredOutputs(BaseModel):
    """``--structured-outputs-config`` (vLLM >= 0.11). ``disable_any_whitespace`` stops xgrammar loops."""

    model_config = ConfigDict(frozen=True)

    backend: Literal["auto", "xgrammar", "guidance", "outlines", "lm-format-enforcer"] = "xgrammar"
    disable_any_whitespace: bool = True

    def to_json(self) -> str:
        """The flag's JSON value, e.g. ``{"backend": "xgrammar", "disable_any_whitespace": true}``."""
        return json.dumps(self.model_dump())


XGRAMMAR_COMPACT = StructuredOutputs()
"""xgrammar with ``disable_any_whitespace``: compact JSON, no whitespace loops at temperature 0."""


class ServePlan(BaseModel):
    """Everything ``vllm serve`` needs to host MiniMax-VL-01, validated.

    Defaults are the single-node starting point: 8 x 80 GB GPUs, tensor parallel 8, ``experts_int8``
    (bf16 weights, ~912 GB, do not fit 640 GB), 32768 tokens of context, 4 images per prompt.
    """

    model: str = DEFAULT_MODEL
    served_model_name: str | None = None
    tensor_parallel_size: int = Field(8, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    nodes: int = Field(1, ge=1)
    gpus_per_node: int | None = Field(None, ge=1, description="Default: world size / nodes.")
    quantization: str | None = "experts_int8"
    dtype: str = "bfloat16"
    max_model_len: int = Field(32768, ge=256)
    images_per_prompt: int = Field(4, ge=1)
    host: str | None = None
    port: int = Field(8000, ge=1, le=65535)
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0)
    trust_remote_code: Literal[True] = Field(True, description="Always: vLLM loads the repo's processor.")
    enforce_eager: bool = False
    max_num_seqs: int | None = Field(None, ge=1)
    structured_outputs: StructuredOutputs | None = None
    distributed_executor_backend: Literal["ray", "mp"] | None = Field(
        None, description="Default: ray when nodes > 1, else vLLM's own choice."
    )
    extra_args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="Set for the server (and Ray nodes).")
    executable: list[str] = Field(
        default_factory=lambda: ["vllm"],
        description="How to invoke vLLM's CLI; e.g. ['python3', '-m', 'vllm.entrypoints.cli.main'] where "
        "vLLM is importable but its console script is not on PATH.",
    )

    @model_validator(mode="after")
    def _layout(self) -> ServePlan:
        if self.gpus_per_node is None:
            self.gpus_per_node = math.ceil(self.world_size / self.nodes)
        if self.world_size > self.nodes * self.gpus_per_node:
            raise ValueError(
                f"tensor_parallel_size x pipeline_parallel_size = {self.world_size} GPUs, but "
                f"{self.nodes} node(s) x {self.gpus_per_node} GPUs hold only "
                f"{self.nodes * self.gpus_per_node}"
            )
        if self.nodes > 1 and self.distributed_executor_backend == "mp":
            raise ValueError("more than one node needs distributed_executor_backend='ray'")
        return self

    @property
    def world_size(self) -> int:
        """GPUs the server uses in all (tensor parallel x pipeline parallel)."""
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def executor_backend(self) -> str | None:
        """The ``--distributed-executor-backend`` to pass: ``ray`` across nodes, else the explicit one."""
        if self.distributed_executor_backend:
            return self.distributed_executor_backend
        return "ray" if self.nodes > 1 else None

    @property
    def min_context_for_images(self) -> int:
        """Tokens the worst case needs: every image at the maximum cost (11088) plus a text reserve."""
        return self.images_per_prompt * MINIMAX_VL_01.max_image_tokens + TEXT_RESERVE_TOKENS


class MemoryEstimate(BaseModel):
    """Weights per GPU against usable memory, all in GiB; an estimate, not a measurement."""

    quantization: str | None
    weights_gib: float | None = Field(description="All weights; None for a quantization without an estimate.")
    per_gpu_gib: float | None
    usable_gib: float = Field(description="gpu_memory_utilization x GPU memory.")
    headroom_gib: float | None = Field(description="usable - per_gpu: KV cache, activations, CUDA graphs.")


def weight_bytes(quantization: str | None) -> float | None:
    """Estimated bytes of all weights: bf16 ~912 GB, ``experts_int8`` ~477 GB; None when unknown.

    ``experts_int8`` stores the 434.9B expert parameters as int8 (1 byte, plus per-channel scales) and keeps
    the other ~21.1B in bf16 (2 bytes): 434.9 + 0.25 + 42.3 = ~477.4 GB (444.6 GiB).
    """
    if quantization in (None, "", *BF16_NAMES):
        return TOTAL_PARAMS * 2
    if quantization == "experts_int8":
        return EXPERT_PARAMS * 1 + EXPERTS_INT8_SCALE_BYTES + NON_EXPERT_PARAMS * 2
    return None


def estimate_memory(plan: ServePlan, gpu_mem_gib: float) -> MemoryEstimate:
    """Per-GPU weight share of ``plan`` on GPUs of ``gpu_mem_gib`` GiB.

    Share = all weights / (tensor parallel x pipeline parallel) + the vision tower again (replicated,
    conservative). Pipeline stages are not exactly even (the first holds the embedding, the last the
    lm_head: ~1.2 GiB each before tensor parallel), which the headroom threshold absorbs.
    """
    total = weight_bytes(plan.quantization)
    usable = plan.gpu_memory_utilization * gpu_mem_gib
    if total is None:
        return MemoryEstimate(
            quantization=plan.quantization,
            weights_gib=None,
            per_gpu_gib=None,
            usable_gib=usable,
            headroom_gib=None,
        )
    per_gpu = total / plan.world_size / GiB + VISION_PARAMS * 2 / GiB
    return MemoryEstimate(
        quantization=plan.quantization,
        weights_gib=total / GiB,
        per_gpu_gib=per_gpu,
        usable_gib=usable,
        headroom_gib=usable - per_gpu,
    )


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def plan_for(
    gpus: int,
    gpu_mem_gib: float = 80.0,
    nodes: int = 1,
    *,
    quantization: str | Literal["auto"] | None = "auto",
    images_per_prompt: int = 4,
    max_model_len: int | None = None,
    gpu_memory_utilization: float = 0.9,
    **overrides: object,
) -> ServePlan:
    """A plan for ``nodes`` nodes of ``gpus`` GPUs with ``gpu_mem_gib`` GiB each.

    Tensor parallel = ``gpus`` (inside a node), pipeline parallel = ``nodes``. ``quantization="auto"``
    keeps bf16 when its estimated weights leave :data:`MIN_HEADROOM_GIB` per GPU, else ``experts_int8``;
    ``"none"``, ``"bf16"`` and ``"bfloat16"`` mean no quantization (None)
    (8 x 80 GB: experts_int8; 8 x 141 GB: bf16 fits on paper with ~20 GiB per GPU left; 16 x 80 GB over two
    nodes: bf16). ``max_model_len=None`` picks the smallest multiple of 4096 that is >= 32768 and holds
    ``images_per_prompt`` worst-case images plus the text reserve (4 images: 49152). The plan is returned
    even when nothing fits (e.g. 1 x 80 GB): :func:`~.checks.run_checks` says why it cannot run.
    ``overrides`` are further :class:`ServePlan` fields (``env``, ``structured_outputs``, ``port`` ...).
    """
    if gpus < 1 or nodes < 1:
        raise ValueError(f"gpus and nodes must be >= 1, got gpus={gpus}, nodes={nodes}")
    if max_model_len is None:
        need = images_per_prompt * MINIMAX_VL_01.max_image_tokens + TEXT_RESERVE_TOKENS
        max_model_len = max(32768, _round_up(need, 4096))
    base = {
        "tensor_parallel_size": gpus,
        "pipeline_parallel_size": nodes,
        "nodes": nodes,
        "gpus_per_node": gpus,
        "images_per_prompt": images_per_prompt,
        "max_model_len": max_model_len,
        "gpu_memory_utilization": gpu_memory_utilization,
        **overrides,
    }
    if quantization in BF16_NAMES:
        quantization = None
    if quantization == "auto":
        bf16 = ServePlan.model_validate({**base, "quantization": None})
        head = estimate_memory(bf16, gpu_mem_gib).headroom_gib
        quantization = None if head is not None and head >= MIN_HEADROOM_GIB else "experts_int8"
    return ServePlan.model_validate({**base, "quantization": quantization})
