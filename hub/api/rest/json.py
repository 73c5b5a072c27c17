"""The REST API's JSON responses (every one carries the CORS headers)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from ..http_responses import CORS, json_body


class JsonResponse(Response):
    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200) -> None:
        super().__init__(json_body(content), status_code=status_code, headers=CORS)
