"""What every ``minimaxvl`` command shares: exit codes, errors, settings/client/policy from the arguments,
JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO, Any

from ..errors import (
    BadRequestError,
    ContextOverflowError,
    InvalidInputError,
    MediaError,
    MiniMaxVLError,
    OutputValidationError,
    ServerError,
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


# ---------------------------------------------------------------------------------------------- errors
class CLIError(Exception):
    """An error the CLI reports itself: a message (naming the input) and the exit code to return."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code of a package error (see :mod:`minimaxvl_tools.cli`).

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
_json_emitted: list[bool] = [False]  # whether this main() call printed its JSON document yet


def _emit_json(data: Any, out: IO[str] | None = None) -> None:
    """Print ``data`` as the command's one JSON document on stdout (``--json``)."""
    (out or sys.stdout).write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    _json_emitted[0] = True


def _json_error(message: str, code: int, kind: str) -> None:
    """With ``--json``, the one JSON document on stdout for a failed command (unless one was printed)."""
    if not _json_emitted[0]:
        _emit_json({"error": {"type": kind, "message": message, "exit_code": code}})


def _show_source(source: str) -> str:
    """``source`` as error lines name it: URL userinfo redacted, long data URLs cut short."""
    from ..errors import redact_url

    return redact_url(source if len(source) < 200 else source[:60] + "...")


# ---------------------------------------------------------------------------------------------- context
def _roots(args: argparse.Namespace) -> list[Path]:
    """Allowed input folders: the working folder, MINIMAXVL_ALLOWED_ROOTS, and every ``--allow-root``."""
    from ..settings import Settings

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


_SETTINGS_OPTIONS = (
    "base_url",
    "model",
    "api_key",
    "timeout",
    "max_concurrency",
    "max_retries",
    "workers",
    "dpi",
)
"""Options that are Settings fields of the same name (None where a command lacks the option)."""


def _settings(args: argparse.Namespace) -> Any:
    """Settings from ``MINIMAXVL_*`` with the command-line options winning."""
    from pydantic import ValidationError

    from ..settings import Settings

    try:
        return Settings.from_env(
            **{name: getattr(args, name, None) for name in _SETTINGS_OPTIONS},
            allowed_roots=_roots(args),
            allow_urls=getattr(args, "allow_urls", False) or None,
            allow_private_hosts=getattr(args, "allow_private_hosts", False) or None,
        )
    except ValidationError as e:
        raise CLIError(f"invalid settings: {e.errors()[0]['loc'][0]}: {e.errors()[0]['msg']}") from e


def _client(args: argparse.Namespace) -> Any:
    """The client of a command, on its :func:`_settings`."""
    from ..client import MiniMaxVLClient

    return MiniMaxVLClient(_settings(args))


def _policy(args: argparse.Namespace) -> Any:
    """The input policy of every command: the settings' (flags over MINIMAXVL_*), refusals naming flags."""
    from ..images.policy import InputPolicy

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


def _run_tool(cls: type, args: argparse.Namespace, shown: str, tool_args: dict[str, Any]) -> tuple[str, Any]:
    """Call the tool ``cls`` once on the command's client and policy; with ``--json`` print its result.

    Returns (content, result); errors become a CLIError naming ``shown``, the input.
    """
    content, result = _call(_tool(cls, args, _client(args)), shown, tool_args)
    if args.json:
        _emit_json(result.model_dump(mode="json"))
    return content, result


def _preflight(args: argparse.Namespace) -> None:
    """Checks that fail a command before any work: ``--mode local`` needs the Tesseract binary."""
    if getattr(args, "mode", None) == "local":
        from ..local_ocr import LocalOCREngine

        if not LocalOCREngine.available():
            raise CLIError(
                f"{args.command} --mode local: Tesseract is not installed (no tesseract binary on PATH): "
                "install it (apt-get install tesseract-ocr) or use --mode vlm / --mode auto"
            )
