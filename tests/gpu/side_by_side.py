"""One side of the side-by-side throughput comparison (``test_throughput_side_by_side``): ``ours`` (our
client's ``achat``) or ``plain`` (an ``AsyncOpenAI`` loop under a semaphore) sends ``n`` requests at
``concurrency`` to a live server, starting at the wall-clock time ``start_at``, and prints as JSON the
wall-clock time it started and the time each request finished. The test runs both sides at once, in two
processes, so that both meet the same server state: sequential runs of one and then the other differ by
the server's drift.

    python tests/gpu/side_by_side.py ours|plain BASE_URL MODEL N CONCURRENCY START_AT
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from PIL import Image, ImageDraw


def _img(w: int, h: int) -> Image.Image:
    """The throughput test's image (tests/gpu/test_real_vllm.py ``_img`` with seed 0)."""
    im = Image.new("RGB", (w, h), (250, 250, 245))
    d = ImageDraw.Draw(im)
    for i in range(0, max(w, h), 97):
        d.line((i, 0, 0, i), fill=(i % 255, 90, 160), width=3)
    return im


Times = dict[str, "float | list[float]"]


async def ours_loop(client: Any, enc: Any, n: int, start_at: float = 0.0) -> Times:
    """``n`` calls of ``client.achat`` at once (the client's limiter keeps its concurrency)."""
    done: list[float] = []

    async def one(i: int) -> None:
        await client.achat(f"q{i}", [enc], max_tokens=16, temperature=0.0, extra_body={"ignore_eos": True})
        done.append(time.time())

    await asyncio.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    await asyncio.gather(*[one(i) for i in range(n)])
    return {"started": started, "done": done}


async def plain_loop(
    base_url: str, model: str, system: str, enc: Any, n: int, conc: int, start_at: float = 0.0
) -> Times:
    """The same ``n`` requests through a fresh ``AsyncOpenAI`` under a semaphore of ``conc``."""
    import openai

    oc = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0)
    sem = asyncio.Semaphore(conc)
    done: list[float] = []

    async def one(i: int) -> None:
        async with sem:
            await oc.chat.completions.create(
                model=model,
                max_tokens=16,
                temperature=0.0,
                extra_body={"ignore_eos": True},
                messages=[
                    {"role": "system", "content": [{"type": "text", "text": system}]},
                    {"role": "user", "content": [enc.to_part(), {"type": "text", "text": f"q{i}"}]},
                ],
            )
        done.append(time.time())

    await asyncio.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    await asyncio.gather(*[one(i) for i in range(n)])
    await oc.close()
    return {"started": started, "done": done}


async def _side(side: str, base_url: str, model: str, n: int, conc: int, start_at: float) -> Times:
    from minimaxvl_tools import MiniMaxVLClient, Settings
    from minimaxvl_tools.images.encode import encode_image

    settings = Settings(base_url=base_url, model=model, timeout=120, max_retries=3, max_concurrency=conc)
    client = MiniMaxVLClient(settings)
    enc = encode_image(_img(640, 480))
    if side == "plain":
        return await plain_loop(base_url, model, client.system_prompt or "", enc, n, conc, start_at)
    await client.amax_model_len()  # the test's shared client has it cached by the time the test runs
    try:
        return await ours_loop(client, enc, n, start_at)
    finally:
        await client.aclose()


def main(argv: list[str]) -> None:
    side, base_url, model, n, conc, start_at = argv
    print(json.dumps(asyncio.run(_side(side, base_url, model, int(n), int(conc), float(start_at)))))


if __name__ == "__main__":
    main(sys.argv[1:])
