"""What the serve checks look at on a machine: installed package versions and GPUs, behind :class:`Inspect`.

Nothing imports vLLM or torch at import time: versions come from package metadata and GPUs from
``nvidia-smi``; both probes are injectable so that tests run the checks with fakes.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

GiB = 1024**3
GPU = tuple[str, float]
"""(name, total memory in GiB) of one GPU."""


def installed_version(package: str) -> str | None:
    """Version of an installed distribution from its metadata (no import), or None if absent."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def parse_nvidia_smi(text: str) -> list[GPU]:
    """Parse ``nvidia-smi --query-gpu=name,memory.total --format=csv,noheader`` into (name, GiB) pairs.

    Accepts values with or without the ``MiB`` unit (``81559 MiB`` -> 79.65 GiB); skips malformed lines.
    """
    gpus: list[GPU] = []
    for line in text.splitlines():
        name, sep, mem = line.rpartition(",")
        m = re.match(r"\s*([\d.]+)\s*(MiB|GiB)?", mem)
        if not sep or not m:
            continue
        value = float(m.group(1))
        gpus.append((name.strip(), value if m.group(2) == "GiB" else value / 1024))
    return gpus


def detect_gpus() -> list[GPU] | None:
    """GPUs of this machine via ``nvidia-smi``, else torch; None when neither can tell."""
    exe = shutil.which("nvidia-smi")
    if exe:
        try:
            proc = subprocess.run(
                [exe, "--query-gpu=name,memory.total", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
            if proc.returncode == 0:
                return parse_nvidia_smi(proc.stdout)
        except (OSError, subprocess.SubprocessError):
            pass
    if importlib.util.find_spec("torch") is not None:
        import torch

        if not torch.cuda.is_available():
            return []
        return [
            (torch.cuda.get_device_name(i), torch.cuda.get_device_properties(i).total_memory / GiB)
            for i in range(torch.cuda.device_count())
        ]
    return None


@dataclass
class Inspect:
    """What the checks look at; replace either callable with a fake in tests."""

    package_version: Callable[[str], str | None] = installed_version
    gpus: Callable[[], list[GPU] | None] = detect_gpus


THIS_MACHINE = Inspect()
"""The real probes (package metadata, ``nvidia-smi``): what every check looks at unless given another."""


class CachedInspect(Inspect):
    """An :class:`Inspect` that runs each probe of ``inner`` once (nvidia-smi is slow): one per check run."""

    def __init__(self, inner: Inspect) -> None:
        cache: dict[str, str | None] = {}
        gpus: list[list[GPU] | None] = []

        def version(pkg: str) -> str | None:
            if pkg not in cache:
                cache[pkg] = inner.package_version(pkg)
            return cache[pkg]

        def detect() -> list[GPU] | None:
            if not gpus:
                gpus.append(inner.gpus())
            return gpus[0]

        super().__init__(package_version=version, gpus=detect)
