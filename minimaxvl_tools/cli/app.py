"""``main``: run one ``minimaxvl`` command line: parse, dispatch, and map every failure to its exit code."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence

from ..errors import MiniMaxVLError, redact_url
from .common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    CLIError,
    _cause,
    _json_emitted,
    _json_error,
    _preflight,
    _settings,
    exit_code_for,
)
from .parser import _UsageError, build_parser


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
            if hasattr(args, "dpi") and args.dpi is None:  # the one default: Settings (MINIMAXVL_DPI)
                args.dpi = _settings(args).dpi
            return int(func(args) or 0)
    except CLIError as e:
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
