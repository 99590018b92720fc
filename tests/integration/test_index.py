"""The persistent page index against the real embedded Chroma store (and a real `chroma run` server).

Documents are born-digital PDFs made here with fpdf2 and read in text-layer mode (no model, no OCR), so
the tests exercise the index itself: persistence across processes, incremental re-indexing, deletion,
crash consistency (a writer killed with SIGKILL mid-run), the writers' lock, typed errors for corrupt or
foreign stores, the server store, and the embeddings staying offline (HF_HUB_OFFLINE=1, no network).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from minimaxvl_tools.errors import IndexStoreError
from minimaxvl_tools.index import PageIndex, page_id

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.delenv("MINIMAXVL_EMBED_BASE_URL", raising=False)


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A born-digital PDF with one paragraph per page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


PAGES_A = [
    "The quarterly maintenance report lists the pump overhaul on line Alpha and its cost of 4,200 euros.",
    "Energy consumption per unit decreased by eight percent after the compressor controls were replaced.",
]
PAGES_B = [
    "The fire drill takes place on Friday at half past ten; everyone gathers at the north car park.",
    "Visitors must sign in at reception and wear the yellow badge at all times inside the plant.",
    "The canteen menu changes every Monday and lists vegetarian dishes first.",
]


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    make_pdf(folder / "report.pdf", PAGES_A)
    make_pdf(folder / "memo.pdf", PAGES_B)
    return folder


def _pages(ix: PageIndex) -> dict[str, int]:
    return {Path(s).name: n for s, n in ix.sources().items()}


def _run(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_persistence_across_processes(docs: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    code = """
        import json, sys
        from minimaxvl_tools.index import PageIndex
        ix = PageIndex(sys.argv[1])
        r = ix.index([sys.argv[2]], mode="text-layer")
        hit = ix.search("when is the fire drill", k=1)[0]
        print(json.dumps({"indexed": r.pages_indexed, "skipped": r.pages_skipped,
                          "hit": [hit.metadata["source"], hit.metadata["page"]]}))
    """
    first = _run(code, str(store), str(docs))
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout.splitlines()[-1])
    assert (out["indexed"], out["skipped"]) == (5, 0)
    # a second process finds everything stored: nothing read, the same answer
    second = _run(code, str(store), str(docs))
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout.splitlines()[-1])
    assert (again["indexed"], again["skipped"]) == (0, 5)
    assert Path(again["hit"][0]).name == "memo.pdf" and again["hit"][1] == 1 and again["hit"] == out["hit"]


def test_incremental_reindex_replaces_changed_pages_only(docs: Path, tmp_path: Path) -> None:
    ix = PageIndex(tmp_path / "store")
    ix.index(docs, mode="text-layer")
    before = ix.manifest()
    # change page 2 of the memo only
    make_pdf(
        docs / "memo.pdf",
        [PAGES_B[0], "Contractors collect their access cards from the gatehouse.", PAGES_B[2]],
    )
    r = ix.index(docs, mode="text-layer")
    assert r.pages_skipped == 2  # report.pdf: unchanged file, not read
    assert r.pages_unchanged == 2  # memo pages 1 and 3: read, same text, not re-embedded
    assert r.pages_indexed == 1
    after = ix.manifest()
    memo = str((docs / "memo.pdf").resolve())
    assert after[page_id(memo, 2)]["page_hash"] != before[page_id(memo, 2)]["page_hash"]
    assert after[page_id(memo, 1)]["page_hash"] == before[page_id(memo, 1)]["page_hash"]
    hit = ix.search("contractors access cards gatehouse", k=1)[0]
    assert (Path(hit.metadata["source"]).name, hit.metadata["page"]) == ("memo.pdf", 2)
    assert not any("yellow badge" in h.page_content for h in ix.search("yellow badge visitors", k=5))
    # the file shrank to one page: pages 2 and 3 leave the index
    make_pdf(docs / "memo.pdf", [PAGES_B[0]])
    r = ix.index(docs, mode="text-layer")
    assert r.pages_removed == 2 and _pages(ix) == {"report.pdf": 2, "memo.pdf": 1}
    # other settings (chunk size) re-embed pages; the skip is keyed on content hash + settings
    r = PageIndex(tmp_path / "store", chunk_size=300).index(docs, mode="text-layer")
    assert r.pages_indexed == 3 and r.pages_skipped == 0


def test_deleted_files_leave_the_index(docs: Path, tmp_path: Path) -> None:
    ix = PageIndex(tmp_path / "store")
    ix.index(docs, mode="text-layer")
    (docs / "report.pdf").unlink()
    r = ix.index(docs, mode="text-layer")
    assert r.files_removed == 1 and r.pages_removed == 2
    assert _pages(ix) == {"memo.pdf": 3}
    assert all(Path(h.metadata["source"]).name == "memo.pdf" for h in ix.search("pump overhaul cost", k=5))


def _consistent(store: Path) -> dict[str, dict]:
    """Every committed page has exactly its recorded chunks, all with its hash."""
    ix = PageIndex(store, create=False)
    manifest = ix.manifest()
    got = ix._chunks.get(include=["metadatas"])
    for pid, rec in manifest.items():
        mine = [m for m in got["metadatas"] if m["page_id"] == pid and m["page_hash"] == rec["page_hash"]]
        assert len(mine) == rec["chunks"], (pid, rec)
    committed = {pid for pid in manifest}
    for h in ix.search("plant report drill energy badge", k=20):
        assert h.metadata["page_id"] in committed
    return manifest


def test_crash_mid_index_leaves_a_consistent_store(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    for i in range(6):
        make_pdf(
            folder / f"doc{i}.pdf", [f"Document {i} page {p} about topic {i * 10 + p}." for p in (1, 2, 3)]
        )
    store = tmp_path / "store"
    code = """
        import sys, time
        from minimaxvl_tools.index import PageIndex
        ix = PageIndex(sys.argv[1], batch_pages=2)
        def slow(_doc):
            print("page", flush=True)
            time.sleep(0.15)
        ix.index([sys.argv[2]], mode="text-layer", on_page=slow)
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), str(store), str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for _ in range(7):  # a few batches committed, one in flight
        assert proc.stdout.readline().startswith("page")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    manifest = _consistent(store)
    assert 0 < len(manifest) < 18
    r = PageIndex(store).index(folder, mode="text-layer")
    assert r.pages_indexed + r.pages_unchanged + r.pages_skipped == 18
    assert r.pages_skipped >= 3  # whole files committed before the kill are not read again
    assert len(_consistent(store)) == 18


