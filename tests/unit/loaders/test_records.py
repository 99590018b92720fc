"""The loader speaks LangChain's PDF-loader conventions: ``file_path=``, 0-based ``page``, ``page_label``,
``total_pages``, and no None values in metadata (vector stores such as Chroma refuse them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fpdf import FPDF

from minimaxvl_tools.errors import InvalidInputError
from minimaxvl_tools.loaders import MiniMaxVLDocumentLoader

SCALARS = (str, int, float, bool)


def text_pdf(path: Path, pages: int) -> Path:
    pdf = FPDF(format=(148, 210))
    pdf.set_font("helvetica", size=12)
    for i in range(pages):
        pdf.add_page()
        pdf.multi_cell(0, 8, f"Page {i + 1}. The invoice total is 42 euros and more printed words. " * 3)
    pdf.output(str(path))
    return path


def test_file_path_keyword_like_pypdfloader(tmp_path: Path) -> None:
    pdf = text_pdf(tmp_path / "a.pdf", 2)
    docs = MiniMaxVLDocumentLoader(file_path=str(pdf), mode="text-layer", use_cache=False).load()
    assert len(docs) == 2
    positional = MiniMaxVLDocumentLoader(pdf, mode="text-layer", use_cache=False).load()
    assert [d.page_content for d in docs] == [d.page_content for d in positional]


def test_paths_and_file_path_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="file_path"):
        MiniMaxVLDocumentLoader()
    with pytest.raises(InvalidInputError, match="not both"):
        MiniMaxVLDocumentLoader(tmp_path, file_path=tmp_path)


def test_page_metadata_follows_langchain_pdf_loaders(tmp_path: Path) -> None:
    pdf = text_pdf(tmp_path / "a.pdf", 3)
    docs = MiniMaxVLDocumentLoader(file_path=pdf, mode="text-layer", use_cache=False).load()
    assert [d.metadata["page"] for d in docs] == [0, 1, 2]  # PyPDFLoader: 0-based index
    assert [d.metadata["page_label"] for d in docs] == ["1", "2", "3"]
    assert [d.metadata["page_number"] for d in docs] == [1, 2, 3]
    assert {d.metadata["total_pages"] for d in docs} == {3}
    assert {d.metadata["source"] for d in docs} == {str(pdf)}
    assert "page_count" not in docs[0].metadata


def test_no_none_values_in_metadata_ok_and_failed(tmp_path: Path) -> None:
    good = text_pdf(tmp_path / "b_good.pdf", 1)
    (tmp_path / "a_broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    docs = MiniMaxVLDocumentLoader(tmp_path, mode="text-layer", use_cache=False).load()
    assert [d.metadata["status"] for d in docs] == ["failed", "ok"]
    broken, ok = docs
    assert broken.metadata["error"] and broken.metadata["source"].endswith("a_broken.pdf")
    assert ok.metadata["source"] == str(good) and "error" not in ok.metadata
    for d in docs:
        assert all(v is not None for v in d.metadata.values()), d.metadata
        assert all(isinstance(v, SCALARS) for v in d.metadata.values()), d.metadata  # Chroma's scalar rule
