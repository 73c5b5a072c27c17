"""The ingest session on its own: going live, the RTP path through an RTSP
connection's bytes, in-band and out-of-band parameter changes, counts, and
the liveness tick with an injected clock (and once with the loop's timer)."""

from __future__ import annotations

import asyncio
import time

import pytest

from hub.errors import ProtocolError
from hub.media.rtsp import RtspReader, RtspRequest, RtspResponse
from hub.media.stream_desc import FLAG_MARKER, FLAG_RTP_PAYLOAD
from hub.ring import RingReader
from hub.shard.streams import StreamTable

from .ingest_helpers import PPS, SPS, Clock, go_live, run, session, tracks
from .publish_session_helpers import frame

IDR = bytes.fromhex("65888400ff")
P_SLICE = bytes.fromhex("419a0011")
# V=2, SSRC 0x11223344; PT 96 with M=1 (0xe0), or M=0 (0x60).
RTP_IDR = bytes.fromhex("80e00001" "000003e8" "11223344") + IDR  # ts 1000, seq 1
RTP_P = bytes.fromhex("80e00002" "000011f8" "11223344") + P_SLICE  # ts 4600, seq 2
RTP_SPS = bytes.fromhex("80600003" "00001f08" "11223344") + SPS  # ts 7944, seq 3..5
RTP_PPS = bytes.fromhex("80600004" "00001f08" "11223344") + PPS
RTP_IDR2 = bytes.fromhex("80e00005" "00001f08" "11223344") + IDR
# PT 8 (PCMA), M=1, seq 9, ts 160.
RTP_PCMA = bytes.fromhex("80880009" "000000a0" "0a0b0c0d") + b"\xd5\xd5\xd5\xd5"

TRACKS_SDP = (
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=Stream\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:trackID=0\r\n"
    "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\n"
    "a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1190\r\n"
    "a=control:trackID=1\r\n"
    "m=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000/1\r\na=control:trackID=2\r\n")


def test_going_live_publishes_with_the_bytes_so_far_and_the_source_to_close() -> None:
    async def main(streams: StreamTable) -> None:
        ingest, src = session(streams)
        ingest.count(50)
        assert (ingest.bytes_in, ingest.stream, ingest.live) == (50, None, False)
        assert streams.get("/live/x") is None
        stream = ingest.go_live(tracks())
        assert streams.get("/live/x") is stream and ingest.live
        assert (stream.size, stream.addr, stream.source, stream.version) == (50, "127.0.0.1:40000", src, 1)
        assert stream.sdp == TRACKS_SDP
        assert [(t.index, t.codec) for t in stream.tracks] == [(0, "H264"), (1, "MPEG4-GENERIC"), (2, "PCMA")]
        ingest.count(7)
        assert (ingest.bytes_in, stream.size) == (57, 57)
        # A second source of the path replaces this one: the first is closed.
        other, other_src = session(streams)
        new = other.go_live(tracks())
        assert stream.closed and src.closes == 1 and ingest.closed and not new.closed
        # DELETE: StreamTable.close closes the stream and asks its source to stop.
        streams.close(new)
        assert other_src.closes == 1 and other.closed and streams.get("/live/x") is None
        with pytest.raises(RuntimeError):
            other.go_live(tracks())

    run(main)


def test_rtsp_bytes_frames_to_their_tracks_messages_to_the_source() -> None:
    async def main(streams: StreamTable) -> None:
        ingest, _ = session(streams)
        messages: list[RtspRequest | RtspResponse] = []
        reader = RtspReader()
        ring = go_live(ingest)
        ingest.bind_interleaved(0, (0, 1))
        ingest.bind_interleaved(2, (4, 5))
        request = b"GET_PARAMETER rtsp://h/x RTSP/1.0\r\nCSeq: 3\r\n\r\n"
        response = b"RTSP/1.0 200 OK\r\nCSeq: 9\r\n\r\n"
        wire = (frame(0, RTP_IDR) + request + frame(4, RTP_PCMA) + frame(7, b"no track here")
                + response + frame(0, RTP_P))
        for i in range(0, len(wire), 5):  # fed in pieces: frames may straddle reads
            ingest.receive_rtsp(wire[i:i + 5], reader, messages.append)
        assert [(type(m).__name__, m.headers.get("CSeq")) for m in messages] == [
            ("RtspRequest", "3"), ("RtspResponse", "9")]
        assert ring.entries() == [
            (0, 0, True, 0, 0, b"\x00\x00\x00\x05" + IDR),
            (2, FLAG_RTP_PAYLOAD | FLAG_MARKER, False, 0, 0, b"\xd5\xd5\xd5\xd5"),
            (0, 0, False, 3600, 3600, b"\x00\x00\x00\x04" + P_SLICE)]
        assert ingest.stream is not None and ingest.stream.size == ingest.bytes_in == len(wire)
        stats = ingest.stats()
        assert (stats.packets, stats.entries, stats.bad_rtp) == (3, 3, 0)

    run(main)


