"""``minimaxvl``: the command line of minimaxvl-tools, thin over the tools, the loader and ``serve``.

Subcommands: ``ocr``, ``ask``, ``chart``, ``diagram`` (the four tools), ``ingest`` (a folder of PDFs and
images -> JSONL or markdown per document, cached and resumable), ``plan`` (what each page will cost, with
no server), ``health`` (is the endpoint up and serving the model), ``serve`` (the vLLM command and its
checks) and ``eval`` (when :mod:`minimaxvl_tools.eval.cli` is importable).

Text goes to stdout by default; ``--json`` prints one JSON document on stdout for programs. Progress,
summaries and errors go to stderr; an error names its input: ``minimaxvl: error: scan.pdf: ...``.

Exit codes (scripts can rely on them):

====  =====================================================================================
0     ok
1     some pages failed (``ingest``/``ocr`` partial output), or the job was aborted
2     usage or bad input (argparse errors, missing/unreadable files, InvalidInputError), or a
      ``serve`` check failed at error level
3     server unavailable or unhealthy (or serving another model)
4     model output failed validation
5     context overflow (the request cannot fit the served context)
130   interrupted (Ctrl-C)
====  =====================================================================================
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TextIO

from . import __version__
from .errors import (
    BadRequestError,
    ContextOverflowError,
    InvalidInputError,
    JobAbortedError,
    MediaError,
    MiniMaxVLError,
    OutputValidationError,
    ServerError,
    ServerUnavailableError,
)

PROG = "minimaxvl"

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_SERVER = 3
EXIT_OUTPUT = 4
EXIT_CONTEXT = 5
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\
exit codes:
  0    ok
  1    some pages failed (ingest/ocr partial output), or the job was aborted
  2    usage or bad input (missing file, unreadable image/PDF, bad option); serve check failed
  3    server unavailable or unhealthy (or serving another model)
  4    model output failed validation
  5    context overflow (request cannot fit the served context)
  130  interrupted

environment: MINIMAXVL_BASE_URL, MINIMAXVL_MODEL, MINIMAXVL_API_KEY, ... (options win).
"""

log = logging.getLogger("minimaxvl_tools.cli")


# ---------------------------------------------------------------------------------------------- errors
class CLIError(Exception):
    """An error the CLI reports itself: a message (naming the input) and the exit code to return."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code of a package error (see the module docstring).

    Server answers that blame the request (400, unloadable media) count as bad input (2); every other
    server or transport failure is "server unavailable" (3).
    """
    if isinstance(exc, ContextOverflowError):
        return EXIT_CONTEXT
    if isinstance(exc, InvalidInputError | BadRequestError | MediaError):
        return EXIT_USAGE
    if isinstance(exc, OutputValidationError):
        return EXIT_OUTPUT
    if isinstance(exc, ServerError):
        return EXIT_SERVER
    return EXIT_PARTIAL


def _cause(exc: BaseException) -> BaseException:
    """The package error behind a ToolException (tools wrap our typed errors ``from`` them)."""
    seen = 0
    while not isinstance(exc, MiniMaxVLError) and exc.__cause__ is not None and seen < 5:
        exc = exc.__cause__
        seen += 1
    return exc


