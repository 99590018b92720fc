"""Lazy re-exports for a package ``__init__``: names load from their submodule on first use, so importing
the package stays cheap (``minimaxvl --help`` does not import chromadb, torch or LangChain's tools)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any


def lazy_names(modules: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """``{submodule: names}`` turned into ``{name: submodule}``; a name listed twice is an error."""
    where: dict[str, str] = {}
    for module, names in modules.items():
        for name in names:
            if name in where:
                raise ValueError(f"{name!r} is exported from both {where[name]!r} and {module!r}")
            where[name] = module
    return where


def lazy_exports(
    package: str, where: Mapping[str, str], namespace: MutableMapping[str, Any], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: a name in ``where`` is imported from
    ``package.<where[name]>`` on first access and kept in ``namespace`` (the package's globals);
    ``__dir__`` lists ``public``."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(public)

    return __getattr__, __dir__


__all__ = ["lazy_exports", "lazy_names"]
