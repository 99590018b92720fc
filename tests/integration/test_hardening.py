"""Hardening over the wire (LocalVLLMServer, the vLLM test double): typed failures, empty replies, config
from the environment, redaction of URL credentials and of the API key."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF
from langchain_core.tools import ToolException
from PIL import Image, ImageDraw, ImageFont

from minimaxvl_tools import cli
from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.errors import (
    ContextOverflowError,
    EmptyOutputError,
    MiniMaxVLError,
    ModelMismatchError,
    ServerUnavailableError,
    TruncatedOutputError,
)
from minimaxvl_tools.images.policy import InputPolicy
from minimaxvl_tools.loaders import MiniMaxVLDocumentLoader
from minimaxvl_tools.pages import PageImage, ocr_page
from minimaxvl_tools.pages.fallback import Fallbacks
from minimaxvl_tools.settings import Settings
from minimaxvl_tools.testing.server import LocalVLLMServer, Reply
from minimaxvl_tools.tools import MiniMaxVLToolkit, OCRTool

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
SECRET_KEY = "sk-hardening-0123456789"


def _client(server: LocalVLLMServer, **kw: Any) -> MiniMaxVLClient:
    kw.setdefault("max_retries", 1)
    return MiniMaxVLClient(base_url=server.base_url, backoff_base=0.01, backoff_max=0.02, **kw)


def _text_page(path: Path | None = None, size: tuple[int, int] = (800, 600)) -> Image.Image:
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 22)
    for i in range(6):
        draw.text((40, 40 + 40 * i), f"Line {i} of the quarterly report", font=font, fill="black")
    if path is not None:
        img.save(path)
    return img


def _pdf(path: Path, sizes_pt: list[tuple[float, float]]) -> Path:
    pdf = FPDF(unit="pt")
    pdf.set_font("helvetica", size=30)
    for w, h in sizes_pt:
        pdf.add_page(format=(w, h))
        for i in range(4):
            pdf.text(40, 80 + 40 * i, f"Page line {i}")
    pdf.output(str(path))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ 1: a dense receipt gets a request
def test_dense_receipt_is_sent_not_skipped_as_blank(vllm_server: LocalVLLMServer) -> None:
    img = Image.new("L", (600, 3600), 255)  # 6:1, the longest page one image may hold
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 16)
    for i, y in enumerate(range(30, 3560, 24)):
        draw.text((20, y), f"ITEM {i:04d} Coffee beans {i * 1.25:8.2f}", font=font, fill=0)
    vllm_server.set_responder(lambda body: "ITEM 0000 Coffee beans 0.00")
    res = ocr_page(_client(vllm_server), PageImage(1, 1, img.convert("RGB")), tile=False)
    assert res.status == "ok" and res.requests >= 1


# ------------------------------------------------------------------ 2: pixel cap, tool and loader go on
def test_tool_and_loader_render_an_oversized_pdf_page_under_max_pixels(
    vllm_server: LocalVLLMServer, tmp_path: Path
) -> None:
    pdf = _pdf(tmp_path / "big.pdf", [(2160, 2160), (612, 792)])
    seen: list[tuple[int, int]] = []
    vllm_server.set_responder(lambda body: "Page line 0")
    settings = Settings(base_url=vllm_server.base_url, allowed_roots=[tmp_path], max_pixels=4_000_000)
    tool = OCRTool(settings=settings, tile=True, fix_rotation=False)  # crops: rendered at full dpi
    _content, res = tool._run(str(pdf))
    assert [p.status for p in res.pages] == ["ok", "ok"]
    assert any("max_pixels" in w for w in res.pages[0].warnings), res.pages[0].warnings
    assert not any("max_pixels" in w for w in res.pages[1].warnings)
    loader = MiniMaxVLDocumentLoader(
        [pdf],
        client=_client(vllm_server),
        mode="vlm",
        use_cache=False,
        detect_rotation=False,
        policy=InputPolicy.from_settings(settings),
    )
    docs = loader.load()
    assert [d.metadata["status"] for d in docs] == ["ok", "ok"]
    assert "max_pixels" in docs[0].metadata.get("render_note", "")
    assert "render_note" not in docs[1].metadata
    del seen


def test_tool_fails_only_the_page_that_cannot_fit_the_cap(
    vllm_server: LocalVLLMServer, tmp_path: Path
) -> None:
    pdf = _pdf(tmp_path / "two.pdf", [(2160, 2160), (612, 792)])
    vllm_server.set_responder(lambda body: "Page line 0")
    settings = Settings(base_url=vllm_server.base_url, allowed_roots=[tmp_path], max_pixels=200)
    _content, res = OCRTool(settings=settings, tile=True, fix_rotation=False)._run(str(pdf))
    first, second = res.pages
    assert (
        first.status == "failed"
        and first.error_type == "ImageTooLargeError"
        and "1 dpi" in (first.error or "")
    )
    assert second.status != "failed" and any("max_pixels=200" in w for w in second.warnings)


def test_a_page_that_did_not_render_is_not_rendered_again_for_the_local_fallback(
    vllm_server: LocalVLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdf = _pdf(tmp_path / "two.pdf", [(2160, 2160), (612, 792)])
    vllm_server.set_responder(lambda body: "Page line 0")
    settings = Settings(base_url=vllm_server.base_url, allowed_roots=[tmp_path], max_pixels=200)
    tool = OCRTool(settings=settings, tile=True, fix_rotation=False, fallback=("local",))
    monkeypatch.setattr(Fallbacks, "local_available", lambda self: True)  # as if Tesseract were there
    renders: list[int] = []
    again = OCRTool._rendered

    def rendered(self: OCRTool, source: str, page: PageImage) -> PageImage:
        renders.append(page.number)
        return again(self, source, page)

    monkeypatch.setattr(OCRTool, "_rendered", rendered)
    _content, res = tool._run(str(pdf))
    first = res.pages[0]
    assert first.status == "failed" and first.error_type == "ImageTooLargeError"
    assert renders == [] and not any("fallback local failed" in w for w in first.warnings)


def test_loader_fails_only_the_page_that_cannot_fit_the_cap(
    vllm_server: LocalVLLMServer, tmp_path: Path
) -> None:
    pdf = _pdf(tmp_path / "three.pdf", [(612, 792), (2160, 2160), (612, 792)])
    vllm_server.set_responder(lambda body: "Page line 0")
    policy = InputPolicy(allowed_roots=[tmp_path], max_pixels=200)  # the letter pages fit at ~1 dpi
    common: dict[str, Any] = {"mode": "vlm", "use_cache": False, "detect_rotation": False, "policy": policy}
    docs = MiniMaxVLDocumentLoader([pdf], client=_client(vllm_server), fallbacks=(), **common).load()
    assert [d.metadata["page_number"] for d in docs] == [1, 2, 3]
    assert docs[1].metadata["status"] == "failed" and "ImageTooLargeError" in docs[1].metadata["error"]
    assert docs[0].metadata["status"] != "failed" and docs[2].metadata["status"] != "failed"
    docs = MiniMaxVLDocumentLoader(
        [pdf], client=_client(vllm_server), fallbacks=("text-layer",), **common
    ).load()
    assert docs[1].metadata["status"] == "fallback" and "Page line 0" in docs[1].page_content


# ------------------------------------------------------------------ 5: URL userinfo never shown
def test_userinfo_is_redacted_in_tool_text_cli_stderr_and_logs(
    vllm_server: LocalVLLMServer, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://admin:s3cr3t@127.0.0.1:{_free_port()}/scan.png"
    tool = OCRTool(client=_client(vllm_server), allow_urls=True)
    text = tool.run({"source": url})
    assert "s3cr3t" not in text and "127.0.0.1" in text
    assert cli.main(["ocr", url, "--allow-urls", "--base-url", vllm_server.base_url]) != 0
    err = capsys.readouterr().err
    assert "s3cr3t" not in err and "admin:" not in err and "127.0.0.1" in err
    # a base URL with credentials: error text and the client's log lines
    caplog.set_level(logging.DEBUG, logger="minimaxvl_tools")
    bad = MiniMaxVLClient(
        base_url=f"http://admin:s3cr3t@127.0.0.1:{_free_port()}/v1",
        max_retries=0,
        max_model_len=32768,
        backoff_base=0.01,
    )
    with pytest.raises(ServerUnavailableError) as info:
        bad.chat("hello")
    assert "s3cr3t" not in str(info.value)
    assert caplog.records and "s3cr3t" not in caplog.text
    health = bad.health()
    assert not health.ok and "s3cr3t" not in health.model_dump_json()
    assert "s3cr3t" not in repr(bad.settings) and "***@127.0.0.1" in repr(bad.settings)
    assert "s3cr3t" not in repr(OCRTool(client=bad))


# ------------------------------------------------------------------ 7: the error type survives
def _two_page_pdf(tmp_path: Path) -> Path:
    return _pdf(tmp_path / "doc.pdf", [(612, 792), (612, 792)])


def _ocr_tool(client: MiniMaxVLClient, tmp_path: Path) -> OCRTool:
    return OCRTool(
        client=client, allowed_roots=[tmp_path], dpi=72, fix_rotation=False, handle_tool_error=False
    )


def _every_page_fails(tool: OCRTool, source: Path) -> MiniMaxVLError:
    with pytest.raises(ToolException, match="every page failed") as info:
        tool.run({"source": str(source)})
    cause = info.value.__cause__
    assert isinstance(cause, MiniMaxVLError)
    assert "every page failed; page 1:" in str(cause)
    return cause


def test_connection_refused_every_page_is_server_unavailable(tmp_path: Path) -> None:
    client = MiniMaxVLClient(
        base_url=f"http://127.0.0.1:{_free_port()}/v1", max_retries=0, max_model_len=32768, backoff_base=0.01
    )
    cause = _every_page_fails(_ocr_tool(client, tmp_path), _two_page_pdf(tmp_path))
    assert type(cause) is ServerUnavailableError


@pytest.mark.parametrize("fault", ["500", "drop", "partial", "malformed"])
def test_persistent_server_faults_are_server_unavailable(
    vllm_server: LocalVLLMServer, tmp_path: Path, fault: str
) -> None:
    vllm_server.fail_next(fault, 100)
    cause = _every_page_fails(
        _ocr_tool(_client(vllm_server, max_model_len=32768), tmp_path), _two_page_pdf(tmp_path)
    )
    assert type(cause) is ServerUnavailableError


def test_truncation_every_time_is_truncated_output(vllm_server: LocalVLLMServer, tmp_path: Path) -> None:
    vllm_server.set_responder(lambda body: Reply("cut", finish_reason="length"))
    tool = _ocr_tool(_client(vllm_server), tmp_path)
    tool.max_attempts = 1
    cause = _every_page_fails(tool, _two_page_pdf(tmp_path))
    assert type(cause) is TruncatedOutputError and "truncated" in str(cause)


def test_server_side_context_overflow_is_context_overflow(tmp_path: Path) -> None:
    with LocalVLLMServer(max_model_len=600) as small:  # the client believes in a larger context
        cause = _every_page_fails(
            _ocr_tool(_client(small, max_model_len=32768), tmp_path), _two_page_pdf(tmp_path)
        )
    assert type(cause) is ContextOverflowError


def test_wrong_model_name_is_model_mismatch(vllm_server: LocalVLLMServer, tmp_path: Path) -> None:
    client = _client(vllm_server, model="someone/else", max_model_len=32768)
    cause = _every_page_fails(_ocr_tool(client, tmp_path), _two_page_pdf(tmp_path))
    assert type(cause) is ModelMismatchError


def test_mixed_failures_fall_back_to_the_common_base(vllm_server: LocalVLLMServer, tmp_path: Path) -> None:
    replies = iter([Reply("cut", finish_reason="length"), Reply("", status=500, error="boom")] * 5)
    vllm_server.set_responder(lambda body: next(replies))
    tool = _ocr_tool(_client(vllm_server, max_retries=0, max_model_len=32768), tmp_path)
    tool.max_attempts = 1
    cause = _every_page_fails(tool, _two_page_pdf(tmp_path))
    assert type(cause) is MiniMaxVLError


# ------------------------------------------------------------------ 8: an empty reply is a failed page
def test_empty_reply_for_a_non_blank_page_fails_after_retries(vllm_server: LocalVLLMServer) -> None:
    vllm_server.set_responder(lambda body: "")
    res = ocr_page(_client(vllm_server), PageImage(1, 1, _text_page()), tile=False)
    assert res.status == "failed" and res.error is not None and "empty" in res.error
    assert res.error_type == "EmptyOutputError"
    assert res.requests >= 2  # retried per the ladder before giving up
    # the model's explicit blank-page answer is still a blank page
    vllm_server.set_responder(lambda body: "[blank page]")
    assert ocr_page(_client(vllm_server), PageImage(1, 1, _text_page()), tile=False).status == "blank"


def test_empty_reply_tool_falls_back_or_raises_typed(vllm_server: LocalVLLMServer, tmp_path: Path) -> None:
    vllm_server.set_responder(lambda body: "")
    pdf = _pdf(tmp_path / "one.pdf", [(612, 792)])
    tool = _ocr_tool(_client(vllm_server), tmp_path)
    cause = _every_page_fails(tool, pdf)
    assert isinstance(cause, EmptyOutputError)
    tool.fallback = ("text-layer",)
    _content, res = tool._run(str(pdf))
    assert res.pages[0].status == "fallback" and "Page line 0" in res.pages[0].markdown


def test_cli_ocr_empty_reply_exits_1_and_says_so(
    vllm_server: LocalVLLMServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    _text_page(tmp_path / "page.png")
    vllm_server.set_responder(lambda body: "")
    code = cli.main(["ocr", "page.png", "--base-url", vllm_server.base_url, "--max-retries", "0"])
    err = capsys.readouterr().err
    assert code == 1 and "empty" in err


# ------------------------------------------------------------------ 9: configuration from the environment
def test_env_roots_urls_and_private_hosts_reach_tools_toolkit_and_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vllm_server: LocalVLLMServer
) -> None:
    inside, outside = tmp_path / "in", tmp_path / "out"
    inside.mkdir()
    outside.mkdir()
    env = {
        "MINIMAXVL_ALLOWED_ROOTS": str(inside),
        "MINIMAXVL_ALLOW_URLS": "1",
        "MINIMAXVL_ALLOW_PRIVATE_HOSTS": "1",
        "MINIMAXVL_BASE_URL": vllm_server.base_url,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = Settings.from_env()
    for tool in [
        OCRTool(settings=s),
        OCRTool(),
        *MiniMaxVLToolkit().get_tools(),
        *MiniMaxVLToolkit(settings=s).get_tools(),
    ]:
        pol = tool.policy  # type: ignore[attr-defined]
        assert pol.allowed_roots == [inside] and pol.allow_urls and pol.allow_private_hosts, tool.name
    explicit = OCRTool(settings=s, allowed_roots=[outside], allow_urls=False)
    assert explicit.policy.allowed_roots == [outside] and not explicit.policy.allow_urls
    _text_page(outside / "x.png")
    with pytest.raises(MiniMaxVLError, match="outside the allowed folders"):
        MiniMaxVLDocumentLoader([outside / "x.png"], use_cache=False).files()
    monkeypatch.delenv("MINIMAXVL_ALLOWED_ROOTS")
    assert MiniMaxVLDocumentLoader([outside / "x.png"], use_cache=False).files()  # no roots set: as given


def test_policy_messages_name_python_parameters_in_python(tmp_path: Path) -> None:
    pol = InputPolicy(allowed_roots=[tmp_path / "a"])
    with pytest.raises(MiniMaxVLError) as info:
        pol.check_path(tmp_path / "b.png")
    assert "allowed_roots=" in str(info.value) and "--allow-root" not in str(info.value)
    with pytest.raises(MiniMaxVLError) as info:
        pol.check_url("http://example.com/a.png")
    assert "allow_urls=True" in str(info.value) and "--allow-urls" not in str(info.value)
    with pytest.raises(MiniMaxVLError) as info:
        InputPolicy(allow_urls=True).check_url("http://127.0.0.1:9/a.png")
    assert "allow_private_hosts=True" in str(info.value)


def test_cli_honours_env_roots_and_names_its_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    docs, work, other = tmp_path / "docs", tmp_path / "work", tmp_path / "other"
    for d in (docs, work, other):
        d.mkdir()
    _text_page(docs / "a.png")
    _text_page(other / "b.png")
    monkeypatch.chdir(work)
    monkeypatch.setenv("MINIMAXVL_ALLOWED_ROOTS", str(docs))
    assert cli.main(["plan", str(docs / "a.png")]) == 0
    capsys.readouterr()
    assert cli.main(["plan", str(other / "b.png")]) == 2
    err = capsys.readouterr().err
    assert "--allow-root" in err and "allowed_roots=" not in err
    assert cli.main(["ocr", "http://example.com/a.png"]) == 2
    err = capsys.readouterr().err
    assert "--allow-urls" in err and "allow_urls=True" not in err
    assert cli.main(["ocr", "http://127.0.0.1:9/a.png", "--allow-urls"]) == 2
    err = capsys.readouterr().err
    assert "--allow-private-hosts" in err
    assert cli.main(["eval", "ocr-cer", str(other), "--engine", "local"]) == 2
    err = capsys.readouterr().err
    assert "outside the allowed folders" in err and "--allow-root" in err


# ------------------------------------------------------------------ 10: the API key is never shown
def test_api_key_never_in_reprs_logs_errors_or_saved_records(
    vllm_server: LocalVLLMServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings(base_url=vllm_server.base_url, api_key=SECRET_KEY, allowed_roots=[tmp_path])
    assert settings.api_key.get_secret_value() == SECRET_KEY
    client = MiniMaxVLClient(settings)
    assert client._headers() == {"Authorization": f"Bearer {SECRET_KEY}"}
    assert client.endpoints[0].client.api_key == SECRET_KEY
    assert (
        MiniMaxVLClient(base_url=vllm_server.base_url, api_key=SECRET_KEY)
        ._headers()["Authorization"]
        .endswith(SECRET_KEY)
    )
    assert MiniMaxVLClient(settings, api_key="sk-other").settings.api_key.get_secret_value() == "sk-other"
    toolkit = MiniMaxVLToolkit(settings=settings)
    print(toolkit.get_tools())
    print(toolkit, client, settings, client.settings, settings.model_dump(), settings.model_dump_json())
    shown = capsys.readouterr().out + repr(toolkit.get_tools()) + str(toolkit.get_tools())
    assert SECRET_KEY not in shown and "api_key" in shown
    # a failing call: error text and log lines
    vllm_server.fail_next("500", 1)
    with pytest.raises(ServerUnavailableError) as info:
        MiniMaxVLClient(settings, max_retries=0, max_model_len=32768).chat("hi")
    assert SECRET_KEY not in str(info.value)
    # saved records: an ingest run with the key on the command line
    monkeypatch.chdir(tmp_path)
    _text_page(tmp_path / "a.png")
    vllm_server.set_responder(lambda body: "Line 0")
    code = cli.main(
        [
            "ingest",
            "a.png",
            "--out",
            "out",
            "--mode",
            "vlm",
            "--base-url",
            vllm_server.base_url,
            "--api-key",
            SECRET_KEY,
            "-vv",
            "--no-rotation",
        ]
    )
    assert code == 0 and len(vllm_server.requests) == 2  # the failed chat, then the page
    for f in (tmp_path / "out").rglob("*"):
        if f.is_file():
            assert SECRET_KEY not in f.read_text("utf-8", errors="replace"), f
    out = capsys.readouterr()
    assert SECRET_KEY not in out.out + out.err + caplog.text