def test_two_writers_are_serialised_by_the_lock(docs: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    other = tmp_path / "other"
    make_pdf(other / "extra.pdf", ["An extra document about the spare parts inventory and its suppliers."])
    PageIndex(store)  # create it
    code = """
        import sys
        from minimaxvl_tools.index import PageIndex
        PageIndex(sys.argv[1]).index([sys.argv[2]], mode="text-layer")
        print("ok")
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), str(store), str(p)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in (docs, other)
    ]
    outs = [p.communicate(timeout=80) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-500:] for o in outs]
    assert _pages(PageIndex(store)) == {"report.pdf": 2, "memo.pdf": 3, "extra.pdf": 1}
    _consistent(store)
    # a writer that cannot get the lock in time gets a typed error naming the lock
    held = PageIndex(store)
    waiting = PageIndex(store, lock_timeout=0.2)
    with held.lock(), pytest.raises(IndexStoreError, match="lock"):
        waiting.index(other, mode="text-layer")


def test_corrupt_and_foreign_stores_raise_typed_errors(docs: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    PageIndex(store).index(docs, mode="text-layer")
    # a foreign folder (other files, no store) and a file
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(IndexStoreError, match="photos"):
        PageIndex(tmp_path / "photos")
    with pytest.raises(IndexStoreError, match="is a file"):
        PageIndex(tmp_path / "photos" / "a.jpg")
    # a Chroma store that is not ours
    import chromadb

    foreign = tmp_path / "chroma-other"
    settings = chromadb.Settings(anonymized_telemetry=False)
    chromadb.PersistentClient(path=str(foreign), settings=settings).get_or_create_collection("someone_else")
    with pytest.raises(IndexStoreError, match="no minimaxvl index"):
        PageIndex(foreign)
    # other embeddings than the store was built with
    from minimaxvl_tools.index import WordLlamaEmbeddings

    with pytest.raises(IndexStoreError, match="embeddings"):
        PageIndex(store, embeddings=WordLlamaEmbeddings(dim=128))
    # a missing store for search
    with pytest.raises(IndexStoreError, match="no index store"):
        PageIndex(tmp_path / "nothing", create=False)
    # a corrupt database file: a typed error, and the file is left as it was (no silent rebuild)
    broken = tmp_path / "broken"
    shutil.copytree(store, broken)
    db = broken / "chroma.sqlite3"
    db.write_bytes(b"this is not a sqlite database" * 100)
    code = """
        import sys
        from minimaxvl_tools.errors import IndexStoreError
        from minimaxvl_tools.index import PageIndex
        try:
            PageIndex(sys.argv[1])
        except IndexStoreError as e:
            print("IndexStoreError", e)
    """
    out = _run(code, str(broken))  # a fresh process: Chroma caches open stores per process
    assert out.stdout.startswith("IndexStoreError") and str(broken) in out.stdout, out.stdout + out.stderr
    assert db.read_bytes() == b"this is not a sqlite database" * 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path):
    exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    if not Path(exe).exists():
        pytest.skip("the chroma binary (pip install chromadb) is not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    import httpx

    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("chroma run did not come up in 30 s")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_server_store_same_code(docs: Path, chroma_server: str) -> None:
    ix = PageIndex(chroma_server)
    assert ix.is_server
    r = ix.index(docs, mode="text-layer")
    assert r.pages_indexed == 5
    again = PageIndex(chroma_server).index(docs, mode="text-layer")
    assert again.pages_skipped == 5 and again.pages_indexed == 0
    hit = PageIndex(chroma_server, create=False).search("compressor controls energy per unit", k=1)[0]
    assert (Path(hit.metadata["source"]).name, hit.metadata["page"]) == ("report.pdf", 2)
    with pytest.raises(IndexStoreError, match="no Chroma server"):
        PageIndex(f"http://127.0.0.1:{_free_port()}")


def test_search_methods_and_cli(docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from minimaxvl_tools.cli import main

    store = tmp_path / "store"
    assert (
        main(["index", str(docs), "--store", str(store), "--mode", "text-layer", "--allow-root", str(docs)])
        == 0
    )
    capsys.readouterr()
    assert main(["search", "yellow badge for visitors", "--store", str(store), "--k", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 2 and Path(hits[0]["source"]).name == "memo.pdf" and hits[0]["page"] == 2
    ix = PageIndex(store, create=False)
    for method in ("lexical", "dense", "hybrid"):
        top = ix.search("yellow badge for visitors", k=1, method=method)[0]
        assert top.metadata["page"] == 2, method
    # ask --store offline: the extractive answer, flagged
    code = main(
        [
            "ask",
            "--store",
            str(store),
            "-q",
            "Where do people gather for the fire drill?",
            "--base-url",
            f"http://127.0.0.1:{_free_port()}/v1",
            "--max-retries",
            "0",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and "north car park" in out["answer"]
    assert out["engine"].startswith("offline") and out["citations"][0]["page"] == 1
    assert main(["search", "x", "--store", str(tmp_path / "none")]) == 2
    assert main(["ask", "-q", "which store?"]) == 2  # neither a SOURCE nor --store
