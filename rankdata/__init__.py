"""Ranking datasets: readers, first-stage retrieval (BM25), splits and metrics."""
