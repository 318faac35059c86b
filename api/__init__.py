"""The HTTP API: answers, health, and (later) chat completions, documents, provenance and reviews."""
