"""Moved to ``search.benchmarks.quality``; this name stays until its last importer moves."""

from search.benchmarks.quality import Item, evaluate, query_items, text_query

__all__ = ["Item", "evaluate", "query_items", "text_query"]
