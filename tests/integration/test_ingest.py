"""``minimaxvl_tools.ingest`` as a library (no argparse) against LocalVLLMServer (the vLLM test double):
records and summary, one hash per file, non-UTF-8 file names, and the path policy checked before any open."""

from __future__ import annotations

import builtins
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from minimaxvl_tools import cli, loaders
from minimaxvl_tools.client import MiniMaxVLClient
from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.images.policy import InputPolicy
from minimaxvl_tools.ingest import IngestJob, ingest, output_names, safe_filename, safe_text
from minimaxvl_tools.settings import Settings
from minimaxvl_tools.testing.server import LocalVLLMServer


def text_image(path: Path, label: str = "words") -> Path:
    img = Image.new("RGB", (640, 480), "white")
    d = ImageDraw.Draw(img)
    for i in range(8):
        d.text((30, 30 + i * 40), f"Line {i}: printed {label} for the model", fill="black")
    img.save(path, format="PNG")
    return path


def client_for(server: LocalVLLMServer) -> MiniMaxVLClient:
    return MiniMaxVLClient(Settings(base_url=server.base_url, max_retries=0, timeout=10))


OPTS: dict[str, Any] = {"mode": "vlm", "fallbacks": (), "detect_rotation": False}


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_library_ingest_without_argparse(vllm_server: LocalVLLMServer, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    text_image(docs / "a.png")
    text_image(docs / "sub" / "b.png")
    vllm_server.set_responder(lambda body: "the page text")
    seen: list[str] = []
    job = IngestJob(docs, tmp_path / "out", client=client_for(vllm_server), **OPTS).prepare()
    assert job.total_pages == 2 and len(job.todo) == 2
    summary = job.run(on_document=lambda d: seen.append(d.name))
    assert (summary.documents, summary.pages, summary.ok, summary.failed) == (2, 2, 2, 0)
    assert summary.requests == 2 and seen == ["a.png.jsonl", "sub/b.png.jsonl"]
    (rec,) = records(tmp_path / "out" / "sub" / "b.png.jsonl")
    assert set(rec) == {"source", "page", "text", "metadata"} and rec["text"] == "the page text"
    again = ingest(docs, tmp_path / "out", client=client_for(vllm_server), **OPTS)
    assert again.skipped_documents == 2 and again.requests == 0 and len(vllm_server.requests) == 2


def test_one_content_hash_per_file_per_run(
    vllm_server: LocalVLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        text_image(tmp_path / f"p{i}.png")
    vllm_server.set_responder(lambda body: "text")
    hashed: list[Path] = []
    real = loaders.file_digest

    def counting(path: Path) -> str:
        hashed.append(Path(path))
        return real(path)

    import minimaxvl_tools.ingest as ingest_mod

    monkeypatch.setattr(ingest_mod, "file_digest", counting)
    import minimaxvl_tools.loaders.loader as loader_mod

    monkeypatch.setattr(loader_mod, "file_digest", counting)
    summary = ingest(tmp_path, tmp_path / "out", client=client_for(vllm_server), **OPTS)
    assert summary.ok == 3
    assert sorted(p.name for p in hashed) == ["p0.png", "p1.png", "p2.png"]  # once each, not twice


def test_bad_inputs_are_typed(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="nowhere: no such file"):
        IngestJob(tmp_path / "nowhere", tmp_path / "out", mode="text-layer")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="no PDFs or images"):
        IngestJob(tmp_path / "empty", tmp_path / "out", mode="text-layer").prepare()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="must be a folder"):
        IngestJob(tmp_path / "empty", tmp_path / "file", mode="text-layer")


# ------------------------------------------------------------------ non-UTF-8 file names (issue 20 item 3)
def test_escaping_is_documented_and_reversible_enough() -> None:
    name = os.fsdecode(b"caf\xe9.pdf")
    assert safe_text(name) == "caf\\xe9.pdf" and safe_filename(name) == "caf%E9.pdf"
    assert safe_text("café.pdf") == "café.pdf" and safe_filename("café.pdf") == "café.pdf"
    safe_text(name).encode("utf-8")  # valid UTF-8, strict


