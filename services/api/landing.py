"""A plain start page at ``/`` until the web UI is served there (issue: web UI)."""

from __future__ import annotations

from litestar import MediaType, get

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lockgate</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}
code{background:#f3f4f6;padding:.1rem .3rem;border-radius:4px}</style></head>
<body><h1>Lockgate</h1>
<p>The control plane is running. The web UI will be served here.</p>
<ul>
<li><a href="/schema/openapi.json">OpenAPI document</a> (<code>/schema/openapi.json</code>)</li>
<li><a href="/healthz">/healthz</a> and <a href="/readyz">/readyz</a></li>
<li><a href="/api/tenants/default/projects">Projects of the default tenant</a></li>
<li><a href="/api/tenants/default/events">Events of the default tenant</a></li>
</ul></body></html>"""


@get("/", media_type=MediaType.HTML, include_in_schema=False)
async def landing() -> str:
    return _PAGE
