"""The answer workflow: its typed steps, the service that runs and records them, citations, conversation rewrites,
provenance graphs, golden tests and automatic prompt rollback."""