def test_non_utf8_file_name_does_not_crash_ingest(
    vllm_server: LocalVLLMServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    raw = os.path.join(os.fsencode(docs), b"caf\xe9.png")
    text_image(Path(os.fsdecode(raw)))
    text_image(docs / "good.png")
    vllm_server.set_responder(lambda body: "text")
    monkeypatch.chdir(tmp_path)
    args = ["ingest", "docs", "--out", "out", "--mode", "vlm", "--no-fallback", "--no-rotation", "--json"]
    code = cli.main([*args, "--base-url", vllm_server.base_url, "--max-retries", "0"])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["ok"] == 2 and "caf%E9.png.jsonl" in summary["written"]
    (rec,) = records(tmp_path / "out" / "caf%E9.png.jsonl")
    assert rec["source"].endswith("caf\\xe9.png") and rec["metadata"]["status"] == "ok"
    assert (tmp_path / "out" / "good.png.jsonl").is_file()
    # markdown too
    code = cli.main([*args, "--format", "markdown", "--base-url", vllm_server.base_url])
    capsys.readouterr()
    assert code == 0 and "caf\\xe9.png -->" in (tmp_path / "out" / "caf%E9.png.md").read_text("utf-8")


# ------------------------------------------------------------------ the path policy before any open (item 6)
def test_symlink_outside_is_refused_before_any_open_and_the_rest_goes_on(
    vllm_server: LocalVLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed = tmp_path / "allowed"
    outside = tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    secret = text_image(outside / "secret.png")
    (allowed / "link.png").symlink_to(secret)
    text_image(allowed / "good.png")
    vllm_server.set_responder(lambda body: "text")

    opened: list[str] = []
    real_open, real_path_open = builtins.open, Path.open

    def spy(file: Any, *a: Any, **kw: Any) -> Any:
        if isinstance(file, str | os.PathLike):
            opened.append(os.path.realpath(file))
        return real_open(file, *a, **kw)

    def path_spy(self: Path, *a: Any, **kw: Any) -> Any:
        opened.append(os.path.realpath(self))
        return real_path_open(self, *a, **kw)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(io, "open", spy)
    monkeypatch.setattr(Path, "open", path_spy)
    from PIL import Image as PILImage

    real_pil_open = PILImage.open

    def pil_spy(fp: Any, *a: Any, **kw: Any) -> Any:
        if isinstance(fp, str | os.PathLike):
            opened.append(os.path.realpath(fp))
        return real_pil_open(fp, *a, **kw)

    monkeypatch.setattr(PILImage, "open", pil_spy)
    policy = InputPolicy(allowed_roots=[allowed, tmp_path / "out"])
    job = IngestJob(allowed, tmp_path / "out", client=client_for(vllm_server), policy=policy, **OPTS)
    summary = job.run()
    assert str(secret.resolve()) not in opened, "the outside file was opened"
    assert (summary.ok, summary.failed, summary.pages) == (1, 1, 2)
    (refused,) = records(tmp_path / "out" / "link.png.jsonl")
    assert refused["metadata"]["status"] == "failed" and "AccessDeniedError" in refused["metadata"]["error"]
    assert records(tmp_path / "out" / "good.png.jsonl")[0]["text"] == "text"
    assert len(vllm_server.requests) == 1


def test_cli_refused_file_is_one_failed_record_exit_1(
    vllm_server: LocalVLLMServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = tmp_path / "work"
    (work / "docs").mkdir(parents=True)
    secret = text_image(tmp_path / "secret.png")
    (work / "docs" / "link.png").symlink_to(secret)
    text_image(work / "docs" / "good.png")
    vllm_server.set_responder(lambda body: "text")
    monkeypatch.chdir(work)
    argv = ["ingest", "docs", "--out", "out", "--mode", "vlm", "--no-fallback", "--no-rotation", "--json"]
    code = cli.main([*argv, "--base-url", vllm_server.base_url, "--max-retries", "0"])
    out, err = capsys.readouterr()
    assert code == 1, err
    summary = json.loads(out)
    assert (summary["ok"], summary["failed"]) == (1, 1) and "good.png.jsonl" in summary["written"]
    assert "link.png" in err and "1 page(s) failed" in err
    assert len(vllm_server.requests) == 1


def test_output_names_never_follow_symlinks(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.png").symlink_to(tmp_path / "elsewhere.png")
    names = output_names([tmp_path / "d" / "x.png"], [tmp_path / "d"], ".jsonl")
    assert names == {tmp_path / "d" / "x.png": "x.png.jsonl"}
