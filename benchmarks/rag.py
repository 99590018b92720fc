"""Benchmark: retrieval quality and speed of the page index (``python -m benchmarks --only rag``).

Corpus: third-party PDFs from Debian documentation packages (installed with apt-get when missing; package
and version recorded). Questions are generated deterministically from sentences of their text layers:
a sentence that occurs on one page only, with one content word masked (``... what ...?``); the answer is
the masked word, the answer page is the sentence's page. Measured:

- recall@5 (the answer page among the top 5 chunks' pages) for lexical (bm25s), dense (WordLlama) and
  hybrid (RRF); target: hybrid >= max(lexical, dense) and >= 0.9;
- answer accuracy of ``ask`` through LocalVLLMServer, a TEST DOUBLE of vLLM (no model): its responder
  reads the page images the request carries with Tesseract and answers with the line sharing most words
  with the question, so the figure measures retrieval + page images + citation, not a model's reading;
- index throughput in text-layer mode and in local mode (Tesseract; pages/s, embeddings and store writes
  included);
- query latency p50/p95 of hybrid search on a 10,000-page store of synthetic pages; target p95 < 100 ms.

``python -m benchmarks.rag --stores`` measures the store candidates (Chroma, LanceDB, Qdrant local).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import BenchResult, Row

# (package, file it ships): PDFs of Debian documentation, text layers included
PACKAGES: list[tuple[str, str]] = [
    ("nettle-dev", "/usr/share/doc/nettle-dev/nettle.pdf.gz"),
    ("libtasn1-doc", "/usr/share/doc/libtasn1-doc/libtasn1.pdf"),
    ("bzip2-doc", "/usr/share/doc/bzip2/manual.pdf.gz"),
    ("zlib1g-dev", "/usr/share/doc/zlib1g-dev/crc-doc.1.0.pdf.gz"),
    ("shared-mime-info", "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"),
    ("fontconfig", "/usr/share/doc/fontconfig/fontconfig-user.pdf.gz"),
]
SEED = 20240117
QUESTIONS = 120
ASKED = 60  # questions also answered by ``ask`` (each one a Tesseract read of a rendered page)
ASK_DPI = 150
K = 5
SYNTHETIC_PAGES = 10_000
STOP = set(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "by",
        "as",
        "at",
        "be",
        "is",
        "are",
        "was",
        "were",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "from",
        "can",
        "may",
        "will",
        "not",
        "no",
        "if",
        "then",
        "than",
        "which",
        "what",
        "when",
        "where",
        "who",
        "how",
        "into",
        "also",
        "such",
        "each",
        "other",
        "all",
        "any",
        "one",
        "two",
        "use",
        "used",
        "using",
        "must",
        "should",
        "would",
        "could",
        "has",
        "have",
        "had",
        "been",
        "there",
        "their",
        "they",
        "you",
        "your",
    ]
)


@dataclass
class Question:
    """A generated question: the sentence with ``answer`` masked, and where it comes from."""

    text: str
    answer: str
    source: str
    page: int


def ensure_corpus(folder: Path) -> list[tuple[str, str, Path]]:
    """Install the packages when their PDFs are missing, copy (un-gzipped) PDFs into ``folder``;
    returns (package, version, pdf) for each one present."""
    missing = [pkg for pkg, f in PACKAGES if not Path(f).exists()]
    if missing and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=False, capture_output=True)
    out = []
    folder.mkdir(parents=True, exist_ok=True)
    for pkg, f in PACKAGES:
        src = Path(f)
        if not src.exists():
            continue
        version = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=False
        ).stdout.strip()
        dest = folder / f"{pkg}-{src.name.removesuffix('.gz')}"
        data = gzip.decompress(src.read_bytes()) if src.suffix == ".gz" else src.read_bytes()
        dest.write_bytes(data)
        out.append((pkg, version, dest))
    return out


def _sentences(text: str) -> list[str]:
    flat = " ".join(text.split())
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", flat) if s.strip()]


def make_questions(pdfs: list[Path], n: int = QUESTIONS, seed: int = SEED) -> list[Question]:
    """``n`` questions from sentences found on one page only (deterministic for a seed)."""
    import pypdfium2

    where: dict[str, set[tuple[str, int]]] = {}
    for pdf in pdfs:
        doc = pypdfium2.PdfDocument(str(pdf))
        for i in range(len(doc)):
            text = doc[i].get_textpage().get_text_range()
            for s in _sentences(text):
                where.setdefault(s, set()).add((str(pdf.resolve()), i + 1))
        doc.close()
    rng = random.Random(seed)
    candidates = []
    for s, places in sorted(where.items()):
        words = s.split()
        if len(places) != 1 or not 8 <= len(words) <= 40:
            continue
        content = [w for w in words if re.fullmatch(r"[A-Za-z][a-z]{4,}", w) and w.lower() not in STOP]
        if len(content) < 3:
            continue
        candidates.append((s, content, next(iter(places))))
    rng.shuffle(candidates)
    out = []
    for s, content, (src, page) in candidates[:n]:
        answer = rng.choice(content)
        q = re.sub(rf"\b{re.escape(answer)}\b", "what", s, count=1).rstrip(".!?") + "?"
        out.append(Question(q, answer, src, page))
    return out


def recall(index: Any, questions: list[Question], method: str, k: int = K) -> tuple[float, list[float]]:
    """Share of questions whose answer page is among the top-``k`` chunks' pages; and latencies (s)."""
    hits, lat = 0, []
    for q in questions:
        t = time.perf_counter()
        res = index.search(q.text, k=k, method=method)
        lat.append(time.perf_counter() - t)
        hits += any(r.metadata["source"] == q.source and r.metadata["page"] == q.page for r in res)
    return hits / max(1, len(questions)), lat


