"""Ingestion: discover and parse sources, chunk them, embed, extract graph facts (cached), through a local or Ray
engine, under the store's lock, with a run report."""
