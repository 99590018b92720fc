"""Shared pieces of the benchmarks: result rows, the ratio table, test PDFs, a server in a subprocess.

Every benchmark returns a :class:`BenchResult`: table rows (ours, baseline, ratio, target, met?) measured
in this run, plus the raw text written to ``benchmarks/results/<name>.txt``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from minimaxvl_tools.client import MiniMaxVLClient

RESULTS_DIR = Path(__file__).parent / "results"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
MODEL = "MiniMaxAI/MiniMax-VL-01"
PAGE_FORMATS: dict[str, tuple[float, float]] = {"letter": (215.9, 279.4), "a4": (210.0, 297.0)}  # mm

Op = Literal[">=", "<=", "<", "info"]

_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "are",
    "with",
    "as",
    "by",
    "at",
    "be",
    "this",
    "from",
    "that",
    "have",
    "or",
    "an",
    "they",
    "which",
    "one",
    "had",
    "not",
    "but",
    "what",
    "all",
    "were",
    "when",
    "we",
    "there",
    "can",
    "your",
    "been",
    "has",
    "more",
    "if",
    "will",
    "would",
    "each",
    "about",
    "how",
    "up",
    "out",
    "them",
    "then",
    "she",
    "many",
    "some",
    "so",
    "these",
    "make",
    "like",
    "him",
    "into",
    "time",
    "has",
    "look",
    "two",
    "write",
    "go",
    "see",
    "number",
    "way",
    "could",
    "people",
    "than",
    "first",
    "water",
    "been",
    "call",
    "who",
    "oil",
    "its",
    "now",
    "find",
    "long",
    "down",
    "day",
    "did",
    "get",
    "come",
    "made",
    "may",
    "part",
    "over",
    "new",
    "sound",
    "take",
    "only",
    "little",
    "work",
    "know",
    "place",
    "year",
    "live",
    "back",
    "give",
    "most",
    "very",
    "after",
    "thing",
    "our",
    "just",
    "name",
    "good",
    "sentence",
    "man",
    "think",
    "say",
    "great",
    "where",
    "help",
    "through",
    "much",
    "before",
    "line",
    "right",
    "too",
    "mean",
    "old",
    "any",
    "same",
    "tell",
    "boy",
    "follow",
    "came",
    "want",
    "show",
    "also",
    "around",
    "form",
    "three",
    "small",
    "set",
    "put",
    "end",
    "does",
    "another",
    "well",
    "large",
    "must",
    "big",
    "even",
    "such",
    "because",
    "turn",
    "here",
    "why",
    "ask",
    "went",
    "men",
    "read",
    "need",
    "land",
    "different",
    "home",
    "us",
    "move",
    "try",
    "kind",
    "hand",
    "picture",
    "again",
    "change",
    "off",
    "play",
    "spell",
    "air",
    "away",
    "animal",
    "house",
    "point",
    "page",
    "letter",
    "mother",
    "answer",
    "found",
    "study",
    "still",
    "learn",
    "should",
    "America",
    "world",
    "invoice",
    "total",
    "amount",
    "Quantity",
    "Price",
    "Account",
    "Balance",
    "Report",
    "Section",
]


@dataclass(frozen=True)
class Row:
    """One line of the table: ``ratio`` = ours / baseline, compared with ``threshold`` by ``op``."""

    benchmark: str
    ours: float
    baseline: float
    unit: str
    op: Op
    threshold: float = 0.0
    note: str = ""

    @property
    def ratio(self) -> float:
        """ours / baseline (1.0 when both are 0, inf when only the baseline is 0)."""
        if self.baseline == 0:
            return 1.0 if self.ours == 0 else float("inf")
        return self.ours / self.baseline

    @property
    def target(self) -> str:
        """The target as text, e.g. ``ratio >= 0.90``; ``info`` for rows without a target."""
        return "info" if self.op == "info" else f"{self.op} {self.threshold:.2f}"

    @property
    def met(self) -> bool | None:
        """Whether the ratio meets the target (None for info rows)."""
        r = self.ratio
        if self.op == ">=":
            return r >= self.threshold
        if self.op == "<=":
            return r <= self.threshold
        if self.op == "<":
            return r < self.threshold
        return None


@dataclass
class BenchResult:
    """What one benchmark measured: table rows, raw text for its results file, and its wall time."""

    name: str
    rows: list[Row]
    raw: str
    seconds: float = 0.0
    details: dict[str, object] = field(default_factory=dict)


def _num(value: float, unit: str) -> str:
    if value == float("inf"):
        return "inf"
    if unit in ("CER",):
        return f"{value:.4f}"
    if abs(value) >= 1000:
        return f"{value:,.0f} {unit}".strip()
    return f"{value:.3g} {unit}".strip() if abs(value) < 10 else f"{value:.1f} {unit}".strip()


def format_table(rows: Sequence[Row]) -> str:
    """The markdown table of ratios: benchmark | ours | baseline | ratio | target | met?."""
    head = ["benchmark", "ours", "baseline", "ratio", "target", "met?"]
    body = []
    for r in rows:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        ratio = "inf" if r.ratio == float("inf") else f"{r.ratio:.3f}"
        body.append([r.benchmark, _num(r.ours, r.unit), _num(r.baseline, r.unit), ratio, r.target, met])
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep, *(line(b) for b in body)])


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return float(statistics.median(values))


# ---------------------------------------------------------------------------------------------- PDFs
def page_lines(rng: random.Random, n_lines: int, max_chars: int) -> list[str]:
    """``n_lines`` lines of pseudo-random words (and numbers), each at most ``max_chars`` long."""
    lines = []
    for _ in range(n_lines):
        words: list[str] = []
        while True:
            w = rng.choice(_WORDS) if rng.random() > 0.12 else str(rng.randint(1, 99999))
            if len(" ".join([*words, w])) > max_chars:
                break
            words.append(w)
        lines.append(" ".join(words))
    return lines


def make_text_pdf(
    path: Path,
    pages: int,
    *,
    font_size: float = 10.0,
    page_format: str = "letter",
    seed: int = 0,
    fill: float = 1.0,
    ttf: bool = True,
    stride: int = 1,
) -> list[list[str]]:
    """Write a ``pages``-page PDF of text lines (DejaVuSans, or Helvetica with ``ttf=False``) to ``path``.

    Lines fill the printable width and ``fill`` of the printable height (15 mm margins), one every
    ``stride`` line heights (``stride=2`` leaves a blank line between lines: half the text). Returns each
    page's lines: the exact text printed, the ground truth for legibility measurements.
    """
    from fpdf import FPDF

    w_mm, h_mm = PAGE_FORMATS[page_format]
    pdf = FPDF(unit="mm", format=(w_mm, h_mm))
    pdf.set_auto_page_break(False)
    pdf.set_margins(15, 15, 15)
    family = "DejaVu" if ttf else "Helvetica"
    if ttf:
        pdf.add_font("DejaVu", "", str(DEJAVU))
    pdf.set_font(family, size=font_size)
    line_h = font_size * 1.45 * 25.4 / 72  # mm
    n_lines = max(1, int((h_mm - 30) * fill / (line_h * stride)))
    avg_char = pdf.get_string_width("the of and invoice 12345 ") / len("the of and invoice 12345 ")
    max_chars = int((w_mm - 30) / avg_char * 0.95)
    rng = random.Random(seed)
    truth: list[list[str]] = []
    for _ in range(pages):
        pdf.add_page()
        lines = page_lines(rng, n_lines, max_chars)
        while any(pdf.get_string_width(ln) > w_mm - 30 for ln in lines):
            lines = [ln if pdf.get_string_width(ln) <= w_mm - 30 else ln.rsplit(" ", 1)[0] for ln in lines]
        for i, ln in enumerate(lines):
            pdf.set_xy(15, 15 + i * line_h * stride)
            pdf.cell(w_mm - 30, line_h, ln)
        truth.append(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return truth


# ---------------------------------------------------------------------------------------------- server
_SERVER_CODE = """
import json, sys, threading, time
from minimaxvl_tools.testing import LocalVLLMServer
latency, slots = float(sys.argv[1]), sys.argv[2]
# image_check="header": the double reads each image's size from its header instead of decoding it, so the
# benchmark measures the client, not the double's decoding under its one GIL
s = LocalVLLMServer(latency=latency, slots=None if slots == "none" else int(slots), image_check="header")
spans = []  # (slot taken, slot given back) of every chat request, on the machine's monotonic clock
# per chat request, the time around its slot: from the request's headers read to the slot (the body's
# upload by the client, the double's JSON and checks), and from the slot's end to the reply written
reads = []
take, give, lock, here = s._acquire_slot, s._release_slot, threading.Lock(), threading.local()
from minimaxvl_tools.testing.handler import Handler
post = Handler.do_POST
def arrived(handler):
    here.at, here.entry = time.monotonic(), None
    post(handler)
    if here.entry is not None:
        here.entry[1] = time.monotonic() - here.given
