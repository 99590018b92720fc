"""The ``minimaxvl`` command line against LocalVLLMServer (the vLLM test double), in process and once as a
real subprocess: every subcommand, its ``--json`` output, its exit codes, and ``ingest``'s resume."""

from __future__ import annotations

import base64
import io
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw

from minimaxvl_tools import cli, serve
from minimaxvl_tools.cli import Progress, main
from minimaxvl_tools.pages import iter_pages, plan_page_image
from minimaxvl_tools.profile import image_tokens
from minimaxvl_tools.testing.server import LocalVLLMServer, Reply

CHART = {
    "chart_type": "bar",
    "title": "Unit sales",
    "x_axis": {"label": "Year", "unit": None},
    "y_axis": {"label": "Units", "unit": None},
    "series": [{"name": "North", "points": [{"x": "2022", "y": 12.5}, {"x": "2023", "y": 15}]}],
    "legend": ["North"],
    "answer": "2023",
    "notes": None,
}

# one distinct background colour per page: the responder reads it back from the image it receives,
# so a test knows exactly which pages the server was asked about
COLOURS = [(230, 60, 60), (60, 200, 60), (60, 60, 230), (220, 200, 40), (40, 200, 210), (200, 60, 200)]


# ------------------------------------------------------------------ helpers
@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inputs live in tmp_path, which becomes the working folder (the CLI's default allowed root)."""
    monkeypatch.chdir(tmp_path)
    for var in ("MINIMAXVL_BASE_URL", "MINIMAXVL_MODEL", "MINIMAXVL_MAX_RETRIES", "MINIMAXVL_BASE_URLS"):
        monkeypatch.delenv(var, raising=False)


def srv(server: LocalVLLMServer, *extra: str) -> list[str]:
    """Client options pointing at the test server (no retries: failures show at once)."""
    return ["--base-url", server.base_url, "--max-retries", "0", "--timeout", "10", *extra]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def text_image(
    path: Path, size: tuple[int, int] = (800, 600), colour: tuple[int, int, int] = (255,) * 3, lines: int = 8
) -> Path:
    img = Image.new("RGB", size, colour)
    d = ImageDraw.Draw(img)
    for i in range(lines):
        d.text((30, 30 + i * 40), f"Line {i}: printed words for the model", fill="black")
    img.save(path)
    return path


def coloured_pdf(path: Path, colours: list[tuple[int, int, int]]) -> Path:
    """A PDF whose page i has background colours[i] and a line of text (so it is not blank)."""
    pdf = FPDF(format=(200, 150))  # small pages: one image per page at 72 dpi
    pdf.set_font("helvetica", size=14)
    for i, c in enumerate(colours):
        pdf.add_page()
        pdf.set_fill_color(*c)
        pdf.rect(0, 0, 200, 150, "F")
        pdf.set_xy(10, 10)
        pdf.multi_cell(0, 10, f"Page {i + 1} of {path.name}: some printed words to read.")
    pdf.output(str(path))
    return path


def text_pdf(path: Path, pages: int = 2) -> Path:
    pdf = FPDF(format=(148, 210))
    pdf.set_font("helvetica", size=14)
    for i in range(pages):
        pdf.add_page()
        pdf.multi_cell(0, 10, f"Page {i + 1}. The invoice total is 42 euros. " * 3)
    pdf.output(str(path))
    return path


def colour_of(body: dict[str, Any]) -> tuple[int, int, int]:
    """The background colour of the (single) image in a chat request, snapped to COLOURS."""
    url = next(
        p["image_url"]["url"] for m in body["messages"] for p in m["content"] if p.get("type") == "image_url"
    )
    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
    px = img.getpixel((img.width // 2, img.height - 8))
    return min(COLOURS, key=lambda c: sum((a - b) ** 2 for a, b in zip(c, px, strict=True)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ help / subprocess / parsing
def test_console_script_and_module_run_in_a_subprocess(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "minimaxvl"
    assert exe.exists(), "console script not installed in the venv"
    res = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    for word in ("ocr", "ask", "chart", "diagram", "ingest", "plan", "health", "serve", "exit codes", "130"):
        assert word in res.stdout
    text_image(tmp_path / "p.png")
    res = subprocess.run(
        [sys.executable, "-m", "minimaxvl_tools.cli", "plan", "p.png", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["totals"]["pages"] == 1


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ocr")  # missing SOURCE
    assert code == 2 and "usage:" in err
    code, _, err = run(capsys, "nonsense")
    assert code == 2
    code, _, err = run(capsys)
    assert code == 2 and "COMMAND" in err
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("minimaxvl ")


def test_progress_bar_tty_and_plain_lines() -> None:
    class TTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = TTY()
    bar = Progress(40, stream=tty)
    bar.update(12)
    bar.close()
    assert "\r 30%|" in tty.getvalue() and "| 12/40 [" in tty.getvalue() and tty.getvalue().endswith("\n")

    plain = io.StringIO()
    bar = Progress(40, stream=plain)
    for _ in range(40):
        bar.update()
    lines = plain.getvalue().splitlines()
    assert "\r" not in plain.getvalue()
    assert 5 <= len(lines) <= 12  # periodic, not one per page
    assert lines[-1].startswith("minimaxvl: 40/40 pages (100%)")  # then rate and ETA


# ------------------------------------------------------------------ the four tools
def test_ocr_text_json_out_file(vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]) -> None:
    coloured_pdf(Path("doc.pdf"), COLOURS[:2])
    vllm_server.set_responder(lambda body: f"# Heading\n\ncolour {COLOURS.index(colour_of(body))}")
    code, out, err = run(capsys, "ocr", "doc.pdf", *srv(vllm_server))
    assert code == 0, err
    assert "<!-- page 1 -->" in out and "colour 0" in out and "colour 1" in out

    code, out, _ = run(capsys, "ocr", "doc.pdf", "--pages", "2", "--json", *srv(vllm_server))
    data = json.loads(out)
    assert code == 0 and [p["page"] for p in data["pages"]] == [2]
    assert data["pages"][0]["markdown"] == "# Heading\n\ncolour 1"

    code, out, err = run(capsys, "ocr", "doc.pdf", "--plain", "--out", "t.txt", *srv(vllm_server))
    assert code == 0 and out == "" and "wrote 2 page(s) to t.txt" in err
    saved = Path("t.txt").read_text()
    assert saved == "# Heading\n\ncolour 0\n\f# Heading\n\ncolour 1\n"  # pages split by form feeds


def test_ocr_tool_reads_selected_pages_with_a_hook(vllm_server: LocalVLLMServer) -> None:
    """What ``ocr`` calls: the tool's pipeline over the selected pages, one hook call per page, in order."""
    from minimaxvl_tools.client import MiniMaxVLClient
    from minimaxvl_tools.settings import Settings
    from minimaxvl_tools.tools import OCRTool

    coloured_pdf(Path("doc.pdf"), COLOURS[:3])
    vllm_server.set_responder(lambda body: f"colour {COLOURS.index(colour_of(body))}")
    client = MiniMaxVLClient(Settings(base_url=vllm_server.base_url, max_retries=0))
    tool = OCRTool(client=client, fix_rotation=False)
    selected = tool.select_pages("doc.pdf", "1,3")
    assert [p.number for p in selected] == [1, 3] and all(p.image is None for p in selected)
    calls: list[int] = []
    content, result = tool.read_selected("doc.pdf", selected, on_page=lambda: calls.append(1))
    assert len(calls) == 2
    assert [(p.page, p.markdown) for p in result.pages] == [(1, "colour 0"), (3, "colour 2")]
    assert "colour 2" in content


def test_ocr_partial_failure_exits_1(
    vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    coloured_pdf(Path("doc.pdf"), COLOURS[:2])
    rejected = Reply(status=400, error="something about this request")
    # pages are read concurrently: the reply follows the page's colour, not the order of the requests
    vllm_server.set_responder(lambda body: "page one text" if colour_of(body) == COLOURS[0] else rejected)
    code, out, err = run(capsys, "ocr", "doc.pdf", *srv(vllm_server))
    assert code == 1
    assert "page one text" in out
    assert "doc.pdf: page 2 failed" in err


def test_ask_chart_diagram(vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]) -> None:
    text_pdf(Path("inv.pdf"))
    vllm_server.queue(
        json.dumps(
            {
                "answer": "The total is 42 euros.",
                "short_answer": "42 euros",
                "pages": [1],
                "evidence": "total is 42 euros",
                "confidence": 0.9,
                "found": True,
            }
        )
    )
    code, out, err = run(capsys, "ask", "inv.pdf", "-q", "What is the total?", "--json", *srv(vllm_server))
    assert code == 0, err
    assert json.loads(out)["short_answer"] == "42 euros"
    vllm_server.queue(
        json.dumps(
            {
                "answer": "The total is 42 euros.",
                "short_answer": "42 euros",
                "pages": [1],
                "evidence": "",
                "confidence": 0.9,
                "found": True,
            }
        )
    )
    code, out, _ = run(capsys, "ask", "inv.pdf", "-q", "What is the total?", "--short", *srv(vllm_server))
    assert code == 0 and out.strip() == "42 euros"

    text_image(Path("chart.png"))
    vllm_server.queue(json.dumps(CHART))
    code, out, _ = run(capsys, "chart", "chart.png", "--csv", *srv(vllm_server))
    assert code == 0
    assert out.splitlines()[0].startswith("Year") and "12.5" in out
    vllm_server.queue(json.dumps(CHART))
    code, out, _ = run(capsys, "chart", "chart.png", "-q", "Best year?", "--json", *srv(vllm_server))
    assert code == 0 and json.loads(out)["answer"] == "2023"
    assert "Best year?" in json.dumps(vllm_server.requests[-1]["messages"])

    vllm_server.queue("The arrows point to the fox.\nAnswer: B")
    code, out, _ = run(
        capsys,
        "diagram",
        "chart.png",
        "-q",
        "Who eats the rabbit?",
        "--option",
        "owl",
        "--option",
        "fox",
        "--json",
        *srv(vllm_server),
    )
    assert code == 0
    assert json.loads(out)["option"] == "B"


# ------------------------------------------------------------------ error exit codes
def test_missing_file_exits_2_naming_it(
    vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "ocr", "scan.pdf", *srv(vllm_server))
    assert code == 2
    assert err.startswith("minimaxvl: error: scan.pdf: ") and "not found" in err
    assert vllm_server.requests == []
    outside = Path("/etc/hostname")
    code, _, err = run(capsys, "chart", str(outside), *srv(vllm_server))
    assert code == 2 and str(outside) in err


def test_server_down_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    text_image(Path("p.png"))
    url = f"http://127.0.0.1:{free_port()}/v1"
    code, _, err = run(capsys, "ocr", "p.png", "--base-url", url, "--max-retries", "0", "--timeout", "2")
    assert code == 3
    assert err.startswith("minimaxvl: error: p.png: ")
    code, _, _ = run(capsys, "diagram", "p.png", "-q", "why?", "--base-url", url, "--max-retries", "0")
    assert code == 3


def test_output_validation_exits_4(vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]) -> None:
    text_image(Path("chart.png"))
    vllm_server.set_responder(lambda body: "this is not JSON at all")
    code, _, err = run(capsys, "chart", "chart.png", *srv(vllm_server))
    assert code == 4 and "chart.png" in err


def test_context_overflow_exits_5(capsys: pytest.CaptureFixture[str]) -> None:
    text_pdf(Path("inv.pdf"), pages=1)
    with LocalVLLMServer(max_model_len=2048) as small:
        code, _, err = run(capsys, "ask", "inv.pdf", "-q", "What is the total?", *srv(small))
        assert code == 5, err
        assert small.requests == []  # refused before sending


# ------------------------------------------------------------------ health
def test_health_up_down_wrong_model(vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "health", *srv(vllm_server))
    assert code == 0
    assert "MiniMaxAI/MiniMax-VL-01" in out and "max_model_len 32768" in out
    code, out, _ = run(capsys, "health", "--json", *srv(vllm_server))
    data = json.loads(out)
    assert code == 0 and data["healthy"] is True and data["max_model_len"] == 32768

    code, out, err = run(capsys, "health", "--model", "other/model", *srv(vllm_server))
    assert code == 3 and "other/model" in err

    code, out, err = run(capsys, "health", "--json", "--base-url", f"http://127.0.0.1:{free_port()}/v1")
    assert code == 3 and json.loads(out)["healthy"] is False


# ------------------------------------------------------------------ plan (no server)
def test_plan_matches_plan_page(capsys: pytest.CaptureFixture[str]) -> None:
    text_image(Path("small.png"), (800, 600))
    text_image(Path("dense.png"), (2480, 3508), lines=80)  # an A4 scan at 300 dpi full of small print
    coloured_pdf(Path("doc.pdf"), COLOURS[:3])
    code, out, err = run(capsys, "plan", "small.png", "dense.png", "doc.pdf", "--dpi", "100", "--json")
    assert code == 0, err
    data = json.loads(out)
    rows = data["pages"]
    assert [(r["source"], r["page"]) for r in rows] == [
        ("small.png", 1),
        ("dense.png", 1),
        ("doc.pdf", 1),
        ("doc.pdf", 2),
        ("doc.pdf", 3),
    ]
    pages = [p for src in ("small.png", "dense.png", "doc.pdf") for p in iter_pages(src, dpi=100)]
    for r, page in zip(rows, pages, strict=True):
        expect = plan_page_image(page.pixels())  # the CLI plans as the OCR tool does: print measured
        assert (r["mode"], r["image_tokens"], r["requests"], r["crops"]) == (
            expect.mode,
            expect.tokens,
            expect.requests,
            expect.crops,
        )
    small, dense = rows[0], rows[1]
    assert small["mode"] == "single" and small["image_tokens"] == image_tokens(800, 600)
    assert dense["mode"] == "tiles" and dense["crops"] > 1 and dense["requests"] == dense["crops"]
    assert dense["cut"] == "whitespace" and len(dense["cuts"]) == dense["crops"]
    assert dense["legibility_gain"] > 1.5 and dense["x_height_shown"] > dense["x_height"] * 0.9
    assert small["cuts"] == [] and small["cut"] == "none"
    assert abs(rows[2]["width"] - 200 / 25.4 * 100) <= 1 and abs(rows[2]["height"] - 150 / 25.4 * 100) <= 1
    assert data["totals"]["image_tokens"] == sum(r["image_tokens"] for r in rows)
    assert data["totals"]["requests"] == sum(r["requests"] for r in rows)

    code, out, _ = run(capsys, "plan", "small.png", "dense.png")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["source", "page", "size"]
    assert "800x600" in lines[1] and "single" in lines[1] and "tiles" in lines[2]
    assert lines[-1].startswith("total: 2 page(s), 1 tiled")
    assert "whitespace" in lines[2] and lines[2].rstrip().endswith("x")  # the expected legibility gain
    assert sum(ln.strip().startswith("cut ") for ln in lines) == dense["crops"]


def test_plan_bad_input_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    Path("broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    code, _, err = run(capsys, "plan", "broken.pdf")
    assert code == 2 and "minimaxvl: error: broken.pdf:" in err


# ------------------------------------------------------------------ ingest
def _ingest_args(server: LocalVLLMServer, *extra: str) -> list[str]:
    return [
        "ingest",
        "docs",
        "--out",
        "out",
        "--mode",
        "vlm",
        "--dpi",
        "72",
        "--no-fallback",
        "--no-rotation",
        *srv(server),
        *extra,
    ]


def test_ingest_writes_records_and_summary(
    vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("docs/sub").mkdir(parents=True)
    coloured_pdf(Path("docs/a.pdf"), COLOURS[:2])
    text_image(Path("docs/sub/b.png"))
    vllm_server.set_responder(lambda body: f"text of colour {COLOURS.index(colour_of(body))}")
    code, out, err = run(capsys, *_ingest_args(vllm_server, "--json"))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["documents"] == 2 and summary["pages"] == 3 and summary["ok"] == 3, summary
    assert summary["requests"] == 3 and summary["image_tokens"] > 0 and summary["failed"] == 0
    assert "3/3 pages" in err and "2 document(s)" in err and "3 page(s): 3 ok" in err
    recs = [json.loads(line) for line in Path("out/a.pdf.jsonl").read_text().splitlines()]
    assert [(r["page"], r["text"]) for r in recs] == [(1, "text of colour 0"), (2, "text of colour 1")]
    assert recs[0]["source"].endswith("a.pdf") and recs[0]["metadata"]["status"] == "ok"
    assert Path("out/sub/b.png.jsonl").is_file()  # folder structure kept

    # a second run is free: every document is complete
    before = len(vllm_server.requests)
    code, out, err = run(capsys, *_ingest_args(vllm_server, "--json"))
    assert code == 0 and len(vllm_server.requests) == before
    assert json.loads(out)["skipped_documents"] == 2

    # markdown format: one .md per document with page markers
    code, _, _ = run(capsys, *_ingest_args(vllm_server, "--format", "markdown"))
    md = Path("out/a.pdf.md").read_text()
    assert code == 0 and "<!-- page 2 -->\ntext of colour 1" in md


def test_ingest_resumes_after_interrupt(
    vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("docs").mkdir()
    coloured_pdf(Path("docs/a.pdf"), COLOURS[:2])
    coloured_pdf(Path("docs/b.pdf"), COLOURS[2:5])
    vllm_server.set_responder(lambda body: f"text of colour {COLOURS.index(colour_of(body))}")

    from minimaxvl_tools.pages.pipeline import PageReader

    real = PageReader.read
    calls = {"n": 0}

    def interrupting(*a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:  # a.pdf's 2 pages and b.pdf's page 1 are done; Ctrl-C on b.pdf page 2
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(PageReader, "read", interrupting)  # every page goes through the pipeline's read
    code, _, err = run(capsys, *_ingest_args(vllm_server, "--max-concurrency", "1"))  # exact stop point
    assert code == 130
    assert "interrupted" in err and "rerun to resume" in err and "3 page(s)" in err
    assert Path("out/a.pdf.jsonl").is_file()
    assert not Path("out/b.pdf.jsonl").exists()  # never half-written
    assert not list(Path("out").glob("*.tmp")) and not list(Path("out").glob(".*.tmp"))
    assert [colour_of(b) for b in vllm_server.requests] == COLOURS[:3]

    monkeypatch.setattr(PageReader, "read", real)
    vllm_server.requests.clear()
    code, out, err = run(capsys, *_ingest_args(vllm_server, "--json"))
    assert code == 0, err
    # only the unfinished pages reach the server: b.pdf pages 2 and 3
    assert sorted(COLOURS.index(colour_of(b)) for b in vllm_server.requests) == [3, 4]
    summary = json.loads(out)
    assert summary["skipped_documents"] == 1 and summary["pages"] == 3 and summary["cached"] == 1
    recs = [json.loads(line) for line in Path("out/b.pdf.jsonl").read_text().splitlines()]
    assert [r["text"] for r in recs] == ["text of colour 2", "text of colour 3", "text of colour 4"]


def test_ingest_overlaps_one_page_files(
    vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder of one-page files keeps several requests in flight; each output holds its own page."""
    Path("docs").mkdir()
    for i, c in enumerate(COLOURS):
        coloured_pdf(Path(f"docs/f{i}.pdf"), [c])
    vllm_server.set_responder(
        lambda body: Reply(text=f"text of colour {COLOURS.index(colour_of(body))}", delay=0.15)
    )
    code, out, err = run(capsys, *_ingest_args(vllm_server, "--json", "--max-concurrency", "3"))
    assert code == 0, err
    assert vllm_server.max_running == 3  # pages of different files in flight together, never more
    for i in range(len(COLOURS)):
        (rec,) = [json.loads(line) for line in Path(f"out/f{i}.pdf.jsonl").read_text().splitlines()]
        assert rec["text"] == f"text of colour {i}" and rec["page"] == 1
    assert json.loads(out)["documents"] == len(COLOURS)


def test_ingest_failed_pages_exit_1_then_retry_only_them(
    vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("docs").mkdir()
    coloured_pdf(Path("docs/a.pdf"), COLOURS[:4])
    broken = {COLOURS[1], COLOURS[3]}

    def flaky(body: dict[str, Any]) -> Reply:
        c = colour_of(body)
        if c in broken:
            return Reply(status=500, error="engine crashed")
        return Reply(text=f"text of colour {COLOURS.index(c)}")

    vllm_server.set_responder(flaky)
    code, out, err = run(capsys, *_ingest_args(vllm_server, "--json"))
    assert code == 1
    summary = json.loads(out)
    assert (summary["ok"], summary["failed"]) == (2, 2)
    assert "2 page(s) failed; rerun to retry them" in err
    recs = [json.loads(line) for line in Path("out/a.pdf.jsonl").read_text().splitlines()]
    assert [r["metadata"]["status"] for r in recs] == ["ok", "failed", "ok", "failed"]
    assert "failed with 500" in recs[1]["metadata"]["error"]

    broken.clear()
    vllm_server.requests.clear()
    code, out, _ = run(capsys, *_ingest_args(vllm_server, "--json"))
    assert code == 0
    assert sorted(COLOURS.index(colour_of(b)) for b in vllm_server.requests) == [1, 3]
    assert json.loads(out)["cached"] == 2


def test_ingest_bad_input(vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ingest", "nowhere", "--out", "out", *srv(vllm_server))
    assert code == 2 and "nowhere" in err
    Path("empty").mkdir()
    code, _, err = run(capsys, "ingest", "empty", "--out", "out", *srv(vllm_server))
    assert code == 2 and "no PDFs or images" in err


# ------------------------------------------------------------------ serve
@pytest.mark.parametrize("tp", [1, 2, 4, 8])
def test_serve_dry_run_single_node(tp: int, capsys: pytest.CaptureFixture[str], fake_machine: Any) -> None:
    fake_machine(vllm="0.23.0", gpus=8)
    code, out, _ = run(capsys, "serve", "--gpus", str(tp), "--gpu-mem", "80", "--dry-run")
    assert code == 0
    assert out.startswith("vllm serve MiniMaxAI/MiniMax-VL-01")
    assert f"--tensor-parallel-size {tp} " in out
    assert "--pipeline-parallel-size" not in out and "ray start" not in out
    assert "--trust-remote-code" in out and "--limit-mm-per-prompt '{\"image\": 4}'" in out
    assert "--quantization experts_int8" in out  # 80 GB GPUs never hold bf16
    assert "# [ok] vllm: vLLM 0.23.0" in out
    if tp == 1:
        assert "# [ERROR] gpu-memory: does not fit" in out


def test_serve_dry_run_two_nodes_and_flags(capsys: pytest.CaptureFixture[str], fake_machine: Any) -> None:
    fake_machine(vllm="0.23.0", gpus=8, ray="2.40.0")
    code, out, _ = run(
        capsys,
        "serve",
        "--gpus",
        "8",
        "--nodes",
        "2",
        "--dry-run",
        "--served-model-name",
        "vl",
        "--max-num-seqs",
        "8",
        "--enforce-eager",
        "--structured-outputs-compact",
        "--port",
        "9000",
        "--",
        "--swap-space",
        "4",
    )
    assert code == 0
    assert "ray start --head --port=6379" in out and "ray start --address=HEAD_IP:6379" in out
    for flag in (
        "--tensor-parallel-size 8",
        "--pipeline-parallel-size 2",
        "--distributed-executor-backend ray",
        "--served-model-name vl",
        "--max-num-seqs 8",
        "--enforce-eager",
        "--port 9000",
        "--swap-space 4",
        '"disable_any_whitespace": true',
    ):
        assert flag in out, flag
    assert "--quantization" not in out  # 16 x 80 GB hold bf16
    assert "# [ok] ray: ray 2.40.0" in out


def test_serve_json_and_version_refusal(capsys: pytest.CaptureFixture[str], fake_machine: Any) -> None:
    fake_machine(vllm="0.23.0", gpus=8)
    code, out, _ = run(capsys, "serve", "--dry-run", "--json")
    data = json.loads(out)
    assert code == 0 and data["command"][:3] == ["vllm", "serve", "MiniMaxAI/MiniMax-VL-01"]
    assert data["errors"] == [] and data["multinode_script"] is None

    fake_machine(vllm="0.24.0", gpus=8)
    code, out, err = run(capsys, "serve")
    assert code == 2
    assert "removed in vLLM 0.24.0" in err and "refusing to launch" in err
    code, out, _ = run(capsys, "serve", "--json")
    assert code == 2 and json.loads(out)["errors"] == ["vllm"]

    fake_machine(vllm="0.23.0", gpus=2)
    code, _, err = run(capsys, "serve")
    assert code == 2 and "2 GPU(s) found, the plan needs 8" in err


def test_serve_invalid_plan_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "serve", "--gpus", "0", "--dry-run")
    assert code == 2 and "serve: invalid plan" in err


@pytest.fixture
def fake_machine(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Replace serve's probes: installed package versions and the GPUs nvidia-smi would list."""
    original = serve.Inspect

    def install(vllm: str | None, gpus: int, ray: str | None = None, mem: float = 79.6) -> None:
        versions = {"vllm": vllm, "transformers": "4.57.0", "ray": ray}
        monkeypatch.setattr(
            serve,
            "Inspect",
            lambda: original(package_version=versions.get, gpus=lambda: [("NVIDIA H100", mem)] * gpus),
        )

    return install


# ------------------------------------------------------------------ eval
def test_eval_delegates_or_says_unavailable(capsys: pytest.CaptureFixture[str]) -> None:
    module, reason = cli._eval_module()
    if module is None:
        code, _, err = run(capsys, "eval")
        assert code == 2 and "eval is unavailable" in err and reason.split(":")[0] in err
    else:
        code, out, _ = run(capsys, "eval", "--help")
        assert code == 0 and "usage: minimaxvl eval" in out


def test_ingest_max_failure_rate_aborts(
    vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("docs").mkdir()
    for i in range(8):
        text_image(Path(f"docs/p{i}.png"))
    vllm_server.set_responder(lambda body: Reply(status=500, error="engine crashed"))
    code, out, err = run(  # one page at a time: exact stop point
        capsys, *_ingest_args(vllm_server, "--max-failure-rate", "0.2", "--json", "--max-concurrency", "1")
    )
    assert code == 1
    summary = json.loads(out)
    assert summary["aborted"] is True and summary["failed"] == 5 and summary["pages"] == 5
    assert "max_failure_rate" in err
    assert len(vllm_server.requests) == 5  # stopped: pages 6-8 never sent
