"""The document loader: PDFs and images in, one LangChain ``Document`` per page out (:mod:`.loader`), and
its page records, cache and stats (:mod:`.records`)."""

from .loader import DOC_SUFFIXES, FallbackEngine, LoaderMode, MiniMaxVLDocumentLoader, load_documents
from .records import CACHE_VERSION, JobStats, PageCache, PageRecord, file_digest

__all__ = [
    "CACHE_VERSION",
    "DOC_SUFFIXES",
    "FallbackEngine",
    "JobStats",
    "LoaderMode",
    "MiniMaxVLDocumentLoader",
    "PageCache",
    "PageRecord",
    "file_digest",
    "load_documents",
]
