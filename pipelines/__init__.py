"""The workflow engine, the ingestion and answer workflows, the store wiring and the CLI."""
