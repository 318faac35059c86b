"""API keys for tests: clear keys, and the settings entries that hold only their hashes."""

from __future__ import annotations

from typing import Any

from core.apikeys import hash_key

CHAT, COMPLIANCE, ADMIN = "chat-key-1", "compliance-key-2", "admin-key-3"


def key_settings() -> list[dict[str, Any]]:
    return [
        {"name": "chat-user", "sha256": hash_key(CHAT), "roles": ["chat"]},
        {"name": "reviewer", "sha256": hash_key(COMPLIANCE), "roles": ["compliance"]},
        {"name": "root", "sha256": hash_key(ADMIN), "roles": ["admin"]},
    ]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
