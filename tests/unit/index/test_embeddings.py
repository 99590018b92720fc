"""The default embeddings run offline: no network connection, and related texts score closer."""

from __future__ import annotations

import pytest


def test_wordllama_embeddings_are_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from minimaxvl_tools.index import WordLlamaEmbeddings

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the embeddings tried to reach the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    emb = WordLlamaEmbeddings()
    a, b, c = emb.embed_documents(["the invoice total", "amount due on the bill", "fire drill on friday"])
    assert len(a) == 256 and emb.name == "wordllama:l2_supercat:256"
    dot = lambda x, y: sum(p * q for p, q in zip(x, y, strict=True))  # noqa: E731
    assert dot(a, b) > dot(a, c)
