"""The CLI as a new user meets it: JSON errors, chart tables, replica health, serve's refusal, a fast
``--help`` (no heavy imports), help text on every option, progress with rate and ETA, missing Tesseract."""

from __future__ import annotations

import argparse
import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from minimaxvl_tools import cli, serve
from minimaxvl_tools.cli import Progress, main
from minimaxvl_tools.local_ocr import LocalOCREngine
from minimaxvl_tools.testing.server import LocalVLLMServer

CHART = {
    "chart_type": "bar",
    "title": "Unit sales",
    "x_axis": {"label": "Year", "unit": None},
    "y_axis": {"label": "Units", "unit": "k"},
    "series": [{"name": "North", "points": [{"x": "2022", "y": 12.5}, {"x": "2023", "y": 15}]}],
    "legend": ["North"],
    "answer": None,
    "notes": None,
}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("MINIMAXVL_BASE_URL", "MINIMAXVL_MODEL", "MINIMAXVL_MAX_RETRIES", "MINIMAXVL_BASE_URLS"):
        monkeypatch.delenv(var, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def text_image(path: Path) -> Path:
    img = Image.new("RGB", (800, 600), "white")
    d = ImageDraw.Draw(img)
    for i in range(8):
        d.text((30, 30 + i * 40), f"Line {i}: printed words for the model", fill="black")
    img.save(path)
    return path


# ------------------------------------------------------------------ --json errors
@pytest.mark.parametrize(
    ("argv", "code", "kind"),
    [
        (["ocr", "missing.png", "--json"], 2, None),
        (["--json", "ocr"], 2, "UsageError"),  # argparse: SOURCE missing
        (["plan", "--json", "--pages", "x-y", "p.png"], 2, None),
    ],
)
def test_json_errors_print_one_json_document(
    capsys: pytest.CaptureFixture[str], argv: list[str], code: int, kind: str | None
) -> None:
    text_image(Path("p.png"))
    got, out, err = run(capsys, *argv)
    assert got == code
    doc = json.loads(out)  # exactly one document: json.loads refuses trailing data
    assert doc["error"]["exit_code"] == code and doc["error"]["message"]
    if kind:
        assert doc["error"]["type"] == kind
    assert "error" in err  # the human-readable line stays on stderr


def test_json_error_for_a_server_that_is_down(capsys: pytest.CaptureFixture[str]) -> None:
    text_image(Path("p.png"))
    url = f"http://127.0.0.1:{free_port()}/v1"
    code, out, _ = run(
        capsys, "ask", "p.png", "-q", "What?", "--json", "--base-url", url, "--max-retries", "0"
    )
    assert code == 3
    assert json.loads(out)["error"]["exit_code"] == 3


# ------------------------------------------------------------------ chart --markdown
def test_chart_markdown_prints_only_the_table(
    vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    text_image(Path("chart.png"))
    vllm_server.queue(json.dumps(CHART))
    code, out, _ = run(capsys, "chart", "chart.png", "--markdown", "--base-url", vllm_server.base_url)
    assert code == 0
    lines = out.splitlines()
    assert lines and all(line.startswith("|") for line in lines), out
    assert "12.5" in out and "Unit sales" not in out


# ------------------------------------------------------------------ health with replicas
def test_health_text_names_a_dead_replica(
    vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setenv("MINIMAXVL_BASE_URLS", f"{vllm_server.base_url},{dead}")
    code, out, err = run(capsys, "health")
    assert code == 0  # one replica serves
    assert "1 of 2 replicas" in out
    assert f"DOWN {dead}" in err and "replica(s) down" in err


# ------------------------------------------------------------------ serve refusal
def test_serve_refusal_names_the_cli_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = serve.Inspect
    versions = {"vllm": "0.24.0", "transformers": "4.57.0", "ray": None}
    monkeypatch.setattr(
        serve, "Inspect", lambda: original(package_version=versions.get, gpus=lambda: [("H100", 79.6)] * 8)
    )
    code, _, err = run(capsys, "serve")
    assert code == 2
    assert "refusing to launch" in err and "--force" in err and "force=True" not in err


# ------------------------------------------------------------------ --help: lazy imports
def test_help_imports_no_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from minimaxvl_tools import cli\n"
        "assert cli.main(['--help']) == 0\n"
        "heavy = [m for m in ('openai', 'langchain_core', 'numpy', 'PIL', 'minimaxvl_tools.eval.runner',"
        " 'minimaxvl_tools.client') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "HEAVY []" in res.stdout


def test_eval_still_parses_when_named(capsys: pytest.CaptureFixture[str]) -> None:
    module, _reason = cli._eval_module()
    code, out, _ = run(capsys, "eval", "--help")
    assert code == 0 and "usage: minimaxvl eval" in out
    if module is not None:
        assert "TASK" in out


# ------------------------------------------------------------------ help text, --quiet
def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_argument_has_help_and_quiet_only_where_there_is_progress() -> None:
    parser = cli.build_parser()
    missing: list[str] = []
    quiet: list[str] = []
    for name, sub in {"": parser, **_subparsers(parser)}.items():
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            if not action.help:
                missing.append(f"{name} {action.option_strings or action.dest}")
            if "--quiet" in action.option_strings:
                quiet.append(name)
    assert missing == []
    assert sorted(quiet) == ["ingest", "ocr"]


# ------------------------------------------------------------------ progress
class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_progress_lines_every_ten_percent_with_rate_and_eta() -> None:
    clock = _Clock()
    out = io.StringIO()
    bar = Progress(100, stream=out, clock=clock)
    for _ in range(100):
        clock.t += 0.5
        bar.update()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0] == "minimaxvl: 10/100 pages (10%), 2.00 pages/s, ETA 45s"
    assert lines[4] == "minimaxvl: 50/100 pages (50%), 2.00 pages/s, ETA 25s"
    assert lines[-1] == "minimaxvl: 100/100 pages (100%), 2.00 pages/s, ETA 0s"


def test_progress_small_totals_and_tty() -> None:
    clock = _Clock()
    out = io.StringIO()
    bar = Progress(3, stream=out, clock=clock)
    for _ in range(3):
        clock.t += 100
        bar.update()
    assert [ln.split(",")[0] for ln in out.getvalue().splitlines()] == [
        "minimaxvl: 1/3 pages (33%)",
        "minimaxvl: 2/3 pages (66%)",
        "minimaxvl: 3/3 pages (100%)",
    ]
    assert "ETA 1m40s" in out.getvalue().splitlines()[1]

    class TTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = TTY()
    bar = Progress(40, stream=tty)  # a TTY: tqdm's bar, redrawn in place, with rate and time left
    time.sleep(0.15)  # past tqdm's minimum redraw interval
    bar.update(12)
    bar.close()
    shown = tty.getvalue()
    assert "| 12/40 [" in shown and " pages/s]" in shown and "<00:" in shown  # count, ETA, rate
    assert "\r" in shown and shown.endswith("\n") and "minimaxvl:" not in shown


# ------------------------------------------------------------------ --mode local without Tesseract
def test_ingest_mode_local_without_tesseract_says_so_on_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("docs").mkdir()
    text_image(Path("docs/p.png"))
    monkeypatch.setattr(LocalOCREngine, "available", staticmethod(lambda: False))
    code, _out, err = run(capsys, "ingest", "docs", "--out", "o", "--mode", "local")
    assert code == 2
    assert "Tesseract is not installed" in err and "--mode local" in err
    assert not Path("o").exists()
