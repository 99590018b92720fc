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
