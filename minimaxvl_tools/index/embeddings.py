"""Embeddings for the index: WordLlama from its wheel (offline default) or an OpenAI-compatible endpoint.

Each embedder has a ``name`` that the store records; a store opened with another embedder is refused
(vectors of two models are not comparable), see :class:`~minimaxvl_tools.errors.IndexStoreError`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from ..errors import InvalidInputError

WORDLLAMA_CONFIG = "l2_supercat"
WORDLLAMA_DIM = 256
_MODELS: dict[int, Any] = {}  # loaded once per process and dimension (read-only after loading)


class WordLlamaEmbeddings(Embeddings):
    """WordLlama (static token embeddings, 16 MB) loaded from the files inside the ``wordllama`` wheel.

    ``WordLlama.load()`` looks for its tokenizer under a folder name the wheel does not use and then
    downloads it from a model hub; this class reads both files from the wheel itself, so nothing is
    fetched (a missing file is an error, never a download).
    """

    def __init__(self, dim: int = WORDLLAMA_DIM) -> None:
        self.dim = dim
        self._model: Any = None

    @property
    def name(self) -> str:
        """The embedder's identity stored with the index."""
        return f"wordllama:{WORDLLAMA_CONFIG}:{self.dim}"

    def _load(self) -> Any:
        if self._model is None:
            self._model = _MODELS.get(self.dim)
        if self._model is None:
            root_logger = logging.getLogger()
            handlers, level = list(root_logger.handlers), root_logger.level
            try:
                import wordllama
                from safetensors import safe_open
                from wordllama.inference import WordLlamaInference
                from wordllama.wordllama import WordLlama
            except ImportError as e:
                raise InvalidInputError(
                    "the offline embeddings need wordllama: pip install 'minimaxvl-tools[index]'"
                ) from e
            finally:  # wordllama calls logging.basicConfig() on import: undo it, logging is the app's
                for h in root_logger.handlers[:]:
                    if h not in handlers:
                        root_logger.removeHandler(h)
                root_logger.setLevel(level)
            root = Path(wordllama.__file__).parent
            weights = root / "weights" / f"{WORDLLAMA_CONFIG}_256.safetensors"
            tokenizer = root / "tokenizers" / f"{WORDLLAMA_CONFIG}_tokenizer_config.json"
            for f in (weights, tokenizer):
                if not f.is_file():
                    raise InvalidInputError(f"{f} is missing from the wordllama install: reinstall wordllama")
            tok = WordLlama.load_tokenizer(tokenizer, use_local_if_exists=True)
            with safe_open(str(weights), framework="np") as f:
                emb = f.get_tensor("embedding.weight")[:, : self.dim]
            self._model = _MODELS.setdefault(self.dim, WordLlamaInference(emb, tok))
        return self._model

    def _embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vecs = self._load().embed(list(texts), norm=True)
        return [[float(x) for x in v] for v in vecs]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Unit vectors for ``texts``."""
        return self._embed(texts)

    def embed_query(self, text: str) -> list[float]:
        """Unit vector for one query."""
        return self._embed([text])[0]


class OpenAICompatibleEmbeddings(Embeddings):
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint (e.g. vLLM serving an embedding model)."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, batch: int = 128) -> None:
        if not base_url or not model:
            raise InvalidInputError("an embeddings endpoint needs both a base URL and a model name")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self.batch = batch
        self._client: Any = None

    def __repr__(self) -> str:
        return f"OpenAICompatibleEmbeddings(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def name(self) -> str:
        """The embedder's identity stored with the index (model name; the URL may differ per replica)."""
        return f"openai:{self.model}"

    def _embed(self, texts: list[str]) -> list[list[float]]:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(base_url=self.base_url, api_key=self._api_key or "EMPTY", max_retries=2)
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch):
            res = self._client.embeddings.create(model=self.model, input=texts[i : i + self.batch])
            out.extend(list(d.embedding) for d in sorted(res.data, key=lambda d: d.index))
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Vectors for ``texts`` from the endpoint, in batches."""
        return self._embed(list(texts))

    def embed_query(self, text: str) -> list[float]:
        """Vector for one query."""
        return self._embed([text])[0]


def embeddings_from_env(base_url: str | None = None, model: str | None = None) -> Embeddings:
    """The embedder to use: an endpoint when ``base_url`` (or ``MINIMAXVL_EMBED_BASE_URL``) is set, with
    ``model`` (``MINIMAXVL_EMBED_MODEL``) and ``MINIMAXVL_EMBED_API_KEY``; else offline WordLlama."""
    base_url = base_url or os.environ.get("MINIMAXVL_EMBED_BASE_URL")
    if base_url:
        model = model or os.environ.get("MINIMAXVL_EMBED_MODEL") or ""
        return OpenAICompatibleEmbeddings(base_url, model, api_key=os.environ.get("MINIMAXVL_EMBED_API_KEY"))
    return WordLlamaEmbeddings()


def embedder_name(emb: Embeddings) -> str:
    """The identity recorded in the store for ``emb`` (its ``name``, else its class name)."""
    return str(getattr(emb, "name", None) or type(emb).__name__)


__all__ = ["OpenAICompatibleEmbeddings", "WordLlamaEmbeddings", "embedder_name", "embeddings_from_env"]
