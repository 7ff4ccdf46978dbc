"""Benchmarks and search-quality evaluation, apart from the request path.

``harness`` (throwaway services, timing, tables), ``vectors`` (synthetic CLIP-like vectors and
a stand-in encoder), ``search_bench`` and ``indexing_bench`` (the two benchmarks), ``quality``
(precision/recall through the query service). The management commands ``bench_search``,
``bench_indexing`` and ``evaluate_search`` parse arguments and call into these modules.
"""
