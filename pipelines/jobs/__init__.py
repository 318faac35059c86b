"""Background jobs: records that survive restarts, a runner thread, and the document upload and ingestion jobs behind
the HTTP API."""