def test_rtsp_bytes_stop_when_the_session_closes_mid_read() -> None:
    async def main(streams: StreamTable) -> None:
        ingest, src = session(streams)
        ring = go_live(ingest)
        ingest.bind_interleaved(0, (0, 1))
        stream = ingest.stream
        assert stream is not None
        seen: list[object] = []

        def on_message(msg: RtspRequest | RtspResponse) -> None:
            seen.append(msg)
            src.close()  # a TEARDOWN, say

        request = b"TEARDOWN rtsp://h/x RTSP/1.0\r\nCSeq: 4\r\n\r\n"
        ingest.receive_rtsp(request + frame(0, RTP_IDR) + request, RtspReader(), on_message)
        assert len(seen) == 1 and stream.closed and ring.entries() == []
        assert ingest.channels == [None] * 256

    run(main)


def test_malformed_rtsp_raises_the_protocol_error_for_the_source() -> None:
    async def main(streams: StreamTable) -> None:
        ingest, _ = session(streams)
        garbage = b"\x01\x02 not rtsp\r\n\r\n"
        with pytest.raises(ProtocolError):
            ingest.receive_rtsp(garbage, RtspReader(), lambda m: None)
        assert ingest.bytes_in == len(garbage)

    run(main)


def test_in_band_parameter_sets_re_describe_the_stream() -> None:
    async def main(streams: StreamTable) -> None:
        ingest, _ = session(streams)
        stream = ingest.go_live(tracks())
        rtp, _ = ingest.rtp_sinks(0)
        for pkt in (RTP_IDR, RTP_SPS, RTP_PPS, RTP_IDR2):
            rtp(pkt)
        assert stream.version == 2 and ingest.stats().param_updates == 1
        video = stream.tracks[0]
        assert (video.sps, video.pps, video.width, video.height, video.framerate) == (SPS, PPS, 640, 360, 25.0)
        assert ingest.tracks[0] is video and stream.tracks is not ingest.tracks
        assert ("a=fmtp:96 packetization-mode=1;profile-level-id=F4001E;sprop-parameter-sets="
                "Z/QAHpGbKBQF/xOAiAAAAwAIAAADAZB4sWyw,aOvjxEhE\r\n") in stream.sdp
        reader = RingReader.attach(stream.ring.name)
        assert reader.description_version == 2  # readers see it in the ring's header
        reader.close()
        rtp(bytes.fromhex("80600006" "00002d18" "11223344") + SPS)  # the same set again: no change
        assert stream.version == 2

    run(main)


def test_out_of_band_parameter_sets_and_audio_config() -> None:
    async def main(streams: StreamTable) -> None:
        ingest, _ = session(streams)
        stream = ingest.go_live(tracks())
        ingest.set_params(0, [SPS, PPS, IDR])  # a non-parameter NAL is ignored
        assert stream.version == 2 and (stream.tracks[0].width, stream.tracks[0].sps) == (640, SPS)
        ingest.set_params(0, [SPS, PPS])
        assert stream.version == 2
        # 44.1 kHz mono AAC-LC: 00010 0100 0001 000
        ingest.set_audio_config(1, bytes.fromhex("1208"))
        audio = stream.tracks[1]
        assert (audio.asc, audio.sample_rate, audio.channels, stream.version) == (bytes.fromhex("1208"), 44100, 1, 3)
        assert audio.fmtp.endswith(";config=1208") and "config=1208\r\n" in stream.sdp
        ingest.set_audio_config(1, bytes.fromhex("1208"))
        assert stream.version == 3
        with pytest.raises(ProtocolError):
            ingest.set_audio_config(1, b"\x00")
        assert stream.version == 3 and stream.tracks[1].asc == bytes.fromhex("1208")
        ingest.set_audio_config(2, bytes.fromhex("1190"))  # not AAC: nothing to configure
        assert stream.version == 3 and stream.tracks[2].asc == b""

    run(main)


def test_tick_with_an_injected_clock() -> None:
    async def main(streams: StreamTable) -> None:
        clock = Clock(100.0)
        ticks: list[float] = []
        ingest, src = session(streams, clock=clock, timeout=10.0, on_tick=ticks.append)
        ingest.go_live(tracks())
        assert ingest.check(105.0) and ticks == [105.0]
        ingest.count(1)  # traffic: only a flag until the next tick
        assert ingest.last_seen == 100.0 and ingest.seen
        assert ingest.check(109.0) and ingest.last_seen == 109.0 and not ingest.seen
        assert ingest.check(118.9) and src.closes == 0
        assert not ingest.check(119.0)  # ten seconds without a byte
        assert src.closes == 1 and ingest.closed and ticks == [105.0, 109.0, 118.9]
        assert ingest.stream is not None and ingest.stream.closed
        assert not ingest.check(200.0) and src.closes == 1

    run(main)


