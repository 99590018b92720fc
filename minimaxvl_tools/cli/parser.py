"""The ``minimaxvl`` argument parser: subcommands, their options and help, exit codes in the epilog."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .. import __version__
from .common import EXIT_CODES_HELP, EXIT_USAGE, PROG
from .ingest import cmd_ingest
from .read import cmd_ask, cmd_chart, cmd_diagram, cmd_health, cmd_ocr, cmd_plan
from .serve import cmd_serve


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


def _add_output(p: argparse.ArgumentParser, suppress: bool) -> None:
    """--json/-v, accepted before and after the subcommand.

    On subparsers they store under ``*_sub`` names, merged in :func:`~.app.main`, so that a subparser's
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


def _add_dpi(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dpi", type=int, help="PDF rendering resolution (default: MINIMAXVL_DPI, else 200)")


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
        from ..eval import cli as eval_cli
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
    registers ``eval`` as a placeholder: :func:`~.app.main` does so unless the command line names ``eval``,
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
    _add_dpi(p)
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
    p.add_argument(
        "--task-cpus",
        type=int,
        default=1,
        metavar="N",
        help="--engine ray: CPUs each page task holds, and threads of page work in it (default: 1)",
    )

    p = add(
        "plan",
        "dry run, no server: per-page size, crops, canvases, image tokens, requests",
        cmd_plan,
        client=False,
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="images or PDFs to plan")
    p.add_argument("--pages", help="page range (applies to every source)")
    _add_dpi(p)

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

    from ..index.cli import register as register_index

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
