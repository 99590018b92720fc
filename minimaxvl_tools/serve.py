"""Plan, check and launch a vLLM server for MiniMax-VL-01.

The package is a client; this module is the operator's side of it. It turns a :class:`ServePlan` into the
``vllm serve`` command line (:func:`build_command`, :func:`format_command`), the Ray cluster script for more
than one node (:func:`render_multinode`), checks a machine before launching (:func:`run_checks`) and runs
the server (:func:`launch`). :func:`plan_for` picks the quantization and parallel layout for a GPU count.

Nothing here imports vLLM or torch at import time: the checks read installed package versions from
package metadata and GPUs from ``nvidia-smi``, and both probes are injectable (:class:`Inspect`) so that
tests can run them with fakes. The real model (456B parameters) cannot run in this project's CI: every
number below about memory is an *estimate* from the published architecture, not a measurement.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .profile import MINIMAX_VL_01
from .settings import DEFAULT_MODEL

# ---------------------------------------------------------------- versions
VLLM_FIRST = (0, 9, 0)
"""First vLLM release with ``MiniMaxVL01ForConditionalGeneration``."""
VLLM_V1_FIXED = (0, 10, 2)
"""Before this, the model needs ``VLLM_USE_V1=0`` and was marked broken in vLLM's own tests (approximate)."""
VLLM_REMOVED = (0, 24, 0)
"""vLLM 0.24.0 removed the model class; later versions refuse the architecture by name."""
VLLM_STRUCTURED_OUTPUTS_FLAG = (0, 11, 0)
"""``--structured-outputs-config`` exists from vLLM 0.11.0 (older: ``--guided-decoding-backend``)."""
TRANSFORMERS_BROKEN = (5, 17)
"""transformers >= 5.17 removed names vLLM 0.23.0's LLaVA-family code imports (seen on vLLM 0.23.0)."""
VLLM_REQUIREMENT = "vllm>=0.10.2,<0.24"
TRANSFORMERS_REQUIREMENT = "transformers<5.17"
REMOVED_REASON = (
    "MiniMaxVL01ForConditionalGeneration was removed in vLLM 0.24.0; install 'vllm>=0.10.2,<0.24'"
)

# ---------------------------------------------------------------- architecture (for the memory estimate)
GiB = 1024**3
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

Level = Literal["error", "warning", "info"]
GPU = tuple[str, float]
"""(name, total memory in GiB) of one GPU."""


# ---------------------------------------------------------------- plan
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


# ---------------------------------------------------------------- command
def build_command(plan: ServePlan) -> list[str]:
    """The ``vllm serve`` argv for ``plan`` (no shell quoting needed: pass it to :func:`subprocess.run`).

    ``--limit-mm-per-prompt`` is JSON (``{"image": N}``), the form every vLLM of the window accepts.
    Environment variables are not part of argv: see ``plan.env`` and :func:`format_command`.
    """
    argv = [*plan.executable, "serve", plan.model, "--tensor-parallel-size", str(plan.tensor_parallel_size)]
    if plan.pipeline_parallel_size > 1:
        argv += ["--pipeline-parallel-size", str(plan.pipeline_parallel_size)]
    if plan.executor_backend:
        argv += ["--distributed-executor-backend", plan.executor_backend]
    argv.append("--trust-remote-code")
    if plan.quantization:
        argv += ["--quantization", plan.quantization]
    argv += [
        "--dtype",
        plan.dtype,
        "--max-model-len",
        str(plan.max_model_len),
        "--limit-mm-per-prompt",
        json.dumps({"image": plan.images_per_prompt}),
        "--gpu-memory-utilization",
        f"{plan.gpu_memory_utilization:g}",
    ]
    if plan.max_num_seqs is not None:
        argv += ["--max-num-seqs", str(plan.max_num_seqs)]
    if plan.enforce_eager:
        argv.append("--enforce-eager")
    if plan.structured_outputs is not None:
        argv += ["--structured-outputs-config", plan.structured_outputs.to_json()]
    if plan.served_model_name:
        argv += ["--served-model-name", plan.served_model_name]
    if plan.host:
        argv += ["--host", plan.host]
    argv += ["--port", str(plan.port)]
    argv += list(plan.extra_args)
    return argv


