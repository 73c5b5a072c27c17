"""A front's RTSP player connection (`hub.api.rtsp.connection` over the glue
of `hub.rtsp_glue`, the engine, `RtpPlayer` and the RTP fan-out) driven on a
fake transport: the answers' headers, interleaved RTP that depacketises back
to the frames put into the ring, RTCP sender reports, the glue's pauses
(a client that does not read, pipelined requests), timeouts, and what
closing releases."""

from __future__ import annotations

import asyncio
import dataclasses
import struct

import pytest

from hub import rtsp_glue
from hub.api.play import rtp as rtp_mod
from hub.api.play.consumer import HIGH_WATER
from hub.api.rtsp.connection import RtspConnection
from hub.config import Config
from hub.media.rtcp import SenderReport, parse_compound
from hub.media.rtp import RtpPacket
from hub.media.rtp_aac import AacDepacketizer
from hub.media.rtp_h264 import H264Depacketizer
from hub.media.rtsp import InterleavedFrame, RtspResponse

from .fakes import FakeTransport, OneShard, Stream, make_front, rtsp_read, run, until

URL = "rtsp://127.0.0.1:1554/live/x"


def request(method: str, uri: str, cseq: int, *headers: str) -> bytes:
    return "".join((f"{method} {uri} RTSP/1.0\r\nCSeq: {cseq}\r\n", *(h + "\r\n" for h in headers), "\r\n")).encode()


class Client:
    """One RTSP client on a fake transport: sends requests, reads answers
    and `$` frames from what the server wrote."""

    def __init__(self, conn: RtspConnection, transport: FakeTransport) -> None:
        self.conn = conn
        self.t = transport
        self.cseq = 0
        self.session = ""
        self.frames: list[InterleavedFrame] = []

    def read(self) -> list[RtspResponse]:
        out = []
        for ev in rtsp_read(self.t.take()):
            if isinstance(ev, InterleavedFrame):
                self.frames.append(ev)
            else:
                out.append(ev)
        return out

    async def ask(self, method: str, uri: str, *headers: str) -> RtspResponse:
        self.cseq += 1
        if self.session:
            headers = (*headers, f"Session: {self.session}")
        self.conn.data_received(request(method, uri, self.cseq, *headers))
        await until(lambda: b"RTSP/1.0" in self.t.out)
        (answer,) = self.read()
        assert answer.cseq == self.cseq and answer.headers.get("Server") == "ipchub-py"
        session = answer.headers.get("Session")
        if session:
            self.session = session.split(";")[0]
        return answer

    def take_frames(self) -> list[InterleavedFrame]:
        self.read()
        out, self.frames = self.frames, []
        return out


async def connect(front: object, kind: str = "rtsp") -> Client:
    t = FakeTransport()
    conn = RtspConnection(front, kind)  # type: ignore[arg-type]
    t.connect(conn)
    return Client(conn, t)


async def play(c: Client, tracks: int = 2) -> RtspResponse:
    for i in range(tracks):
        answer = await c.ask("SETUP", f"{URL}/trackID={i}", f"Transport: RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}")
        assert answer.status == 200, answer
        assert answer.headers.get("Transport") == f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"
    answer = await c.ask("PLAY", f"{URL}/", "Range: npt=0.000-")
    assert answer.status == 200, answer
    return answer


def rtp_of(frames: list[InterleavedFrame], channel: int) -> list[RtpPacket]:
    return [RtpPacket.parse(f.payload) for f in frames if f.channel == channel]


def h264_units(packets: list[RtpPacket]) -> list[tuple[int, bytes, bool]]:
    d = H264Depacketizer()
    return [(u.pts, u.data, u.keyframe) for p in packets for u in d.push(p)]


