"""The publisher session driven byte-exactly through a stand-in transport:
responses, errors (400 + close, 454, 455, 461), keep-alives and the idle
timeout, ingest into the ring (depacketised, passed through, broken packets
counted), in-band parameter sets, replacement by a second publisher, DELETE."""

from __future__ import annotations

import asyncio
import socket

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.media.stream_desc import FLAG_MARKER, FLAG_RTP_PAYLOAD
from hub.shard.publish import PublishHost, RtspPublisher
from hub.shard.rtp_in import TrackIngest

from .publish_session_helpers import (
    IDR,
    P_SLICE,
    PPS,
    RTCP_SR,
    RTP_IDR,
    RTP_IDR3,
    RTP_P,
    RTP_PCMA1,
    RTP_PCMA2,
    RTP_PPS,
    RTP_SPS,
    SDP_PCMA,
    SID,
    SPS,
    URL,
    FakeTransport,
    announce,
    connect,
    fixed_random,
    frame,
    go_live,
    ok,
    record,
    request,
    run,
    setup_tcp,
    status,
)
from .test_publish_helpers import RingCollector, make_host, wait_for


def test_publish_handshake_exact_responses() -> None:
    async def main() -> None:
        host = make_host(random_bytes=fixed_random)
        session, t = connect(host, announce())
        assert t.take() == ok(2)
        assert host.streams.get("/live/x") is None  # not live before RECORD
        session.data_received(request("OPTIONS", 3))
        assert t.take() == ok(3, "Public: OPTIONS, ANNOUNCE, SETUP, PAUSE, RECORD, TEARDOWN, GET_PARAMETER, SET_PARAMETER")
        session.data_received(setup_tcp(4, 0, 0))
        assert t.take() == ok(4, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record")
        # No interleaved pair offered: the next free one is picked.
        session.data_received(request("SETUP", 5, "Transport: RTP/AVP/TCP;unicast;mode=record",
                                      f"Session: {SID}", uri=f"{URL}/streamid=1"))
        assert t.take() == ok(5, "Transport: RTP/AVP/TCP;unicast;interleaved=2-3;mode=record")
        session.data_received(record(6))
        assert t.take() == ok(6)
        stream = host.streams.get("/live/x")
        assert stream is not None and stream.source is session
        assert [(x.index, x.codec) for x in stream.tracks] == [(0, "H264"), (1, "MPEG4-GENERIC")]
        assert stream.addr == "127.0.0.1:40000"
        assert stream.sdp == (
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
            "a=tool:libavformat LIBAVFORMAT_VERSION\r\n"
            "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n"
            "a=control:trackID=0\r\n"
            "m=audio 0 RTP/AVP 97\r\nb=AS:128\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\n"
            "a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=1190\r\n"
            "a=control:trackID=1\r\n")
        for method in ("GET_PARAMETER", "SET_PARAMETER"):
            session.data_received(request(method, 7, f"Session: {SID}"))
            assert t.take() == ok(7)
        session.data_received(request("TEARDOWN", 8, f"Session: {SID}"))
        assert t.take() == ok(8)
        assert t.closed and session.closed and stream.closed
        assert host.streams.get("/live/x") is None

    run(main)


def test_whole_byte_by_byte_and_with_trailing_bytes() -> None:
    """The same conversation fed whole, a byte at a time, and with the next
    request's first bytes attached gives the same answers and ring."""
    wire = announce() + setup_tcp(3, 0, 0) + setup_tcp(4, 1, 2) + record(5) + frame(0, RTP_IDR) + frame(0, RTP_P)
    expected = ok(2) + ok(3, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record") + \
        ok(4, "Transport: RTP/AVP/TCP;unicast;interleaved=2-3;mode=record") + ok(5)

    async def feed(chunks: list[bytes]) -> tuple[bytes, list[tuple[int, bool, bytes]], int]:
        host = make_host(random_bytes=fixed_random, clock=lambda: 0.0)
        session, t = connect(host)
        collector = None
        for c in chunks:
            session.data_received(c)
            if collector is None and session.stream is not None:
                collector = RingCollector(session.stream)
        assert collector is not None and session.stream is not None
        collector.close()
        size = session.stream.size
        session.close()
        return t.take(), [(e.pts, e.keyframe, e.data) for e in collector.entries], size

    async def main() -> None:
        whole = await feed([wire])
        assert whole[0] == expected
        # AVCC: 4-byte length then the NAL; pts counted from the first packet.
        assert whole[1] == [(0, True, b"\x00\x00\x00\x05" + IDR), (3600, False, b"\x00\x00\x00\x04" + P_SLICE)]
        assert whole[2] == len(wire)
        assert await feed([wire[i:i + 1] for i in range(len(wire))]) == whole
        trailing = await feed([wire + b"OPTIONS rtsp://x RTSP/1.0\r\nCSe"])
        assert trailing[0] == expected and trailing[1] == whole[1] and trailing[2] == len(wire) + 30

    run(main)


def test_garbage_after_announce_is_400_and_closes() -> None:
    async def main() -> None:
        host = make_host(random_bytes=fixed_random)
        session, t = connect(host, announce() + b"\x01\x02 not rtsp\r\n\r\n")
        assert t.take() == ok(2) + status(400, "Bad Request", None)
        assert t.closed and session.closed

    run(main)


def test_malformed_sdp_is_400_and_closes() -> None:
    async def main() -> None:
        host = make_host(random_bytes=fixed_random)
        session, t = connect(host, announce(sdp="v=0\r\nthis is no sdp\r\n"))
        assert t.take() == status(400, "Bad Request", 2, False)  # refused: no session was made
        assert t.closed

    run(main)


def test_setup_before_announce_is_455() -> None:
    async def main() -> None:
        host = make_host(random_bytes=fixed_random)
        session, t = connect(host, setup_tcp(1, 0, 0))
        assert t.take() == status(455, "Method Not Valid in This State", 1, False)
        assert not t.closed
        session.data_received(request("PLAY", 2))
        assert t.take() == status(455, "Method Not Valid in This State", 2, False)
        session.data_received(announce(3) + record(4))  # RECORD before any SETUP
        assert t.take() == ok(3) + status(455, "Method Not Valid in This State", 4)
        session.data_received(request("FLY", 5))
        assert t.take() == status(405, "Method Not Allowed", 5, True, "Allow: OPTIONS, ANNOUNCE, SETUP, PAUSE, "
                                  "RECORD, TEARDOWN, GET_PARAMETER, SET_PARAMETER")

    run(main)


def test_unknown_session_is_454() -> None:
    async def main() -> None:
        host = make_host(random_bytes=fixed_random)
        session, t = connect(host, announce() + setup_tcp(3, 0, 0) + record(4, session="deadbeef"))
        out = t.take()
        assert out.endswith(status(454, "Session Not Found", 4, False))
        session.data_received(request("RECORD", 5))  # no Session header at all
        assert t.take() == status(454, "Session Not Found", 5, False)
        assert host.streams.get("/live/x") is None and not t.closed

    run(main)


def test_multicast_or_play_transport_is_461() -> None:
    async def main() -> None:
        host = make_host(random_bytes=fixed_random)
        session, t = connect(host, announce())
        t.take()
        for cseq, transport in enumerate(("RTP/AVP;multicast;destination=224.2.0.1;port=5000-5001;mode=record",
                                          "RTP/AVP/TCP;unicast;interleaved=0-1;mode=play",
                                          "RTP/AVP;unicast;mode=record",  # UDP without client_port
                                          "RAW/RAW/UDP;unicast"), start=3):
            session.data_received(request("SETUP", cseq, f"Transport: {transport}", uri=f"{URL}/streamid=0"))
            assert t.take() == status(461, "Unsupported Transport", cseq)
        session.data_received(request("SETUP", 9, uri=f"{URL}/streamid=0"))
        assert t.take() == status(461, "Unsupported Transport", 9)
        # A later offer in the list that fits is taken.
        session.data_received(request(
            "SETUP", 10, "Transport: RTP/AVP;multicast;mode=record,RTP/AVP/TCP;unicast;interleaved=4-5;mode=record",
            uri=f"{URL}/streamid=0"))
        assert t.take() == ok(10, "Transport: RTP/AVP/TCP;unicast;interleaved=4-5;mode=record")
        session.data_received(request("SETUP", 11, "Transport: RTP/AVP/TCP;interleaved=0-1", uri=f"{URL}/nope"))
        assert t.take() == status(400, "Bad Request", 11) and t.closed

    run(main)


def test_truncated_rtp_is_counted_and_the_stream_goes_on() -> None:
    async def main() -> None:
        host = make_host(random_bytes=fixed_random, clock=lambda: 0.0)
        session, t = go_live(host)
        assert session.stream is not None
        collector = RingCollector(session.stream)
        session.data_received(frame(0, RTP_IDR) + frame(0, RTP_P[:7]) + frame(0, RTP_P) + frame(1, RTCP_SR)
                              + frame(1, b"\x00garbage") + frame(9, b"unknown channel"))
        collector.close()
        assert [(e.track, e.pts, e.keyframe) for e in collector.entries] == [(0, 0, True), (0, 3600, False)]
        stats = session.ingest.ingests[0].stats
        assert (stats.packets, stats.bad_rtp, stats.entries, stats.rtcp, stats.bad_rtcp) == (2, 1, 2, 1, 1)
        sr = session.ingest.ingests[0].last_sr
        assert sr is not None and (sr.ssrc, sr.ntp, sr.rtp_timestamp, sr.packet_count) == (0x11223344, 1 << 32, 1000, 5)
        assert not t.closed

    run(main)


def test_in_band_parameter_sets_update_the_description() -> None:
    async def main() -> None:
        host = make_host(random_bytes=fixed_random, clock=lambda: 0.0)
        session, t = go_live(host)
        stream = session.stream
        assert stream is not None and stream.tracks[0].sps == b"" and stream.version == 1
        collector = RingCollector(stream)
        session.data_received(frame(0, RTP_SPS) + frame(0, RTP_PPS) + frame(0, RTP_IDR3))
        assert collector.reader.description_version == 2
        collector.close()
        (entry,) = collector.entries
        assert entry.keyframe and entry.data == b"".join(
            len(n).to_bytes(4, "big") + n for n in (SPS, PPS, IDR))
        video = stream.tracks[0]
        assert (video.sps, video.pps, video.width, video.height, video.framerate) == (SPS, PPS, 640, 360, 25.0)
        assert stream.version == 2
        assert ("a=fmtp:96 packetization-mode=1;profile-level-id=F4001E;sprop-parameter-sets="
                "Z/QAHpGbKBQF/xOAiAAAAwAIAAADAZB4sWyw,aOvjxEhE\r\n") in stream.sdp
        # The same sets again change nothing.
        session.data_received(frame(0, bytes.fromhex("80600004" "00000bb8" "11223344") + SPS))
        assert stream.version == 2

    run(main)


def test_pass_through_payloads_keep_rtp_flags() -> None:
    async def main() -> None:
        host = make_host(random_bytes=fixed_random, clock=lambda: 0.0)
        session, t = connect(host, announce(sdp=SDP_PCMA) + request(
            "SETUP", 3, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record", uri=f"{URL}/trackID=5")
            + record(4))
        assert t.take().endswith(ok(4))
        assert session.stream is not None
        (track,) = session.stream.tracks
        assert (track.codec, track.payload_type, track.clock_rate, track.kind) == ("PCMA", 8, 8000, "audio")
        collector = RingCollector(session.stream)
        session.data_received(frame(0, RTP_PCMA1) + frame(0, RTP_PCMA2))
        collector.close()
        # Audio-only stream: every entry is a start point.
        assert [(e.pts, e.flags, e.keyframe, e.data) for e in collector.entries] == [
            (0, FLAG_RTP_PAYLOAD | FLAG_MARKER, True, b"\xd5\xd5\xd5\xd5"),
            (160, FLAG_RTP_PAYLOAD, True, b"\x55\x55\x55\x55")]

    run(main)


def test_idle_session_times_out_and_keep_alives_keep_it() -> None:
    async def main() -> None:
        host = make_host(timeout=0.2, random_bytes=fixed_random)
        idle, t_idle = connect(host, announce())
        busy, t_busy = connect(host, announce())
        loop = asyncio.get_running_loop()
        start = loop.time()
        cseq = 3
        while not idle.closed:
            busy.data_received(request("GET_PARAMETER", cseq, f"Session: {SID}"))
            cseq += 1
            await asyncio.sleep(0.04)
        assert 0.2 <= loop.time() - start < 1.0
        assert t_idle.closed and not busy.closed
        await asyncio.sleep(0.4)
        assert busy.closed  # it went quiet too
        assert not host.sessions

    run(main)


def test_a_second_publisher_replaces_the_first_and_delete_closes() -> None:
    async def main() -> None:
        host = make_host(random_bytes=fixed_random)
        first, t1 = go_live(host)
        old = first.stream
        second, t2 = go_live(host)
        assert t1.closed and first.closed and old is not None and old.closed
        new = host.streams.get("/live/x")
        assert new is second.stream and new is not old and not t2.closed
        assert new is not None
        host.streams.close(new)  # what DELETE /api/v1/streams/... does
        assert t2.closed and second.closed and host.streams.get("/live/x") is None
        await asyncio.sleep(0)  # connection_lost runs; nothing raises
        assert not host.sessions

    run(main)


def test_udp_record_binds_a_pair_and_takes_only_the_publishers_datagrams() -> None:
    """Only datagrams from the publisher's host and the ports it declared:
    a stranger's host, and the same host's other ports (a neighbour behind
    the publisher's NAT), are dropped — by the kernel, the sockets being
    connected to the declared sources: the shard never reads them (it read
    and counted each, so a stranger's flood cost it a read a datagram)."""
    async def main() -> None:
        good_rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        good_rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        neighbour = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (good_rtp, good_rtcp, neighbour):
            s.bind(("127.0.0.1", 0))
        stranger.bind(("127.0.0.2", 0))
        ports = f"{good_rtp.getsockname()[1]}-{good_rtcp.getsockname()[1]}"
        host = make_host(random_bytes=fixed_random, clock=lambda: 0.0, rtp_ports=(31200, 31209))
        session, t = connect(host, announce() + request(
            "SETUP", 3, f"Transport: RTP/AVP;unicast;client_port={ports};mode=record", uri=f"{URL}/streamid=0"))
        out = t.take()
        port = host.ports.ports[0]
        assert out.endswith(ok(3, f"Transport: RTP/AVP;unicast;client_port={ports};server_port={port}-{port + 1};mode=record"))
        before = session.ingest.bytes_in
        session.data_received(record(4))
        assert session.stream is not None
        collector = RingCollector(session.stream)
        try:
            stranger.sendto(RTP_IDR, ("127.0.0.1", port))
            neighbour.sendto(RTP_IDR, ("127.0.0.1", port))
            good_rtcp.sendto(RTP_IDR, ("127.0.0.1", port))  # RTP from the RTCP port
            good_rtp.sendto(RTCP_SR, ("127.0.0.1", port + 1))  # RTCP from the RTP port
            good_rtp.sendto(RTP_IDR, ("127.0.0.1", port))
            good_rtcp.sendto(RTCP_SR, ("127.0.0.1", port + 1))
            good_rtp.sendto(RTP_P, ("127.0.0.1", port))
            await wait_for(lambda: session.ingest.ingests[0].stats.packets == 2 and session.ingest.ingests[0].stats.rtcp == 1)
        finally:
            for s in (good_rtp, good_rtcp, neighbour, stranger):
                s.close()
        collector.close()
        assert [(e.pts, e.keyframe) for e in collector.entries] == [(0, True), (3600, False)]
        assert session.stream.size == before + len(record(4)) + len(RTP_IDR) + len(RTCP_SR) + len(RTP_P)
        setup = session.setups[0]
        assert setup.udp is not None and setup.udp.rejected == 0  # none reached the shard
        session.close()
        assert not host.ports._used

    run(main)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_after_record_never_raise(data: bytes) -> None:
    async def main() -> None:
        host = make_host(random_bytes=fixed_random)
        session, t = go_live(host)
        session.data_received(data)  # answers, drops or closes; never raises
        for ingest in session.ingest.ingests:
            ingest.push_rtp(data)
            ingest.push_rtcp(data)
        session.close()

    run(main)


def test_ingest_never_raises_on_arbitrary_packets() -> None:
    async def main() -> None:
        host = make_host(random_bytes=fixed_random)
        session, _ = go_live(host)
        ingest: TrackIngest = session.ingest.ingests[1]  # AAC
        for data in (b"", b"\x80", RTP_IDR[:12], bytes.fromhex("80e10007000000005566778800") + b"\xff" * 40):
            ingest.push_rtp(data)
        assert (ingest.stats.bad_rtp, ingest.stats.foreign_pt, ingest.stats.packets) == (2, 1, 1)
        session.close()

    run(main)


def test_a_publisher_that_never_records_is_closed_and_its_ports_freed() -> None:
    """ANNOUNCE, SETUP over UDP, then only keep-alives: before, the session
    (and its port pairs) lasted as long as the keep-alives came."""
    async def main() -> None:
        host = make_host(random_bytes=fixed_random, clock=lambda: 0.0, rtp_ports=(31210, 31219), record_within=0.3)
        session, t = connect(host, announce() + request(
            "SETUP", 3, "Transport: RTP/AVP;unicast;client_port=5000-5001;mode=record", uri=f"{URL}/streamid=0"))
        assert host.ports._used
        for cseq in range(4, 8):  # keep-alives keep the session, not the handshake
            session.data_received(request("OPTIONS", cseq, f"Session: {SID}"))
            await asyncio.sleep(0.1)
        await wait_for(lambda: t.closed)
        assert session.closed and session.stream is None and not host.ports._used

        live, lt = connect(host, announce() + setup_tcp(3, 0, 0) + record(4))  # one that records stays
        await asyncio.sleep(0.5)
        assert not lt.closed and live.stream is not None

    run(main)


def test_one_publisher_sets_up_at_most_max_udp_tracks_over_udp() -> None:
    """An SDP may announce 32 media, each a UDP port pair of the shard's slice
    when set up over UDP: a few such connections took the slice. Now 8 a
    publisher (`hub.shard.publish.MAX_UDP_TRACKS`), then 503."""
    cap = 8
    sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" + "".join(
        f"m=audio 0 RTP/AVP 8\r\na=control:trackID={i}\r\n" for i in range(12))

    async def main() -> None:
        host = make_host(random_bytes=fixed_random, clock=lambda: 0.0, rtp_ports=(31220, 31299))
        session, t = connect(host, announce(sdp=sdp))
        t.take()
        for i in range(12):
            transport = f"Transport: RTP/AVP;unicast;client_port={5000 + 2 * i}-{5001 + 2 * i};mode=record"
            session.data_received(request("SETUP", 3 + i, transport, *([f"Session: {SID}"] if i else []),
                                          uri=f"{URL}/trackID={i}"))
        answers = t.take().split(b"RTSP/1.0 ")[1:]
        assert [a.split(b" ", 1)[0] for a in answers] == [b"200"] * cap + [b"503"] * (12 - cap)
        assert len(host.ports._used) == cap
        session.close()
        assert not host.ports._used

    run(main)


def test_one_client_holds_a_share_of_the_shards_udp_ports() -> None:
    """Every track a publisher sets up over UDP holds a pair of the shard's
    slice until its connection ends, and the slice was shared by all: one
    client announcing path after path over UDP took it, and every other
    publisher's UDP SETUP was answered 503. Now a client address holds at
    most its share (an eighth of the slice, at least 32; `hub.udp_ports`),
    past it 461 (FFmpeg then publishes over TCP), and another client still
    gets a pair; a pair given back is the client's to take again."""
    def publisher(host: PublishHost, path: str, peer: str) -> tuple[RtspPublisher, FakeTransport]:
        session = RtspPublisher(host, path, peer)
        transport = FakeTransport()
        transport.protocol = session
        session.connection_made(transport)
        url = f"rtsp://127.0.0.1:1554{path}"
        session.data_received(request("ANNOUNCE", 2, uri=url, body=SDP_PCMA) + request(
            "SETUP", 3, "Transport: RTP/AVP;unicast;client_port=5000-5001;mode=record", uri=f"{url}/trackID=0"))
        return session, transport

    def answer(t: FakeTransport) -> bytes:
        return t.take().split(b"RTSP/1.0 ")[-1].split(b" ", 1)[0]

    async def main() -> None:
        host = make_host(random_bytes=fixed_random, clock=lambda: 0.0, rtp_ports=(31400, 31599))
        assert len(host.ports.ports) == 50 and host.ports.per_client == 32  # 100 pairs, 2 slices
        mine = [publisher(host, f"/live/a{i}", f"127.0.0.1:{40000 + i}") for i in range(40)]
        statuses = [answer(t) for _, t in mine]
        assert statuses == [b"200"] * 32 + [b"461"] * 8, statuses
        other, t = publisher(host, "/live/b", "127.0.0.2:40000")
        assert answer(t) == b"200"
        mine[0][0].close()
        again, t = publisher(host, "/live/a0", "127.0.0.1:41000")
        assert answer(t) == b"200"
        for s, _ in mine[1:]:
            s.close()
        other.close()
        again.close()
        assert not host.ports._used and not host.ports._held

    run(main)