def format_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """``argv`` as shell text for docs: shlex-quoted, one flag (with its values) per line, backslashes.

    ``env`` entries come first as ``NAME=value`` prefixes, so the text can be pasted as one command.
    """
    lines: list[list[str]] = [[f"{k}={shlex.quote(v)}"] for k, v in (env or {}).items()]
    current: list[str] = []
    for i, token in enumerate(argv):
        if i > 0 and token.startswith("-") and current and (i >= 3 or current[0].startswith("-")):
            lines.append(current)
            current = []
        current.append(shlex.quote(token))
    if current:
        lines.append(current)
    n_env = len(env or {})
    out = []
    for j, parts in enumerate(lines):
        indent = "  " if j > n_env else ""
        out.append(indent + " ".join(parts))
    return " \\\n".join(out)


# ---------------------------------------------------------------- multi-node
class MultiNodePlan(BaseModel):
    """The commands of a Ray cluster deployment: Ray on every node, ``vllm serve`` on the head only."""

    head_address: str
    ray_port: int = 6379
    nodes: int
    gpus_per_node: int
    env: dict[str, str] = Field(default_factory=dict)
    head_command: list[str]
    worker_command: list[str]
    serve_command: list[str]


def multinode_plan(plan: ServePlan, head_address: str = "HEAD_IP", ray_port: int = 6379) -> MultiNodePlan:
    """Ray start commands for head and workers plus the serve command, for a plan with ``nodes > 1``.

    Pipeline parallel runs across nodes and tensor parallel inside one (NVLink), the layout vLLM
    recommends: only the activations between pipeline stages cross the slower network.
    """
    return MultiNodePlan(
        head_address=head_address,
        ray_port=ray_port,
        nodes=plan.nodes,
        gpus_per_node=plan.gpus_per_node or plan.tensor_parallel_size,
        env=dict(plan.env),
        head_command=["ray", "start", "--head", f"--port={ray_port}"],
        worker_command=["ray", "start", f"--address={head_address}:{ray_port}"],
        serve_command=build_command(plan),
    )


