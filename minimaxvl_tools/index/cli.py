"""``minimaxvl index`` / ``search`` and ``ask --store``: the index from the shell.

:func:`register` adds the subcommands to the ``minimaxvl`` parser; :func:`cmd_ask_store` answers
``minimaxvl ask --store PATH -q QUESTION``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from .store import PageIndex

Command = Callable[[argparse.Namespace], int]


class SubcommandFactory(Protocol):
    """The CLI's subcommand maker: a parser for ``name`` that runs ``func``, with the shared options."""

    def __call__(self, name: str, help_: str, func: Command, *, client: bool) -> argparse.ArgumentParser:
        """Add and return the subcommand's parser."""
        ...


MODES = ["vlm", "text-layer", "auto", "local"]


def _embed_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("embeddings")
    g.add_argument(
        "--embed-base-url",
        help="OpenAI-compatible embeddings endpoint (MINIMAXVL_EMBED_BASE_URL; default: offline WordLlama)",
    )
    g.add_argument("--embed-model", help="embedding model served there (MINIMAXVL_EMBED_MODEL)")


def _open(args: argparse.Namespace, *, create: bool) -> PageIndex:
    from .embeddings import embeddings_from_env
    from .store import PageIndex

    emb = embeddings_from_env(getattr(args, "embed_base_url", None), getattr(args, "embed_model", None))
    return PageIndex(args.store, embeddings=emb, create=create)


def cmd_index(args: argparse.Namespace) -> int:
    """Index files and folders into the store; unchanged pages are skipped, deleted files removed."""
    from ..cli import EXIT_OK, EXIT_PARTIAL, PROG, Progress, _client, _emit_json, _policy

    index = _open(args, create=True)
    client = _client(args) if args.mode in ("vlm", "auto") else None
    progress = Progress(0, label="pages read", enabled=not args.quiet and sys.stderr.isatty())
    kw: dict[str, Any] = {"dpi": args.dpi, "policy": _policy(args)}
    if args.no_rotation:
        kw["detect_rotation"] = False
    report = index.index(
        args.paths,
        mode=args.mode,
        client=client,
        cache_dir=args.cache_dir
        or (Path(".minimaxvl-cache") / "pages" if index.is_server else Path(args.store) / "page-cache"),
        on_page=lambda _d: progress.update(),
        **kw,
    )
    progress.close()
    if args.json:
        _emit_json(vars(report))
    else:
        print(f"{PROG}: {args.store}: {report.summary()}", file=sys.stderr)
    for e in report.errors:
        print(f"{PROG}: warning: {e}", file=sys.stderr)
    return EXIT_PARTIAL if report.pages_failed else EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    """Print the best chunks for a query with source, page, box and score."""
    from ..cli import EXIT_OK, _emit_json

    index = _open(args, create=False)
    hits = index.search(args.query, k=args.k, method=args.method)
    if args.json:
        _emit_json([{"text": h.page_content, **h.metadata} for h in hits])
        return EXIT_OK
    for rank, h in enumerate(hits, 1):
        m = h.metadata
        box = f" box {[round(v) for v in m['box']]}" if m.get("box") else ""
        text = " ".join(h.page_content.split())
        print(f"{rank}. {Path(m['source']).name} p.{m['page']}{box} (score {m['score']:.4f})")
        print(f"   {text[:160]}{'...' if len(text) > 160 else ''}")
    return EXIT_OK


def cmd_ask_store(args: argparse.Namespace) -> int:
    """``ask --store``: retrieve, then DocumentVQA over the retrieved regions (offline: extractive)."""
    from ..cli import EXIT_OK, _client, _emit_json, _policy
    from .answer import ask

    index = _open(args, create=False)
    res = ask(index, args.question, client=_client(args), k=args.k, policy=_policy(args))
    if args.json:
        _emit_json(vars(res))
    else:
        print(res.render())
    return EXIT_OK


def register(sub: argparse._SubParsersAction[Any], add: SubcommandFactory | None = None) -> None:
    """Add ``index`` and ``search`` to the ``minimaxvl`` subparsers, and ``--store``/``--k`` to ``ask``.

    ``add`` is the CLI's subcommand factory (shared output, server and input options).
    """
    from ..cli import _add_client, _add_inputs

    def make(name: str, help_: str, func: Command, client: bool) -> argparse.ArgumentParser:
        if add is not None:
            return add(name, help_, func, client=client)
        p = sub.add_parser(name, help=help_, description=help_)
        if client:
            _add_client(p)
        _add_inputs(p)
        p.set_defaults(func=func)
        return p

    p = make("index", "index PDFs/images into a persistent hybrid search store", cmd_index, True)
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    p.add_argument("--store", required=True, help="index folder, or http://host:port of `chroma run`")
    p.add_argument("--mode", choices=MODES, default="auto", help="how pages are read (default: auto)")
    p.add_argument("--dpi", type=int, default=200, help="PDF rendering resolution (default: 200)")
    p.add_argument("--cache-dir", help="page cache (default: .minimaxvl-cache beside the store)")
    p.add_argument("--no-rotation", action="store_true", help="skip client-side rotation detection")
    _embed_args(p)

    p = make("search", "search an index: best chunks with source, page and box", cmd_search, False)
    p.add_argument("query", help="the words to look for")
    p.add_argument("--store", required=True, help="index folder, or http://host:port of `chroma run`")
    p.add_argument("--k", type=int, default=5, help="results (default: 5)")
    p.add_argument(
        "--method",
        choices=["hybrid", "lexical", "dense"],
        default="hybrid",
        help="BM25 and embeddings fused (default), or one of them alone",
    )
    _embed_args(p)

    ask_p = sub.choices.get("ask") if hasattr(sub, "choices") else None
    if ask_p is not None:
        g = ask_p.add_argument_group("index")
        g.add_argument("--store", help="answer from this index (`minimaxvl index`) instead of SOURCE")
        g.add_argument("--k", type=int, default=5, help="chunks retrieved with --store (default: 5)")
        g.add_argument("--embed-base-url", help=argparse.SUPPRESS)
        g.add_argument("--embed-model", help=argparse.SUPPRESS)


__all__ = ["cmd_ask_store", "cmd_index", "cmd_search", "register"]