Handler.do_POST = arrived
def taken():
    take()
    now = time.monotonic()
    with lock:
        spans.append([now, 0.0])
        here.entry = [now - getattr(here, "at", now), 0.0]
        reads.append(here.entry)
def given():
    with lock:
        here.given = time.monotonic()
        for span in reversed(spans):
            if not span[1]:
                span[1] = here.given
                break
    give()
s._acquire_slot, s._release_slot = taken, given
s.start()
print(s.port, flush=True)
for line in sys.stdin:  # "spans": print them (one JSON line); end of input: stop
    if line.strip() == "spans":
        print(json.dumps(spans), flush=True)
    elif line.strip() == "reads":
        print(json.dumps(reads), flush=True)
s.stop()
"""


@dataclass
class ServerProcess:
    """A :class:`LocalVLLMServer` running in a child process: its port, and its CPU time so far."""

    port: int
    pid: int

    stdin: Any = None
    stdout: Any = None

    def spans(self) -> list[tuple[float, float]]:
        """(start, end) of every chat request's time in a slot so far (``time.monotonic`` seconds, the
        same clock in every process of the machine); end 0.0 while it runs."""
        self.stdin.write("spans\n")
        self.stdin.flush()
        return [(a, b) for a, b in json.loads(self.stdout.readline())]

    def reads(self) -> list[tuple[float, float]]:
        """The time around each chat request's slot (in the order of :meth:`spans`): seconds from its
        headers read to its slot (the body's upload by the client, the double's parsing and checks) and
        from the slot's end to the reply written (0.0 while it runs)."""
        self.stdin.write("reads\n")
        self.stdin.flush()
        return [(a, b) for a, b in json.loads(self.stdout.readline())]

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the child (all its threads), from /proc; 0.0 where unavailable."""
        return process_cpu_seconds(self.pid)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc; 0.0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quantiles_ms(values: list[float]) -> tuple[float, float, float]:
    """Median, 99th percentile and max of ``values`` (seconds) in ms; nan for none."""
    if not values:
        return (float("nan"),) * 3
    v = sorted(values)
    return (1000 * v[len(v) // 2], 1000 * v[int(0.99 * (len(v) - 1))], 1000 * v[-1])


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores, from /proc/stat; 0.0 where
    unavailable): the difference over a run, divided by its wall time, is how many cores it kept busy."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server_process(latency: float = 0.0, slots: int | None = None) -> Iterator[ServerProcess]:
    """Run :class:`LocalVLLMServer` in a child Python process (its CPU is not ours)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER_CODE, str(latency), "none" if slots is None else str(slots)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"the test server did not start (printed {line!r})")
        yield ServerProcess(int(line), proc.pid, proc.stdin, proc.stdout)
    finally:
        with contextlib.suppress(OSError, ValueError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def server_subprocess(latency: float = 0.0, slots: int | None = None) -> Iterator[int]:
    """Run :class:`LocalVLLMServer` in a child Python process (its CPU is not ours); yields its port."""
    with server_process(latency, slots) as server:
        yield server.port


def make_client(port: int, max_concurrency: int = 32) -> MiniMaxVLClient:
    """A MiniMaxVLClient for the local test server on ``port`` (no retries hide failures)."""
    from minimaxvl_tools.client import MiniMaxVLClient

    return MiniMaxVLClient(
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="benchmark",
        model=MODEL,
        max_concurrency=max_concurrency,
        max_model_len=32768,
        max_retries=0,
        timeout=60,
    )


def write_result(result: BenchResult) -> Path:
    """Write ``result``'s raw text and its rows to ``benchmarks/results/<name>.txt``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{result.name}.txt"
    path.write_text(
        f"{result.raw.rstrip()}\n\n{format_table(result.rows)}\n\nwall time {result.seconds:.1f} s\n"
    )
    return path


__all__ = [
    "MODEL",
    "RESULTS_DIR",
    "BenchResult",
    "Row",
    "busy_cpu_seconds",
    "format_table",
    "make_client",
    "make_text_pdf",
    "median",
    "page_lines",
    "server_subprocess",
    "write_result",
]