def render_multinode(plan: ServePlan, head_address: str = "HEAD_IP", ray_port: int = 6379) -> str:
    """A commented shell script (text) that starts the Ray cluster and the server for ``plan``."""
    mp = multinode_plan(plan, head_address, ray_port)
    exports = [f"export {k}={shlex.quote(v)}" for k, v in mp.env.items()]
    total = mp.nodes * mp.gpus_per_node
    parts = [
        "#!/usr/bin/env bash",
        f"# MiniMax-VL-01 on {mp.nodes} nodes x {mp.gpus_per_node} GPUs: pipeline parallel "
        f"{plan.pipeline_parallel_size} across nodes, tensor parallel {plan.tensor_parallel_size} "
        "inside each.",
        "# Every node: the same vLLM (" + VLLM_REQUIREMENT + ", " + TRANSFORMERS_REQUIREMENT + "), the same",
        "# model files at the same path, and these variables set BEFORE 'ray start' (Ray workers inherit",
        "# the environment of the node's raylet). Set VLLM_HOST_IP to each node's own address, and",
        "# NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME to the interface that reaches the other nodes.",
        *(exports or ["# (no extra environment variables in this plan)"]),
        "",
        f"# 1. On the head node ({mp.head_address}):",
        shlex.join(mp.head_command),
        "",
        f"# 2. On each of the {mp.nodes - 1} worker node(s):",
        shlex.join(mp.worker_command),
        "",
        f"# 3. On the head: 'ray status' must list {total} GPUs before going on.",
        "ray status",
        "",
        "# 4. On the head only (vLLM places its workers through Ray):",
        format_command(mp.serve_command),
        "",
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------- memory estimate
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
    if quantization in (None, "", "none", "bfloat16", "bf16"):
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


# ---------------------------------------------------------------- inspection (injectable)
def installed_version(package: str) -> str | None:
    """Version of an installed distribution from its metadata (no import), or None if absent."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def parse_nvidia_smi(text: str) -> list[GPU]:
    """Parse ``nvidia-smi --query-gpu=name,memory.total --format=csv,noheader`` into (name, GiB) pairs.

    Accepts values with or without the ``MiB`` unit (``81559 MiB`` -> 79.65 GiB); skips malformed lines.
    """
    gpus: list[GPU] = []
    for line in text.splitlines():
        name, sep, mem = line.rpartition(",")
        m = re.match(r"\s*([\d.]+)\s*(MiB|GiB)?", mem)
        if not sep or not m:
            continue
        value = float(m.group(1))
        gpus.append((name.strip(), value if m.group(2) == "GiB" else value / 1024))
    return gpus


def detect_gpus() -> list[GPU] | None:
    """GPUs of this machine via ``nvidia-smi``, else torch; None when neither can tell."""
    exe = shutil.which("nvidia-smi")
    if exe:
        try:
            proc = subprocess.run(
                [exe, "--query-gpu=name,memory.total", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
            if proc.returncode == 0:
                return parse_nvidia_smi(proc.stdout)
        except (OSError, subprocess.SubprocessError):
            pass
    if importlib.util.find_spec("torch") is not None:
        import torch

        if not torch.cuda.is_available():
            return []
        return [
            (torch.cuda.get_device_name(i), torch.cuda.get_device_properties(i).total_memory / GiB)
            for i in range(torch.cuda.device_count())
        ]
    return None


@dataclass
class Inspect:
    """What the checks look at; replace either callable with a fake in tests."""

    package_version: Callable[[str], str | None] = installed_version
    gpus: Callable[[], list[GPU] | None] = detect_gpus


def parse_version(version: str) -> tuple[tuple[int, int, int], bool]:
    """(major, minor, patch) and whether it is a pre-release or dev build.

    ``0.23.1.dev5+g1`` -> ((0, 23, 1), True); ``0.23.0+cu128`` -> ((0, 23, 0), False).
    """
    m = re.match(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(.*)", version)
    if not m:
        raise ValueError(f"not a version: {version!r}")
    rest = m.group(4).split("+", 1)[0].lower()
    pre = bool(re.search(r"(dev|rc|a\d|b\d|alpha|beta)", rest))
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)), pre


def _v(t: tuple[int, ...]) -> str:
    return ".".join(map(str, t))


# ---------------------------------------------------------------- checks
class Check(BaseModel):
    """One check's verdict: ``ok`` False with level ``error`` blocks :func:`launch`."""

    model_config = ConfigDict(frozen=True)

    name: str
    ok: bool
    level: Level
    message: str

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


def check_vllm(plan: ServePlan, inspect: Inspect | None = None) -> Check:
    """vLLM is installed and inside the window that has ``MiniMaxVL01ForConditionalGeneration``.

    Refuses >= 0.24 (class removed) and < 0.9.0 (not yet added); warns on 0.9.0-0.10.1 (``VLLM_USE_V1=0``
    needed, model marked broken in vLLM's tests until ~0.10.2) and on dev builds after 0.23.0.
    """
    inspect = inspect or Inspect()
    name = "vllm"
    raw = inspect.package_version("vllm")
    if raw is None:
        return Check(
            name=name,
            ok=False,
            level="error",
            message=f"vLLM is not installed: pip install '{VLLM_REQUIREMENT}' '{TRANSFORMERS_REQUIREMENT}'",
        )
    try:
        release, pre = parse_version(raw)
    except ValueError:
        return Check(name=name, ok=False, level="warning", message=f"cannot parse vLLM version {raw!r}")
    if release >= VLLM_REMOVED:
        return Check(name=name, ok=False, level="error", message=f"vLLM {raw}: {REMOVED_REASON}")
    if release < VLLM_FIRST:
        return Check(
            name=name,
            ok=False,
            level="error",
            message=f"vLLM {raw} predates MiniMaxVL01ForConditionalGeneration (added in "
            f"{_v(VLLM_FIRST)}); install '{VLLM_REQUIREMENT}'",
        )
    if release < VLLM_V1_FIXED:
        has_env = plan.env.get("VLLM_USE_V1") == "0"
        return Check(
            name=name,
            ok=False,
            level="warning",
            message=f"vLLM {raw} needs VLLM_USE_V1=0 for this model"
            f"{' (set in the plan)' if has_env else ' (not set in the plan: add it to env)'}, and the "
            f"model was marked broken in vLLM's tests until ~{_v(VLLM_V1_FIXED)}; prefer "
            f"'{VLLM_REQUIREMENT}'",
        )
    if pre and release > (0, 23, 0):
        return Check(
            name=name,
            ok=False,
            level="warning",
            message=f"vLLM {raw} is a development build after 0.23.0: the model class was removed "
            f"on the way to 0.24.0; use a release in '{VLLM_REQUIREMENT}'",
        )
    return Check(
        name=name, ok=True, level="info", message=f"vLLM {raw} supports MiniMaxVL01ForConditionalGeneration"
    )


def check_transformers(plan: ServePlan, inspect: Inspect | None = None) -> Check:
    """transformers < 5.17 next to vLLM: 5.17 removed names vLLM 0.23.0's LLaVA-family code imports."""
    inspect = inspect or Inspect()
    name = "transformers"
    vllm = _vllm_version(inspect)
    raw = inspect.package_version("transformers")
    if vllm is None:
        return Check(name=name, ok=True, level="info", message="skipped: vLLM not installed or unreadable")
    if raw is None:
        return Check(
            name=name,
            ok=False,
            level="error",
            message=f"transformers is not installed next to vLLM {vllm[0]}: "
            f"pip install '{TRANSFORMERS_REQUIREMENT}'",
        )
    try:
        release, _ = parse_version(raw)
    except ValueError:
        return Check(
            name=name, ok=False, level="warning", message=f"cannot parse transformers version {raw!r}"
        )
    if release[:2] >= TRANSFORMERS_BROKEN and vllm[1] < VLLM_REMOVED:
        return Check(
            name=name,
            ok=False,
            level="error",
            message=f"transformers {raw} with vLLM {vllm[0]}: vLLM cannot import its LLaVA-family "
            f"models (MiniMax-VL-01 included) with transformers >= {_v(TRANSFORMERS_BROKEN)}; "
            f"pip install '{TRANSFORMERS_REQUIREMENT}'",
        )
    return Check(
        name=name, ok=True, level="info", message=f"transformers {raw} (< {_v(TRANSFORMERS_BROKEN)})"
    )


def check_structured_outputs(plan: ServePlan, inspect: Inspect | None = None) -> Check:
    """``--structured-outputs-config`` is known to the installed vLLM (>= 0.11.0)."""
    inspect = inspect or Inspect()
    name = "structured-outputs"
    if plan.structured_outputs is None:
        return Check(name=name, ok=True, level="info", message="not configured (vLLM's default backend)")
    vllm = _vllm_version(inspect)
    if vllm is not None and vllm[1] < VLLM_STRUCTURED_OUTPUTS_FLAG:
        return Check(
            name=name,
            ok=False,
            level="error",
            message=f"vLLM {vllm[0]} has no --structured-outputs-config (added in "
            f"{_v(VLLM_STRUCTURED_OUTPUTS_FLAG)}); drop it or pass --guided-decoding-backend "
            "via extra_args",
        )
    return Check(name=name, ok=True, level="info", message=plan.structured_outputs.to_json())


def check_gpu_count(plan: ServePlan, inspect: Inspect | None = None) -> Check:
    """This machine has the GPUs the plan places on it (all of them on one node; one node's share else)."""
    inspect = inspect or Inspect()
    name = "gpu-count"
    gpus = inspect.gpus()
    need = plan.world_size if plan.nodes == 1 else (plan.gpus_per_node or plan.tensor_parallel_size)
    what = (
        f"tensor parallel {plan.tensor_parallel_size} x pipeline parallel {plan.pipeline_parallel_size}"
        if plan.nodes == 1
        else f"{need} per node on {plan.nodes} nodes (the rest through Ray)"
    )
    if gpus is None:
        return Check(
            name=name,
            ok=False,
            level="warning",
            message=f"cannot detect GPUs (no nvidia-smi, no torch); the plan needs {need} ({what})",
        )
    if len(gpus) < need:
        return Check(
            name=name,
            ok=False,
            level="error",
            message=f"{len(gpus)} GPU(s) found, the plan needs {need} ({what})",
        )
    return Check(
        name=name, ok=True, level="info", message=f"{len(gpus)} GPU(s) found, {need} needed ({what})"
    )


def check_gpu_memory(plan: ServePlan, inspect: Inspect | None = None) -> Check:
    """The estimated per-GPU weight share fits ``gpu_memory_utilization`` x the smallest GPU, with headroom.

    Error when the weights alone do not fit; warning under :data:`MIN_HEADROOM_GIB` GiB left per GPU.
    """
    inspect = inspect or Inspect()
    name = "gpu-memory"
    if "minimax-vl-01" not in plan.model.lower():
        # the arithmetic below is MiniMax-VL-01's (456B); another checkpoint (e.g. a tiny test model of
        # the same family) has weights we do not know
        return Check(
            name=name,
            ok=True,
            level="info",
            message=f"model {plan.model!r} is not MiniMax-VL-01: its memory is not estimated",
        )
    gpus = inspect.gpus()
    if not gpus:
        return Check(name=name, ok=False, level="warning", message="no GPUs detected: memory not checked")
    mem = min(m for _, m in gpus)
    est = estimate_memory(plan, mem)
    q = plan.quantization or "bf16"
    if est.per_gpu_gib is None or est.headroom_gib is None or est.weights_gib is None:
        return Check(name=name, ok=True, level="info", message=f"no weight estimate for quantization {q!r}")
    facts = (
        f"weights ~{est.weights_gib:.0f} GiB ({q}) / {plan.world_size} GPUs = ~{est.per_gpu_gib:.1f} GiB "
        f"per GPU; usable {plan.gpu_memory_utilization:g} x {mem:.1f} GiB = {est.usable_gib:.1f} GiB"
    )
    if est.headroom_gib < 0:
        hint = " (try quantization='experts_int8')" if plan.quantization is None else " (more GPUs needed)"
        return Check(name=name, ok=False, level="error", message=f"does not fit: {facts}{hint}")
    if est.headroom_gib < MIN_HEADROOM_GIB:
        return Check(
            name=name,
            ok=False,
            level="warning",
            message=f"tight: {facts}; {est.headroom_gib:.1f} GiB left for KV cache and activations "
            f"(< {MIN_HEADROOM_GIB:g})",
        )
    return Check(
        name=name,
        ok=True,
        level="info",
        message=f"fits (estimate): {facts}; {est.headroom_gib:.1f} GiB left per GPU",
    )


def check_context(plan: ServePlan, inspect: Inspect | None = None) -> Check:
    """``max_model_len`` holds ``images_per_prompt`` images at the maximum cost plus a text reserve.

    One image costs at most 11088 tokens (1008x2016 canvas), so N images need N x 11088 + 1024.
    Error when not even the cheapest image (1176 tokens) plus the reserve fits.
    """
    name = "max-model-len"
    most = MINIMAX_VL_01.max_image_tokens
    need = plan.min_context_for_images
    least = MINIMAX_VL_01.min_image_tokens + TEXT_RESERVE_TOKENS
    if plan.max_model_len < least:
        return Check(
            name=name,
            ok=False,
            level="error",
            message=f"max_model_len {plan.max_model_len} < {least} (one smallest image, "
            f"{MINIMAX_VL_01.min_image_tokens} tokens, + {TEXT_RESERVE_TOKENS} for text): no image fits",
        )
    if plan.max_model_len < need:
        return Check(
            name=name,
            ok=False,
            level="warning",
            message=f"max_model_len {plan.max_model_len} < {need} = {plan.images_per_prompt} images x "
            f"{most} tokens (largest image) + {TEXT_RESERVE_TOKENS} for text: {plan.images_per_prompt} "
            f"large images will not fit one prompt (clients budget per request)",
        )
    return Check(
        name=name,
        ok=True,
        level="info",
        message=f"max_model_len {plan.max_model_len} >= {need} ({plan.images_per_prompt} x {most} + "
        f"{TEXT_RESERVE_TOKENS})",
    )


def check_parallel_layout(plan: ServePlan, inspect: Inspect | None = None) -> Check:
    """Tensor parallel divides the attention heads (64 text, 16 vision); pipeline parallel is sane.

    Pipeline parallel is declared supported by vLLM's ``MiniMaxVL01ForConditionalGeneration`` but was not
    tried by this project: warn.
    """
    name = "parallel-layout"
    tp, pp = plan.tensor_parallel_size, plan.pipeline_parallel_size
    if ATTENTION_HEADS % tp or VISION_HEADS % tp:
        return Check(
            name=name,
            ok=False,
            level="error",
            message=f"tensor_parallel_size {tp} must divide the {ATTENTION_HEADS} text and "
            f"{VISION_HEADS} vision attention heads (1, 2, 4, 8 or 16)",
        )
    if pp > TEXT_LAYERS:
        return Check(
            name=name, ok=False, level="error", message=f"pipeline_parallel_size {pp} > {TEXT_LAYERS} layers"
        )
    if plan.nodes > 1 and tp > (plan.gpus_per_node or tp):
        return Check(
            name=name,
            ok=False,
            level="warning",
            message=f"tensor parallel {tp} spans nodes ({plan.gpus_per_node} GPUs each): slow; "
            "keep tensor parallel inside a node and pipeline parallel across nodes",
        )
    if pp > 1:
        return Check(
            name=name,
            ok=False,
            level="warning",
            message=f"pipeline parallel {pp} x tensor parallel {tp}: declared by vLLM for this model "
            "(SupportsPP) but not tried by this project; try a small request first",
        )
    return Check(name=name, ok=True, level="info", message=f"tensor parallel {tp}")


def check_ray(plan: ServePlan, inspect: Inspect | None = None) -> Check:
    """Ray is installed when the plan spans nodes (vLLM's multi-node executor)."""
    inspect = inspect or Inspect()
    name = "ray"
    if plan.nodes == 1 and plan.executor_backend != "ray":
        return Check(name=name, ok=True, level="info", message="not needed on one node")
    raw = inspect.package_version("ray")
    if raw is None:
        return Check(
            name=name,
            ok=False,
            level="error",
            message="Ray is not installed: pip install 'ray[default]' on every node",
        )
    return Check(name=name, ok=True, level="info", message=f"ray {raw}")


CHECKS: tuple[Callable[[ServePlan, Inspect | None], Check], ...] = (
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


class _CachedInspect(Inspect):
    """Runs each probe once per :func:`run_checks` call (nvidia-smi is slow)."""

    def __init__(self, inner: Inspect) -> None:
        cache: dict[str, str | None] = {}
        gpus: list[list[GPU] | None] = []

        def version(pkg: str) -> str | None:
            if pkg not in cache:
                cache[pkg] = inner.package_version(pkg)
            return cache[pkg]

        def detect() -> list[GPU] | None:
            if not gpus:
                gpus.append(inner.gpus())
            return gpus[0]

        super().__init__(package_version=version, gpus=detect)


def run_checks(plan: ServePlan, inspect: Inspect | None = None) -> list[Check]:
    """All :data:`CHECKS` for ``plan`` on this machine (or on what ``inspect`` fakes)."""
    cached = _CachedInspect(inspect or Inspect())
    return [check(plan, cached) for check in CHECKS]


def failed(checks: Sequence[Check], level: Level = "error") -> list[Check]:
    """The checks that did not pass at ``level``."""
    return [c for c in checks if not c.ok and c.level == level]


# ---------------------------------------------------------------- launch
def launch(
    plan: ServePlan,
    *,
    dry_run: bool = False,
    check: bool = True,
    force: bool = False,
    inspect: Inspect | None = None,
    echo: Callable[[str], None] = print,
    force_option: str = "force=True",
) -> int:
    """Print, check and run the server for ``plan``; returns the exit code.

    ``dry_run`` prints the command (and, for several nodes, the Ray script) plus the check results as
    comments, runs nothing and returns 0. Otherwise an error-level check stops the launch (exit 2) unless
    ``force``; vLLM then runs in the foreground with ``plan.env`` added to the environment (127 when the
    ``vllm`` executable is missing, 130 on Ctrl-C). On several nodes this starts only the head's server:
    the Ray cluster must be up (see :func:`render_multinode`). ``force_option`` is how the refusal names
    the override (the CLI passes ``--force``).
    """
    argv = build_command(plan)
    checks = run_checks(plan, inspect) if check else []
    if dry_run:
        echo(render_multinode(plan) if plan.nodes > 1 else format_command(argv, plan.env))
        for c in checks:
            echo(f"# {c}")
        return 0
    for c in checks:
        if not c.ok:
            echo(str(c))
    errors = failed(checks)
    if errors and not force:
        echo(f"refusing to launch: {len(errors)} check(s) failed at error level ({force_option} overrides)")
        return 2
    echo(format_command(argv, plan.env))
    try:
        return subprocess.run(argv, env={**os.environ, **plan.env}, check=False).returncode
    except FileNotFoundError:
        echo(f"'{argv[0]}' not found on PATH: pip install '{VLLM_REQUIREMENT}' '{TRANSFORMERS_REQUIREMENT}'")
        return 127
    except KeyboardInterrupt:
        return 130


# ---------------------------------------------------------------- planning
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
    keeps bf16 when its estimated weights leave :data:`MIN_HEADROOM_GIB` per GPU, else ``experts_int8``
    (8 x 80 GB: experts_int8; 8 x 141 GB: bf16 fits on paper with ~20 GiB per GPU left; 16 x 80 GB over two
    nodes: bf16). ``max_model_len=None`` picks the smallest multiple of 4096 that is >= 32768 and holds
    ``images_per_prompt`` worst-case images plus the text reserve (4 images: 49152). The plan is returned
    even when nothing fits (e.g. 1 x 80 GB): :func:`run_checks` says why it cannot run.
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
    if quantization == "auto":
        bf16 = ServePlan.model_validate({**base, "quantization": None})
        head = estimate_memory(bf16, gpu_mem_gib).headroom_gib
        quantization = None if head is not None and head >= MIN_HEADROOM_GIB else "experts_int8"
    return ServePlan.model_validate({**base, "quantization": quantization})


__all__ = [
    "CHECKS",
    "GPU",
    "MIN_HEADROOM_GIB",
    "REMOVED_REASON",
    "TEXT_RESERVE_TOKENS",
    "TRANSFORMERS_REQUIREMENT",
    "VLLM_REQUIREMENT",
    "XGRAMMAR_COMPACT",
    "Check",
    "Inspect",
    "MemoryEstimate",
    "MultiNodePlan",
    "ServePlan",
    "StructuredOutputs",
    "build_command",
    "check_context",
    "check_gpu_count",
    "check_gpu_memory",
    "check_parallel_layout",
    "check_ray",
    "check_structured_outputs",
    "check_transformers",
    "check_vllm",
    "detect_gpus",
    "estimate_memory",
    "failed",
    "format_command",
    "installed_version",
    "launch",
    "multinode_plan",
    "parse_nvidia_smi",
    "parse_version",
    "plan_for",
    "render_multinode",
    "run_checks",
    "weight_bytes",
]
