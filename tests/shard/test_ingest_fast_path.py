"""The publisher's hot path: whole `$` frames taken off a read as views
(`IngestSession.receive_frames`), RTP headers read without a packet object
(`TrackIngest.push_rtp_view`), units joined once. It must give exactly what
the reference path gives: the RTSP reader's frames, `RtpPacket.parse`, the
depacketisers' `push`."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import ProtocolError
from hub.media.rtp import RtpPacket
from hub.media.rtp_aac import AacDepacketizer
from hub.media.rtp_h264 import H264Depacketizer

from .publish_session_helpers import (
    fixed_random,
    frame,
    go_live,
    interleave,
    publish_reads,
    rtp_stream,
    run,
)
from .test_publish_helpers import make_host


def _reference(video: list[bytes], audio: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """What the depacketisers' push(RtpPacket) make of the same packets."""
    v, a = H264Depacketizer(), AacDepacketizer()
    return ([au.data for p in video for au in v.push(RtpPacket.parse(p))],
            [au.data for p in audio for au in a.push(RtpPacket.parse(p))])


def test_frames_off_reads_give_the_reference_units_however_the_reads_cut() -> None:
    video, audio = rtp_stream()
    ref_video, ref_audio = _reference(video, audio)
    assert len(ref_video) == 30 and len(ref_audio) == 60  # the marker ends each frame
    wire = interleave(video, audio)
    rnd = random.Random(7)
    cuts = sorted(rnd.sample(range(1, len(wire)), 200))
    splits = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)])]
    per_frame = [frame(0, p) for p in video] + [frame(2, p) for p in audio]
    for reads in ([wire], splits, [wire[i:i + 1] for i in range(4096)] + [wire[4096:]]):
        entries = publish_reads(reads)
        assert [e.data for e in entries if e.track == 0] == ref_video
        assert [e.data for e in entries if e.track == 1] == ref_audio
        assert [e.keyframe for e in entries if e.track == 0] == [i % 10 == 0 for i in range(30)]
    # One read per frame (as FFmpeg writes them), tracks one after the other.
    entries = publish_reads(per_frame)
    assert [e.data for e in entries if e.track == 0] == ref_video
    assert [e.data for e in entries if e.track == 1] == ref_audio


def test_a_request_between_frames_is_answered_and_frames_go_on() -> None:
    video, audio = rtp_stream(frames=3)
    options = b"OPTIONS rtsp://127.0.0.1:1554/live/x RTSP/1.0\r\nCSeq: 9\r\n\r\n"
    wire = interleave(video[:4], audio[:4]) + options + interleave(video[4:], audio[4:])
    answer = bytearray()
    entries = publish_reads([wire], answer)
    assert answer.startswith(b"RTSP/1.0 200 OK\r\nCSeq: 9\r\n")
    ref_video, ref_audio = _reference(video, audio)
    assert [e.data for e in entries if e.track == 0] == ref_video
    assert [e.data for e in entries if e.track == 1] == ref_audio


def _rtp_like() -> st.SearchStrategy[bytes]:
    """Bytes that are often nearly RTP: the version, CC, X and P bits and
    the payload type vary, lengths run short or long."""
    head = st.tuples(st.integers(0, 255), st.sampled_from([96, 97, 0xE0, 0xE1, 8]), st.binary(min_size=10, max_size=10))
    return st.one_of(st.binary(max_size=80),
                     st.builds(lambda h, rest: bytes((h[0], h[1])) + h[2] + rest, head, st.binary(max_size=80)))


@settings(max_examples=400, deadline=None)
@given(st.lists(_rtp_like(), max_size=8))
def test_header_reading_agrees_with_rtp_packet_parse(packets: list[bytes]) -> None:
    """For any bytes: dropped as bad exactly when RtpPacket.parse raises,
    as foreign exactly when its payload type is another's; never raises."""

    async def main() -> None:
        host = make_host(random_bytes=fixed_random)
        session, _t = go_live(host)
        ingest = session.ingest.ingests[0]  # H.264, payload type 96
        for data in packets:
            before = (ingest.stats.bad_rtp, ingest.stats.foreign_pt, ingest.stats.packets)
            ingest.push_rtp_view(data)
            after = (ingest.stats.bad_rtp, ingest.stats.foreign_pt, ingest.stats.packets)
            try:
                pkt = RtpPacket.parse(data)
            except ProtocolError:
                assert after == (before[0] + 1, before[1], before[2])
                continue
            if pkt.payload_type != 96:
                assert after == (before[0], before[1] + 1, before[2])
            else:
                assert after == (before[0], before[1], before[2] + 1)
        session.close()

    run(main)
