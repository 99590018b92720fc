"""GPU-suite fixtures: a LIVE vLLM server, named by --vllm-base-url or MINIMAXVL_GPU_BASE_URL.

Every test under tests/gpu is marked ``gpu`` and skipped when no live server is named, so CI (no GPU)
skips them; on the GPU machine `tests/gpu/run_on_device.sh` starts vLLM 0.23.0 and names it.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

RESULTS: dict[str, object] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--vllm-base-url", default=None, help="live vLLM OpenAI base URL, e.g. http://127.0.0.1:8000/v1"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    url = config.getoption("--vllm-base-url") or os.environ.get("MINIMAXVL_GPU_BASE_URL")
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.gpu)
            if not url:
                item.add_marker(
                    pytest.mark.skip(
                        reason="no live vLLM server: pass --vllm-base-url or set MINIMAXVL_GPU_BASE_URL"
                    )
                )


@pytest.fixture(scope="session")
def base_url(pytestconfig: pytest.Config) -> str:
    url = pytestconfig.getoption("--vllm-base-url") or os.environ.get("MINIMAXVL_GPU_BASE_URL")
    assert url
    return url.rstrip("/")


@pytest.fixture(scope="session")
def root_url(base_url: str) -> str:
    return base_url.rsplit("/v1", 1)[0]


@pytest.fixture(scope="session")
def served_model(base_url: str) -> str:
    name = os.environ.get("MINIMAXVL_GPU_MODEL")
    if name:
        return name
    with urllib.request.urlopen(base_url + "/models", timeout=30) as r:
        return json.loads(r.read())["data"][0]["id"]


@pytest.fixture(scope="session")
def served_max_model_len(base_url: str) -> int:
    with urllib.request.urlopen(base_url + "/models", timeout=30) as r:
        return int(json.loads(r.read())["data"][0]["max_model_len"])


@pytest.fixture(scope="session")
def results() -> Iterator[dict[str, object]]:
    """A dict tests write measurements into; dumped to $OUT/gpu_results.json (or tests/gpu/results/)."""
    yield RESULTS
    out = Path(os.environ.get("OUT") or Path(__file__).parent / "results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_results.json").write_text(json.dumps(RESULTS, indent=1, default=str))
