"""Readers of this package's own formats: generic JSONL (any benchmark, one question a line) and
``ocr-cer`` (the pages of born-digital PDFs, their text layer as the gold transcription)."""

from __future__ import annotations

from pathlib import Path

from ...errors import InvalidInputError
from .common import EvalItem, check_limit, file_sha256, finish, jsonl_rows

_GENERIC_KEYS = {"id", "image", "question", "answers", "answer", "options", "page", "task"}


def load_jsonl(
    path: str | Path,
    *,
    task: str = "generic",
    split: str = "",
    limit: int | None = None,
    check_images: bool = True,
) -> list[EvalItem]:
    """Any benchmark written as JSONL ``{"id", "image", "question", "answers", "options"?, "page"?}``.

    ``answers`` may be a string or a list (``answer`` is accepted too); a record's own ``task`` overrides the
    argument; any other keys land in ``meta``. Missing ids become ``<task>-<line>``.
    """
    check_limit(limit)
    p = Path(path)
    items: list[EvalItem] = []
    seen: set[str] = set()
    for lineno, row in jsonl_rows("jsonl", p):
        rec, where = row.data, row.where
        item_task = str(rec.get("task", task))
        item_id = str(rec.get("id", f"{item_task}-{lineno}"))
        if item_id in seen:
            raise InvalidInputError(f"jsonl: {where}: duplicate id {item_id!r}; ids must be unique")
        seen.add(item_id)
        options = rec.get("options")
        if options is not None and (not isinstance(options, list) or not options):
            raise InvalidInputError(f"jsonl: {where}: 'options' must be a non-empty list when present")
        page = rec.get("page")
        if page is not None and (isinstance(page, bool) or not isinstance(page, int) or page < 1):
            raise InvalidInputError(f"jsonl: {where}: 'page' must be a 1-based integer, got {page!r}")
        items.append(
            EvalItem(
                id=item_id,
                task=item_task,
                question=row.text("question"),
                answers=row.answers("answers", "answer"),
                options=[str(o) for o in options] if options is not None else None,
                image_path=p.parent / row.text("image"),
                page=page,
                meta={k: v for k, v in rec.items() if k not in _GENERIC_KEYS},
            )
        )
    return finish("jsonl", items, limit, check_images, split=split, sources=[p])


def load_ocr_cer(path: str | Path, *, limit: int | None = None, split: str = "") -> list[EvalItem]:
    """One ``ocr-cer`` item per page of a born-digital PDF (or of every ``*.pdf`` in a folder).

    The page's text layer is the gold transcription, so any born-digital PDF is a free OCR test set. Pages
    without a text layer (scans, figures) have no ground truth and are skipped. Ids are ``<file>#p<n>``.
    Pages are read (not rendered) through :func:`~minimaxvl_tools.pages.iter_pages`, each file's folder
    being the allowed root.
    """
    from ...images.policy import InputPolicy
    from ...pages import iter_pages

    check_limit(limit)
    p = Path(path)
    if p.is_dir():
        pdfs = sorted(p.rglob("*.pdf"))
        root = p
    elif p.is_file():
        pdfs, root = [p], p.parent
    else:
        raise InvalidInputError(f"ocr-cer: {p} does not exist; pass a born-digital PDF or a folder of them")
    items: list[EvalItem] = []
    for pdf in pdfs:
        rel = pdf.relative_to(root).as_posix()
        digest = file_sha256([pdf])
        policy = InputPolicy(allowed_roots=[pdf.parent.resolve()])
        for page in iter_pages(pdf, render=False, policy=policy):
            if not page.has_text_layer:
                continue
            items.append(
                EvalItem(
                    id=f"{rel}#p{page.number}",
                    task="ocr-cer",
                    question="",
                    answers=[page.text_layer],
                    image_path=pdf,
                    page=page.number,
                    meta={"pdf": rel, "page": page.number},
                    split=split,
                    source=str(pdf.resolve()),
                    source_sha256=digest,
                )
            )
            if limit is not None and len(items) >= limit:
                return items
    if not items:
        raise InvalidInputError(
            f"ocr-cer: no page of {p} has a text layer; the task needs born-digital PDFs (text is the gold)"
        )
    return items
