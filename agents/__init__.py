"""Runnable example workflows: a document-analyst agent and a scanned-PDF RAG pipeline."""