def _reader_responder(engine: Any) -> Any:
    """TEST DOUBLE reader: Tesseract reads the request's images; the answer is the line sharing most
    words with the question (``pages`` = the image it was on)."""
    from PIL import Image

    from minimaxvl_tools.tools.docvqa import keywords

    def respond(body: dict[str, Any]) -> str:
        msgs = body.get("messages", [])
        texts, images = [], []
        for m in msgs:
            if isinstance(m.get("content"), list):
                for p in m["content"]:
                    if p.get("type") == "text":
                        texts.append(p["text"])
                    elif p.get("type") == "image_url":
                        data = p["image_url"]["url"].split(",", 1)[1]
                        images.append(Image.open(io.BytesIO(base64.b64decode(data))))
        question = texts[-1] if texts else ""
        qm = re.search(r"Question:\s*(.+)", question)
        q = keywords(qm.group(1) if qm else question)
        best, best_page, best_score = "", 0, 0
        for i, img in enumerate(images, 1):
            for line in engine.ocr(img).text.splitlines():
                score = len(q & keywords(line))
                if score > best_score:
                    best, best_page, best_score = line.strip(), i, score
        found = best_score > 0
        return json.dumps(
            {
                "answer": best or "not found",
                "short_answer": best,
                "pages": [best_page] if found else [],
                "evidence": best,
                "confidence": 0.9 if found else 0.1,
                "found": found,
            }
        )

    return respond


def answer_accuracy(index: Any, questions: list[Question]) -> tuple[float, float, int]:
    """(answer accuracy, citation accuracy, questions asked) of ``ask`` through the test double."""
    from minimaxvl_tools.client import MiniMaxVLClient
    from minimaxvl_tools.index.answer import ask
    from minimaxvl_tools.local_ocr import LocalOCREngine
    from minimaxvl_tools.testing.server import LocalVLLMServer

    engine = LocalOCREngine()
    if not engine.available():
        return 0.0, 0.0, 0
    right = cited = 0
    with LocalVLLMServer() as server:
        server.set_responder(_reader_responder(engine))
        client = MiniMaxVLClient(base_url=server.base_url, max_retries=0)
        for q in questions:
            res = ask(index, q.text, client=client, k=K, max_pages=1, online=True)
            right += q.answer.lower() in res.answer.lower()
            cited += any(c["source"] == q.source and c["page"] == q.page for c in res.citations)
    n = max(1, len(questions))
    return right / n, cited / n, len(questions)


