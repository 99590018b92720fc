"""Offline OCR with Tesseract: the engine behind the document loader's ``local`` mode.

Why: the loader must work without a GPU, a vLLM endpoint or a model hub (CI, air-gapped laptops, a first
look at a corpus before spending GPU time). Tesseract is small, CPU-only and packaged by every distribution.

How: every call starts its own ``tesseract`` process (through :mod:`pytesseract` when it is installed,
else through :mod:`subprocess` directly), so one :class:`LocalOCREngine` can be shared by threads
without locks. Orientation detection uses Tesseract's OSD mode (``--psm 0``), which needs the ``osd``
traineddata (Debian/Ubuntu package ``tesseract-ocr-osd``); without it :meth:`LocalOCREngine.orientation`
answers ``None`` and callers fall back to image heuristics (see :mod:`minimaxvl_tools.images.quality`).
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from PIL import Image

from .errors import InvalidInputError, MiniMaxVLError

try:  # optional: the ``local`` extra installs it; the subprocess path below works without it
    import pytesseract as _pytesseract
except ImportError:  # pragma: no cover - depends on the environment
    _pytesseract = None

__all__ = [
    "INSTALL_HINT",
    "LocalOCREngine",
    "LocalOCRError",
    "LocalOCRResult",
    "TesseractNotFoundError",
]

INSTALL_HINT = "install tesseract-ocr: apt-get install tesseract-ocr (macOS: brew install tesseract)"
OSD_INSTALL_HINT = "install the orientation data: apt-get install tesseract-ocr-osd"


class LocalOCRError(MiniMaxVLError, RuntimeError):
    """Local (Tesseract) OCR failed: the process errored, timed out or printed unreadable output."""


class TesseractNotFoundError(LocalOCRError):
    """The ``tesseract`` binary is not installed or not on ``PATH``."""


@dataclass(frozen=True)
class LocalOCRResult:
    """Text read by Tesseract from one image.

    ``mean_confidence`` is the mean of Tesseract's per-word confidences (0-100) over recognised words,
    0.0 when no word was found; ``words`` counts those words; ``engine`` names the engine and version
    (e.g. ``"tesseract 5.3.0"``) so stored results say what produced them.
    """

    text: str
    mean_confidence: float
    words: int
    engine: str


def _binary() -> str | None:
    """Path of the tesseract binary (honours ``pytesseract.pytesseract.tesseract_cmd`` when set)."""
    if _pytesseract is not None:
        cmd = str(_pytesseract.pytesseract.tesseract_cmd)
        found = shutil.which(cmd)
        if found:
            return found
    return shutil.which("tesseract")


@functools.lru_cache(maxsize=4)
def _version(binary: str) -> str:
    """``"5.3.0"`` style version of ``binary`` (cached: the binary does not change within a process)."""
    try:
        proc = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:  # pragma: no cover - broken install
        raise LocalOCRError(f"could not run {binary!r} --version: {exc}; {INSTALL_HINT}") from exc
    out = (proc.stdout or "") + (proc.stderr or "")
    match = re.search(r"tesseract\s+v?(\d+(?:\.\d+)*\S*)", out)
    return match.group(1) if match else "unknown"


@functools.lru_cache(maxsize=4)
def _languages(binary: str) -> frozenset[str]:
    """Traineddata names installed for ``binary`` (``tesseract --list-langs``)."""
    try:
        proc = subprocess.run(
            [binary, "--list-langs"], capture_output=True, text=True, timeout=15, check=False
        )
    except (OSError, subprocess.TimeoutExpired):  # pragma: no cover - broken install
        return frozenset()
    lines = ((proc.stdout or "") + "\n" + (proc.stderr or "")).splitlines()
    return frozenset(
        line.strip() for line in lines if line.strip() and not line.lower().startswith("list of")
    )


def _subprocess_env() -> dict[str, str]:
    # One OpenMP thread: for page-sized images Tesseract's multithreading costs more than it saves,
    # and callers parallelise across pages themselves.
    env = dict(os.environ)
    env.setdefault("OMP_THREAD_LIMIT", "1")
    return env


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _osd_size(image: Image.Image, low: int = 1600, target: int = 2000, high: int = 2400) -> Image.Image:
    """Scale a page so its long side is ~``target`` px when outside ``[low, high]``.

    OSD refuses pages whose glyphs look too small ("Too few characters") and gets slow on huge scans;
    an A4 page at ~170-200 DPI suits it best (measured: a 620x877 page with 18 px text fails OSD when
    rotated, and reads at confidence 5-14 once upscaled 2x). Upscaling is capped at 3x.
    """
    long_side = max(image.size)
    if low <= long_side <= high:
        return image
    scale = min(3.0, target / long_side)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.LANCZOS)


class LocalOCREngine:
    """Tesseract OCR, one process per call (thread-safe; no shared mutable state).

    Args:
        lang: Tesseract language(s), e.g. ``"eng"`` or ``"eng+deu"``; each needs its traineddata.
        psm: page segmentation mode (3 = automatic layout, 6 = one uniform block, 11 = sparse text).
        oem: OCR engine mode (``None`` = Tesseract's default, the LSTM engine in Tesseract 4+).
        timeout: seconds one call may take before it is killed (:class:`LocalOCRError`).
    """

    def __init__(self, lang: str = "eng", psm: int = 3, oem: int | None = None, timeout: float = 60) -> None:
        if not lang or not re.fullmatch(r"[A-Za-z0-9_+\-]+", lang):
            raise InvalidInputError(
                f"lang={lang!r} is not a Tesseract language list such as 'eng' or 'eng+deu'"
            )
        if not 0 <= psm <= 13:
            raise InvalidInputError(f"psm={psm} is out of range: Tesseract page segmentation modes are 0-13")
        if oem is not None and not 0 <= oem <= 3:
            raise InvalidInputError(f"oem={oem} is out of range: Tesseract engine modes are 0-3")
        if timeout <= 0:
            raise InvalidInputError(f"timeout={timeout} must be positive (seconds)")
        self.lang = lang
        self.psm = psm
        self.oem = oem
        self.timeout = float(timeout)
        self.use_pytesseract = _pytesseract is not None

    def __repr__(self) -> str:
        return f"LocalOCREngine(lang={self.lang!r}, psm={self.psm}, oem={self.oem}, timeout={self.timeout})"

    # ------------------------------------------------------------------ discovery
    @staticmethod
    def available() -> bool:
        """True when the ``tesseract`` binary can be found (cheap: no process is started)."""
        return _binary() is not None

    @staticmethod
    def osd_available() -> bool:
        """True when Tesseract and its ``osd`` traineddata (orientation detection) are installed."""
        binary = _binary()
        return binary is not None and "osd" in _languages(binary)

    @staticmethod
    def languages() -> frozenset[str]:
        """Installed Tesseract languages (empty when Tesseract is missing)."""
        binary = _binary()
        return _languages(binary) if binary else frozenset()

    def _require_binary(self) -> str:
        binary = _binary()
        if binary is None:
            raise TesseractNotFoundError(
                f"local OCR needs the tesseract binary, which was not found; {INSTALL_HINT}"
            )
        return binary

    @property
    def engine_name(self) -> str:
        """``"tesseract <version>"`` (raises :class:`TesseractNotFoundError` when missing)."""
        return f"tesseract {_version(self._require_binary())}"

    # ------------------------------------------------------------------ OCR
    def _config(self) -> list[str]:
        args = ["--psm", str(self.psm)]
        if self.oem is not None:
            args += ["--oem", str(self.oem)]
        return args

    def _check_lang(self, binary: str) -> None:
        installed = _languages(binary)
        missing = [code for code in self.lang.split("+") if installed and code not in installed]
        if missing:
            raise LocalOCRError(
                f"Tesseract language data {missing} is not installed (installed: {sorted(installed)}); "
                f"install it, e.g. apt-get install tesseract-ocr-{missing[0]}"
            )

    def _run(self, binary: str, image: Image.Image, args: list[str]) -> str:
        """Run ``tesseract stdin stdout <args>`` on ``image`` and return stdout."""
        cmd = [binary, "stdin", "stdout", *args]
        try:
            proc = subprocess.run(
                cmd,
                input=_png_bytes(image),
                capture_output=True,
                timeout=self.timeout,
                env=_subprocess_env(),
                check=False,
            )
        except FileNotFoundError as exc:
            raise TesseractNotFoundError(f"could not start {binary!r}: {exc}; {INSTALL_HINT}") from exc
        except subprocess.TimeoutExpired as exc:
            raise LocalOCRError(
                f"tesseract took longer than timeout={self.timeout:g}s on a "
                f"{image.width}x{image.height} image; raise the timeout or downscale the page"
            ) from exc
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise LocalOCRError(
                f"tesseract failed (exit {proc.returncode}) with {' '.join(args)}: {err[-500:]}"
            )
        return proc.stdout.decode("utf-8", "replace")

    def _data(self, binary: str, image: Image.Image) -> dict[str, list[Any]]:
        """Word-level TSV data as a dict of columns (pytesseract's ``Output.DICT`` layout)."""
        config = self._config()
        if self.use_pytesseract and _pytesseract is not None:
            try:
                return _pytesseract.image_to_data(
                    image,
                    lang=self.lang,
                    config=" ".join(config),
                    timeout=self.timeout,
                    output_type=_pytesseract.Output.DICT,
                )
            except _pytesseract.TesseractNotFoundError as exc:
                raise TesseractNotFoundError(f"tesseract not found: {exc}; {INSTALL_HINT}") from exc
            except _pytesseract.TesseractError as exc:
                raise LocalOCRError(f"tesseract failed: {exc}") from exc
            except RuntimeError as exc:  # pytesseract signals its timeout this way
                if "timeout" in str(exc).lower():
                    raise LocalOCRError(
                        f"tesseract took longer than timeout={self.timeout:g}s on a "
                        f"{image.width}x{image.height} image; raise the timeout or downscale the page"
                    ) from exc
                raise LocalOCRError(f"tesseract failed: {exc}") from exc
        out = self._run(binary, image, ["-l", self.lang, *config, "tsv"])
        rows = list(csv.reader(io.StringIO(out), delimiter="\t", quoting=csv.QUOTE_NONE))
        if not rows:
            return {"text": [], "conf": []}
        header, body = rows[0], rows[1:]
        columns: dict[str, list[Any]] = {name: [] for name in header}
        for row in body:
            row = (row + [""] * len(header))[: len(header)]
            for name, value in zip(header, row, strict=True):
                columns[name].append(value)
        return columns

    def ocr(self, image: Image.Image) -> LocalOCRResult:
        """Read the text of ``image``.

        Lines are joined with ``\\n`` and paragraphs/blocks separated by a blank line, following
        Tesseract's layout analysis; confidence is computed from the same run (one process per call).

        Raises:
            TesseractNotFoundError: the binary is missing (message says how to install it).
            LocalOCRError: Tesseract failed or timed out.
            InvalidInputError: ``image`` is not a PIL image or is empty.
        """
        if not isinstance(image, Image.Image):
            raise InvalidInputError(f"ocr() needs a PIL.Image.Image, got {type(image).__name__}")
        if image.width < 1 or image.height < 1:
            raise InvalidInputError(f"cannot OCR an empty {image.width}x{image.height} image")
        binary = self._require_binary()
        self._check_lang(binary)
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        data = self._data(binary, image)
        return self._assemble(data)

    def _assemble(self, data: dict[str, list[Any]]) -> LocalOCRResult:
        texts = data.get("text", [])
        confs = data.get("conf", [])
        blocks = data.get("block_num", [0] * len(texts))
        pars = data.get("par_num", [0] * len(texts))
        lines = data.get("line_num", [0] * len(texts))
        out_lines: list[str] = []
        current: list[str] = []
        key: tuple[str, str, str] | None = None
        scores: list[float] = []
        for i, raw in enumerate(texts):
            word = str(raw).strip()
            if not word:
                continue
            try:
                conf = float(confs[i])
            except (TypeError, ValueError, IndexError):
                conf = -1.0
            if conf < 0:  # structural rows (page/block/line) carry conf -1
                continue
            this = (str(blocks[i]), str(pars[i]), str(lines[i]))
            if key is not None and this != key:
                out_lines.append(" ".join(current))
                if this[:2] != key[:2]:
                    out_lines.append("")
                current = []
            key = this
            current.append(word)
            scores.append(conf)
        if current:
            out_lines.append(" ".join(current))
        text = "\n".join(out_lines).strip()
        mean = sum(scores) / len(scores) if scores else 0.0
        return LocalOCRResult(
            text=text, mean_confidence=round(mean, 2), words=len(scores), engine=self.engine_name
        )

    # ------------------------------------------------------------------ orientation
    def orientation(self, image: Image.Image) -> int | None:
        """Degrees (0/90/180/270) the page is rotated **clockwise**, from Tesseract OSD.

        Rotating the image counter-clockwise by the answer (``image.rotate(answer, expand=True)``)
        makes the text upright. Returns ``None`` when the ``osd`` traineddata is not installed
        (``apt-get install tesseract-ocr-osd``), when the page has too little text for OSD, or when
        OSD's confidence is below 1.0 (Tesseract's own guidance for an unreliable answer).
        """
        result = self.orientation_details(image)
        return None if result is None else result[0]

    def orientation_details(self, image: Image.Image) -> tuple[int, float] | None:
        """``(degrees clockwise, OSD orientation confidence)`` or ``None`` (see :meth:`orientation`)."""
        if not isinstance(image, Image.Image):
            raise InvalidInputError(f"orientation() needs a PIL.Image.Image, got {type(image).__name__}")
        binary = self._require_binary()
        if "osd" not in _languages(binary):
            return None
        image = _osd_size(image.convert("L"))
        try:
            out = self._run(binary, image, ["--psm", "0", "-l", "osd"])
        except LocalOCRError as exc:
            if isinstance(exc, TesseractNotFoundError):
                raise
            return None  # "Too few characters" and similar: no reliable answer
        degrees = re.search(r"Orientation in degrees:\s*(\d+)", out)
        conf = re.search(r"Orientation confidence:\s*([\d.]+)", out)
        if degrees is None:
            return None
        value = int(degrees.group(1)) % 360
        confidence = float(conf.group(1)) if conf else 0.0
        if value not in (0, 90, 180, 270) or confidence < 1.0:
            return None
        return value, confidence
