"""Client overhead: end-to-end pages/s through OCRTool vs the server's ideal, and client CPU per page.

Throughput: :class:`~minimaxvl_tools.tools.ocr.OCRTool` (async ``_arun``, client ``max_concurrency`` 32,
``fix_rotation=False``) transcribes a letter-size PDF rendered at 200 dpi against :class:`LocalVLLMServer`
running in a CHILD process (so its CPU is not the client's) with a fixed 1.0 s per request and 32 slots.
Each page is one request (``tile=False``; checked with :func:`pages.plan_page`), so the ideal is 32
pages/s; the ratio is pages / wall time over that. Target >= 0.95.

For information: the same tool with ``fix_rotation=True`` (its default: an image-only check per page,
Tesseract only on suspect pages; see ``benchmarks/rotation.py``) on fewer pages, and the same number of
requests carrying one pre-encoded page image sent three ways at the same concurrency: through ``achat``
(our client: transport and test-double cost without any page work), through a plain ``AsyncOpenAI`` loop
(the SDK alone, what our client builds on), and as pre-serialised bytes over raw asyncio sockets (the
ceiling the test double itself allows). The double reads image sizes from headers
(``image_check="header"``), so what these rows measure is the sending side.

CPU: :func:`time.process_time` over a synchronous pass without network, per page: render
(``iter_pdf_pages``) -> ``plan_page`` -> ``encode_page`` -> ``client.build_messages``. Target <= 40 ms at
200 dpi. The same pass for the tiled plan (crops cut and encoded) is reported for information.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import MODEL, BenchResult, Row, make_client, make_text_pdf, server_process, server_subprocess

LATENCY = 1.0
SLOTS = 32
CONCURRENCY = 32
DPI = 200
CPU_BUDGET_MS = 40.0


def cpu_per_page(pdf: Path, *, tiled: bool = False, dpi: int = DPI) -> tuple[float, int, dict[str, float]]:
    """Client CPU seconds per page with no network: (total s/page, pages, s/page per stage).

    Stages: ``render`` (iter_pdf_pages), ``plan`` (plan_page), ``encode`` (encode_page: fit + JPEG; or cut
    crops + encode each for the tiled plan), ``build`` (client.build_messages).
    """
    from minimaxvl_tools.client import MiniMaxVLClient
    from minimaxvl_tools.images.encode import encode_image
    from minimaxvl_tools.images.tiling import cut_tiles
    from minimaxvl_tools.pages import encode_page, plan_page, single_fit
    from minimaxvl_tools.pdf import iter_pdf_pages
    from minimaxvl_tools.prompts import ocr as ocr_prompts

    client = MiniMaxVLClient(base_url="http://127.0.0.1:9/v1", api_key="x", model="m", max_model_len=32768)
    system = ocr_prompts.system_prompt(plain=False)
    prompt = ocr_prompts.page_prompt(plain=False)
    stages = dict.fromkeys(("render", "plan", "encode", "build"), 0.0)
    n = 0
    clock = time.process_time
    start = mark = clock()
    tile: Any = "auto" if tiled else False
    # as OCRTool does: a page sent as one image is rendered straight at the size sent (fit hook)
    for page in iter_pdf_pages(pdf, dpi=dpi, fit=single_fit(tile)):
        image = page.image
        assert image is not None
        now = clock()
        stages["render"] += now - mark
        plan = plan_page(image.width, image.height, tile=tile)
        mark, now = now, clock()
        stages["plan"] += now - mark
        if plan.mode == "tiles":
            assert plan.tiles is not None
            scaled = image if image.size == plan.tiles.page else image.resize(plan.tiles.page)
            encs = [encode_image(crop) for crop, _ in cut_tiles(scaled, plan.tiles)]
        else:
            encs = [encode_page(image)]
        mark, now = now, clock()
        stages["encode"] += now - mark
        for enc in encs:
            client.build_messages(prompt, [enc], system=system)
        mark, now = now, clock()
        stages["build"] += now - mark
        mark = clock()
        n += 1
    total = clock() - start
    client.close()
    n = max(1, n)
    return total / n, n, {k: v / n for k, v in stages.items()}


async def _transport(port: int, pdf: Path | None, pages: int) -> float:
    """Wall seconds for ``pages`` achat calls carrying one pre-encoded page image (no render, no encode);
    with ``pdf=None`` a blank 336x336 image (~2 KB) instead: the client + test-double floor."""
    from PIL import Image

    from minimaxvl_tools.images.encode import encode_image
    from minimaxvl_tools.pages import encode_page
    from minimaxvl_tools.pdf import render_page

    if pdf is None:
        enc = encode_image(Image.new("RGB", (336, 336), "white"))
    else:
        image = render_page(pdf, 1, dpi=DPI).image
        assert image is not None
        enc = encode_page(image)
    client = make_client(port, CONCURRENCY)
    await client.achat("warm up", [], max_tokens=8)
    t0 = time.perf_counter()
    await asyncio.gather(*(client.achat("Transcribe.", [enc], max_tokens=64) for _ in range(pages)))
    wall = time.perf_counter() - t0
    await client.aclose()
    return wall


def _page_messages(pdf: Path) -> list[dict[str, Any]]:
    """The chat messages of one pre-encoded page as our client sends them."""
    from minimaxvl_tools.pages import encode_page
    from minimaxvl_tools.pdf import render_page

    image = render_page(pdf, 1, dpi=DPI).image
    assert image is not None
    client = make_client(9, CONCURRENCY)
    messages = client.build_messages("Transcribe.", [encode_page(image)])
    client.close()
    return messages


async def _plain_sdk(port: int, pdf: Path, pages: int) -> float:
    """Wall seconds for ``pages`` requests of one pre-encoded page through a plain ``AsyncOpenAI`` loop
    (``CONCURRENCY`` at a time): the SDK's own cost, without our client around it."""
    import openai

    messages = _page_messages(pdf)
    sdk = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="benchmark", max_retries=0)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(msgs: Any, max_tokens: int) -> None:
        async with gate:
            await sdk.chat.completions.create(model=MODEL, messages=msgs, max_tokens=max_tokens)

    await one([{"role": "user", "content": "warm up"}], 8)
    t0 = time.perf_counter()
    await asyncio.gather(*(one(messages, 64) for _ in range(pages)))
    wall = time.perf_counter() - t0
    await sdk.close()
    return wall


