"""Choose the graph store from typed settings."""

from __future__ import annotations

from pathlib import Path

from core.settings import GraphSettings
from kg.base import GraphStore
from kg.neo4j_store import Neo4jGraphStore
from kg.networkx_store import NetworkxGraphStore


def open_graph_store(settings: GraphSettings, path: Path) -> GraphStore:
    """The embedded networkx store at ``path`` (``backend=networkx``), or the Bolt database the settings name."""
    if settings.backend == "neo4j":
        return Neo4jGraphStore(
            settings.uri,
            settings.user,
            settings.password.get_secret_value(),
            settings.database,
            batch_size=settings.batch_size,
        )
    return NetworkxGraphStore(path)