# ---------------------------------------------------------------------------------------------- output
class Progress:
    """Progress on stderr with rate and ETA: a tqdm bar on a TTY; without one, a plain line at every 10% of
    the total and at the end (``minimaxvl: 12/40 pages (30%), 3.10 pages/s, ETA 9s``), so logs of
    non-interactive runs (CI, nohup) stay short and regular (tqdm redraws with carriage returns).
    """

    def __init__(
        self,
        total: int,
        *,
        label: str = "pages",
        stream: TextIO | None = None,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(0, total)
        self.done = 0
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._clock = clock
        self._start = clock()
        self._last_step = 0
        self._bar: Any = None
        if enabled and self.tty:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit=f" {label}", file=self.stream, ncols=100, leave=True)

    def rate(self) -> float:
        """Items finished per second since the bar was made (0 before the first one)."""
        elapsed = self._clock() - self._start
        return self.done / elapsed if self.done and elapsed > 0 else 0.0

    def eta(self) -> str:
        """Time left at the current rate, e.g. ``1m05s``; ``?`` before the first item, ``0s`` when done."""
        left = max(self.total - self.done, 0)
        if not left:
            return "0s"
        rate = self.rate()
        if rate <= 0:
            return "?"
        secs = round(left / rate)
        if secs >= 3600:
            return f"{secs // 3600}h{secs % 3600 // 60:02d}m"
        return f"{secs // 60}m{secs % 60:02d}s" if secs >= 60 else f"{secs}s"

    def _stats(self) -> str:
        return f"{self.rate():.2f} {self.label}/s, ETA {self.eta()}"

    def update(self, n: int = 1) -> None:
        """Count ``n`` more finished items: advance the bar (TTY) or print a line at each 10% step."""
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        step = (10 * self.done) // max(self.total, 1)
        if step > self._last_step or self.done == self.total:
            self._last_step = step
            shown = max(self.total, self.done)
            pct = 100 * self.done // max(shown, 1)
            self.stream.write(f"{PROG}: {self.done}/{shown} {self.label} ({pct}%), {self._stats()}\n")
            self.stream.flush()

    def close(self) -> None:
        """Finish the bar on a TTY (its last state stays on screen)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


_json_emitted: list[bool] = [False]  # whether this main() call printed its JSON document yet


def _emit_json(data: Any, out: IO[str] | None = None) -> None:
    (out or sys.stdout).write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    _json_emitted[0] = True


def _json_error(message: str, code: int, kind: str) -> None:
    """With ``--json``, the one JSON document on stdout for a failed command (unless one was printed)."""
    if not _json_emitted[0]:
        _emit_json({"error": {"type": kind, "message": message, "exit_code": code}})


class _UsageError(SystemExit):
    """argparse's usage error, keeping its message for the ``--json`` error document."""

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_USAGE)
        self.message = message


class _ArgumentParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors keep their message (printed to stderr as usual)."""

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        text = f"{self.prog}: error: {message}"
        sys.stderr.write(text + "\n")
        raise _UsageError(text)


# ---------------------------------------------------------------------------------------------- context
def _roots(args: argparse.Namespace) -> list[Path]:
    """Allowed input folders: the working folder, MINIMAXVL_ALLOWED_ROOTS, and every ``--allow-root``."""
    from .settings import Settings

    env = Settings.from_env()
    roots = [Path.cwd()]
    if "allowed_roots" in env.model_fields_set:
        roots += [Path(r).expanduser().resolve() for r in env.allowed_roots]
    for r in getattr(args, "allow_root", None) or []:
        p = Path(r).expanduser().resolve()
        if not p.is_dir():
            raise CLIError(f"--allow-root {r}: not a folder")
        roots.append(p)
    return list(dict.fromkeys(roots))


def _settings(args: argparse.Namespace) -> Any:
    """Settings from ``MINIMAXVL_*`` with the command-line options winning."""
    from pydantic import ValidationError

    from .settings import Settings

    try:
        return Settings.from_env(
            base_url=getattr(args, "base_url", None),
            model=getattr(args, "model", None),
            api_key=getattr(args, "api_key", None),
            timeout=getattr(args, "timeout", None),
            max_concurrency=getattr(args, "max_concurrency", None),
            max_retries=getattr(args, "max_retries", None),
            workers=getattr(args, "workers", None),
            allowed_roots=_roots(args),
            allow_urls=getattr(args, "allow_urls", False) or None,
            allow_private_hosts=getattr(args, "allow_private_hosts", False) or None,
        )
    except ValidationError as e:
        raise CLIError(f"invalid settings: {e.errors()[0]['loc'][0]}: {e.errors()[0]['msg']}") from e


def _client(args: argparse.Namespace) -> Any:
    from .client import MiniMaxVLClient

    return MiniMaxVLClient(_settings(args))


def _policy(args: argparse.Namespace) -> Any:
    """The input policy of every command: the settings' (flags over MINIMAXVL_*), refusals naming flags."""
    from .images.policy import InputPolicy

    return InputPolicy.from_settings(_settings(args), hints="cli")


