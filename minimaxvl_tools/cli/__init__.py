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

Modules, one job each: :mod:`.parser` (the argparse tree), :mod:`.common` (exit codes, settings/client/
policy from the arguments, JSON output), :mod:`.progress` (the progress line), :mod:`.read` (``ocr``,
``ask``, ``chart``, ``diagram``, ``plan``, ``health``), :mod:`.ingest`, :mod:`.serve` and :mod:`.app`
(:func:`main`: parse, dispatch, map errors to exit codes).
"""

from __future__ import annotations

from .app import main
from .common import (
    EXIT_CODES_HELP,
    EXIT_CONTEXT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_PARTIAL,
    EXIT_SERVER,
    EXIT_USAGE,
    PROG,
    CLIError,
    _client,  # noqa: F401 - the private names: for minimaxvl_tools.index.cli, .eval.cli and tests
    _emit_json,  # noqa: F401
    _policy,  # noqa: F401
    _settings,  # noqa: F401
    exit_code_for,
)
from .ingest import cmd_ingest
from .parser import (
    _add_client,  # noqa: F401
    _add_inputs,  # noqa: F401
    _eval_module,  # noqa: F401
    build_parser,
)
from .progress import Progress
from .read import cmd_ask, cmd_chart, cmd_diagram, cmd_health, cmd_ocr, cmd_plan
from .serve import cmd_serve

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_CONTEXT",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_OUTPUT",
    "EXIT_PARTIAL",
    "EXIT_SERVER",
    "EXIT_USAGE",
    "PROG",
    "CLIError",
    "Progress",
    "build_parser",
    "cmd_ask",
    "cmd_chart",
    "cmd_diagram",
    "cmd_health",
    "cmd_ingest",
    "cmd_ocr",
    "cmd_plan",
    "cmd_serve",
    "exit_code_for",
    "main",
]
