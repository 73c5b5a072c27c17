"""FFmpeg publishes (TCP interleaved and UDP, H.264+AAC and H.265) into a
`PublishHost`; the ring is read back with a RingReader and checked: tracks,
sizes from the SPS, keyframes, PyAV decodes every access unit, timestamps,
and the stream's byte count against the kernel's."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Coroutine

import av
import pytest
import uvloop

from hub.media.access_unit import avcc_split, avcc_to_annexb
from hub.media.stream_desc import AUDIO_AAC
from hub.shard.publish import RtspPublisher

from .test_publish_helpers import (PublishBench, RingCollector, make_host, run_ffmpeg,
                                   tcp_payload_received, wait_for)

pytestmark = pytest.mark.e2e

SECONDS = "2"
START = b"\x00\x00\x00\x01"


def run(coro_fn: Callable[[], Coroutine[Any, Any, None]], use_uvloop: bool = False) -> None:
    if use_uvloop:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(asyncio.wait_for(coro_fn(), 40))
    else:
        asyncio.run(asyncio.wait_for(coro_fn(), 40))


def _h264_args(url: str, transport: str) -> list[str]:
    return ["-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", SECONDS, "-map", "0:v", "-map", "1:a",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25", "-bf", "0", "-preset", "veryfast",
            "-c:a", "aac", "-ac", "2",
            "-f", "rtsp", "-rtsp_transport", transport, url]


async def _publish(bench: PublishBench, args: list[str]) -> tuple[RtspPublisher, RingCollector]:
    """Run ffmpeg to the end, collecting the ring while it runs."""
    host = bench.host
    ff = asyncio.get_running_loop().create_task(run_ffmpeg(*args))
    stream = await wait_for(lambda: host.streams.get("/live/x") or ff.done(), timeout=15)
    if ff.done():
        ff.result()
        raise AssertionError("ffmpeg ended before the stream went live")
    collector = RingCollector(stream)
    while not ff.done():
        collector.poll()
        await asyncio.sleep(0.05)
    await ff
    collector.close()
    session = bench.handed[0].session
    await wait_for(lambda: session.closed, timeout=5)  # TEARDOWN closes it
    return session, collector


def _decode(codec: str, params: list[bytes], aus: list[bytes]) -> list[Any]:
    """Decode AVCC access units with PyAV; parameter sets go first."""
    ctx = av.CodecContext.create(codec, "r")
    frames: list[Any] = []
    head = b"".join(START + p for p in params)
    for i, au in enumerate(aus):
        data = (head if i == 0 else b"") + avcc_to_annexb(au)
        frames.extend(ctx.decode(av.Packet(data)))
    frames.extend(ctx.decode(None))
    return frames


def _check_h264_aac(session: RtspPublisher, collector: RingCollector) -> None:
    stream = session.stream
    assert stream is not None and stream.closed
    video, audio = stream.tracks
    assert (video.index, video.kind, video.codec, video.payload_type, video.clock_rate) == (0, "video", "H264", 96, 90000)
    assert (video.width, video.height, video.framerate) == (640, 360, 25.0)
    assert video.sps[0] & 0x1F == 7 and video.pps[0] & 0x1F == 8
    assert (audio.index, audio.kind, audio.codec, audio.clock_rate) == (1, "audio", AUDIO_AAC, 48000)
    assert (audio.sample_rate, audio.channels) == (48000, 2)
    assert audio.asc == bytes.fromhex("119056E500")  # as FFmpeg writes it (with the SBR sync extension)
    assert "a=control:trackID=0" in stream.sdp and "a=control:trackID=1" in stream.sdp

    v = [e for e in collector.entries if e.track == 0]
    a = [e for e in collector.entries if e.track == 1]
    assert 45 <= len(v) <= 50, len(v)  # 2 s at 25 fps (ffmpeg may cut the last frame)
    assert 80 <= len(a) <= 95, len(a)  # 2 s of 1024-sample frames at 48 kHz = 93.75
    for e in v:
        types = [nal[0] & 0x1F for nal in avcc_split(e.data)]
        assert e.keyframe == (5 in types), (e.seq, types)
        assert e.flags == 0
    assert [i for i, e in enumerate(v) if e.keyframe] == [0, 25][:1 + (len(v) > 25)]
    assert not any(e.keyframe for e in a)  # audio of an A/V stream is no start point
    # pts = dts, one frame (3600 ticks) apart, starting near the stream start.
    assert all(e.pts == e.dts for e in v + a)
    assert [y.pts - x.pts for x, y in zip(v, v[1:])] == [3600] * (len(v) - 1)
    assert [y.pts - x.pts for x, y in zip(a, a[1:])] == [1024] * (len(a) - 1)
    assert 0 <= v[0].pts < 90000 and 0 <= a[0].pts < 48000
    # Both tracks on one time line: their first entries within 0.5 s.
    assert abs(v[0].pts / 90000 - a[0].pts / 48000) < 0.5
    frames = _decode("h264", [video.sps, video.pps], [e.data for e in v])
    assert len(frames) == len(v)
    assert {(f.width, f.height) for f in frames} == {(640, 360)}
    aac = av.CodecContext.create("aac", "r")
    aac.extradata = audio.asc
    decoded = [f for e in a for f in aac.decode(av.Packet(e.data))]
    assert len(decoded) >= len(a) - 1 and all(f.samples == 1024 for f in decoded)
    for ingest in session.ingest.ingests:
        assert ingest.stats.bad_rtp == 0 and ingest.stats.foreign_pt == 0


def test_ffmpeg_h264_aac_over_tcp() -> None:
    async def main() -> None:
        bench = PublishBench(make_host(), keep_dup=True)
        await bench.start()
        try:
            session, collector = await _publish(bench, _h264_args(bench.url(), "tcp"))
            _check_h264_aac(session, collector)
            handed = bench.handed[0]
            assert handed.dup_fd is not None
            # Every byte after the front's OPTIONS exchange is counted: the
            # replayed ANNOUNCE, the requests and every `$` frame.
            total = await tcp_payload_received(handed.dup_fd)
            assert session.stream is not None
            # The kernel's count takes the peer's FIN as a byte (subtracted),
            # unless FFmpeg, closing with our TEARDOWN answer unread, reset the
            # connection without one: then it is one byte short of the payload.
            assert session.stream.size == session.ingest.bytes_in
            assert session.ingest.bytes_in - (total - handed.front_bytes) in (0, 1)
            assert handed.already_read.startswith(b"ANNOUNCE rtsp://127.0.0.1:")
        finally:
            await bench.close()

    run(main)


def test_ffmpeg_h264_aac_over_udp_uvloop() -> None:
    async def main() -> None:
        bench = PublishBench(make_host(rtp_ports=(31100, 31199)), keep_dup=True)
        await bench.start()
        try:
            session, collector = await _publish(bench, _h264_args(bench.url(), "udp"))
            _check_h264_aac(session, collector)
            assert all(s.udp is not None and s.interleaved is None for s in session.setups.values())
            ports = sorted(s.udp.port for s in session.setups.values() if s.udp is not None)
            assert all(31100 <= p <= 31199 and p % 2 == 0 for p in ports)
            # FFmpeg sends RTP and RTCP from the ports it declared: nothing refused.
            assert all(s.udp.rejected == 0 for s in session.setups.values() if s.udp is not None)
            assert sum(i.stats.rtcp for i in session.ingest.ingests) > 0
            handed = bench.handed[0]
            assert handed.dup_fd is not None
            tcp = await tcp_payload_received(handed.dup_fd) - handed.front_bytes
            packets = sum(i.stats.packets + i.stats.rtcp for i in session.ingest.ingests)
            assert session.stream is not None
            # The rest came as datagrams: at least an RTP header per packet.
            assert session.stream.size - tcp >= 12 * packets > 0
            # Ports go back to the pool when the session ends.
            assert not bench.host.ports._used
        finally:
            await bench.close()

    run(main, use_uvloop=True)


def test_ffmpeg_h265_over_tcp_uvloop() -> None:
    async def main() -> None:
        bench = PublishBench(make_host())
        await bench.start()
        try:
            args = ["-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", SECONDS,
                    "-c:v", "libx265", "-pix_fmt", "yuv420p", "-preset", "ultrafast",
                    "-x265-params", "log-level=none:keyint=30:bframes=0",
                    "-f", "rtsp", "-rtsp_transport", "tcp", bench.url()]
            session, collector = await _publish(bench, args)
            stream = session.stream
            assert stream is not None
            (video,) = stream.tracks
            assert (video.codec, video.width, video.height, video.framerate) == ("H265", 320, 240, 30.0)
            assert video.vps[0] >> 1 == 32 and video.sps[0] >> 1 == 33 and video.pps[0] >> 1 == 34
            v = collector.entries
            assert 55 <= len(v) <= 60
            for e in v:
                types = [(nal[0] >> 1) & 0x3F for nal in avcc_split(e.data)]
                assert e.keyframe == any(16 <= t <= 23 for t in types)
            assert v[0].keyframe and sum(e.keyframe for e in v) == 2
            assert [y.pts - x.pts for x, y in zip(v, v[1:])] == [3000] * (len(v) - 1)
            frames = _decode("hevc", [video.vps, video.sps, video.pps], [e.data for e in v])
            assert len(frames) == len(v) and {(f.width, f.height) for f in frames} == {(320, 240)}
        finally:
            await bench.close()

    run(main, use_uvloop=True)
