"""The explorer app's page and its two assets (one ES module, one stylesheet), served from the package.

The module is the app's committed bundle (``static/bundles/app.js``, built by esbuild from ``static/app.js`` and
what it imports, the notebook views' ``head_view.js``, ``atlas.js`` and ``diff_view.js`` among them:
``js/build.mjs``), so the app draws with the views' code (the stylesheet is ``app.css``, ``head_view.css``,
``atlas.css`` and ``diff_view.css``). Asset URLs carry a hash of their content (``/assets/<hash>/app.js``), so they
are cached for good and a new version is never mixed with an old one. Only the two named assets exist: any other
path, ``..`` included, is a 404 in the one error shape. The page is sent with a Content-Security-Policy that allows
scripts, styles and requests from this server only, so no injected markup could run a script even if a text were
ever not escaped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

from ..views.html import bundle, static_text
from .errors import ApiError

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Assets:
    """The app's files as served: the page, and each asset's bytes and media type, under ``prefix``."""

    prefix: str
    page: str
    files: dict[str, tuple[bytes, str]]


@lru_cache(maxsize=1)
def app_assets() -> Assets:
    """Read and bundle the app's files once per process."""
    files = {
        "app.js": (bundle("app").encode("utf-8"), "text/javascript; charset=utf-8"),
        "app.css": (
            "".join(static_text(name) for name in ("app.css", "head_view.css", "atlas.css", "diff_view.css")).encode(
                "utf-8"
            ),
            "text/css; charset=utf-8",
        ),
    }
    digest = hashlib.sha256(b"".join(content for content, _ in files.values())).hexdigest()[:16]
    prefix = f"/assets/{digest}"
    return Assets(prefix, _page_template().replace("{{assets}}", prefix), files)


def _page_template() -> str:
    return (resources.files("attnscope") / "static" / "app.html").read_text(encoding="utf-8")


router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def app_page() -> HTMLResponse:
    return HTMLResponse(app_assets().page, headers=PAGE_HEADERS)


@router.get("/assets/{version}/{name}")
def asset(version: str, name: str) -> Response:
    assets = app_assets()
    found = assets.files.get(name)
    if found is None or f"/assets/{version}" != assets.prefix:
        raise ApiError(404, "not_found", f"no asset {name!r} in version {version!r}: reload the page (/)")
    content, media_type = found
    return Response(
        content,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"},
    )
