"""Files shipped inside a package (templates, CSS, JavaScript), read once at startup, and
the static-file answer with an ETag."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def read_tree(package: str, folder: str, pattern: str = "*") -> dict[str, bytes]:
    """Every file under ``package/folder`` by its relative path (blocking: call it in a thread)."""
    root = Path(str(resources.files(package) / folder))
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob(pattern)) if p.is_file()}


def read_assets(package: str, folder: str = "static") -> dict[str, Asset]:
    return {
        name: Asset(body, mimetypes.guess_type(name)[0] or "application/octet-stream", hashlib.sha256(body).hexdigest()[:16])
        for name, body in read_tree(package, folder).items()
    }


def serve(request: web.Request, assets: dict[str, Asset]) -> web.Response:
    """``{name}`` from the route as a cacheable response (304 when the browser has it)."""
    asset = assets.get(request.match_info["name"])
    if asset is None:
        raise web.HTTPNotFound()
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304)
    return web.Response(
        body=asset.body, content_type=asset.content_type,
        headers={"ETag": asset.etag, "Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
