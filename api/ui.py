"""The reviewer's web page at ``/ui`` and the KPI dashboard at ``/ui/dashboard``: plain HTML/JS/CSS shipped in the
package (no CDN, charts drawn as SVG by the page's own script). The pages themselves are public; their data calls
carry the compliance key typed in."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from core.errors import KgragError

STATIC = Path(__file__).parent / "static"
_TYPES = MappingProxyType({".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"})


class UiFileNotFoundError(KgragError):
    """A file under /ui/ that the page does not ship."""

    http_status = 404
    code = "not-found"


def build_router() -> APIRouter:
    """The /ui pages and their files (public)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/ui")
    def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    @router.get("/ui/")
    def ui_index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type=_TYPES[".html"])

    @router.get("/ui/dashboard")
    def ui_dashboard() -> FileResponse:
        return FileResponse(STATIC / "dashboard.html", media_type=_TYPES[".html"])

    @router.get("/ui/{name}")
    def ui_file(name: str) -> FileResponse:
        path = STATIC / name
        if "/" in name or path.suffix not in _TYPES or not path.is_file():
            raise UiFileNotFoundError(f"no UI file {name!r}", hint="open /ui/")
        return FileResponse(path, media_type=_TYPES[path.suffix])

    return router