async def _raw_http(port: int, pdf: Path, pages: int) -> float:
    """Wall seconds for ``pages`` pre-serialised page requests over ``CONCURRENCY`` keep-alive asyncio
    connections (no SDK, no JSON encoding per request): the most the test double lets a client reach."""
    body = json.dumps({"model": MODEL, "messages": _page_messages(pdf), "max_tokens": 64}).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    left = [pages]

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while left[0] > 0:
            left[0] -= 1
            writer.write(head + body)
            await writer.drain()
            headers = await reader.readuntil(b"\r\n\r\n")
            if not headers.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"raw request failed: {headers[:80]!r}")
            length = next(
                int(line.split(b":")[1])
                for line in headers.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(CONCURRENCY)))
    return time.perf_counter() - t0


async def _throughput(
    pdf: Path, port: int, pages: int, *, fix_rotation: bool = False
) -> tuple[float, dict[str, Any]]:
    """Wall seconds and page/request counts of one ``OCRTool._arun`` over the first ``pages`` pages."""
    from minimaxvl_tools.page_workers import default_workers
    from minimaxvl_tools.tools.ocr import OCRTool

    client = make_client(port, CONCURRENCY)
    extra: dict[str, Any] = {}
    if "fix_rotation" in OCRTool.model_fields:
        extra["fix_rotation"] = fix_rotation
    tool = OCRTool(client=client, allowed_roots=[pdf.parent], max_pages=pages, tile=False, **extra)
    # connection, /v1/models, the tool's lazy imports and the page-worker pool (jobs of 8+ pages use it,
    # its processes start on first use) outside the window
    await tool._arun(str(pdf), pages=f"1-{min(pages, max(8, 2 * default_workers()))}")
    t0, c0 = time.perf_counter(), time.process_time()
    _, result = await tool._arun(str(pdf), pages=f"1-{pages}")
    wall = time.perf_counter() - t0
    client_cpu = time.process_time() - c0
    await client.aclose()
    statuses = [p.status for p in result.pages]
    info = {
        "wall_s": wall,
        "pages": len(result.pages),
        "requests": sum(p.requests for p in result.pages),
        "ok": statuses.count("ok"),
        "client_cpu_s": client_cpu,
    }
    return wall, info


