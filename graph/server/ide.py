"""GraphiQL at /graphql: its page, and its assets served by Songbook when installed.

`make install` installs graph/server/graphiql/package.json's pinned packages with npm; Songbook
then serves the browser bundles itself, so GraphiQL works without internet access. When
they are not installed the page loads the same versions from the public CDN.
"""

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

HERE = Path(__file__).resolve().parent / "graphiql"
TEMPLATE = HERE / "index.html"
ASSETS_URL = "/graphql/assets"
CDN_URL = "https://unpkg.com"

# Served name -> (package, file inside the package). Nothing else under node_modules is.
ASSETS = {
    "graphiql.min.css": ("graphiql", "graphiql.min.css"),
    "graphiql.min.js": ("graphiql", "graphiql.min.js"),
    "react.production.min.js": ("react", "umd/react.production.min.js"),
    "react-dom.production.min.js": ("react-dom", "umd/react-dom.production.min.js"),
}
_PLACEHOLDERS = {
    "{{GRAPHIQL_CSS}}": "graphiql.min.css",
    "{{GRAPHIQL_JS}}": "graphiql.min.js",
    "{{REACT}}": "react.production.min.js",
    "{{REACT_DOM}}": "react-dom.production.min.js",
}
_CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# Where each response's nonce goes in the page: its inline script and style.
_NONCE = "{{NONCE}}"


def content_security_policy(scripts: list[str], styles: list[str], nonce: str) -> str:
    """What the page may load: its scripts and stylesheet (from where they are, 'self' for
    Songbook's own assets), the inline script and styles carrying this response's nonce,
    GraphiQL's fonts and icons (data: URLs in its stylesheet), and requests to its own
    origin (HTTP, and WebSocket for subscriptions). Nothing else, from nowhere else, and
    never inside another site's frame."""
    directives = {
        "default-src": ["'none'"],
        "script-src": [*scripts, f"'nonce-{nonce}'"],
        "style-src": [*styles, f"'nonce-{nonce}'"],
        "font-src": ["data:"],
        "img-src": ["'self'", "data:"],
        # 'self' covers the same origin's ws: and wss: too (CSP Level 3).
        "connect-src": ["'self'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def pinned_versions() -> dict[str, str]:
    """The versions graph/server/graphiql/package.json pins, which the CDN fallback loads too."""
    manifest = json.loads((HERE / "package.json").read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in manifest["dependencies"].items()}


@dataclass(frozen=True, slots=True)
class GraphiQLPage:
    """The rendered page, and where its assets come from (`local` or the CDN)."""

    template: str
    local: bool
    node_modules: Path
    # Where the page's scripts and stylesheet come from, for its Content-Security-Policy.
    scripts: tuple[str, ...]
    styles: tuple[str, ...]

    @classmethod
    def build(cls, node_modules: Path) -> "GraphiQLPage":
        versions = pinned_versions()
        local = all((node_modules / package / file).is_file() for package, file in ASSETS.values())
        html = TEMPLATE.read_text(encoding="utf-8")
        urls: dict[str, str] = {}
        for placeholder, name in _PLACEHOLDERS.items():
            package, file = ASSETS[name]
            if local:
                urls[name] = f"{ASSETS_URL}/{name}?v={versions[package]}"
            else:
                urls[name] = f"{CDN_URL}/{package}@{versions[package]}/{file}"
            html = html.replace(placeholder, urls[name])

        def sources(suffix: str) -> tuple[str, ...]:
            if local:
                return ("'self'",)
            return tuple(url for name, url in sorted(urls.items()) if name.endswith(suffix))

        return cls(
            template=html,
            local=local,
            node_modules=node_modules,
            scripts=sources(".js"),
            styles=sources(".css"),
        )

    def render(self) -> HTMLResponse:
        """The page, with a nonce of its own and the policy naming it."""
        nonce = secrets.token_urlsafe(18)
        return HTMLResponse(
            self.template.replace(_NONCE, nonce),
            headers={
                "content-security-policy": content_security_policy(
                    list(self.scripts), list(self.styles), nonce
                )
            },
        )

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not self.local or name not in ASSETS:
            return Response("Not Found", status_code=404, media_type="text/plain")
        package, file = ASSETS[name]
        path = self.node_modules / package / file
        return FileResponse(
            path,
            media_type=_CONTENT_TYPES[path.suffix],
            # The page asks for ?v=<pinned version>, so a new version is a new URL.
            headers={"cache-control": "public, max-age=86400"},
        )
