"""One error hierarchy for the whole server.

Each error knows its RTSP and HTTP status. Only the RTSP request dispatcher
and the Starlette exception handlers turn these into responses; handlers
raise, they never pick a status inline.
"""

from __future__ import annotations


class HubError(Exception):
    rtsp_status: int = 500
    http_status: int = 500
    reason: str = "Internal Server Error"
    #: A 5xx answer says only `reason` unless its message is meant for the client.
    public_message: bool = False

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.reason)
        self.message = message or self.reason


class ProtocolError(HubError):
    """The peer sent bytes that do not parse (request line, header, frame)."""

    rtsp_status = 400
    http_status = 400
    reason = "Bad Request"


class BadRequest(ProtocolError):
    """Well-formed but unacceptable input (validation)."""


class PayloadTooLarge(ProtocolError):
    """A request body over the cap (refused by its declared length, or
    counted as it arrives)."""

    rtsp_status = 413
    http_status = 413
    reason = "Payload Too Large"


class Unauthorized(HubError):
    rtsp_status = 401
    http_status = 401
    reason = "Unauthorized"


class Forbidden(HubError):
    rtsp_status = 403
    http_status = 403
    reason = "Forbidden"


class NotFound(HubError):
    rtsp_status = 404
    http_status = 404
    reason = "Not Found"


class MethodNotAllowed(HubError):
    rtsp_status = 405
    http_status = 405
    reason = "Method Not Allowed"


class PreconditionFailed(HubError):
    """A conditional request whose If-Match names another version (a WHIP/WHEP
    session's ETag)."""

    rtsp_status = 412
    http_status = 412
    reason = "Precondition Failed"


class UnsupportedMediaType(ProtocolError):
    """A body of a Content-Type the resource does not take."""

    rtsp_status = 415
    http_status = 415
    reason = "Unsupported Media Type"


class Unprocessable(HubError):
    """Well-formed, but this resource cannot do it (an ICE restart on a
    session without restarts; a stream WebRTC players cannot play)."""

    rtsp_status = 400
    http_status = 422
    reason = "Unprocessable Content"
class RangeNotSatisfiable(HubError):
    """An HTTP Range that starts past the end; the message is the answer's
    Content-Range (``bytes */LENGTH``)."""
    rtsp_status = 457  # Invalid Range
    http_status = 416
    reason = "Range Not Satisfiable"
    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Range": self.message}


class SessionNotFound(HubError):
    rtsp_status = 454
    http_status = 404
    reason = "Session Not Found"


class MethodNotValidInState(HubError):
    rtsp_status = 455
    http_status = 409
    reason = "Method Not Valid in This State"


class RequestTimeout(HubError):
    """A request did not arrive whole within its deadline (slow client)."""

    rtsp_status = 408
    http_status = 408
    reason = "Request Timeout"


class UnsupportedTransport(HubError):
    rtsp_status = 461
    http_status = 400
    reason = "Unsupported Transport"


class TooManyRequests(HubError):
    """A client repeats a costly request faster than it may (HTTP 429, with
    Retry-After; RTSP has no such status: 503)."""

    rtsp_status = 503
    http_status = 429
    reason = "Too Many Requests"
    #: Seconds until one more is let through (token refreshes: one per user
    #: every 6 s once the burst is spent, `hub.store.sessions`).
    retry_after = 6

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ServiceUnavailable(HubError):
    rtsp_status = 503
    http_status = 503
    reason = "Service Unavailable"


class LimitReached(ServiceUnavailable):
    """An operator's limit (`limits.*` in the configuration) refuses a
    player or publisher: RTSP 453 Not Enough Bandwidth, HTTP 503. `limit`
    names the key (`players_per_stream`, `players`, `publishers`,
    `connections_per_ip`); it travels over IPC in the message."""

    rtsp_status = 453
    http_status = 503
    reason = "Not Enough Bandwidth"


class Draining(ServiceUnavailable):
    """The server is draining (SIGTERM): it takes no new players or
    publishers; the balancer or the client's retry goes to another node."""

    reason = "Service Unavailable: draining"


class StoreUnavailable(ServiceUnavailable):
    """A cluster's shared store (Redis) cannot be reached: changes to users
    and routes are refused until it is back (reads, logins' checks, live
    streams and players go on)."""

    reason = "Service Unavailable: the shared store (Redis) is not reachable; try again"
    public_message = True


class NotReady(ServiceUnavailable):
    """`/readyz`: what is not ready (child names, draining), for the probe
    and the operator reading it."""

    public_message = True


class IpcError(HubError):
    """An IPC link broke or a peer answered with an error."""


class IpcTimeout(IpcError):
    rtsp_status = 503
    http_status = 503
    reason = "Service Unavailable"