def _tool(cls: type, args: argparse.Namespace, client: Any, **kw: Any) -> Any:
    """A tool sharing ``client``, with the CLI's input policy; errors raise instead of becoming text."""
    return cls(client=client, input_policy=_policy(args), handle_tool_error=False, **kw)


def _call(tool: Any, source: str, tool_args: dict[str, Any]) -> tuple[str, Any]:
    """Invoke ``tool`` as a tool call; returns (content, artifact) or raises CLIError naming ``source``."""
    from langchain_core.tools import ToolException

    try:
        msg = tool.invoke({"type": "tool_call", "id": "cli", "name": tool.name, "args": tool_args})
    except (ToolException, MiniMaxVLError) as e:
        cause = _cause(e)
        raise CLIError(f"{source}: {cause}", exit_code_for(cause)) from e
    return str(msg.content), msg.artifact


def _show_source(source: str) -> str:
    from .errors import redact_url

    return redact_url(source if len(source) < 200 else source[:60] + "...")


# ---------------------------------------------------------------------------------------------- tools
def cmd_ocr(args: argparse.Namespace) -> int:
    """Transcribe a document page by page; failed pages are reported and give exit code 1."""
    from .pages import ocr_page
    from .results import OCRPage
    from .tools import OCRTool

    client = _client(args)
    tool = _tool(OCRTool, args, client)
    src = args.source
    pages: list[OCRPage] = []
    errors: list[BaseException] = []
    try:
        selected = tool._pages(src, args.pages)
        progress = Progress(len(selected), enabled=len(selected) > 1 and not args.quiet)
        for meta in selected:
            page = tool._rendered(src, meta)
            try:
                pages.append(ocr_page(client, page, plain=args.plain, tile=tool.tile, raise_errors=True))
            except ServerUnavailableError:
                raise  # the endpoint is down: the other pages would fail the same way
            except (OutputValidationError, ContextOverflowError, ServerError) as e:
                errors.append(e)
                pages.append(OCRPage(page=page.number, status="failed", error=f"{type(e).__name__}: {e}"))
            finally:
                page.image = None
            progress.update()
        progress.close()
    except MiniMaxVLError as e:
        raise CLIError(f"{_show_source(src)}: {e}", exit_code_for(e)) from e
    failed = [p for p in pages if p.status == "failed"]
    if pages and len(failed) == len(pages):
        first = failed[0]
        raise CLIError(
            f"{_show_source(src)}: every page failed; page {first.page}: {first.error}",
            exit_code_for(errors[0]) if errors else EXIT_PARTIAL,
        )
    _content, result = tool._finish(src, pages)
    body = result.to_text() if args.plain else result.to_markdown()
    if args.out:
        from .ingest import write_atomic

        write_atomic(Path(args.out), body + "\n")
    if args.json:
        _emit_json(result.model_dump(mode="json"))
    elif args.out:
        print(f"{PROG}: wrote {len(pages)} page(s) to {args.out}", file=sys.stderr)
    else:
        print(body)
    for p in failed:
        print(f"{PROG}: warning: {_show_source(src)}: page {p.page} failed: {p.error}", file=sys.stderr)
    return EXIT_PARTIAL if failed else EXIT_OK


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer a question about one document (or several files read as consecutive pages)."""
    from .tools import DocumentVQATool

    if getattr(args, "store", None):
        from .index.cli import cmd_ask_store

        return cmd_ask_store(args)
    if not args.sources:
        raise CLIError("ask: give a SOURCE document, or --store INDEX")

    tool = _tool(DocumentVQATool, args, _client(args))
    source: str | list[str] = args.sources[0] if len(args.sources) == 1 else list(args.sources)
    shown = ", ".join(_show_source(s) for s in args.sources)
    content, answer = _call(
        tool,
        shown,
        {"question": args.question, "source": source, "pages": args.pages, "short_answer": args.short},
    )
    if args.json:
        _emit_json(answer.model_dump(mode="json"))
    else:
        print(answer.short_answer or answer.answer if args.short and answer.found else content)
    return EXIT_OK


def cmd_chart(args: argparse.Namespace) -> int:
    """Extract a chart's data (summary, CSV or markdown table), optionally answering a question."""
    from .tools import ChartReaderTool

    tool = _tool(ChartReaderTool, args, _client(args))
    content, data = _call(
        tool,
        _show_source(args.source),
        {"source": args.source, "question": args.question, "pages": args.pages},
    )
    if args.json:
        _emit_json(data.model_dump(mode="json"))
    elif args.csv:
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
    from .tools import DiagramReasoningTool

    tool = _tool(DiagramReasoningTool, args, _client(args))
    content, ans = _call(
        tool,
        _show_source(args.source),
        {"source": args.source, "question": args.question, "options": args.option or None},
    )
    if args.json:
        _emit_json(ans.model_dump(mode="json"))
    else:
        print(content)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------- ingest
