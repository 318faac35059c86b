"""The store: its directory layout (the only place naming its files), the knowledge store over chunks, vectors, BM25
and the graph, atomic snapshots, ingest state and the audit store."""
