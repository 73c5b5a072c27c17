"""Socket options set on a connection that may have closed meanwhile (a
SETUP that waited for its admission, a hand-off): uvloop's socket stand-in
raises ValueError, not OSError, once its transport closed; it reached the
request's handler as an unexpected error (a 500 and a traceback)."""

from __future__ import annotations

import asyncio
import socket

import uvloop

from hub.api.play.consumer import cap_send_buffer
from hub.ipc.handoff import set_nodelay


def test_options_on_a_closed_transport_are_ignored() -> None:
    async def main() -> None:
        srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        _r, w = await asyncio.open_connection("127.0.0.1", port)
        sock = w.transport.get_extra_info("socket")
        cap_send_buffer(w.transport, 64 * 1024)
        set_nodelay(w.transport)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        w.transport.abort()
        await asyncio.sleep(0)
        cap_send_buffer(w.transport, 64 * 1024)
        set_nodelay(w.transport)
        srv.close()
        await srv.wait_closed()

    uvloop.run(main())
