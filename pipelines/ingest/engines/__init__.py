"""Ingestion engines: where parsing, chunking and embedding run (in-process, or on Ray Data for scale-out)."""