def _summary_lines(s: dict[str, Any]) -> str:
    return (
        f"{PROG}: {s['documents']} document(s) ({s['skipped_documents']} already complete), "
        f"{s['pages']} page(s): {s['ok']} ok, {s['cached']} cached, {s['blank']} blank, "
        f"{s['fallback']} fallback, {s['failed']} failed; {s['image_tokens']} image tokens, "
        f"{s['requests']} requests, {s['seconds']:.1f}s"
    )


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
    from .ingest import DocumentWritten, IngestJob, safe_text

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
    summary = job.summary.as_dict()
    if code == EXIT_INTERRUPTED:
        shown = safe_text(str(job.cache_dir))
        print(f"{PROG}: interrupted: finished pages are cached in {shown}; rerun to resume", file=sys.stderr)
    print(_summary_lines(summary), file=sys.stderr)
    if code == EXIT_OK and summary["failed"]:
        code = EXIT_PARTIAL
    summary["exit_code"] = code
    if args.json:
        _emit_json(summary)
    return code


def _cmd_ingest_ray(args: argparse.Namespace) -> int:
    """``ingest --engine ray``: the same inputs and options, pages spread over a Ray cluster."""
    try:
        from .distributed.ray_ingest import ray_ingest
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
        **opts,
    ).as_dict()
    print(_summary_lines(summary), file=sys.stderr)
    code = EXIT_PARTIAL if summary["failed"] else EXIT_OK
    summary["exit_code"] = code
    if args.json:
        _emit_json(summary)
    return code


