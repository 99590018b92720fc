"""The ``vllm serve`` command line of a :class:`~.plan.ServePlan`, and the Ray script for several nodes."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

from .plan import ServePlan
from .versions import TRANSFORMERS_REQUIREMENT, VLLM_REQUIREMENT


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
