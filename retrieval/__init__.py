"""Embeddings, the FAISS vector index, BM25, the chunk store and hybrid retrieval."""
