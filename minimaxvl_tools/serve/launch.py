"""Run the server of a :class:`~.plan.ServePlan`: print, check, then ``vllm serve`` in the foreground."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import Any

from .checks import failed, run_checks
from .command import build_command, format_command, render_multinode
from .plan import ServePlan
from .probes import Inspect
from .versions import TRANSFORMERS_REQUIREMENT, VLLM_REQUIREMENT


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


def plan_report(plan: ServePlan, inspect: Inspect | None = None) -> dict[str, Any]:
    """``plan`` and this machine's verdicts as one JSON-ready document (what ``serve --json`` prints).

    Keys: ``plan``, ``command`` (argv), ``env``, ``multinode_script`` (None on one node), ``checks`` and
    ``errors`` (the names of the checks that failed at error level, which would block :func:`launch`).
    """
    checks = run_checks(plan, inspect)
    return {
        "plan": plan.model_dump(mode="json"),
        "command": build_command(plan),
        "env": dict(plan.env),
        "multinode_script": render_multinode(plan) if plan.nodes > 1 else None,
        "checks": [c.model_dump() for c in checks],
        "errors": [c.name for c in failed(checks)],
    }
