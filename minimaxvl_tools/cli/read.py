"""The reading commands: ``ocr``, ``ask``, ``chart``, ``diagram`` (the four tools), ``plan`` (the dry run,
no server) and ``health``; each calls the library and prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import MiniMaxVLError, OutputValidationError
from .common import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_SERVER,
    PROG,
    CLIError,
    _client,
    _emit_json,
    _policy,
    _run_tool,
    _show_source,
    _tool,
    exit_code_for,
)
from .progress import Progress


def cmd_ocr(args: argparse.Namespace) -> int:
    """Transcribe a document page by page; failed pages are reported and give exit code 1."""
    from ..tools import OCRTool

    # pages as given: `ocr` has no rotation step (ingest detects rotation unless --no-rotation)
    tool = _tool(OCRTool, args, _client(args), fix_rotation=False)
    src = args.source
    try:
        selected = tool.select_pages(src, args.pages)
        progress = Progress(len(selected), enabled=len(selected) > 1 and not args.quiet)
        try:
            _content, result = tool.read_selected(src, selected, plain=args.plain, on_page=progress.update)
        finally:
            progress.close()
    except OutputValidationError as e:  # every page's reply was empty, looping or cut: failed pages (1)
        raise CLIError(f"{_show_source(src)}: {e}", EXIT_PARTIAL) from e
    except MiniMaxVLError as e:
        raise CLIError(f"{_show_source(src)}: {e}", exit_code_for(e)) from e
    body = result.to_text() if args.plain else result.to_markdown()
    if args.out:
        from ..ingest import write_atomic

        write_atomic(Path(args.out), body + "\n")
    if args.json:
        _emit_json(result.model_dump(mode="json"))
    elif args.out:
        print(f"{PROG}: wrote {len(result.pages)} page(s) to {args.out}", file=sys.stderr)
    else:
        print(body)
    failed = [p for p in result.pages if p.status == "failed"]
    for p in failed:
        print(f"{PROG}: warning: {_show_source(src)}: page {p.page} failed: {p.error}", file=sys.stderr)
    return EXIT_PARTIAL if failed else EXIT_OK


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer a question about one document (or several files read as consecutive pages)."""
    from ..tools import DocumentVQATool

    if getattr(args, "store", None):
        from ..index.cli import cmd_ask_store

        return cmd_ask_store(args)
    if not args.sources:
        raise CLIError("ask: give a SOURCE document, or --store INDEX")
    source: str | list[str] = args.sources[0] if len(args.sources) == 1 else list(args.sources)
    shown = ", ".join(_show_source(s) for s in args.sources)
    tool_args = {"question": args.question, "source": source, "pages": args.pages, "short_answer": args.short}
    content, answer = _run_tool(DocumentVQATool, args, shown, tool_args)
    if not args.json:
        print(answer.short_answer or answer.answer if args.short and answer.found else content)
    return EXIT_OK


def cmd_chart(args: argparse.Namespace) -> int:
    """Extract a chart's data (summary, CSV or markdown table), optionally answering a question."""
    from ..tools import ChartReaderTool

    tool_args = {"source": args.source, "question": args.question, "pages": args.pages}
    content, data = _run_tool(ChartReaderTool, args, _show_source(args.source), tool_args)
    if args.json:
        return EXIT_OK
    if args.csv:
        sys.stdout.write(data.to_csv().rstrip("\n") + "\n")
    elif args.markdown:
        table = [line for line in data.to_markdown().splitlines() if line.startswith("|")]
        if table:
            print("\n".join(table))
        else:
            print(f"{PROG}: warning: {_show_source(args.source)}: no data series read", file=sys.stderr)
    else:
        print(content)
    return EXIT_OK


def cmd_diagram(args: argparse.Namespace) -> int:
    """Reason over a diagram; with ``--option`` the answer is one of the choices (a letter)."""
    from ..tools import DiagramReasoningTool

    tool_args = {"source": args.source, "question": args.question, "options": args.option or None}
    content, _answer = _run_tool(DiagramReasoningTool, args, _show_source(args.source), tool_args)
    if not args.json:
        print(content)
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    """Dry run with no server: per page its size, single image or crops, canvases, tokens and requests."""
    from ..pages.plan import plan_rows, plan_totals

    rows = []
    for src in args.sources:
        try:
            rows.extend(plan_rows(src, pages=args.pages, dpi=args.dpi, policy=_policy(args)))
        except MiniMaxVLError as e:
            raise CLIError(f"{src}: {e}", exit_code_for(e)) from e
    totals = plan_totals(rows)
    if args.json:
        _emit_json({"dpi": args.dpi, "pages": rows, "totals": totals})
        return EXIT_OK
    head = f"{'source':<24} {'page':>4} {'size':>11} {'mode':<6} {'crops':>5} {'canvases':<22} "
    head += f"{'tokens':>7} {'requests':>8} {'cut':<10} {'gain':>5}"
    print(head)
    for r in rows:
        size = f"{r['width']}x{r['height']}"
        canv = ",".join(f"{c[0]}x{c[1]}" for c in r["canvases"])
        name = r["source"] if len(r["source"]) <= 24 else "..." + r["source"][-21:]
        print(
            f"{name:<24} {r['page']:>4} {size:>11} {r['mode']:<6} {r['crops']:>5} {canv:<22} "
            f"{r['image_tokens']:>7} {r['requests']:>8} {r['cut']:<10} "
            + (f"{r['legibility_gain']:>4.2f}x" if r["legibility_gain"] else f"{'-':>5}")
        )
        for box in r["cuts"]:
            print(f"{'':<29} cut {box[0]},{box[1]} - {box[2]},{box[3]}")
    print(
        f"total: {totals['pages']} page(s), {totals['tiled_pages']} tiled ({totals['crops']} crops), "
        f"{totals['image_tokens']} image tokens, {totals['requests']} request(s) at {args.dpi} dpi"
    )
    return EXIT_OK


def cmd_health(args: argparse.Namespace) -> int:
    """Exit 0 when the endpoint answers and serves the configured model, else 3."""
    client = _client(args)
    try:
        status = client.health()
    finally:
        client.close()
    model = client.settings.model
    ok = status.ok and status.model_served
    if args.json:
        _emit_json({**status.model_dump(mode="json"), "model": model, "healthy": ok})
        return EXIT_OK if ok else EXIT_SERVER
    dead = [e for e in status.endpoints if not (e.ok and e.model_served)]
    if ok:
        line = f"ok: {status.base_url} serves {model} (max_model_len {status.max_model_len})"
        if status.endpoints:
            up = len(status.endpoints) - len(dead)
            line = f"ok: {model} served by {up} of {len(status.endpoints)} replicas "
            line += f"(max_model_len {status.max_model_len})"
        print(line)
    else:
        print(f"{PROG}: error: {status.base_url}: unhealthy: {status.error}", file=sys.stderr)
        if status.models:
            print(f"served models: {', '.join(status.models)}", file=sys.stderr)
    for e in status.endpoints:
        state = "up" if e.ok and e.model_served else "DOWN"
        why = "" if state == "up" else f": {e.error or 'does not serve ' + model}"
        print(f"  {state:<4} {e.base_url}{why}", file=sys.stdout if ok and state == "up" else sys.stderr)
    if ok and dead:
        print(f"{PROG}: warning: {len(dead)} replica(s) down (listed above)", file=sys.stderr)
    return EXIT_OK if ok else EXIT_SERVER
