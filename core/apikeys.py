"""API key hashing: what settings store for a key (its sha256), shared by the API and the CLI."""

from __future__ import annotations

import hashlib


def hash_key(key: str) -> str:
    """The value to put in settings for a key: hex sha256 of its UTF-8 bytes."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
