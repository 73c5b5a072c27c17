"""Control plane: msgpack frames over Unix stream sockets.

Request/response with ids and timeouts, one-way notices, and hand-off of an
accepted TCP socket (fd + bytes already read). `codec` frames bytes,
`envelope` checks a frame's kind, `messages` declares every method with its
arguments' type (`methods`: what a declaration is), `channel` runs a link,
`dispatch` is a process's one table of handlers, `handoff` moves a TCP
connection between processes.
"""

from __future__ import annotations

from .channel import IpcChannel, IpcHandler, IpcServer, connect_unix, serve_unix, socketpair_channels
from .handoff import adopt_socket, already_read_of, send_socket

__all__ = [
    "IpcChannel", "IpcHandler", "IpcServer", "connect_unix", "serve_unix", "socketpair_channels",
    "adopt_socket", "already_read_of", "send_socket",
]
