"""What a shard reports for the metrics: lost and dropped RTP packets and
bytes in, counted by the ingest and the streams, kept when a stream ends
(hub.shard.metrics)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hub.media.rtp import RtpPacket
from hub.shard.hls import HlsManager
from hub.shard.metrics import ShardTally, shard_report
from hub.shard.publish import PublishHost
from hub.shard.pull import PullManager
from hub.shard.streams import StreamTable
from tests.shard.ingest_helpers import go_live, run, session

IDR = bytes.fromhex("65888040")
P_SLICE = bytes.fromhex("419a0011")


def rtp(seq: int, payload: bytes, pt: int = 96) -> bytes:
    return bytes(RtpPacket(payload_type=pt, sequence_number=seq, timestamp=3600 * seq, ssrc=0x11223344,
                           marker=True, payload=payload))


def test_losses_are_counted_per_stream_and_kept_when_it_ends() -> None:
    async def main(streams: StreamTable) -> None:
        tally = ShardTally()
        streams.on_stream_closed.append(tally.stream_ended)
        host = PublishHost(streams.args, streams)
        pulls = PullManager(streams, lambda path: None)
        hls = HlsManager(Path(tempfile.mkdtemp()), 2.0)

        def report() -> dict[str, object]:
            return shard_report(tally, streams, host, pulls, hls)

        ingest, _src = session(streams, "/live/lossy")
        ring = go_live(ingest)
        video = ingest.ingests[0]
        for packet in (rtp(1, IDR), rtp(2, P_SLICE), rtp(5, P_SLICE),  # 3 and 4 lost
                       rtp(4, P_SLICE),  # late: dropped
                       b"\x80\x60",  # does not parse: dropped
                       rtp(6, P_SLICE, pt=50)):  # another payload type: dropped
            video.push_rtp(packet)
        ingest.count(1000)
        assert ingest.stream is not None
        assert ingest.stream.losses() == (2, 3)
        r = report()
        assert r["c"] == {"pull_reconnects": 0, "rtp_lost": 2, "rtp_dropped": 3, "recording_errors": 0}
        assert r["p"] == {"/live/lossy": [1000, 0]}
        assert r["g"] == {"streams_live": 1, "publishers": {"rtsp": 0, "rtmp": 0, "whip": 0}, "pulls": {},
                          "hls_segmenters": 0, "recordings": 0}

        ring.close()
        ingest.close()  # the stream ends: its counts stay, its path is reported once more
        r = report()
        assert r["c"] == {"pull_reconnects": 0, "rtp_lost": 2, "rtp_dropped": 3, "recording_errors": 0}
        assert r["p"] == {"/live/lossy": [1000, 0]}
        assert report()["p"] == {}
        assert report()["c"] == {"pull_reconnects": 0, "rtp_lost": 2, "rtp_dropped": 3, "recording_errors": 0}

    run(main)