def test_describe_setup_play_then_frames_then_teardown(stream: Stream) -> None:
    async def main() -> None:
        shard = OneShard(stream)
        front = make_front(shard)
        c = await connect(front)
        assert (front.counters.rtsp_total, front.counters.rtsp_active) == (1, 1)
        options = await c.ask("OPTIONS", URL)
        assert options.status == 200 and "DESCRIBE" in (options.headers.get("Public") or "")
        describe = await c.ask("DESCRIBE", URL, "Accept: application/sdp")
        assert describe.status == 200 and describe.body == stream.desc.sdp.encode()
        assert describe.headers.get("Content-Base") == URL + "/"
        assert describe.headers.get("Content-Type") == "application/sdp"
        # Frames before PLAY: the cached GOP the player starts with.
        _, k0 = stream.video(True, 0, size=3000)  # fragmented (FU-A)
        _, a0 = stream.sound(0)
        _, p1 = stream.video(False, 3600)
        front.views.on_wake({stream.stream_id: 3})
        answer = await play(c)
        assert answer.headers.get("Session") == f"{c.session};timeout=60" and len(c.session) == 16
        assert answer.headers.get("Range") == "npt=0.000-"
        infos = dict(part.split(";", 1) for part in (answer.headers.get("RTP-Info") or "").split(","))
        gop = c.take_frames()
        video, audio = rtp_of(gop, 0), rtp_of(gop, 2)
        assert infos[f"url={URL}/trackID=0"] == f"seq={video[0].sequence_number};rtptime={video[0].timestamp}"
        assert infos[f"url={URL}/trackID=1"] == f"seq={audio[0].sequence_number};rtptime={audio[0].timestamp}"
        # Live frames after the GOP, on the same numbering.
        _, p2 = stream.video(False, 7200)
        _, a1 = stream.sound(1024)
        front.views.on_wake({stream.stream_id: 5})
        live = c.take_frames()
        assert {f.channel for f in gop + live} == {0, 2}
        video += rtp_of(live, 0)
        audio += rtp_of(live, 2)
        base = video[0].timestamp
        assert [(ts - base, data, key) for ts, data, key in h264_units(video)] == [
            (0, k0, True), (3600, p1, False), (7200, p2, False)]
        for packets in (video, audio):
            seqs = [p.sequence_number for p in packets]
            assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(len(seqs))], "no gap between GOP and live"
        assert {p.payload_type for p in video} == {96} and {p.payload_type for p in audio} == {97}
        aac = AacDepacketizer()
        units = [u for p in audio for u in aac.push(p)]
        assert [u.data for u in units] == [a0, a1]
        assert units[1].pts - units[0].pts == 1024
        view = front.views.by_path["/live/x"]
        assert [x.protocol for x in view.consumers()] == ["rtsp"]

        teardown = await c.ask("TEARDOWN", f"{URL}/")
        assert teardown.status == 200 and c.t.closing
        await until(lambda: c.t.lost)
        assert front.counters.rtsp_active == 0 and c.conn.player is None
        assert view.closed and shard.notices == [("release_stream", {"stream_id": stream.stream_id})]
        assert front.views.ended["rtsp"] == 1

    run(main())


