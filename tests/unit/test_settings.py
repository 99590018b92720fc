"""One dpi setting: MINIMAXVL_DPI (through Settings) is what the loader, ingest and the renderer read when no
dpi is passed, and one range is checked everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.ingest import IngestJob
from minimaxvl_tools.loaders import MiniMaxVLDocumentLoader
from minimaxvl_tools.pdf import iter_pdf_pages
from minimaxvl_tools.settings import DEFAULT_DPI, DPI_RANGE, Settings, check_dpi


def test_environment_sets_the_dpi_of_the_loader_and_ingest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MINIMAXVL_DPI", "150")
    assert Settings.from_env().dpi == 150
    assert MiniMaxVLDocumentLoader(tmp_path, mode="text-layer").dpi == 150
    assert IngestJob(tmp_path, tmp_path / "out", mode="text-layer").dpi == 150
    assert MiniMaxVLDocumentLoader(tmp_path, mode="text-layer", dpi=72).dpi == 72  # an argument wins
    monkeypatch.delenv("MINIMAXVL_DPI")
    assert MiniMaxVLDocumentLoader(tmp_path, mode="text-layer").dpi == DEFAULT_DPI


@pytest.mark.parametrize("bad", [0, DPI_RANGE[0] - 1, DPI_RANGE[1] + 1, "200", True])
def test_one_range_everywhere(bad: object, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"dpi must be a number in 30\.\.1200"):
        check_dpi(bad)
    with pytest.raises(InvalidInputError, match="dpi"):
        MiniMaxVLDocumentLoader(tmp_path, mode="text-layer", dpi=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="dpi"):
        next(iter_pdf_pages(b"%PDF-1.4", dpi=bad))  # type: ignore[arg-type]
    if isinstance(bad, int) and not isinstance(bad, bool):  # the environment's "200" is text by nature
        with pytest.raises(ValueError):
            Settings(dpi=bad)


def test_tools_read_the_dpi_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from minimaxvl_tools.tools import OCRTool

    monkeypatch.setenv("MINIMAXVL_DPI", "144")
    assert OCRTool().dpi == 144
    assert OCRTool(dpi=300).dpi == 300
    assert OCRTool(settings=Settings(dpi=96)).dpi == 96
    with pytest.raises(ValueError):
        OCRTool(dpi=DPI_RANGE[1] + 1)


def test_the_cli_takes_dpi_from_the_flag_else_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from PIL import Image

    from minimaxvl_tools.cli import main

    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (400, 300), "white").save("page.png")
    monkeypatch.setenv("MINIMAXVL_DPI", "150")
    assert main(["plan", "page.png", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dpi"] == 150
    assert main(["plan", "page.png", "--json", "--dpi", "100"]) == 0
    assert json.loads(capsys.readouterr().out)["dpi"] == 100
    assert main(["plan", "page.png", "--dpi", "5000"]) != 0  # outside the one range: refused
    assert "dpi" in capsys.readouterr().err
