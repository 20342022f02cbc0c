"""GraphiQL served from the package (``static/graphiql``), so it works with no network.

strawberry's own page (``strawberry/static/graphiql.html``) loads React and GraphiQL
from a CDN; ours references only ``/graphiql/<asset>`` on this server. The assets are
the registry's production builds, stored gzip-compressed (``scripts/vendor_graphiql.sh``
re-vendors them; VENDORED.txt has versions and hashes) and sent compressed to browsers
that accept gzip, which all do. The page has a token field (kept in localStorage) and a
starter query that works on any graph, the demo's included.
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

STATIC = Path(__file__).parent / "static" / "graphiql"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@cache
def page() -> bytes:
    return (STATIC / "index.html").read_bytes()


@cache
def _compressed(name: str) -> bytes | None:
    path = STATIC / f"{name}.gz"
    # only the vendored files: a name is a plain file name, never a path
    if "/" in name or name.startswith(".") or not path.is_file():
        return None
    return path.read_bytes()


def asset(name: str, accepts_gzip: bool) -> tuple[bytes, str, dict[str, str]] | None:
    """(body, content type, headers) of a vendored asset; None if there is no such one."""
    data = _compressed(name)
    ctype = TYPES.get(Path(name).suffix)
    if data is None or ctype is None:
        return None
    headers = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
    if accepts_gzip:
        return data, ctype, {**headers, "Content-Encoding": "gzip"}
    return gzip.decompress(data), ctype, headers