def test_refusals_change_nothing_and_keep_the_connection(stream: Stream) -> None:
    async def main() -> None:
        front = make_front(OneShard(stream))
        c = await connect(front)
        assert (await c.ask("PLAY", URL)).status == 455, "PLAY before SETUP"
        assert (await c.ask("DESCRIBE", "rtsp://127.0.0.1:1554/live/none")).status == 404
        assert (await c.ask("SETUP", f"{URL}/trackID=9", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")).status == 404
        assert not c.session and c.conn.player is None and not c.t.closing
        answer = await play(c, tracks=1)
        assert answer.status == 200
        c.conn.close()

    run(main())


def test_a_player_only_transport_refuses_to_publish(stream: Stream) -> None:
    async def main() -> None:
        front = make_front(OneShard(stream))
        c = await connect(front, kind="wsp")
        assert (front.counters.wsp_total, front.counters.rtsp_total) == (1, 0)
        answer = await c.ask("ANNOUNCE", URL, "Content-Type: application/sdp", "Content-Length: 0")
        assert answer.status == 455
        await play(c, tracks=1)
        assert front.views.by_path["/live/x"].consumers()[0].protocol == "wsp"
        c.t.hang_up()
        assert front.counters.wsp_active == 0 and front.views.by_path == {}

    run(main())


def test_a_hang_up_while_playing_releases_the_player_and_the_view(stream: Stream) -> None:
    async def main() -> None:
        shard = OneShard(stream)
        front = make_front(shard)
        c = await connect(front)
        await play(c)
        view = front.views.by_path["/live/x"]
        fanout = view.fanouts["rtp"]
        assert isinstance(fanout, rtp_mod.RtpFanout) and len(fanout.players) == 1
        c.t.hang_up()
        assert fanout.players == [] and view.closed and c.conn.player is None
        assert shard.notices == [("release_stream", {"stream_id": stream.stream_id})]
        stream.video(True, 0)
        front.views.on_wake({stream.stream_id: 1})
        assert c.t.take() == b"", "nothing written after the hang-up"

    run(main())


def test_an_rtsp_player_behind_resumes_at_a_keyframe_frame(stream: Stream) -> None:
    async def main() -> None:
        front = make_front(OneShard(stream))
        c = await connect(front)
        stream.video(True, 0)
        front.views.on_wake({stream.stream_id: 1})
        await play(c)
        c.take_frames()
        c.t.fill(HIGH_WATER + 1)  # the client stopped reading
        assert not c.t.reading, "answers would queue too: its requests wait"
        stream.video(False, 3600)
        front.views.on_wake({stream.stream_id: 2})
        assert c.t.take() == b""
        c.t.drain()
        assert c.t.reading
        stream.sound(1024)
        _, k = stream.video(True, 7200, size=3000)
        front.views.on_wake({stream.stream_id: 4})
        frames = c.take_frames()
        assert frames[0].channel == 0, "the audio before the keyframe is cut"
        units = h264_units(rtp_of(frames, 0))
        assert [(data, key) for _ts, data, key in units] == [(k, True)]
        c.conn.close()

    run(main())


def test_without_a_cached_gop_a_player_starts_at_the_next_keyframe(stream: Stream) -> None:
    async def main() -> None:
        front = make_front(OneShard(stream))
        c = await connect(front)
        await play(c)
        assert c.take_frames() == [], "nothing cached: no GOP"
        stream.video(False, 3600)
        stream.sound(1024)
        front.views.on_wake({stream.stream_id: 2})
        assert c.t.take() == b"", "not from the middle of a GOP"
        _, k = stream.video(True, 7200)
        front.views.on_wake({stream.stream_id: 3})
        assert [(data, key) for _ts, data, key in h264_units(rtp_of(c.take_frames(), 0))] == [(k, True)]
        c.conn.close()

    run(main())


def test_sender_reports_go_to_playing_tcp_players(stream: Stream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtp_mod, "SR_INTERVAL", 0.05)

    async def main() -> None:
        front = make_front(OneShard(stream))
        c = await connect(front)
        await play(c)
        stream.video(True, 0)
        front.views.on_wake({stream.stream_id: 1})
        video = rtp_of(c.take_frames(), 0)
        await asyncio.sleep(0.08)
        reports = [p for f in c.take_frames() if f.channel == 1 for p in parse_compound(f.payload)]
        assert reports and all(isinstance(r, SenderReport) for r in reports)
        sr = reports[0]
        assert isinstance(sr, SenderReport)
        assert sr.ssrc == video[0].ssrc and sr.packet_count == len(video)
        assert sr.octet_count == sum(len(p.payload) for p in video)
        c.conn.close()

    run(main())


def test_a_client_that_does_not_read_answers_is_not_read(stream: Stream) -> None:
    async def main() -> None:
        front = make_front(OneShard(stream))
        c = await connect(front)
        c.t.fill(HIGH_WATER + 1)
        c.conn.data_received(request("OPTIONS", URL, 1))
        assert c.t.out == b"" and not c.t.reading
        c.t.drain()
        assert c.t.reading and [r.cseq for r in c.read()] == [1]
        c.conn.close()

    run(main())


def test_pipelined_requests_are_answered_a_bounded_number_per_turn(stream: Stream) -> None:
    async def main() -> None:
        front = make_front(OneShard(stream))
        c = await connect(front)
        n = rtsp_glue.MAX_REQUESTS_PER_TURN + 4
        c.conn.data_received(b"".join(request("OPTIONS", URL, i) for i in range(1, n + 1)))
        assert [r.cseq for r in c.read()] == list(range(1, rtsp_glue.MAX_REQUESTS_PER_TURN + 1))
        assert not c.t.reading and c.t.pauses == 1
        await until(lambda: c.t.reading)
        assert [r.cseq for r in c.read()] == list(range(rtsp_glue.MAX_REQUESTS_PER_TURN + 1, n + 1))
        c.conn.close()

    run(main())


def test_a_silent_session_times_out_and_traffic_keeps_it(stream: Stream) -> None:
    async def main() -> None:
        shard = OneShard(stream)
        front = make_front(shard, dataclasses.replace(Config(), rtsp_session_timeout=0.2))
        c = await connect(front)
        await play(c, tracks=1)
        for _ in range(3):  # keep-alives within the timeout
            await asyncio.sleep(0.1)
            assert (await c.ask("GET_PARAMETER", f"{URL}/")).status == 200
        assert not c.t.closing
        await asyncio.sleep(0.35)
        assert c.t.closing and c.t.lost
        assert front.views.by_path == {} and shard.notices == [("release_stream", {"stream_id": stream.stream_id})]
        assert front.counters.rtsp_active == 0

    run(main())


def test_interleaved_headers_are_four_bytes_dollar_channel_length(stream: Stream) -> None:
    async def main() -> None:
        front = make_front(OneShard(stream))
        c = await connect(front)
        await play(c, tracks=1)
        stream.video(True, 0)
        front.views.on_wake({stream.stream_id: 1})
        raw = c.t.take()
        assert raw[:2] == b"$\x00"
        (length,) = struct.unpack(">H", raw[2:4])
        packet = RtpPacket.parse(raw[4:4 + length])
        assert packet.marker and packet.payload_type == 96
        c.conn.close()

    run(main())
