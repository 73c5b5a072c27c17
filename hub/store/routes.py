"""The route table: which upstream RTSP URL serves a stream path.

An exact pattern (`/entrance/a1`) serves one path; a directory pattern
(`/hr/`) serves everything below it, the rest of the path appended to the
upstream URL's path. Exact wins, then the longest directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

from ..errors import BadRequest, NotFound
from ..placement import canonical_path
from .paging import DEFAULT_PAGE_SIZE, page_keys
from .persist import StoreFileError, atomic_write_json, load_json

URL_MAX = 2048
PATTERN_MAX = 1024
#: Routes in all, and their patterns' and URLs' bytes: the table travels to
#: every child as one IPC frame (16 MiB), beside the users
#: (`hub.store.users.MAX_USERS`). 10,000 routes of a camera hub (~100 bytes
#: each) or ~1,000 of the longest (3 KiB each) fit in 3 MiB.
MAX_ROUTES = 10_000
MAX_ROUTES_BYTES = 3 << 20
WIRE_VERSION = 1
SCHEMES = ("rtsp", "rtsps")
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def canonical_pattern(pattern: str) -> str:
    """Lower-cased, cleaned, leading `/`, trailing `/` kept (directory route)."""
    return canonical_path(pattern, keep_trailing_slash=True)


def validate_url(raw: object) -> str:
    """An rtsp:// or rtsps:// URL with a host (credentials and query allowed)."""
    if not isinstance(raw, str) or not raw.strip():
        raise BadRequest("route url must not be empty")
    url = raw.strip()
    if len(url) > URL_MAX:
        raise BadRequest(f"route url longer than {URL_MAX} characters")
    if not url.isprintable() or any(c.isspace() for c in url):
        raise BadRequest("route url may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError as e:
        raise BadRequest(f"route url {mask_password(url)!r} does not parse: {e}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise BadRequest(f"route url must start with rtsp:// or rtsps://, got {mask_password(url)!r}")
    if not parts.hostname:
        raise BadRequest(f"route url {mask_password(url)!r} has no host")
    return url


def validate_pattern(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise BadRequest("route pattern must not be empty")
    if len(raw) > PATTERN_MAX:
        raise BadRequest(f"route pattern longer than {PATTERN_MAX} characters")
    if not raw.isprintable():
        raise BadRequest("route pattern may not contain control characters")
    return canonical_pattern(raw)


def mask_password(url: str) -> str:
    """`rtsp://user:***@host/...`: for logs and stream listings."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = len(rest)
    for c in "/?#":
        i = rest.find(c)
        if i != -1:
            end = min(end, i)
    netloc = rest[:end]
    userinfo, at, host = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{rest[end:]}"


@dataclass(frozen=True)
class Route:
    pattern: str
    url: str
    keepalive: bool = False

    @property
    def is_directory(self) -> bool:
        return self.pattern.endswith("/")

    def public_dict(self) -> dict[str, Any]:
        """As the reference shows it: `keepalive` only when true."""
        out: dict[str, Any] = {"pattern": self.pattern, "url": self.url}
        if self.keepalive:
            out["keepalive"] = True
        return out

    def upstream(self, path: str) -> str:
        """The upstream URL for canonical `path` under this route."""
        if not self.is_directory:
            return self.url
        suffix = quote(path[len(self.pattern):], safe=_PATH_SAFE)
        parts = urlsplit(self.url)
        base = parts.path if parts.path.endswith("/") else parts.path + "/"
        return urlunsplit(SplitResult(parts.scheme, parts.netloc, base + suffix,
                                      parts.query, parts.fragment))


def route_from_obj(obj: object) -> Route:
    """Validate one route object (API body or file entry)."""
    if not isinstance(obj, Mapping):
        raise BadRequest("a route must be a JSON object")
    pattern = validate_pattern(obj.get("pattern"))
    url = validate_url(obj.get("url"))
    keepalive = obj.get("keepalive", False)
    if keepalive is None:
        keepalive = False
    if not isinstance(keepalive, bool):
        raise BadRequest("keepalive must be true or false")
    return Route(pattern, url, keepalive)


def _size(route: Route) -> int:
    """What a route adds to the table's wire form, about."""
    return len(route.pattern) + len(route.url) + 16


class RouteTable:
    """Routes by canonical pattern, plus the set of directory patterns so a
    match costs one dict lookup per path level instead of a scan."""

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self._routes: dict[str, Route] = {}
        self.revision = 0
        self.skipped: list[str] = []
        self._bytes = 0  # the patterns' and URLs' (MAX_ROUTES_BYTES)
        for r in routes:
            old = self._routes.get(r.pattern)
            self._bytes += _size(r) - (_size(old) if old is not None else 0)
            self._routes[r.pattern] = r

    def __len__(self) -> int:
        return len(self._routes)

    def __iter__(self) -> Iterator[Route]:
        return iter(sorted(self._routes.values(), key=lambda r: r.pattern))

    # -- files ---------------------------------------------------------------

    @classmethod
    def from_file_list(cls, data: object) -> RouteTable:
        if not isinstance(data, list):
            raise BadRequest("route table must be a JSON array of routes")
        table = cls()
        for i, obj in enumerate(data):
            try:
                r = route_from_obj(obj)
            except BadRequest as e:
                # The reference saved routes without checking them (empty
                # pattern, empty or http url); skip those rather than refuse to start.
                table.skipped.append(f"route #{i}: {e.message}")
                continue
            table._routes[r.pattern] = r
        return table

    @classmethod
    def load(cls, path: str) -> RouteTable:
        """routetable.json (the reference's format is ours); missing = empty."""
        data = load_json(path, [])
        try:
            return cls.from_file_list(data)
        except BadRequest as e:
            raise StoreFileError(f"{path}: {e.message}") from None

    def to_file_list(self) -> list[dict[str, Any]]:
        return [{"pattern": r.pattern, "url": r.url, "keepalive": r.keepalive} for r in self]

    def save(self, path: str) -> None:
        """Atomically, mode 0600 (URLs may carry upstream credentials)."""
        atomic_write_json(path, self.to_file_list(), mode=0o600)

    # -- CRUD ----------------------------------------------------------------

    def get(self, pattern: str) -> Route | None:
        """Exact key lookup: `hr/` finds `/hr/`, `hr` does not (as the reference)."""
        return self._routes.get(canonical_pattern(pattern))

    def get_public(self, pattern: str) -> dict[str, Any]:
        route = self.get(pattern)
        if route is None:
            raise NotFound(f"route {canonical_pattern(pattern)!r} not found")
        return route.public_dict()

    def upsert(self, obj: Mapping[str, Any]) -> Route:
        route = route_from_obj(obj)
        old = self._routes.get(route.pattern)
        if old is None and len(self._routes) >= MAX_ROUTES:
            raise BadRequest(f"at most {MAX_ROUTES} routes")
        grown = self._bytes + _size(route) - (_size(old) if old is not None else 0)
        if grown > MAX_ROUTES_BYTES and grown > self._bytes:
            raise BadRequest(f"the routes' patterns and URLs take at most {MAX_ROUTES_BYTES >> 20} MiB")
        self._bytes = grown
        self._routes[route.pattern] = route
        self.revision += 1
        return route

    def delete(self, pattern: str) -> bool:
        """No error when missing; running pulls are not cut."""
        route = self._routes.pop(canonical_pattern(pattern), None)
        if route is None:
            return False
        self._bytes -= _size(route)
        self.revision += 1
        return True

    def page(self, page_size: int = DEFAULT_PAGE_SIZE,
             page_token: str = "") -> tuple[int, str, list[dict[str, Any]]]:
        """(total, next_page_token, routes) sorted by pattern, after `page_token`."""
        total, token, keys = page_keys(self._routes, page_size, page_token)
        return total, token, [self._routes[k].public_dict() for k in keys]

    # -- matching ------------------------------------------------------------

    def match(self, path: str) -> tuple[Route, str] | None:
        """(route, upstream URL) for a stream path: the exact pattern, else the
        longest directory pattern above it; None when no route applies."""
        p = canonical_path(path)
        if p == "/":
            return None
        route = self._routes.get(p)
        if route is not None:
            return route, route.url
        i = len(p)
        while True:
            i = p.rfind("/", 0, i)
            if i < 0:
                break
            route = self._routes.get(p[:i + 1])
            if route is not None:
                return route, route.upstream(p)
        return None

    # -- broadcast -----------------------------------------------------------

    def to_wire(self) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "rev": self.revision,
                "routes": [[r.pattern, r.url, r.keepalive] for r in self._routes.values()]}

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> RouteTable:
        if wire.get("v") != WIRE_VERSION:
            raise BadRequest(f"routes wire version {wire.get('v')!r} not understood")
        table = cls(Route(p, u, bool(k)) for p, u, k in wire["routes"])
        table.revision = int(wire.get("rev", 0))
        return table
