"""One test body for both sides of an API: a sync method and its ``a``-prefixed async twin (LangChain's
naming: ``lazy_load``/``alazy_load``, ``run``/``arun``). The ``drive`` fixture (tests/conftest.py) runs a
test once per side, so the sync and the async path meet the same assertions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

Side = Literal["sync", "async"]


class Drive:
    """Calls ``obj.name(...)`` (sync side) or awaits ``obj.aname(...)`` in a fresh event loop (async side)."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self.is_async = side == "async"

    def __repr__(self) -> str:
        return f"Drive({self.side!r})"

    def call(self, obj: object, name: str, *args: Any, **kwargs: Any) -> Any:
        """The result of ``obj.name(*args, **kwargs)`` or of ``await obj.aname(*args, **kwargs)``."""
        if self.is_async:
            return asyncio.run(getattr(obj, "a" + name)(*args, **kwargs))
        return getattr(obj, name)(*args, **kwargs)

    def iterate(
        self,
        obj: object,
        name: str,
        *,
        take: int | None = None,
        visit: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        """The items of ``obj.name()`` (a generator) or ``obj.aname()`` (an async generator), in order.

        ``visit`` sees each item as it arrives (it may raise, as a consumer would); after ``take`` items the
        consumer stops and closes the generator, as ``break`` does (``aclose`` on the async side).
        """
        got: list[Any] = []

        def keep(item: Any) -> bool:
            if visit is not None:
                visit(item)
            got.append(item)
            return take is None or len(got) < take

        if not self.is_async:
            gen = getattr(obj, name)()
            try:
                for item in gen:
                    if not keep(item):
                        break
            finally:
                gen.close()
            return got

        async def consume() -> None:
            agen = getattr(obj, "a" + name)()
            try:
                async for item in agen:
                    if not keep(item):
                        break
            finally:
                await agen.aclose()

        asyncio.run(consume())
        return got