def run(
    quick: bool = False,
    *,
    pages: int | None = None,
    cpu_pages: int | None = None,
    rotation_pages: int | None = None,
) -> BenchResult:
    """Measure OCRTool throughput against the 1 s / 32-slot server and the client's CPU per page."""
    from minimaxvl_tools.pages import plan_page
    from minimaxvl_tools.pdf import render_page

    logging.getLogger("minimaxvl_tools").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    pages = pages or (64 if quick else 160)
    cpu_pages = cpu_pages or (5 if quick else 20)
    rotation_pages = rotation_pages if rotation_pages is not None else (4 if quick else 16)
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "overhead.pdf"
        make_text_pdf(pdf, pages, font_size=10, page_format="letter", ttf=False)
        first = render_page(pdf, 1, dpi=DPI)
        assert first.image is not None
        w, h = first.image.size
        plan = plan_page(w, h, tile=False)
        assert plan.requests == 1, f"page {w}x{h} needs {plan.requests} requests with tile=False"
        auto = plan_page(w, h)
        with server_process(latency=LATENCY, slots=SLOTS) as server:
            s0 = server.cpu_seconds()
            wall, info = asyncio.run(_throughput(pdf, server.port, pages))
            server_cpu = server.cpu_seconds() - s0
        with server_subprocess(latency=LATENCY, slots=SLOTS) as port:
            transport_wall = asyncio.run(_transport(port, pdf, pages))
        with server_subprocess(latency=LATENCY, slots=SLOTS) as port:
            floor_wall = asyncio.run(_transport(port, None, pages))
        with server_subprocess(latency=LATENCY, slots=SLOTS) as port:
            sdk_wall = asyncio.run(_plain_sdk(port, pdf, pages))
        with server_subprocess(latency=LATENCY, slots=SLOTS) as port:
            raw_wall = asyncio.run(_raw_http(port, pdf, pages))
        rot_wall = 0.0
        if rotation_pages:
            with server_subprocess(latency=LATENCY, slots=SLOTS) as port:
                rot_wall, _ = asyncio.run(_throughput(pdf, port, rotation_pages, fix_rotation=True))
        cpu_pdf = Path(tmp) / "cpu.pdf"
        make_text_pdf(cpu_pdf, cpu_pages, font_size=10, page_format="letter", ttf=False)
        cpu_single, n, stages = cpu_per_page(cpu_pdf)
        cpu_tiled, _, stages_tiled = cpu_per_page(cpu_pdf, tiled=True)
    if info["ok"] != pages or info["requests"] != pages:
        raise RuntimeError(f"throughput run is not valid: {info}")
    ideal = SLOTS / LATENCY
    rate = pages / wall
    raw = "\n".join(
        [
            f"OCRTool._arun, {pages} letter pages at {DPI} dpi ({w}x{h} px, tile=False: 1 request/page; "
            f"the size-only auto plan would send {auto.requests} crops), max_concurrency {CONCURRENCY}",
            f"server (child process): latency {LATENCY} s/request, {SLOTS} slots "
            f"-> ideal {ideal:.1f} pages/s",
            f"wall {wall:.2f} s for {info['pages']} pages / {info['requests']} requests ({info['ok']} ok) "
            f"-> {rate:.2f} pages/s = {rate / ideal:.3f} of ideal (ideal wall {pages / ideal:.2f} s)",
            f"CPU during that run (all threads): client {info['client_cpu_s'] / pages * 1000:.1f} ms/page, "
            f"test-double server {server_cpu / pages * 1000:.1f} ms/page -> at the ideal 32 pages/s they "
            f"would need {(info['client_cpu_s'] + server_cpu) / pages * ideal:.2f} of this machine's "
            f"{os.cpu_count()} cores (a real vLLM server runs on its own machine)",
            f"same {pages} requests with one pre-encoded page image (achat only, no render/encode): wall "
            f"{transport_wall:.2f} s -> {pages / transport_wall:.2f} req/s "
            f"= {pages / transport_wall / ideal:.3f} of ideal",
            f"same {pages} requests with a blank 336x336 image (~2 KB: client + test double, no payload): "
            f"wall {floor_wall:.2f} s -> {pages / floor_wall:.2f} req/s "
            f"= {pages / floor_wall / ideal:.3f} of ideal",
            f"same {pages} page requests through a plain AsyncOpenAI loop (the SDK alone): wall "
            f"{sdk_wall:.2f} s -> {pages / sdk_wall:.2f} req/s = {pages / sdk_wall / ideal:.3f} of ideal; "
            f"achat / plain SDK = {sdk_wall / transport_wall:.3f}",
            f"same {pages} page requests pre-serialised over raw sockets (the test double's ceiling): wall "
            f"{raw_wall:.2f} s -> {pages / raw_wall:.2f} req/s = {pages / raw_wall / ideal:.3f} of ideal",
            f"OCRTool with fix_rotation=True (default: Tesseract on suspect pages), {rotation_pages} "
            f"pages: wall {rot_wall:.2f} s -> {rotation_pages / rot_wall if rot_wall else 0:.2f} pages/s",
            f"client CPU per page over {n} pages (render+plan+encode_page+build_messages): "
            f"{cpu_single * 1000:.1f} ms = " + " + ".join(f"{k} {v * 1000:.1f}" for k, v in stages.items()),
            f"client CPU per page, tiled plan ({auto.requests} crops cut+encoded): "
            f"{cpu_tiled * 1000:.1f} ms = "
            + " + ".join(f"{k} {v * 1000:.1f}" for k, v in stages_tiled.items()),
        ]
    )
    rows = [
        Row("overhead: OCRTool pages/s vs ideal (1 s, 32 slots)", rate, ideal, "pages/s", ">=", 0.95),
        Row(
            "overhead: OCRTool with fix_rotation=True (info)",
            rotation_pages / rot_wall if rot_wall else 0.0,
            ideal,
            "pages/s",
            "info",
        ),
        Row("overhead: achat only, pre-encoded page (info)", pages / transport_wall, ideal, "req/s", "info"),
        Row("overhead: achat only, 336 px blank image (info)", pages / floor_wall, ideal, "req/s", "info"),
        Row("overhead: plain AsyncOpenAI, pre-encoded page (info)", pages / sdk_wall, ideal, "req/s", "info"),
        Row("overhead: raw sockets, pre-encoded page (info)", pages / raw_wall, ideal, "req/s", "info"),
        Row("overhead: client CPU/page vs 40 ms budget", cpu_single * 1000, CPU_BUDGET_MS, "ms", "<=", 1.0),
        Row("overhead: client CPU/page, tiled plan (info)", cpu_tiled * 1000, CPU_BUDGET_MS, "ms", "info"),
    ]
    details = {
        "wall_s": wall,
        "pages_per_s": rate,
        "transport_req_per_s": pages / transport_wall,
        "floor_req_per_s": pages / floor_wall,
        "plain_sdk_req_per_s": pages / sdk_wall,
        "raw_http_req_per_s": pages / raw_wall,
        "cpu_ms": cpu_single * 1000,
        "run_client_cpu_ms_per_page": info["client_cpu_s"] / pages * 1000,
        "run_server_cpu_ms_per_page": server_cpu / pages * 1000,
        "cpu_tiled_ms": cpu_tiled * 1000,
    }
    return BenchResult("overhead", rows, raw, time.perf_counter() - t0, details)
