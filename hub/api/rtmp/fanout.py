"""RTMP players of one stream in a front: the FLV fan-out's tags, chunked once.

An RTMP audio/video/data message body is an FLV tag body, so the RTMP
fan-out is the FLV fan-out (`hub.api.play.flv.FlvFanout`: the codec
decisions, timestamps, metadata, sequence headers, the GOP at join and new
parameter sets in-line) with each tag turned into one RTMP message by
`RtmpPlayMuxer`. Those messages do not depend on the player (every message
has a full header on fixed chunk streams; see `hub.media.rtmp.play`), so a
batch is chunked once and the same bytes go to every player, one write per
player per batch; a slow player skips to the next keyframe message as the
other outputs' players do (`hub.api.play.consumer`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ...media.flv import TAG_HEADER_LEN, HevcMode
from ...media.rtmp import RtmpPlayMuxer, RtmpServerConnection, RtmpState
from ...ring import RingEntry
from ..play.consumer import Consumer
from ..play.flv import FlvFanout

if TYPE_CHECKING:
    import asyncio

    from ..play.views import StreamView

__all__ = ["RtmpConsumer", "RtmpFanout", "fanout_key"]


def fanout_key(hevc_mode: HevcMode) -> str:
    return f"rtmp-{hevc_mode}"


class RtmpFanout(FlvFanout):
    def __init__(self, view: StreamView, hevc_mode: HevcMode = "enhanced") -> None:
        self.rtmp = RtmpPlayMuxer()  # before FlvFanout makes the head with it
        super().__init__(view, ws=False, hevc_mode=hevc_mode)

    def _frame_one(self, tag: bytes) -> bytes:
        # FLV's 13-byte file header starts "FLV" (a tag starts with its type:
        # 8, 9 or 18); RTMP has no file header.
        if tag[:3] == b"FLV":
            return b""
        return self.rtmp.from_flv_tag(tag)

    def mux(self, entries: list[RingEntry]) -> tuple[bytes, int]:
        """The FLV fan-out's tags for `entries`, each as one RTMP message, and
        where the message of the first video keyframe starts (-1 if none)."""
        flv, key = super().mux(entries)
        view = memoryview(flv)
        to_message = self.rtmp.from_flv_tag
        parts: list[bytes] = []
        pos = out = 0
        key_out = -1 if key < 0 else 0
        while pos < len(view):
            end = pos + TAG_HEADER_LEN + (view[pos + 1] << 16 | view[pos + 2] << 8 | view[pos + 3]) + 4
            if pos == key:
                key_out = out
            message = to_message(view[pos:end])
            parts.append(message)
            out += len(message)
            pos = end
        return b"".join(parts), key_out


class RtmpConsumer(Consumer):
    """A player of the RTMP fan-out. Closed by the server (the stream ended,
    the view closed) it is told so first, as RTMP players expect:
    Stream EOF and NetStream.Play.UnpublishNotify."""

    def __init__(self, transport: asyncio.Transport, conn: RtmpServerConnection, extra: str,
                 on_close: Callable[[Consumer], None] | None = None) -> None:
        super().__init__(transport, "FLV", extra, on_close)
        self.conn = conn

    def close(self, abort: bool = False) -> None:
        if not (self.closed or abort or self.transport.is_closing()) and self.conn.state is RtmpState.PLAYING:
            self.write_direct(self.conn.end_play())
        super().close(abort)