def test_timeout_goes_to_on_timeout_when_the_source_gives_one() -> None:
    async def main(streams: StreamTable) -> None:
        clock = Clock()
        timeouts: list[float] = []
        ingest, src = session(streams, clock=clock, timeout=1.0,
                              on_timeout=lambda: timeouts.append(clock.now))
        clock.now = 1.5
        assert ingest.check(1.5) and timeouts == [1.5] and src.closes == 0  # the source decides

    run(main)


def test_the_loop_timer_ends_an_idle_session_and_traffic_keeps_one() -> None:
    async def main(streams: StreamTable) -> None:
        idle, idle_src = session(streams, "/a", clock=time.monotonic, timeout=0.2)
        busy, busy_src = session(streams, "/b", clock=time.monotonic, timeout=0.2)
        t0 = time.monotonic()
        idle.start()
        busy.start()
        while not idle.closed:
            busy.count(10)
            await asyncio.sleep(0.02)
        assert 0.2 <= time.monotonic() - t0 < 1.0
        assert idle_src.closes == 1 and busy_src.closes == 0
        await asyncio.sleep(0.4)
        assert busy.closed  # quiet too, now

    run(main)


def test_parameter_sets_changing_in_every_packet_re_describe_once_a_gap() -> None:
    """A publisher sending a new PPS in every packet made the shard build a
    new SDP and log a line per packet, and every front reading the stream
    DESCRIBE again: 500 packets, 500 descriptions. Now one per
    PARAMS_MIN_GAP, the latest parameter sets taken by the first packet
    after it."""
    from hub.shard.rtp_in import PARAMS_MIN_GAP

    async def main(streams: StreamTable) -> None:
        clock = Clock(100.0)
        ingest, _ = session(streams, clock=clock)
        stream = ingest.go_live(tracks())
        rtp, _ = ingest.rtp_sinks(0)
        rtp(bytes.fromhex("80600001" "000003e8" "11223344") + SPS)
        for seq in range(2, 502):  # 0.5 s of packets, each a PPS of its own
            clock.now += 0.001
            rtp(bytes.fromhex("8060%04x" "000003e8" "11223344" % seq) + PPS + seq.to_bytes(2, "big"))
        assert stream.version == 2, stream.version  # was 501
        assert stream.tracks[0].pps == PPS + (2).to_bytes(2, "big")
        clock.now += PARAMS_MIN_GAP
        rtp(bytes.fromhex("80e001f6" "000003e8" "11223344") + IDR)  # any packet after the gap
        assert stream.version == 3 and stream.tracks[0].pps == PPS + (501).to_bytes(2, "big")
        rtp(bytes.fromhex("80e001f7" "000007d0" "11223344") + IDR)
        assert stream.version == 3

    run(main)


def test_an_rtmp_audio_config_changing_in_every_message_re_describes_once_a_gap() -> None:
    from hub.shard.rtp_in import PARAMS_MIN_GAP

    async def main(streams: StreamTable) -> None:
        clock = Clock(100.0)
        ingest, _ = session(streams, clock=clock)
        stream = ingest.go_live(tracks())
        configs = [bytes.fromhex("1208"), bytes.fromhex("1210")]  # 44.1 kHz mono, stereo
        for i in range(200):
            clock.now += 0.001
            ingest.set_audio_config(1, configs[i % 2])
            ingest.push_au(1, b"\x21\x00", i * 1024)
        assert stream.version == 2, stream.version  # was 201
        with pytest.raises(ProtocolError):  # refused at once, in the gap too
            ingest.set_audio_config(1, b"\x00")
        ingest.set_audio_config(1, configs[1])
        clock.now += PARAMS_MIN_GAP
        ingest.push_au(1, b"\x21\x00", 300 * 1024)
        assert stream.version == 3 and stream.tracks[1].asc == configs[1]

    run(main)


def test_rtcp_of_endless_parts_is_counted_as_garbage_not_parsed() -> None:
    async def main(streams: StreamTable) -> None:
        ingest, _ = session(streams)
        ingest.go_live(tracks())
        _, rtcp = ingest.rtp_sinks(0)
        rtcp(bytes((0x80, 204, 0, 0)) * (65532 // 4))  # one 64 KiB datagram of empty APP packets
        stats = ingest.stats()
        assert (stats.rtcp, stats.bad_rtcp) == (0, 1)

    run(main)
