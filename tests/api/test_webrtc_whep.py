"""The WHEP fan-out's scheduling, in one process: one packetisation per batch,
players served SEND_CHUNK per loop turn in order, a front that falls behind
sheds to the newest keyframe, B-frames end the sessions. The players here
are recording stand-ins; the fan-out is the real one."""

from __future__ import annotations

import asyncio
from typing import Any

from hub.api.webrtc.whep import BEHIND_UNITS, SEND_CHUNK, Unit, WhepFanout
from hub.media.stream_desc import StreamDesc, TrackDesc
from hub.ring import RingEntry

SPS = bytes.fromhex("6742c01e8c8d40")
PPS = bytes.fromhex("68ce3c80")
DESC = StreamDesc(1, "/live/x", "ring", 1, "", [TrackDesc(0, "video", "H264", 96, 90000, sps=SPS, pps=PPS),
                                                TrackDesc(1, "audio", "MPEG4-GENERIC", 97, 44100)])


class View:
    def __init__(self) -> None:
        self.desc = DESC

    def gop(self) -> list[RingEntry]:
        return []


class Host:
    port = None

    def __init__(self) -> None:
        self.forgotten: list[Any] = []

    def forget(self, session: Any) -> None:
        self.forgotten.append(session)

    def keyframe_wanted(self, view: Any) -> None:
        pass


class Player:
    """Records what the fan-out hands it, as a WhepSession would send it."""

    def __init__(self, fan: WhepFanout, name: int) -> None:
        self.name = name
        self.fan = fan
        self.ready = True
        self.closed = False
        self.skipping = False
        self.got: list[list[int]] = []  # per batch: the pts... of the video units sent
        self.consumer = object()
        self.reason = ""

    def send(self, units: list[Unit]) -> None:
        sent = []
        for track, key, _pkts in units:
            if self.skipping:
                if not key:
                    continue
                self.skipping = False
            sent.append(track)
        self.got.append(sent)

    def close(self, reason: str) -> None:
        self.closed = True
        self.reason = reason
        self.fan.remove(self)  # type: ignore[arg-type]


def _entry(seq: int, key: bool = False, track: int = 0, bframe: bool = False) -> RingEntry:
    data = bytes.fromhex("00000005") + (b"\x65" if key else b"\x41") + b"\x00" * 4
    pts = seq * 3600
    return RingEntry(seq, track, 0, key, pts, pts - 3600 if bframe else pts, data)


def _fanout(n: int) -> tuple[WhepFanout, list[Player]]:
    fan = WhepFanout(View(), Host())  # type: ignore[arg-type]
    players = [Player(fan, i) for i in range(n)]
    fan.sessions = players  # type: ignore[assignment]
    return fan, players


def test_one_packetisation_chunked_sends_in_order() -> None:
    async def run() -> None:
        fan, players = _fanout(2 * SEND_CHUNK + 50)
        fan.feed([_entry(0, key=True), _entry(1, track=1)])  # AAC: not a WebRTC track
        fan.feed([_entry(2)])
        assert fan.out.units == 2  # once per video entry, whatever the player count
        # The first chunk went out at once, the rest on the next loop turns.
        assert [len(p.got) for p in players[:SEND_CHUNK]] == [1] * SEND_CHUNK
        assert all(not p.got for p in players[SEND_CHUNK:])
        for _ in range(6):
            await asyncio.sleep(0)
        assert all(p.got == [[0], [0]] for p in players)
        assert fan._queued_video == 0 and not fan._backlog

    asyncio.run(run())


def test_a_front_that_falls_behind_sheds_to_the_newest_keyframe() -> None:
    async def run() -> None:
        fan, players = _fanout(SEND_CHUNK + 10)
        # The loop never turns between these batches: the last players fall behind.
        for i in range(BEHIND_UNITS):
            fan.feed([_entry(i, key=(i == 0))])
        assert fan._queued_video == BEHIND_UNITS
        late = players[-1]
        assert late.got == []
        fan.feed([_entry(100), _entry(101, key=True), _entry(102)])
        assert fan.shed > 0 and len(fan._backlog) == 1
        for _ in range(4):
            await asyncio.sleep(0)
        # Everybody waited for the keyframe: the stale batches never reached the
        # late player, and the shed batch's frames before its keyframe went nowhere.
        assert late.got == [[0, 0]]
        assert players[0].got[-1] == [0, 0]

    asyncio.run(run())


def test_b_frames_end_the_sessions() -> None:
    async def run() -> None:
        fan, players = _fanout(3)
        fan.feed([_entry(0, key=True)])
        fan.feed([_entry(1), _entry(2, bframe=True)])
        assert fan.bframes and all(p.closed and "B-frames" in p.reason for p in players)
        assert fan.sessions == []

    asyncio.run(run())
