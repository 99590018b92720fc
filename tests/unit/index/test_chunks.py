"""Page chunks: each keeps its page and source, and the union of the boxes of the blocks it covers."""

from __future__ import annotations

from langchain_core.documents import Document

from minimaxvl_tools.index import split_page


def test_chunks_keep_page_and_union_of_block_boxes() -> None:
    blocks = [
        {"text": "Invoice 2024-0117 from ACME", "box": [10, 10, 500, 40]},
        {"text": "Total due: 1,080.00 EUR", "bbox": [300, 900, 700, 940]},
        {"text": "no box here"},
    ]
    doc = Document(
        "Invoice 2024-0117 from ACME\n\n" + "filler words " * 10 + "\n\nTotal due: 1,080.00 EUR",
        metadata={"source": "/x.pdf", "page": 2, "page_number": 3, "blocks": blocks},
    )
    chunks = split_page(doc, chunk_size=60, chunk_overlap=0)
    assert all(c.page == 3 and c.source == "/x.pdf" for c in chunks)
    assert chunks[0].box == (10.0, 10.0, 500.0, 40.0)
    assert chunks[-1].box == (300.0, 900.0, 700.0, 940.0)
    assert any(c.box is None for c in chunks)  # the filler between blocks has no region
    # no blocks at all: chunks, no boxes
    plain = split_page(
        Document("some text " * 30, metadata={"source": "/y.pdf", "page": 1}), chunk_size=80, chunk_overlap=10
    )
    assert plain and all(c.box is None for c in plain)
    assert len({c.id for c in plain}) == len(plain)
