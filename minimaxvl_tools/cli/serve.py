"""``minimaxvl serve``: the options -> a :class:`~minimaxvl_tools.serve.ServePlan`; print, check, launch."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING, Any

from .common import EXIT_OK, EXIT_USAGE, CLIError, _emit_json

if TYPE_CHECKING:  # pragma: no cover
    from ..serve import ServePlan

_PLAN_OPTIONS = (
    "quantization",
    "images_per_prompt",
    "max_model_len",
    "gpu_memory_utilization",
    "port",
    "model",
    "served_model_name",
    "host",
    "max_num_seqs",
    "enforce_eager",
)
"""Options passed as they are to :func:`~minimaxvl_tools.serve.plan_for` (same names), when given."""


def _serve_plan(args: argparse.Namespace) -> ServePlan:
    """The plan of ``args``: ``--gpus``, ``--gpu-mem``, ``--nodes`` and :data:`_PLAN_OPTIONS` to plan_for."""
    from pydantic import ValidationError

    from .. import serve

    options: dict[str, Any] = {
        name: getattr(args, name) for name in _PLAN_OPTIONS if getattr(args, name) not in (None, "")
    }
    options["extra_args"] = list(args.vllm_args or [])
    if args.structured_outputs_compact:
        options["structured_outputs"] = serve.XGRAMMAR_COMPACT
    if args.vllm_executable:
        options["executable"] = shlex.split(args.vllm_executable)
    try:
        return serve.plan_for(args.gpus, args.gpu_mem, args.nodes, **options)
    except (ValidationError, ValueError) as e:
        raise CLIError(f"serve: invalid plan: {e}") from e


def cmd_serve(args: argparse.Namespace) -> int:
    """Print (``--dry-run``) or check and launch ``vllm serve`` for MiniMax-VL-01."""
    from .. import serve

    plan = _serve_plan(args)
    inspect = serve.Inspect()  # this machine's probes, for the report and the launch alike
    if args.json:
        report = serve.plan_report(plan, inspect)
        _emit_json(report)
        if args.dry_run:
            return EXIT_OK
        if report["errors"] and not args.force:
            return EXIT_USAGE
    if args.dry_run:
        return serve.launch(plan, dry_run=True, force=args.force, inspect=inspect, echo=print)
    return serve.launch(
        plan,
        force=args.force,
        inspect=inspect,
        force_option="--force",
        echo=lambda s: print(s, file=sys.stderr),
    )
