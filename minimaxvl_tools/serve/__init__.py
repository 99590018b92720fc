"""Plan, check and launch a vLLM server for MiniMax-VL-01: the operator's side of this client package.

One job per module:

* :mod:`.plan`: :class:`ServePlan` (what ``vllm serve`` needs, validated), the per-GPU memory estimate and
  :func:`plan_for` (quantization and parallel layout for a GPU count);
* :mod:`.command`: the ``vllm serve`` argv (:func:`build_command`, :func:`format_command`) and the Ray
  cluster script for more than one node (:func:`render_multinode`);
* :mod:`.versions` and :mod:`.probes`: the vLLM/transformers window, and what is installed (package
  metadata) and which GPUs there are (``nvidia-smi``), injectable through :class:`Inspect`;
* :mod:`.checks`: the verdicts on a machine (:func:`run_checks`);
* :mod:`.launch`: print, check and run the server (:func:`launch`), and :func:`plan_report` for programs.

Nothing here imports vLLM or torch at import time, so tests run the checks with fakes. The real model
(456B parameters) cannot run in this project's CI: every number about memory is an *estimate* from the
published architecture, not a measurement.
"""

from __future__ import annotations

from .checks import (
    CHECKS,
    Check,
    check_context,
    check_gpu_count,
    check_gpu_memory,
    check_parallel_layout,
    check_ray,
    check_structured_outputs,
    check_transformers,
    check_vllm,
    failed,
    run_checks,
)
from .command import (
    MultiNodePlan,
    build_command,
    format_command,
    multinode_plan,
    render_multinode,
)
from .launch import (
    launch,
    plan_report,
)
from .plan import (
    BF16_NAMES,
    MIN_HEADROOM_GIB,
    TEXT_RESERVE_TOKENS,
    XGRAMMAR_COMPACT,
    MemoryEstimate,
    ServePlan,
    StructuredOutputs,
    estimate_memory,
    plan_for,
    weight_bytes,
)
from .probes import (
    GPU,
    Inspect,
    detect_gpus,
    installed_version,
    parse_nvidia_smi,
)
from .versions import (
    REMOVED_REASON,
    TRANSFORMERS_REQUIREMENT,
    VLLM_REQUIREMENT,
    parse_version,
)

__all__ = [
    "BF16_NAMES",
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
    "plan_report",
    "render_multinode",
    "run_checks",
    "weight_bytes",
]