def synthetic_store(folder: Path, pages: int = SYNTHETIC_PAGES) -> tuple[Any, float, list[str]]:
    """A store of ``pages`` synthetic pages (words drawn from a fixed vocabulary); returns it, the
    seconds it took, and queries drawn from its pages."""
    from langchain_core.documents import Document

    from minimaxvl_tools.index import PageIndex

    rng = random.Random(SEED)
    vocab = [
        f"{a}{b}"
        for a in ("pump", "valve", "rotor", "gear", "belt", "seal", "motor", "fan")
        for b in ("", "s", "ing", "er", "ed", "al", "ion", "ity", "ize", "ful", "less", "ous")
    ]
    vocab += ["alpha", "beta", "gamma", "delta", "line", "plant", "cost", "energy", "report", "drill"]
    docs, queries = [], []
    for i in range(pages):
        words = [rng.choice(vocab) for _ in range(80)] + [f"serial{i}"]
        docs.append(
            Document(
                " ".join(words),
                metadata={"source": f"/synthetic/{i // 100}.pdf", "page": i % 100 + 1, "page_count": 100},
            )
        )
        if i % (pages // 200 or 1) == 0:
            queries.append(" ".join(words[10:16]) + f" serial{i}")
    ix = PageIndex(folder, batch_pages=500)
    t = time.perf_counter()
    ix.add_documents(docs)
    return ix, time.perf_counter() - t, queries


def local_throughput(pdfs: list[Path], folder: Path, max_pages: int = 12) -> tuple[float, int]:
    """Index throughput in ``local`` mode (Tesseract reads every rendered page; embeddings and store
    writes included) over the smallest corpus PDF, at most ``max_pages`` pages: (pages/s, pages)."""
    import pypdfium2

    from minimaxvl_tools.index import PageIndex

    def count(p: Path) -> int:
        doc = pypdfium2.PdfDocument(str(p))
        try:
            return len(doc)
        finally:
            doc.close()

    pdf = min(pdfs, key=count)
    n = min(max_pages, count(pdf))
    ix = PageIndex(folder / "store-local")
    t = time.perf_counter()
    rep = ix.index([pdf], mode="local", cache_dir=folder / "cache-local", dpi=ASK_DPI, pages=f"1-{n}")
    return rep.pages_indexed / (time.perf_counter() - t), rep.pages_indexed


def _log(msg: str) -> None:
    print(f"[rag] {msg}", file=sys.stderr, flush=True)


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def run(quick: bool = False) -> BenchResult:
    """Corpus, questions, recall@5 by method, ask accuracy, throughput and 10k-page latency."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from minimaxvl_tools.index import PageIndex

    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="minimaxvl-rag-bench-"))
    try:
        corpus = ensure_corpus(tmp / "pdfs")
        pdfs = [p for _, _, p in corpus]
        ix = PageIndex(tmp / "store")
        t = time.perf_counter()
        # dpi: the resolution ``ask`` renders pages at (text-layer mode renders nothing while indexing)
        rep = ix.index(tmp / "pdfs", mode="text-layer", cache_dir=tmp / "cache", dpi=ASK_DPI)
        index_s = time.perf_counter() - t
        pages = rep.pages_indexed
        local_rate, local_pages = local_throughput(pdfs, tmp, 4 if quick else 12)
        _log(f"local mode: {local_pages} pages at {local_rate:.2f} pages/s")
        questions = make_questions(pdfs, n=40 if quick else QUESTIONS)
        _log(f"indexed {pages} pages in {index_s:.1f} s; {len(questions)} questions")
        rec = {m: recall(ix, questions, m) for m in ("lexical", "dense", "hybrid")}
        _log("recall: " + ", ".join(f"{m} {r[0]:.3f}" for m, r in rec.items()))
        asked = questions[: 20 if quick else ASKED]
        acc, cite, n_asked = answer_accuracy(ix, asked)
        _log(f"ask: answer {acc:.3f}, citation {cite:.3f} over {n_asked}")
        n_synth = 1000 if quick else SYNTHETIC_PAGES
        big, build_s, queries = synthetic_store(tmp / "big", n_synth)
        _log(f"synthetic store: {n_synth} pages in {build_s:.1f} s")
        for q in queries[:5]:
            big.search(q, k=K)  # warm: BM25 load, embeddings model
        lat = []
        for q in queries:
            t = time.perf_counter()
            big.search(q, k=K)
            lat.append(time.perf_counter() - t)
        p50, p95 = statistics.median(lat) * 1000, _pct(lat, 0.95) * 1000
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lex, dense, hyb = (rec[m][0] for m in ("lexical", "dense", "hybrid"))
    corpus_lines = [f"  {pkg} {ver}: {p.name.removeprefix(pkg + '-')}" for pkg, ver, p in corpus]
    raw = "\n".join(
        [
            f"corpus: {len(corpus)} PDFs of Debian documentation packages, {pages} pages (text-layer mode):",
            *corpus_lines,
            f"questions: {len(questions)} (seed {SEED}; one-page sentences, one content word masked)",
            f"recall@{K}: lexical {lex:.3f}, dense {dense:.3f}, hybrid {hyb:.3f}",
            f"ask through LocalVLLMServer (TEST DOUBLE; Tesseract reads the sent page images): "
            f"answer {acc:.3f}, citation {cite:.3f} over {n_asked} questions",
            f"index throughput (text-layer, {pages} pages, embeddings + store): {pages / index_s:.1f} "
            "pages/s",
            f"index throughput (local mode: Tesseract on each page at {ASK_DPI} dpi, {local_pages} pages of "
            f"the smallest PDF, embeddings + store): {local_rate:.2f} pages/s",
            f"synthetic store: {n_synth} pages built in {build_s:.1f} s ({n_synth / build_s:.0f} pages/s); "
            f"hybrid query latency over {len(lat)} queries: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
            f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end)",
        ]
    )
    rows = [
        Row(f"rag: hybrid recall@{K} vs best single method", hyb, max(lex, dense), "recall", ">=", 1.0),
        Row(f"rag: hybrid recall@{K} vs 0.9", hyb, 0.9, "recall", ">=", 1.0),
        Row(f"rag: lexical recall@{K} (info)", lex, 1.0, "recall", "info"),
        Row(f"rag: dense recall@{K} (info)", dense, 1.0, "recall", "info"),
        Row("rag: ask answer accuracy via test double (info)", acc, 1.0, "share", "info"),
        Row("rag: index throughput, text-layer (info)", pages / index_s, 1.0, "pages/s", "info"),
        Row("rag: index throughput, local mode (info)", local_rate, 1.0, "pages/s", "info"),
        Row(f"rag: hybrid query p95 on {n_synth} pages vs 100 ms", p95, 100.0, "ms", "<", 1.0),
        Row("rag: hybrid query p50 (info)", p50, 100.0, "ms", "info"),
    ]
    details = {"recall": {m: rec[m][0] for m in rec}, "answer_accuracy": acc, "p50_ms": p50, "p95_ms": p95}
    return BenchResult("rag", rows, raw, time.perf_counter() - t0, details)


def compare_stores(n: int = 20000, dim: int = 256) -> str:
    """Add throughput and top-20 query latency of the store candidates on ``n`` random unit vectors."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, dim)).astype("float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    queries = x[rng.integers(0, n, 200)]
    docs = [f"page text number {i} about topic {i % 97}" for i in range(n)]
    tmp = Path(tempfile.mkdtemp(prefix="minimaxvl-stores-"))
    lines = [f"{n} vectors x {dim} dims, 200 queries (top 20), {os.cpu_count()} CPUs"]

    def lat(fn: Any) -> str:
        ts = []
        for q in queries:
            t = time.perf_counter()
            fn(q)
            ts.append(time.perf_counter() - t)
        return f"p50 {1000 * statistics.median(ts):.1f} ms, p95 {1000 * _pct(ts, 0.95):.1f} ms"

    try:
        import chromadb

        c = chromadb.PersistentClient(
            path=str(tmp / "c"), settings=chromadb.Settings(anonymized_telemetry=False)
        )
        col = c.get_or_create_collection(
            "bench", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )
        t = time.perf_counter()
        for i in range(0, n, 5000):
            ids = [str(j) for j in range(i, min(n, i + 5000))]
            col.add(ids=ids, embeddings=x[i : i + 5000], documents=docs[i : i + 5000])
        add = n / (time.perf_counter() - t)
        lines.append(
            f"chroma {chromadb.__version__} PersistentClient (HNSW): add {add:.0f}/s, query "
            + lat(lambda q: col.query(query_embeddings=[q], n_results=20))
        )
        import lancedb
        import pyarrow as pa

        db = lancedb.connect(str(tmp / "l"))
        t = time.perf_counter()
        tbl = db.create_table(
            "bench", data=pa.table({"id": [str(i) for i in range(n)], "vector": list(x), "text": docs})
        )
        add = n / (time.perf_counter() - t)
        lines.append(
            f"lancedb {lancedb.__version__} (no ANN index, flat): add {add:.0f}/s, query "
            + lat(lambda q: tbl.search(q).limit(20).to_list())
        )
        from qdrant_client import QdrantClient, models

        qc = QdrantClient(path=str(tmp / "q"))
        qc.create_collection(
            "bench", vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
        )
        t = time.perf_counter()
        for i in range(0, n, 2000):
            qc.upsert(
                "bench",
                points=models.Batch(ids=list(range(i, min(n, i + 2000))), vectors=x[i : i + 2000].tolist()),
            )
        add = n / (time.perf_counter() - t)
        lines.append(
            "qdrant-client local mode (brute force): add "
            f"{add:.0f}/s, query " + lat(lambda q: qc.query_points("bench", query=q.tolist(), limit=20))
        )
        qc.close()
    except ImportError as e:
        lines.append(f"(not measured: {e}; pip install chromadb lancedb qdrant-client)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return "\n".join(lines)


if __name__ == "__main__":
    if "--stores" in sys.argv:
        print(compare_stores())
    else:
        res = run("--quick" in sys.argv)
        print(res.raw)
