"""``minimaxvl ingest``: folders/files -> JSONL or markdown per document, in this process or on Ray."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import JobAbortedError
from .common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    PROG,
    CLIError,
    _client,
    _emit_json,
    _policy,
    _settings,
)
from .progress import Progress


def _summary_lines(s: dict[str, Any]) -> str:
    return (
        f"{PROG}: {s['documents']} document(s) ({s['skipped_documents']} already complete), "
        f"{s['pages']} page(s): {s['ok']} ok, {s['cached']} cached, {s['blank']} blank, "
        f"{s['fallback']} fallback, {s['failed']} failed; {s['image_tokens']} image tokens, "
        f"{s['requests']} requests, {s['seconds']:.1f}s"
    )


def _finish(args: argparse.Namespace, summary: dict[str, Any], code: int) -> int:
    """Print the summary line (stderr) and, with ``--json``, the summary with its exit code; returns it."""
    print(_summary_lines(summary), file=sys.stderr)
    if code == EXIT_OK and summary["failed"]:
        code = EXIT_PARTIAL
    summary["exit_code"] = code
    if args.json:
        _emit_json(summary)
    return code


def _ingest_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options ``ingest`` passes to the engine, local or Ray (see :mod:`minimaxvl_tools.ingest`)."""
    return {
        "format": args.format,
        "mode": args.mode,
        "policy": _policy(args),
        "cache_dir": args.cache_dir,
        "dpi": args.dpi,
        "plain": args.plain,
        "fallbacks": () if args.no_fallback else ("text-layer", "local"),
        "detect_rotation": not args.no_rotation,
        "max_failure_rate": args.max_failure_rate,
    }


def cmd_ingest(args: argparse.Namespace) -> int:
    """Folder(s)/files -> one JSONL or markdown file per document in ``--out``, resumable.

    The engine is :class:`minimaxvl_tools.ingest.IngestJob`; ``--engine ray`` runs
    :func:`minimaxvl_tools.distributed.ray_ingest.ray_ingest` instead.
    """
    if getattr(args, "engine", "local") == "ray":
        return _cmd_ingest_ray(args)
    from ..ingest import DocumentWritten, IngestJob, safe_text

    client = _client(args) if args.mode in ("vlm", "auto") else None
    job = IngestJob(args.inputs, args.out, client=client, **_ingest_options(args)).prepare()
    progress = Progress(job.total_pages, enabled=not args.quiet)

    def warn(doc: DocumentWritten) -> None:
        if doc.failed:
            msg = f"{doc.source}: {doc.failed} page(s) failed; rerun to retry them"
            print(f"{PROG}: warning: {msg}", file=sys.stderr)

    code = EXIT_OK
    try:
        job.run(on_page=progress.update, on_document=warn)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except JobAbortedError as e:  # the failure-rate stop
        code = EXIT_PARTIAL
        print(f"\n{PROG}: error: {e}", file=sys.stderr)
    finally:
        progress.close()
    if code == EXIT_INTERRUPTED:
        shown = safe_text(str(job.cache_dir))
        print(f"{PROG}: interrupted: finished pages are cached in {shown}; rerun to resume", file=sys.stderr)
    return _finish(args, job.summary.as_dict(), code)


def _cmd_ingest_ray(args: argparse.Namespace) -> int:
    """``ingest --engine ray``: the same inputs and options, pages spread over a Ray cluster."""
    try:
        from ..distributed.ray_ingest import ray_ingest
    except ImportError as e:
        raise CLIError(f"--engine ray needs Ray: pip install 'minimaxvl-tools[ray]' ({e})") from e
    if args.format != "jsonl":
        raise CLIError("--engine ray writes page records (--ray-output jsonl or parquet), not markdown")
    if args.max_failure_rate is not None:
        raise CLIError("--max-failure-rate stops a local ingest; --engine ray records every page instead")
    opts = _ingest_options(args)
    del opts["max_failure_rate"], opts["format"]
    summary = ray_ingest(
        args.inputs,
        args.out,
        settings=_settings(args) if args.mode in ("vlm", "auto") else None,
        ray_address=args.ray_address,
        output=args.ray_output,
        task_cpus=args.task_cpus,
        **opts,
    ).as_dict()
    return _finish(args, summary, EXIT_OK)
