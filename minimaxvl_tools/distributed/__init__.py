"""Ingest spread over a cluster: :func:`~minimaxvl_tools.distributed.ray_ingest.ray_ingest` (Ray Data).

Needs the optional ``ray`` extra (``pip install 'minimaxvl-tools[ray]'``); importing this package alone
does not import Ray.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ray_ingest"]


def __getattr__(name: str) -> Any:
    if name == "ray_ingest":
        from .ray_ingest import ray_ingest

        return ray_ingest
    raise AttributeError(name)