# ---------------------------------------------------------------------------------------------- plan
def _plan_rows(source: str, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    from .pages import iter_pages, plan_page_image

    for page in iter_pages(source, pages=args.pages, dpi=args.dpi, policy=_policy(args)):
        plan = plan_page_image(page.pixels())  # as the OCR tool plans it: small print measured
        w, h = page.size
        page.image = None
        if plan.mode == "tiles" and plan.tiles is not None:
            canvases = sorted({t.canvas for t in plan.tiles.tiles})
            sent = list(plan.tiled_size)
        else:
            assert plan.size is not None
            canvases = [plan.size.canvas]
            sent = list(plan.size.final)
        yield {
            "source": source,
            "page": page.number,
            "width": w,
            "height": h,
            "mode": plan.mode,
            "sent_size": sent,
            "crops": plan.crops,
            "canvases": [list(c) for c in canvases],
            "image_tokens": plan.tokens,
            "requests": plan.requests,
            "cut": plan.cut or "none",  # whitespace, whitespace+overlap, grid (overlapping strips), none
            "cuts": [list(b) for b in plan.boxes] if plan.mode == "tiles" else [],
            "x_height": plan.x_height,  # the small print, page px (None: no text measured)
            "x_height_shown": plan.shown_x_height,  # ... as the server sees it in the images sent
            "legibility_gain": None if plan.legibility_gain is None else round(plan.legibility_gain, 3),
        }


def cmd_plan(args: argparse.Namespace) -> int:
    """Dry run with no server: per page its size, single image or crops, canvases, tokens and requests."""
    rows: list[dict[str, Any]] = []
    for src in args.sources:
        try:
            rows.extend(_plan_rows(src, args))
        except MiniMaxVLError as e:
            raise CLIError(f"{src}: {e}", exit_code_for(e)) from e
    totals = {
        "pages": len(rows),
        "tiled_pages": sum(r["mode"] == "tiles" for r in rows),
        "crops": sum(r["crops"] for r in rows),
        "image_tokens": sum(r["image_tokens"] for r in rows),
        "requests": sum(r["requests"] for r in rows),
    }
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


# ---------------------------------------------------------------------------------------------- health
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


# ---------------------------------------------------------------------------------------------- serve
def _serve_plan(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from . import serve

    overrides: dict[str, Any] = {"port": args.port, "extra_args": list(args.vllm_args or [])}
    if args.model:
        overrides["model"] = args.model
    if args.served_model_name:
        overrides["served_model_name"] = args.served_model_name
    if args.enforce_eager:
        overrides["enforce_eager"] = True
    if args.max_num_seqs is not None:
        overrides["max_num_seqs"] = args.max_num_seqs
    if args.structured_outputs_compact:
        overrides["structured_outputs"] = serve.XGRAMMAR_COMPACT
    if args.host:
        overrides["host"] = args.host
    if args.vllm_executable:
        overrides["executable"] = shlex.split(args.vllm_executable)
    quant: str | None = args.quantization
    if quant in ("none", "bf16", "bfloat16"):
        quant = None
    try:
        return serve.plan_for(
            args.gpus,
            args.gpu_mem,
            args.nodes,
            quantization=quant,
            images_per_prompt=args.images_per_prompt,
            max_model_len=args.max_model_len,
            gpu_memory_utilization=args.gpu_memory_utilization,
            **overrides,
        )
    except (ValidationError, ValueError) as e:
        raise CLIError(f"serve: invalid plan: {e}") from e


def cmd_serve(args: argparse.Namespace) -> int:
    """Print (``--dry-run``) or check and launch ``vllm serve`` for MiniMax-VL-01."""
    from . import serve

    plan = _serve_plan(args)
    if args.json:
        checks = serve.run_checks(plan)
        data = {
            "plan": plan.model_dump(mode="json"),
            "command": serve.build_command(plan),
            "env": dict(plan.env),
            "multinode_script": serve.render_multinode(plan) if plan.nodes > 1 else None,
            "checks": [c.model_dump() for c in checks],
            "errors": [c.name for c in serve.failed(checks)],
        }
        _emit_json(data)
        if args.dry_run:
            return EXIT_OK
        if data["errors"] and not args.force:
            return EXIT_USAGE
    if args.dry_run:
        return serve.launch(plan, dry_run=True, force=args.force, echo=print)
    return serve.launch(
        plan, force=args.force, force_option="--force", echo=lambda s: print(s, file=sys.stderr)
    )


# ---------------------------------------------------------------------------------------------- parser
def _add_output(p: argparse.ArgumentParser, suppress: bool) -> None:
    """--json/-v, accepted before and after the subcommand.

    On subparsers they store under ``*_sub`` names, merged in :func:`main`, so that a subparser's
    defaults never reset a value given before the subcommand. ``--quiet`` is added only to the commands
    that draw a progress bar (``ocr``, ``ingest``).
    """
    sfx = "_sub" if suppress else ""
    p.add_argument(
        "--json",
        action="store_true",
        dest="json" + sfx,
        help="machine output: one JSON document on stdout (errors too)",
    )
    p.add_argument(
        "-v", "--verbose", action="count", default=0, dest="verbose" + sfx, help="log to stderr (-vv debug)"
    )


def _add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def _add_client(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server")
    g.add_argument("--base-url", help="OpenAI-compatible endpoint ending in /v1 (MINIMAXVL_BASE_URL)")
    g.add_argument("--model", help="served model name (MINIMAXVL_MODEL)")
    g.add_argument("--api-key", help="bearer token (MINIMAXVL_API_KEY)")
    g.add_argument("--timeout", type=float, help="seconds per HTTP request")
    g.add_argument("--max-concurrency", type=int, help="requests in flight")
    g.add_argument("--max-retries", type=int, help="retries on 429/5xx/connection errors")


def _add_workers(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes for page work (render, checks, encode); 0 in-process; default from the cores "
        "(MINIMAXVL_WORKERS)",
    )


def _add_inputs(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("inputs")
    g.add_argument(
        "--allow-root",
        action="append",
        metavar="DIR",
        help="also allow files under DIR (repeatable; the working folder and MINIMAXVL_ALLOWED_ROOTS are "
        "always allowed)",
    )
    g.add_argument(
        "--allow-urls",
        action="store_true",
        help="accept http(s) URLs (public hosts only; MINIMAXVL_ALLOW_URLS)",
    )
    g.add_argument(
        "--allow-private-hosts",
        action="store_true",
        help="with --allow-urls, also loopback/private hosts (trusted servers only; "
        "MINIMAXVL_ALLOW_PRIVATE_HOSTS)",
    )


def _eval_module() -> tuple[Any | None, str]:
    """``minimaxvl_tools.eval.cli`` if it imports and has the expected functions, else (None, reason)."""
    try:
        from .eval import cli as eval_cli
    except Exception as e:  # ImportError, or a module still being written
        return None, f"{type(e).__name__}: {e}"
    if not (
        callable(getattr(eval_cli, "configure_parser", None)) and callable(getattr(eval_cli, "run", None))
    ):
        return None, "minimaxvl_tools.eval.cli has no configure_parser()/run()"
    return eval_cli, ""


def build_parser(*, load_eval: bool = True) -> argparse.ArgumentParser:
    """The ``minimaxvl`` argument parser (subcommands, options, exit codes in the epilog).

    ``load_eval=False`` leaves :mod:`minimaxvl_tools.eval.cli` (which imports every tool) unimported and
    registers ``eval`` as a placeholder: :func:`main` does so unless the command line names ``eval``,
    which keeps ``--help`` and the other commands fast to start.
    """
    parser = _ArgumentParser(
        prog=PROG,
        description="MiniMax-VL-01 tools from the shell: OCR, document QA, charts, diagrams, batch "
        "ingest, cost planning and the vLLM server.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_output(parser, suppress=False)
    out_parent = _ArgumentParser(add_help=False)
    _add_output(out_parent, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(
        name: str,
        help_: str,
        func: Callable[[argparse.Namespace], int],
        *,
        client: bool = True,
        inputs: bool = True,
        **kw: Any,
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_,
            description=help_,
            parents=[out_parent],
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kw,
        )
        if client:
            _add_client(p)
        if inputs:
            _add_inputs(p)
        p.set_defaults(func=func)
        return p

    p = add("ocr", "transcribe an image or PDF (markdown, or plain text)", cmd_ocr)
    _add_quiet(p)
    p.add_argument("source", help="image or PDF (path, or URL with --allow-urls)")
    p.add_argument("--pages", help="page range, e.g. 1-3,5 (default: all)")
    p.add_argument("--plain", action="store_true", help="plain text instead of markdown")
    p.add_argument("--out", metavar="FILE", help="write the transcription to FILE instead of stdout")
    _add_workers(p)

    p = add("ask", "answer a question about a document (answer, pages, evidence)", cmd_ask)
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="a document or its pages (none with --store)")
    p.add_argument("-q", "--question", required=True, help="the question to answer from the document")
    p.add_argument("--pages", help="page range to search")
    p.add_argument("--short", action="store_true", help="the exact words from the document only")

    p = add("chart", "extract a chart's data as a table, optionally answering a question", cmd_chart)
    p.add_argument("source", help="chart image or PDF (path, or URL with --allow-urls)")
    p.add_argument("-q", "--question", help="a question to answer from the chart's data (optional)")
    p.add_argument("--pages", help="PDF page(s) holding the chart (default: 1)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="print the data as CSV")
    fmt.add_argument("--markdown", action="store_true", help="print only the data as a markdown table")

    p = add("diagram", "reason over a diagram (science figure, flowchart, ...)", cmd_diagram)
    p.add_argument("source", help="diagram image or PDF (path, or URL with --allow-urls)")
    p.add_argument("-q", "--question", required=True, help="the question about the diagram")
    p.add_argument(
        "--option",
        action="append",
        metavar="TEXT",
        help="a multiple-choice option (repeat; they become A, B, C ...)",
    )

    p = add("ingest", "PDFs/images -> JSONL or markdown per document (cached, resumable)", cmd_ingest)
    _add_quiet(p)
    p.add_argument(
        "inputs", nargs="+", metavar="FOLDER_OR_FILE", help="folders (searched) and files to ingest"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--format",
        choices=["jsonl", "markdown"],
        default="jsonl",
        help="one JSONL record per page, or one markdown file per document (default: jsonl)",
    )
    _add_workers(p)
    p.add_argument(
        "--mode",
        choices=["vlm", "text-layer", "auto", "local"],
        default="auto",
        help="vlm: model OCR; text-layer: PDF text only; auto: text layer where good; local: "
        "Tesseract (default: auto)",
    )
    p.add_argument("--cache-dir", help="page cache (default: OUT/.cache)")
    p.add_argument(
        "--max-failure-rate",
        type=float,
        metavar="X",
        help="stop when more than this fraction of pages failed (0-1)",
    )
    p.add_argument("--dpi", type=int, default=200, help="PDF rendering resolution (default: 200)")
    p.add_argument("--plain", action="store_true", help="plain text instead of markdown")
    p.add_argument(
        "--no-fallback",
        action="store_true",
        help="a page the model fails stays failed (no text-layer/Tesseract fallback)",
    )
    p.add_argument("--no-rotation", action="store_true", help="skip client-side rotation detection")
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this process (default); ray: Ray Data tasks on a cluster (pip install "
        "'minimaxvl-tools[ray]'); inputs may then be s3://... URLs",
    )
    p.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to join (default: start a local one)")
    p.add_argument(
        "--ray-output",
        choices=["jsonl", "parquet"],
        default="jsonl",
        help="--engine ray: page records as JSONL or Parquet shards in OUT/records (default: jsonl)",
    )

    p = add(
        "plan",
        "dry run, no server: per-page size, crops, canvases, image tokens, requests",
        cmd_plan,
        client=False,
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="images or PDFs to plan")
    p.add_argument("--pages", help="page range (applies to every source)")
    p.add_argument("--dpi", type=int, default=200, help="PDF rendering resolution (default: 200)")

    add("health", "is the endpoint up and serving the model? (exit 0 yes, 3 no)", cmd_health, inputs=False)

    p = add(
        "serve", "print/check/launch the vLLM server for MiniMax-VL-01", cmd_serve, client=False, inputs=False
    )
    p.add_argument("--gpus", type=int, default=8, help="GPUs per node = tensor parallel size (default: 8)")
    p.add_argument("--gpu-mem", type=float, default=80.0, metavar="GIB", help="memory per GPU (default: 80)")
    p.add_argument("--nodes", type=int, default=1, help="nodes = pipeline parallel size (default: 1)")
    p.add_argument(
        "--quantization",
        default="auto",
        help="auto (bf16 when it fits, else experts_int8), none, experts_int8, ...",
    )
    p.add_argument("--max-model-len", type=int, help="context length (default: fits the images)")
    p.add_argument(
        "--images-per-prompt", type=int, default=4, help="images one request may carry (default: 4)"
    )
    p.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=0.9,
        help="share of each GPU's memory vLLM may use (default: 0.9)",
    )
    p.add_argument("--max-num-seqs", type=int, help="requests vLLM runs at once (default: vLLM's)")
    p.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs (less memory, slower)")
    p.add_argument(
        "--structured-outputs-compact",
        action="store_true",
        help="xgrammar with disable_any_whitespace (vLLM >= 0.11)",
    )
    p.add_argument("--model", help="model to serve (default: MiniMaxAI/MiniMax-VL-01)")
    p.add_argument("--served-model-name", help="name the server answers to (default: the model)")
    p.add_argument("--host", help="address to listen on (default: vLLM's)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.add_argument(
        "--vllm-executable",
        help="how to run vLLM's CLI (default: vllm), e.g. 'python3 -m vllm.entrypoints.cli.main'",
    )
    p.add_argument("--dry-run", action="store_true", help="print the command(s) and the checks, run nothing")
    p.add_argument("--force", action="store_true", help="launch even when a check fails")
    p.add_argument("vllm_args", nargs=argparse.REMAINDER, help="after --: extra arguments for vllm serve")

    from .index.cli import register as register_index

    register_index(sub, add)

    eval_cli, reason = _eval_module() if load_eval else (None, "")
    # no shared parents here: eval's configure_parser adds options of its own, and an option clash must
    # not touch the action objects the other subcommands share
    p = sub.add_parser(
        "eval",
        help="score the model on a dataset" + ("" if eval_cli or not load_eval else " (unavailable)"),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_output(p, suppress=True)
    _add_client(p)
    _add_inputs(p)
    if eval_cli is not None:
        try:
            eval_cli.configure_parser(p)
            p.set_defaults(func=eval_cli.run)
        except Exception as e:  # a broken eval parser must not break the other subcommands
            eval_cli, reason = None, f"configure_parser failed: {type(e).__name__}: {e}"
    if eval_cli is None:
        p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(func=lambda _a: _unavailable("eval", reason))
    if not load_eval:
        p.description = "score the model on a dataset (minimaxvl eval --help lists its options)"
    return parser


def _unavailable(name: str, reason: str) -> int:
    print(f"{PROG}: error: {name} is unavailable in this installation: {reason}", file=sys.stderr)
    return EXIT_USAGE


@contextlib.contextmanager
def _logging(verbosity: int) -> Iterator[None]:
    """-v: the package's log records on stderr; without it, none (errors are reported by the CLI itself).

    Handlers are removed again on exit, so calling :func:`main` in process leaves logging as it was.
    """
    pkg = logging.getLogger("minimaxvl_tools")
    handler: logging.Handler
    if verbosity > 0:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        old_level = pkg.level
        pkg.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)
    else:  # keeps Python's last-resort handler from printing library warnings next to our error line
        handler, old_level = logging.NullHandler(), pkg.level
    pkg.addHandler(handler)
    try:
        yield
    finally:
        pkg.removeHandler(handler)
        pkg.setLevel(old_level)


def _preflight(args: argparse.Namespace) -> None:
    """Checks that fail a command before any work: ``--mode local`` needs the Tesseract binary."""
    if getattr(args, "mode", None) == "local":
        from .local_ocr import LocalOCREngine

        if not LocalOCREngine.available():
            raise CLIError(
                f"{args.command} --mode local: Tesseract is not installed (no tesseract binary on PATH): "
                "install it (apt-get install tesseract-ocr) or use --mode vlm / --mode auto"
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``minimaxvl`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(load_eval="eval" in args_list)
    _json_emitted[0] = False
    try:
        args = parser.parse_args(args_list)
    except _UsageError as e:
        if "--json" in args_list:
            _json_error(e.message, EXIT_USAGE, "UsageError")
        return EXIT_USAGE
    except SystemExit as e:  # --help/--version exit 0
        return int(e.code or 0) if not isinstance(e.code, str) else EXIT_USAGE
    args.json = bool(args.json or getattr(args, "json_sub", False))
    args.quiet = bool(getattr(args, "quiet", False))
    args.verbose = int(args.verbose) + int(getattr(args, "verbose_sub", 0) or 0)
    if getattr(args, "vllm_args", None) and args.vllm_args[0] == "--":
        args.vllm_args = args.vllm_args[1:]
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        with _logging(args.verbose):
            _preflight(args)
            return int(func(args) or 0)
    except CLIError as e:
        from .errors import redact_url

        print(f"{PROG}: error: {redact_url(str(e))}", file=sys.stderr)
        if args.json:
            _json_error(
                redact_url(str(e)), e.code, type(_cause(e.__cause__)).__name__ if e.__cause__ else "CLIError"
            )
        return e.code
    except MiniMaxVLError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        if args.json:
            _json_error(str(e), exit_code_for(e), type(e).__name__)
        return exit_code_for(e)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        if args.json:
            _json_error("interrupted", EXIT_INTERRUPTED, "KeyboardInterrupt")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `minimaxvl ocr x.pdf | head`
        with contextlib.suppress(Exception):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
