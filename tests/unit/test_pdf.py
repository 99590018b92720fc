"""PDF streaming: page ranges, rotation, passwords, broken files, text layer, flat memory."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from fpdf import FPDF

from minimaxvl_tools.errors import AccessDeniedError, InvalidInputError, PDFError, PDFPasswordError
from minimaxvl_tools.images.policy import InputPolicy
from minimaxvl_tools.pdf import is_pdf, iter_pdf_pages, parse_page_range, pdf_page_count


def make_pdf(pages: int = 3, *, text: bool = True, password: str | None = None) -> bytes:
    pdf = FPDF(format="A4")
    if password:
        pdf.set_encryption(owner_password="owner-" + password, user_password=password)
    pdf.set_font("helvetica", size=14)
    for i in range(pages):
        pdf.add_page()
        if text:
            pdf.text(20, 30, f"Page {i + 1} says hello")
    return bytes(pdf.output())


def rotate_first_page(data: bytes, degrees: int) -> bytes:
    doc = pdfium.PdfDocument(data)
    doc[0].set_rotation(degrees)
    buf = io.BytesIO()
    doc.save(buf)
    doc.close()
    return buf.getvalue()


def zero_page_pdf() -> bytes:
    """A well-formed PDF (valid xref) whose page tree is empty."""
    objs = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[]/Count 0>>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


@pytest.fixture(scope="module")
def three_pages() -> bytes:
    return make_pdf(3)


def test_parse_page_range() -> None:
    assert parse_page_range("1-3,5", 6) == [1, 2, 3, 5]
    assert parse_page_range("5-", 6) == [5, 6]
    assert parse_page_range(" 2 , 2, 1 ", 6) == [2, 1]
    assert parse_page_range(None, 3) == [1, 2, 3]
    assert parse_page_range("all", 2) == [1, 2]
    assert parse_page_range([3, 1], 3) == [3, 1]
    for bad in ("0", "7", "1-9", "3-1", "a", "1,,2", [0], [7]):
        with pytest.raises(InvalidInputError):
            parse_page_range(bad, 6)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="6 pages"):
        parse_page_range("1-9", 6)


def test_iter_pages_text_and_size(three_pages: bytes, tmp_path: Path) -> None:
    p = tmp_path / "doc.pdf"
    p.write_bytes(three_pages)
    got = list(iter_pdf_pages(p, pages="1,3", dpi=72))
    assert [g.number for g in got] == [1, 3]
    assert all(g.page_count == 3 for g in got)
    assert "Page 3 says hello" in got[1].text and got[1].has_text_layer
    assert got[0].image is not None and got[0].image.mode == "RGB"
    assert got[0].image.size[1] == 842 and got[0].image.size[0] in (595, 596)  # A4 at 72 dpi
    assert got[0].source == str(p)
    assert pdf_page_count(p) == 3 and pdf_page_count(three_pages) == 3


def test_long_side_and_dpi(three_pages: bytes) -> None:
    page = next(iter_pdf_pages(three_pages, long_side=1000))
    assert page.image is not None and max(page.image.size) == 1000
    assert abs(page.dpi - 1000 / 842 * 72) < 0.5
    page = next(iter_pdf_pages(three_pages, dpi=144))
    assert page.image is not None and page.image.size[1] == 1684


def test_render_false_gives_text_only(three_pages: bytes) -> None:
    pages = list(iter_pdf_pages(three_pages, render=False))
    assert [p.image for p in pages] == [None, None, None]
    assert "Page 2" in pages[1].text


def test_scan_has_no_text_layer() -> None:
    page = next(iter_pdf_pages(make_pdf(1, text=False), dpi=36))
    assert page.text == "" and not page.has_text_layer


def test_rotated_page(three_pages: bytes) -> None:
    rotated = rotate_first_page(three_pages, 90)
    page = next(iter_pdf_pages(rotated, dpi=72))
    assert page.rotation == 90
    assert page.image is not None and page.image.size[0] == 842  # landscape after /Rotate
    assert page.image.size[1] in (595, 596)
    assert (page.width_pt, page.height_pt) == pytest.approx((841.89, 595.28), abs=0.1)
    second = next(iter(iter_pdf_pages(rotated, pages=[2], dpi=72)))
    assert second.rotation == 0 and second.image is not None and second.image.size[1] == 842


def test_pdf2image_backend_matches(three_pages: bytes, tmp_path: Path) -> None:
    p = tmp_path / "doc.pdf"
    p.write_bytes(rotate_first_page(three_pages, 90))
    a = next(iter_pdf_pages(p, dpi=50, backend="pdf2image"))
    b = next(iter_pdf_pages(p, dpi=50))
    assert a.image is not None and b.image is not None
    assert abs(a.image.width - b.image.width) <= 2 and abs(a.image.height - b.image.height) <= 2
    assert a.image.width > a.image.height  # poppler honours /Rotate too
    c = next(iter_pdf_pages(p.read_bytes(), pages=[2], dpi=50, backend="pdf2image"))
    assert c.number == 2 and c.image is not None


def test_encrypted_pdf() -> None:
    data = make_pdf(2, password="s3cret")
    with pytest.raises(PDFPasswordError, match=r"encrypted: pass password="):
        list(iter_pdf_pages(data))
    with pytest.raises(PDFPasswordError, match="wrong"):
        list(iter_pdf_pages(data, password="nope"))
    pages = list(iter_pdf_pages(data, password="s3cret", dpi=36))
    assert len(pages) == 2 and "Page 2" in pages[1].text
    assert pdf_page_count(data, password="s3cret") == 2


def test_encrypted_pdf_pdf2image_backend() -> None:
    data = make_pdf(1, password="s3cret")
    page = next(iter_pdf_pages(data, password="s3cret", dpi=36, backend="pdf2image"))
    assert page.image is not None


def test_corrupt_truncated_empty_zero_page(tmp_path: Path, three_pages: bytes) -> None:
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    with pytest.raises(PDFError, match=r"broken\.pdf.*corrupt"):
        list(iter_pdf_pages(bad))
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(three_pages[: len(three_pages) // 2])
    with pytest.raises(PDFError, match=r"cut\.pdf"):
        list(iter_pdf_pages(cut))
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    with pytest.raises(PDFError, match=r"empty\.pdf.*0 bytes"):
        pdf_page_count(empty)
    notpdf = tmp_path / "image.pdf"
    notpdf.write_bytes(b"\x89PNG\r\n\x1a\n....")
    with pytest.raises(PDFError, match="not a PDF"):
        pdf_page_count(notpdf)
    zero = tmp_path / "zero.pdf"
    zero.write_bytes(zero_page_pdf())
    with pytest.raises(PDFError, match=r"zero\.pdf.*no pages"):
        list(iter_pdf_pages(zero))


def test_page_out_of_range(three_pages: bytes) -> None:
    with pytest.raises(InvalidInputError, match="out of range"):
        list(iter_pdf_pages(three_pages, pages="4"))


def test_bad_arguments(three_pages: bytes) -> None:
    with pytest.raises(InvalidInputError, match="backend"):
        list(iter_pdf_pages(three_pages, backend="mupdf"))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="dpi"):
        list(iter_pdf_pages(three_pages, dpi=0))


def test_policy_applies_to_pdf_paths(tmp_path: Path, three_pages: bytes) -> None:
    (tmp_path / "in").mkdir()
    outside = tmp_path / "out.pdf"
    outside.write_bytes(three_pages)
    with pytest.raises(AccessDeniedError):
        pdf_page_count(outside, policy=InputPolicy(allowed_roots=[tmp_path / "in"]))


def test_is_pdf(tmp_path: Path, three_pages: bytes) -> None:
    p = tmp_path / "named.png"
    p.write_bytes(three_pages)
    assert is_pdf(p) and is_pdf(three_pages) and is_pdf(io.BytesIO(three_pages))
    assert not is_pdf(b"\x89PNG\r\n\x1a\n") and not is_pdf(tmp_path / "missing.pdf")


def test_threads_share_the_lock(three_pages: bytes) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for page in iter_pdf_pages(three_pages, dpi=30):
                assert page.image is not None
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


@pytest.mark.slow
def test_500_pages_memory_flat(tmp_path: Path) -> None:
    p = tmp_path / "big.pdf"
    p.write_bytes(make_pdf(500))
    it = iter_pdf_pages(p, dpi=36)
    for _ in range(10):
        next(it)
    after_10 = _rss_bytes()
    count = 10
    for page in it:
        assert page.image is not None
        count += 1
    growth = _rss_bytes() - after_10
    assert count == 500
    # Keeping every page would hold ~490 * 298*421*3 bytes = ~185 MB; streaming must stay far below that.
    assert growth < 40 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 490 pages"


def test_fit_hook_renders_straight_at_the_planned_size(tmp_path: Path) -> None:
    """A page sent as one image is rendered at its planned size: same size and tokens, no resize later."""
    from fpdf import FPDF

    from minimaxvl_tools.pages import encode_page, iter_pages, plan_page, single_fit

    pdf = FPDF(format="letter")
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(0, 10, "fit hook")
    path = tmp_path / "fit.pdf"
    pdf.output(str(path))
    full = next(iter_pdf_pages(path, dpi=200)).image
    plan = plan_page(*full.size, tile=False)
    seen: list[tuple[int, int]] = []

    def fit(w: int, h: int) -> tuple[int, int] | None:
        seen.append((w, h))
        return single_fit(False)(w, h)

    small = next(iter_pages(path, fit=fit)).image
    assert seen == [full.size]  # the hook sees the page's size at the requested dpi
    assert small.size == plan.size.resized and small.size != full.size
    assert encode_page(small).tokens == encode_page(full).tokens == plan.tokens
    # a hook that declines keeps the dpi render
    assert next(iter_pdf_pages(path, dpi=200, fit=lambda w, h: None)).image.size == full.size
    # text=False skips the text layer only
    assert next(iter_pdf_pages(path, dpi=50, text=False)).text == ""
    assert "fit hook" in next(iter_pdf_pages(path, dpi=50)).text


@pytest.fixture
def kept_documents():
    from minimaxvl_tools import pdf as pdf_mod

    pdf_mod.keep_documents(2)
    yield pdf_mod
    pdf_mod.keep_documents(0)


def test_kept_documents_are_reused_and_reopened_when_the_file_changes(tmp_path: Path, kept_documents) -> None:
    import os

    opened: list[str] = []
    real_open = kept_documents._open

    def counting(target, name, password):
        opened.append(name)
        return real_open(target, name, password)

    path = tmp_path / "a.pdf"
    path.write_bytes(make_pdf(3))
    mp = pytest.MonkeyPatch()
    mp.setattr(kept_documents, "_open", counting)
    try:
        for n in (1, 2, 3):
            assert [p.number for p in iter_pdf_pages(path, pages=[n], dpi=36, render=False)] == [n]
        assert len(opened) == 1 and len(kept_documents._KEPT) == 1  # one open for three calls
        path.write_bytes(make_pdf(2))  # replaced: another size and mtime
        os.utime(path, ns=(1, 1))
        assert next(iter_pdf_pages(path, pages=[1], dpi=36, render=False)).page_count == 2
        assert len(opened) == 2 and len(kept_documents._KEPT) == 1  # the stale document was closed
        for i in range(3):  # more files than kept: the oldest is closed
            other = tmp_path / f"o{i}.pdf"
            other.write_bytes(make_pdf(1))
            list(iter_pdf_pages(other, dpi=36, render=False))
        assert len(kept_documents._KEPT) == 2 and str(path) not in {k[0] for k in kept_documents._KEPT}
    finally:
        mp.undo()


def test_a_kept_document_is_not_shared_by_two_iterations_at_once(tmp_path: Path, kept_documents) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(make_pdf(3))
    list(iter_pdf_pages(path, dpi=36, render=False))
    first = iter_pdf_pages(path, dpi=36)
    assert next(first).number == 1  # holds the kept document
    assert [p.number for p in iter_pdf_pages(path, dpi=36)] == [1, 2, 3]  # opens its own meanwhile
    assert [p.number for p in first] == [2, 3]
    kept_documents.keep_documents(0)
    assert not kept_documents._KEPT  # keep_documents(0) closes what was kept


def test_documents_are_closed_after_each_call_by_default(tmp_path: Path) -> None:
    from minimaxvl_tools import pdf as pdf_mod

    path = tmp_path / "a.pdf"
    path.write_bytes(make_pdf(1))
    list(iter_pdf_pages(path, dpi=36, render=False))
    assert not pdf_mod._KEPT
