"""What a stream is, as the owning shard tells the fronts that read it.

The contract between a stream's writer (shard) and its readers (fronts):

- `StreamDesc` travels over IPC (`to_wire()` is msgpack-able) in the answer to
  `open_stream`, and again whenever the ring's description version changes
  (in-band parameter sets, a new publisher's SDP).
- Ring entries: `track` is the index into `tracks`; `pts`/`dts` are in the
  track's `clock_rate`, counted from the stream's start: the extended RTP
  timestamp minus the track's first one, plus the arrival offset of that
  first packet, so the tracks of a stream share one time line; `data` is
  an access unit: AVCC (4-byte length + NAL, repeated) for H.264/H.265, one raw
  AAC frame for AAC, and for any other codec the RTP payload as received
  (`FLAG_RTP_PAYLOAD`, with `FLAG_MARKER` when the packet had the marker bit),
  which RTSP players get unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FLAG_RTP_PAYLOAD = 1
FLAG_MARKER = 2

VIDEO_CODECS = ("H264", "H265")
AUDIO_AAC = "MPEG4-GENERIC"


@dataclass
class TrackDesc:
    index: int
    kind: str  # "video", "audio", or the SDP media type
    codec: str  # SDP encoding name, upper case: H264, H265, MPEG4-GENERIC, PCMA, ...
    payload_type: int
    clock_rate: int
    channels: int = 0
    fmtp: str = ""  # the publisher's fmtp parameters (for RTSP players)
    # codec configuration
    sps: bytes = b""
    pps: bytes = b""
    vps: bytes = b""
    asc: bytes = b""  # AAC AudioSpecificConfig
    width: int = 0
    height: int = 0
    framerate: float = 0.0
    sample_rate: int = 0

    def to_wire(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> TrackDesc:
        return cls(**d)


@dataclass
class StreamDesc:
    stream_id: int
    path: str
    ring: str  # shared-memory segment name
    version: int  # equals the ring header's description version
    sdp: str  # session description for RTSP players (controls trackID=N)
    tracks: list[TrackDesc] = field(default_factory=list)
    addr: str = ""  # publisher address or masked upstream URL
    start_on: str = ""  # RFC 3339

    def to_wire(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["tracks"] = [t.to_wire() for t in self.tracks]
        return d

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> StreamDesc:
        d = dict(d)
        d["tracks"] = [TrackDesc.from_wire(t) for t in d.get("tracks", [])]
        return cls(**d)

    def track(self, kind: str) -> TrackDesc | None:
        for t in self.tracks:
            if t.kind == kind:
                return t
        return None
