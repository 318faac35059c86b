"""API keys with roles. Keys are configured as sha256 hashes (never in clear); a request sends the key as
``Authorization: Bearer <key>`` (what OpenAI clients do) or ``X-API-Key: <key>``.

Roles: ``chat`` (answer and chat endpoints), ``compliance`` (answers, provenance, reviews, exports), ``admin``
(documents and jobs, and everything else). With no keys configured authentication is off.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Request

from core.apikeys import hash_key
from core.errors import AuthenticationError, PermissionDeniedError
from core.settings import ApiKey, ApiRole


class KeyRing:
    """Looks up the configured key matching a request's key (by hash, compared in constant time)."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self.keys = list(keys)

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def identify(self, presented: str | None) -> ApiKey:
        if not presented:
            raise AuthenticationError(
                "this endpoint needs an API key", hint="send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            )
        digest = hash_key(presented)
        match = None
        for key in self.keys:
            if hmac.compare_digest(key.sha256, digest):
                match = key
        if match is None:
            raise AuthenticationError("the API key is not valid", hint="check the key, or ask an admin for one")
        return match


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


def require(role: ApiRole) -> Callable[[Request], ApiKey | None]:
    """A FastAPI dependency: the caller's key must carry ``role`` (or ``admin``); returns the key, or None when
    authentication is off."""

    def dependency(request: Request) -> ApiKey | None:
        ring: KeyRing = request.app.state.keyring
        if not ring.enabled:
            return None
        key = ring.identify(presented_key(request))
        if role not in key.roles and "admin" not in key.roles:
            raise PermissionDeniedError(
                f"key {key.name!r} has roles {', '.join(key.roles)}; this endpoint needs role {role!r}",
                hint="use a key with that role",
            )
        return key

    dependency.__name__ = f"require_{role}"
    return dependency
