"""`/api/v1/openapi.json`: the REST API of API.md as an OpenAPI 3.1 document."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ... import __version__
from .json import JsonResponse


def _op(summary: str, *, params: list[dict[str, Any]] | None = None, body: str | None = None,
        ok: str | None = None, errors: tuple[int, ...] = (401, 403)) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK"}}
    if ok:
        responses["200"]["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ok}"}}}
    for code in errors:
        responses[str(code)] = {"description": {400: "Bad request", 401: "Token is not valid",
                                                403: "Forbidden", 404: "Not found",
                                                405: "Method not allowed",
                                                429: "Too many requests (see Retry-After)"}[code],
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body}"}}}}
    return op


def _q(name: str, schema: str = "string", desc: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": schema}, "description": desc}


def _p(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


PAGING = [_q("page_size", "integer", "default 20"), _q("page_token", desc="last key of the previous page")]
TOKEN = [_q("token", desc="access token (or Authorization: Bearer)")]

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "ipchub-py REST API", "version": __version__,
             "description": "ipchub-compatible API; see docs/api.md."},
    "paths": {
        "/api/v1/server": {"get": _op("Server information", ok="Server", errors=())},
        "/api/v1/runtime": {"get": _op("Runtime figures of the whole process tree",
                                       params=[_q("extra", "integer", "1 adds per-process figures")],
                                       ok="Runtime", errors=(400,))},
        "/api/v1/login": {"post": _op("Log in", body="Login", ok="TokenPair", errors=(403, 429))},
        "/api/v1/refreshtoken": {"get": _op("Rotate a token pair", params=[_q("token", desc="refresh token")],
                                            ok="TokenPair", errors=(401, 429))},
        "/api/v1/users": {
            "get": _op("List users", params=TOKEN + PAGING, ok="UserPage", errors=(400, 401, 403)),
            "post": _op("Create or update a user",
                        params=TOKEN + [_q("update_password", "integer", "1 to change the password")],
                        body="User", errors=(400, 401, 403))},
        "/api/v1/users/{name}": {
            "get": _op("Get a user", params=TOKEN + [_p("name")], ok="User", errors=(401, 403, 404)),
            "delete": _op("Delete a user (200 when missing too)", params=TOKEN + [_p("name")])},
        "/api/v1/routes": {
            "get": _op("List routes", params=TOKEN + PAGING, ok="RoutePage", errors=(400, 401, 403)),
            "post": _op("Create or update a route", params=TOKEN, body="Route", errors=(400, 401, 403))},
        "/api/v1/routes/{pattern}": {
            "get": _op("Get a route", params=TOKEN + [_p("pattern")], ok="Route", errors=(401, 403, 404)),
            "delete": _op("Delete a route (a running pull goes on)", params=TOKEN + [_p("pattern")])},
        "/api/v1/streams": {"get": _op("List live streams",
                                       params=TOKEN + PAGING + [_q("c", "integer", "1 lists consumers")],
                                       ok="StreamPage", errors=(400, 401))},
        "/api/v1/streams/{path}": {
            "get": _op("Get a live stream", params=TOKEN + [_p("path"), _q("c", "integer")],
                       ok="Stream", errors=(401, 404)),
            "delete": _op("Stop a stream and its players", params=TOKEN + [_p("path")])},
        "/api/v1/streams/{path}:consumer": {
            "delete": _op("Disconnect one player",
                          params=TOKEN + [_p("path"), _q("cid", "integer"),
                                          _q("node", desc="a cluster's node that holds the player")],
                          errors=(400, 401, 403))},
        "/api/v1/recordings": {
            "get": _op("Recording rules, what is recorded now, counters", params=TOKEN, ok="Recordings"),
            "post": _op("Add or replace a recording rule", params=TOKEN, body="RecordRule", errors=(400, 401, 403)),
            "delete": _op("Delete a recording rule (its files stay)", params=TOKEN + [_q("pattern")],
                          errors=(400, 401, 403))},
        "/api/v1/recordings/{path}": {
            "get": _op("A path's recordings; PATH/mp4?start=&end= is one MP4 of a range (HTTP Range), "
                       "PATH/index.m3u8?start=&end= an HLS VOD playlist over it",
                       params=TOKEN + PAGING + [_p("path"), _q("start", desc="Unix seconds or ISO 8601"),
                                                _q("end", desc="Unix seconds or ISO 8601")],
                       ok="RecordingPage", errors=(400, 401, 403, 404))},
        "/api/v1/cluster": {"get": _op("The nodes of a cluster (--cluster)", params=TOKEN,
                                       errors=(401, 403, 404))},
    },
    "components": {"schemas": {
        "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
        "Server": {"type": "object", "properties": {k: {"type": "string"} for k in
                                                    ("vendor", "name", "version", "os", "arch", "start_on", "duration")}},
        "Runtime": {"type": "object"},
        "Login": {"type": "object", "required": ["username", "password"],
                  "properties": {"username": {"type": "string"}, "password": {"type": "string"}}},
        "TokenPair": {"type": "object", "properties": {"access_token": {"type": "string"},
                                                       "refresh_token": {"type": "string"}}},
        "User": {"type": "object", "required": ["name"],
                 "properties": {"name": {"type": "string"}, "password": {"type": "string"},
                                "admin": {"type": "boolean"}, "push": {"type": "string"}, "pull": {"type": "string"}}},
        "Route": {"type": "object", "required": ["pattern", "url"],
                  "properties": {"pattern": {"type": "string"}, "url": {"type": "string"},
                                 "keepalive": {"type": "boolean"}}},
        "Stream": {"type": "object"},
        "UserPage": {"type": "object", "properties": {"total": {"type": "integer"}, "next_page_token": {"type": "string"},
                                                      "users": {"type": "array", "items": {"$ref": "#/components/schemas/User"}}}},
        "RoutePage": {"type": "object", "properties": {"total": {"type": "integer"}, "next_page_token": {"type": "string"},
                                                       "routes": {"type": "array", "items": {"$ref": "#/components/schemas/Route"}}}},
        "RecordRule": {"type": "object", "required": ["pattern"],
                       "properties": {"pattern": {"type": "string"}, "format": {"type": "string", "enum": ["fmp4"]},
                                      "segment": {"type": "number"},
                                      "retention": {"type": "object", "properties": {
                                          "max_age": {"type": ["number", "string"]},
                                          "max_bytes": {"type": ["integer", "string"]}}}}},
        "Recordings": {"type": "object", "properties": {
            "rules": {"type": "array", "items": {"$ref": "#/components/schemas/RecordRule"}},
            "recording": {"type": "array", "items": {"type": "object"}}, "errors": {"type": "integer"}}},
        "RecordingPage": {"type": "object", "properties": {
            "path": {"type": "string"}, "total": {"type": "integer"}, "next_page_token": {"type": "string"},
            "recordings": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "start": {"type": "string"}, "end": {"type": "string"},
                "duration": {"type": "number"}, "size": {"type": "integer"}}}}}},
        "StreamPage": {"type": "object", "properties": {"total": {"type": "integer"}, "next_page_token": {"type": "string"},
                                                        "streams": {"type": "array", "items": {"$ref": "#/components/schemas/Stream"}}}},
    }},
}


async def openapi(request: Request) -> Response:

    return JsonResponse(DOCUMENT)
