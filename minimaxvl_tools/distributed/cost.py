"""Cost model for a large ingest: tokens, GPU-hours, wall time and client machines for N replicas.

The per-page figures default to what the benchmarks measured (``benchmarks/results/``, see
``docs/scale.md``); the server's throughput is the user's own measurement (vLLM's
``vllm:prompt_tokens_total`` and ``vllm:generation_tokens_total`` rates under load, or pages/s of a
replica), because it depends on the GPUs, the parallelism and the batch the deployment runs.

``python -m minimaxvl_tools.distributed.cost --replicas 4 --prefill-tps 60000 --decode-tps 4000`` prints
the table for a million pages.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

IMAGE_TOKENS_ONE_IMAGE = 7858
"""tokens.txt: one image per page, mean over 9 letter/A4 pages at 200 dpi (server-exact token count)."""
IMAGE_TOKENS_OUR_PLAN = 13005
"""tokens.txt: our plan (crops where small print needs them), mean over the same 9 pages (6-14 pt)."""
REQUESTS_OUR_PLAN = 16 / 9
"""tokens.txt: our plan sent 16 images for 9 pages (one image per request)."""
TEXT_TOKENS_PER_REQUEST = 210
"""System + page prompt (832 characters, prompts/ocr.py) at about 4 characters a token, plus the chat
template; an estimate, small next to the image."""
DECODE_TOKENS_PER_PAGE = 1142
"""A full letter page of 10 pt text (4,568 characters, the benchmarks' page generator) at about 4
characters a token: the dense end; sparse pages cost less. Replace with your ``usage.completion_tokens``."""
CLIENT_CPU_MS_PER_PAGE = 21.2
"""overhead.txt: client CPU per page, all threads (render, plan, encode, HTTP, JSON), 1 request a page."""


@dataclass(frozen=True)
class CostEstimate:
    """The model's inputs and what follows from them (tokens, GPU time, wall time, client machines)."""

    pages: int
    replicas: int
    gpus_per_replica: int
    requests: float
    prefill_tokens: float
    decode_tokens: float
    replica_pages_per_s: float
    wall_hours: float
    gpu_hours: float
    client_cores: float
    client_machines: int

    def table(self) -> str:
        """The estimate as a markdown table."""
        rows = [
            ("pages", f"{self.pages:,}"),
            ("requests", f"{self.requests:,.0f}"),
            ("prefill tokens", f"{self.prefill_tokens:,.0f}"),
            ("decode tokens", f"{self.decode_tokens:,.0f}"),
            ("pages/s per replica", f"{self.replica_pages_per_s:,.2f}"),
            (f"wall time, {self.replicas} replica(s)", f"{self.wall_hours:,.1f} h"),
            (f"GPU-hours ({self.gpus_per_replica} GPUs a replica)", f"{self.gpu_hours:,.0f}"),
            ("client CPU cores busy", f"{self.client_cores:,.1f}"),
            ("client machines", f"{self.client_machines}"),
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"| {'quantity'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
        lines += [f"| {k.ljust(width)} | {v} |" for k, v in rows]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, float]:
        """The estimate as a dict."""
        return asdict(self)


def estimate(
    *,
    pages: int = 1_000_000,
    replicas: int = 1,
    gpus_per_replica: int = 8,
    prefill_tokens_per_s: float | None = None,
    decode_tokens_per_s: float | None = None,
    replica_pages_per_s: float | None = None,
    image_tokens_per_page: float = IMAGE_TOKENS_ONE_IMAGE,
    requests_per_page: float = 1.0,
    text_tokens_per_request: float = TEXT_TOKENS_PER_REQUEST,
    decode_tokens_per_page: float = DECODE_TOKENS_PER_PAGE,
    client_cpu_ms_per_page: float = CLIENT_CPU_MS_PER_PAGE,
    cores_per_client_machine: int = 16,
    client_utilization: float = 0.75,
) -> CostEstimate:
    """Tokens, GPU-hours, wall time and client machines for ``pages`` pages on ``replicas`` replicas.

    A replica's speed is either ``replica_pages_per_s`` (measured end to end) or derived from its measured
    ``prefill_tokens_per_s`` and ``decode_tokens_per_s`` with prefill and decode sharing the GPUs (time per
    page = prefill tokens / prefill rate + decode tokens / decode rate: conservative, since vLLM overlaps
    them in one batch). Client machines keep ``replicas x pages/s`` pages going at
    ``client_cpu_ms_per_page`` with ``client_utilization`` of ``cores_per_client_machine`` cores (one
    process per core: ``workers`` or Ray tasks).
    """
    if pages < 1 or replicas < 1 or gpus_per_replica < 1:
        raise ValueError("pages, replicas and gpus_per_replica must be >= 1")
    if not 0 < client_utilization <= 1:
        raise ValueError("client_utilization must be in (0, 1]")
    prefill_per_page = image_tokens_per_page + requests_per_page * text_tokens_per_request
    if replica_pages_per_s is None:
        if not prefill_tokens_per_s or not decode_tokens_per_s:
            raise ValueError(
                "give the replica's measured speed: replica_pages_per_s, or prefill_tokens_per_s and "
                "decode_tokens_per_s (from vLLM's /metrics under load)"
            )
        seconds_per_page = (
            prefill_per_page / prefill_tokens_per_s + decode_tokens_per_page / decode_tokens_per_s
        )
        replica_pages_per_s = 1.0 / seconds_per_page
    if replica_pages_per_s <= 0:
        raise ValueError("replica_pages_per_s must be positive")
    rate = replica_pages_per_s * replicas
    wall_hours = pages / rate / 3600
    client_cores = rate * client_cpu_ms_per_page / 1000
    return CostEstimate(
        pages=pages,
        replicas=replicas,
        gpus_per_replica=gpus_per_replica,
        requests=pages * requests_per_page,
        prefill_tokens=pages * prefill_per_page,
        decode_tokens=pages * decode_tokens_per_page,
        replica_pages_per_s=replica_pages_per_s,
        wall_hours=wall_hours,
        gpu_hours=wall_hours * replicas * gpus_per_replica,
        client_cores=client_cores,
        client_machines=max(1, math.ceil(client_cores / (cores_per_client_machine * client_utilization))),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the estimate for the command-line inputs."""
    p = argparse.ArgumentParser(prog="python -m minimaxvl_tools.distributed.cost", description=__doc__)
    p.add_argument("--pages", type=int, default=1_000_000)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--gpus-per-replica", type=int, default=8)
    # each option's dest is the estimate() parameter it sets
    p.add_argument(
        "--prefill-tps",
        dest="prefill_tokens_per_s",
        metavar="PREFILL_TPS",
        type=float,
        help="measured prompt tokens/s of one replica",
    )
    p.add_argument(
        "--decode-tps",
        dest="decode_tokens_per_s",
        metavar="DECODE_TPS",
        type=float,
        help="measured generation tokens/s of one replica",
    )
    p.add_argument("--replica-pages-per-s", type=float, help="measured pages/s of one replica")
    p.add_argument("--small-print", action="store_true", help="our plan's tokens and requests (tokens.txt)")
    p.add_argument("--decode-tokens-per-page", type=float, default=DECODE_TOKENS_PER_PAGE)
    p.add_argument(
        "--client-cpu-ms",
        dest="client_cpu_ms_per_page",
        metavar="CLIENT_CPU_MS",
        type=float,
        default=CLIENT_CPU_MS_PER_PAGE,
    )
    p.add_argument(
        "--client-cores", dest="cores_per_client_machine", metavar="CLIENT_CORES", type=int, default=16
    )
    kw = vars(p.parse_args(argv))
    small_print = kw.pop("small_print")
    try:
        est = estimate(
            image_tokens_per_page=IMAGE_TOKENS_OUR_PLAN if small_print else IMAGE_TOKENS_ONE_IMAGE,
            requests_per_page=REQUESTS_OUR_PLAN if small_print else 1.0,
            **kw,
        )
    except ValueError as e:
        p.error(str(e))
    print(est.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
