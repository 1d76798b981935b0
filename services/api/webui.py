"""The web UI: the files Vite built into ``ui/dist`` (``make ui``), served at ``/``.

Any path that is not a file of the build gets ``index.html`` (the UI routes in the browser: ``/runs/<id>`` is a
page, not a file), except under ``/api`` and ``/schema``, where an unknown path stays a 404 for API clients.
Hashed build assets (``/assets/*``) are cached for a year; ``index.html`` is revalidated on every load, so a new
build is picked up at once. When the UI is not built, ``/`` says how to build it.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath

from services.shared.errors import NotFoundError

UI_DIST = Path(__file__).resolve().parents[2] / "ui" / "dist"
"""Where ``make ui`` builds the UI in a source checkout (``LOCKGATE_UI_DIR`` points elsewhere)."""
_API_PREFIXES = ("api/", "api", "schema/", "schema")
_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".ttf": "font/ttf",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
    ".map": "application/json",
}

_NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lockgate</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}
code{background:#f3f4f6;padding:.1rem .3rem;border-radius:4px}</style></head>
<body><h1>Lockgate</h1>
<p>The control plane is running, but the web UI is not built. Build it with <code>make ui</code>
(<code>make run</code> does it for you), then reload this page.</p>
<ul><li><a href="/schema/openapi.json">OpenAPI document</a></li><li><a href="/healthz">/healthz</a></li></ul>
</body></html>"""


def ui_dir(state: State) -> Path:
    configured: Path | None = state.runtime.settings.ui_dir
    return (configured or UI_DIST).resolve()


def _file(root: Path, path: str) -> Path | None:
    """The build's file at ``path``, or None; never a file outside ``root`` (no ``..``, no symlink out)."""
    if not path or "\x00" in path:
        return None
    candidate = (root / path).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _send(file: Path, cache: str) -> Response[bytes]:
    media_type = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return Response(file.read_bytes(), media_type=media_type, headers={"Cache-Control": cache})


@get(["/", "/{path:path}"], include_in_schema=False, media_type=MediaType.HTML)
async def web_ui(request: Request[object, object, State], path: FromPath[str] = "") -> Response[bytes] | Response[str]:
    path = path.lstrip("/")
    if path.startswith(_API_PREFIXES) and (path in _API_PREFIXES or "/" in path):
        raise NotFoundError(f"no route /{path[:200]}")
    root = ui_dir(request.app.state)
    file = _file(root, path)
    if file is not None:
        immutable = path.startswith("assets/")
        return _send(file, "public, max-age=31536000, immutable" if immutable else "no-cache")
    index = root / "index.html"
    if not index.is_file():
        return Response(_NOT_BUILT, media_type=MediaType.HTML, headers={"Cache-Control": "no-cache"})
    return _send(index, "no-cache")
