"""Control plane: msgpack frames over Unix stream sockets.

Request/response with ids and timeouts, one-way notices, and hand-off of an
accepted TCP socket (fd + bytes already read). `codec` frames bytes, `messages`
declares every message and method name, `channel` runs a link, `handoff`
moves a TCP connection between processes.
"""

from __future__ import annotations

from .channel import IpcChannel, IpcHandler, IpcServer, connect_unix, serve_unix, socketpair_channels
from .handoff import adopt_socket, already_read_of, send_socket

__all__ = [
    "IpcChannel", "IpcHandler", "IpcServer", "connect_unix", "serve_unix", "socketpair_channels",
    "adopt_socket", "already_read_of", "send_socket",
]
