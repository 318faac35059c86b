"""The knowledge graph: store protocol and implementations, extraction, entity linking and graph context."""
